//! AWS's published address ranges (`ip-ranges.json`), to name the AWS service behind an address
//! when the records have no `pkt-*-aws-service` field (older formats).

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::error::{AnalysisError, Result};

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    prefixes: Vec<V4>,
    #[serde(default)]
    ipv6_prefixes: Vec<V6>,
}

#[derive(Deserialize)]
struct V4 {
    ip_prefix: IpNet,
    service: String,
}

#[derive(Deserialize)]
struct V6 {
    ipv6_prefix: IpNet,
    service: String,
}

/// Longest-prefix lookup; a specific service (S3, DYNAMODB, ...) wins over the catch-all AMAZON.
#[derive(Debug, Default, Clone)]
pub struct IpRanges {
    by_prefix: FxHashMap<IpNet, String>,
    lengths: Vec<u8>,
}

impl IpRanges {
    pub fn from_json(text: &str) -> Result<Self> {
        let f: File = serde_json::from_str(text)
            .map_err(|e| AnalysisError::IpRanges(format!("{e} (expected AWS's ip-ranges.json)")))?;
        let mut r = Self::default();
        let all = f
            .prefixes
            .into_iter()
            .map(|p| (p.ip_prefix, p.service))
            .chain(f.ipv6_prefixes.into_iter().map(|p| (p.ipv6_prefix, p.service)));
        for (net, service) in all {
            let net = net.trunc();
            let keep = match r.by_prefix.get(&net) {
                Some(existing) => existing == "AMAZON" && service != "AMAZON",
                None => true,
            };
            if keep {
                r.by_prefix.insert(net, service);
            }
            if !r.lengths.contains(&net.prefix_len()) {
                r.lengths.push(net.prefix_len());
            }
        }
        r.lengths.sort_unstable_by(|a, b| b.cmp(a));
        Ok(r)
    }

    pub fn service(&self, ip: IpAddr) -> Option<&str> {
        let mut generic = None;
        for &len in &self.lengths {
            let Ok(net) = IpNet::new(ip, len) else { continue };
            if let Some(s) = self.by_prefix.get(&net.trunc()) {
                if s != "AMAZON" {
                    return Some(s);
                }
                generic.get_or_insert(s.as_str());
            }
        }
        generic
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_service_wins_over_amazon_and_longest_prefix_wins() {
        let r = IpRanges::from_json(
            r#"{"prefixes":[
              {"ip_prefix":"52.216.0.0/15","region":"us-east-1","service":"AMAZON"},
              {"ip_prefix":"52.216.0.0/15","region":"us-east-1","service":"S3"},
              {"ip_prefix":"3.0.0.0/8","region":"us-east-1","service":"AMAZON"},
              {"ip_prefix":"3.5.0.0/16","region":"us-east-1","service":"EC2"}],
              "ipv6_prefixes":[{"ipv6_prefix":"2600:1f18::/33","region":"us-east-1","service":"EC2"}]}"#,
        )
        .unwrap();
        assert_eq!(r.service("52.217.1.2".parse().unwrap()), Some("S3"));
        assert_eq!(r.service("3.5.9.9".parse().unwrap()), Some("EC2"));
        assert_eq!(r.service("3.6.9.9".parse().unwrap()), Some("AMAZON"));
        assert_eq!(r.service("8.8.8.8".parse().unwrap()), None);
        assert_eq!(r.service("2600:1f18::1".parse().unwrap()), Some("EC2"));
        assert!(IpRanges::from_json("{\"prefixes\": 1}").is_err());
    }
}
