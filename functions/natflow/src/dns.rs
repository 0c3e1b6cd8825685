//! Destinations by name: Route 53 Resolver query logs, indexed by the addresses they answered.
//!
//! The log format (Route 53 developer guide, "Values that appear in VPC Resolver query logs",
//! resolver-query-logs-format, and "Route 53 VPC Resolver query log example",
//! resolver-query-logs-example-json): one JSON object per query with `query_name` (trailing dot),
//! `query_type`, `rcode` (`NOERROR`, `NXDOMAIN`, ...), `answers` (`[{Rdata, Type, Class}]`: the
//! CNAME chain, then the A/AAAA records), `srcaddr` (the host that asked), `query_timestamp`, and
//! more (`srcids`, `firewall_*`, ...). "Route 53 increments the minor version if a change adds new
//! fields", so fields this reader does not know are ignored. CloudWatch Logs holds one object per
//! event; S3 delivery writes them one a line (gzip); a CloudWatch Logs export puts a timestamp
//! before each.
//!
//! The answers carry no owner name, only `Rdata` and `Type`: every A/AAAA record in the answers to
//! a query for `N` is an address of `N` (the end of its CNAME chain), so the name kept is the one
//! asked (`registry-1.docker.io`), not the CDN's canonical name. NXDOMAIN and other errors, and
//! answers without an address, name nothing. Queries are used whatever their time: a name resolved
//! before the flows (a cached answer, a long-lived connection) still names them.
//!
//! A destination is named by the names its source asked for, most queried first; when the source
//! never asked for it (another host resolved it, or the query predates the logs), by the names any
//! host asked for, and the report says so. Nothing is guessed: no reverse lookups, no names from
//! other addresses of the same network.
//!
//! Pure: no AWS, no I/O. Memory grows with distinct (address, source, name) triples.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Malformed lines kept as examples.
const EXAMPLES: usize = 3;

/// What the query logs held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsStats {
    /// Non-blank lines read.
    pub lines: u64,
    /// Queries read (lines that are a query-log entry).
    pub queries: u64,
    /// Queries answered with at least one A or AAAA record.
    pub answered: u64,
    /// Queries whose rcode was not NOERROR (NXDOMAIN, SERVFAIL, REFUSED, ...).
    pub failed: u64,
    /// NOERROR queries without an address in their answers (NODATA, a CNAME only, PTR, TXT, ...).
    pub without_address: u64,
    /// Lines that are not a query-log entry (not JSON, a required field missing, an A/AAAA
    /// record or srcaddr that is not an address).
    pub malformed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub malformed_examples: Vec<String>,
}

/// The names a destination is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Most queried first (ties: by name).
    pub names: Vec<String>,
    /// True when the source itself asked for them; false when only other hosts did.
    pub asked_by_source: bool,
}

#[derive(Deserialize)]
struct Entry {
    query_name: String,
    rcode: String,
    srcaddr: String,
    #[serde(default)]
    answers: Option<Vec<Answer>>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Rdata", default)]
    rdata: Option<String>,
    #[serde(rename = "Type", default)]
    kind: Option<String>,
}

/// The names of one answer address: per asking host, and over all hosts (so that a lookup costs
/// the names of the address, not the hosts that asked for it).
#[derive(Debug, Clone, Default)]
struct IpNames {
    by_source: FxHashMap<IpAddr, Vec<(u32, u64)>>,
    total: FxHashMap<u32, u64>,
}

impl IpNames {
    fn add(&mut self, source: IpAddr, id: u32, n: u64) {
        let own = self.by_source.entry(source).or_default();
        match own.iter_mut().find(|e| e.0 == id) {
            Some(e) => e.1 += n,
            None => own.push((id, n)),
        }
        *self.total.entry(id).or_default() += n;
    }
}

/// Answer address -> names asked, counted per asking host.
#[derive(Debug, Clone, Default)]
pub struct DnsIndex {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
    by_ip: FxHashMap<IpAddr, IpNames>,
    stats: DnsStats,
}

/// `2021-02-04T17:51:55.000Z {...}`: a CloudWatch Logs export's timestamp before the event.
fn strip_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((ts, rest))
            if ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.as_bytes()[10] == b'T' && ts.ends_with('Z') =>
        {
            rest.trim_start()
        }
        _ => line,
    }
}

impl DnsIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &DnsStats {
        &self.stats
    }

    /// No address was named by any query.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Lines of query-log entries (a buffer of whole lines).
    pub fn feed(&mut self, buf: &[u8]) {
        for line in buf.split(|&b| b == b'\n') {
            self.line(line);
        }
    }

    /// One query-log entry (a line, or a CloudWatch Logs event's message).
    pub fn line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let line = text.trim();
        if line.is_empty() {
            return;
        }
        self.stats.lines += 1;
        if self.entry(strip_timestamp(line)).is_none() {
            self.stats.malformed += 1;
            if self.stats.malformed_examples.len() < EXAMPLES {
                self.stats.malformed_examples.push(line.chars().take(200).collect());
            }
        }
    }

    /// `None`: malformed (nothing of the line is kept).
    fn entry(&mut self, json: &str) -> Option<()> {
        let e: Entry = serde_json::from_str(json).ok()?;
        let source: IpAddr = e.srcaddr.trim().parse().ok()?;
        let name = e.query_name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        // Every A/AAAA record must be an address of its family, or the line is not trusted.
        let mut addresses: Vec<IpAddr> = Vec::new();
        for a in e.answers.iter().flatten() {
            let ip = match a.kind.as_deref() {
                Some("A") => IpAddr::V4(a.rdata.as_deref()?.trim().parse().ok()?),
                Some("AAAA") => IpAddr::V6(a.rdata.as_deref()?.trim().parse().ok()?),
                _ => continue,
            };
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        self.stats.queries += 1;
        if e.rcode != "NOERROR" {
            self.stats.failed += 1;
            return Some(());
        }
        if addresses.is_empty() {
            self.stats.without_address += 1;
            return Some(());
        }
        self.stats.answered += 1;
        let id = self.id(&name);
        for ip in addresses {
            self.by_ip.entry(ip).or_default().add(source, id, 1);
        }
        Some(())
    }

    fn id(&mut self, name: &str) -> u32 {
        match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                self.names.push(name.to_string());
                self.ids.insert(name.to_string(), id);
                id
            }
        }
    }

    /// Another index's queries added to this one's (indexes built in parallel).
    pub fn merge(&mut self, other: DnsIndex) {
        for (ip, m) in other.by_ip {
            for (src, own) in m.by_source {
                for (id, n) in own {
                    let id = self.id(&other.names[id as usize]);
                    self.by_ip.entry(ip).or_default().add(src, id, n);
                }
            }
        }
        let (s, o) = (&mut self.stats, other.stats);
        s.lines += o.lines;
        s.queries += o.queries;
        s.answered += o.answered;
        s.failed += o.failed;
        s.without_address += o.without_address;
        s.malformed += o.malformed;
        for e in o.malformed_examples {
            if s.malformed_examples.len() < EXAMPLES {
                s.malformed_examples.push(e);
            }
        }
    }

    /// The first of [`DnsIndex::names`] (most queried, ties by name), without the others.
    pub fn top_name(&self, source: Option<IpAddr>, destination: IpAddr) -> Option<&str> {
        let m = self.by_ip.get(&destination)?;
        let best = |it: &mut dyn Iterator<Item = (u32, u64)>| {
            it.min_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| self.names[a.0 as usize].cmp(&self.names[b.0 as usize]))
            })
        };
        let id = match source.and_then(|s| m.by_source.get(&s)) {
            Some(own) => best(&mut own.iter().copied()),
            None => best(&mut m.total.iter().map(|(&id, &n)| (id, n))),
        }?;
        Some(&self.names[id.0 as usize])
    }

    /// The names `destination` is known by for `source`: the source's own queries first; else any
    /// host's (`source` None: any host's).
    pub fn names(&self, source: Option<IpAddr>, destination: IpAddr) -> Option<Names> {
        let m = self.by_ip.get(&destination)?;
        let ranked = |mut v: Vec<(u32, u64)>| -> Vec<String> {
            v.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| self.names[a.0 as usize].cmp(&self.names[b.0 as usize]))
            });
            v.into_iter().map(|(id, _)| self.names[id as usize].clone()).collect()
        };
        if let Some(own) = source.and_then(|s| m.by_source.get(&s)) {
            return Some(Names {
                names: ranked(own.clone()),
                asked_by_source: true,
            });
        }
        Some(Names {
            names: ranked(m.total.iter().map(|(&id, &n)| (id, n)).collect()),
            asked_by_source: false,
        })
    }
}

/// Multi-label public suffixes under which each registrable domain is someone else's (Public
/// Suffix List, ICANN and private sections; a short list of the ones NAT traffic meets). A name
/// under none of them is grouped by its last two labels.
pub const PUBLIC_SUFFIXES: &[&str] = &[
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "com.au",
    "net.au",
    "org.au",
    "co.nz",
    "co.jp",
    "ne.jp",
    "or.jp",
    "co.kr",
    "com.br",
    "com.cn",
    "com.mx",
    "com.sg",
    "com.tw",
    "com.tr",
    "co.in",
    "co.za",
    "com.hk",
    "amazonaws.com.cn",
    "cloudfront.net",
    "elb.amazonaws.com",
    "github.io",
    "githubusercontent.com",
    "herokuapp.com",
    "azurewebsites.net",
    "blob.core.windows.net",
    "appspot.com",
    "r2.dev",
    "pages.dev",
    "workers.dev",
    "vercel.app",
    "netlify.app",
    "fly.dev",
    "web.app",
    "firebaseapp.com",
];

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`.
fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The domain a host name's traffic is grouped under: the registrable domain (one label under its
/// public suffix: `registry-1.docker.io` -> `docker.io`, `www.bbc.co.uk` -> `bbc.co.uk`), and for
/// AWS endpoints the service and Region (`prod-...-bucket.s3.us-east-1.amazonaws.com` ->
/// `s3.us-east-1.amazonaws.com`, `123.dkr.ecr.eu-west-1.amazonaws.com` ->
/// `ecr.eu-west-1.amazonaws.com`, `s3.amazonaws.com`), since `amazonaws.com` is every AWS service.
/// A deliberately short rule (see [`PUBLIC_SUFFIXES`]), not the whole Public Suffix List.
pub fn domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return name;
    }
    if labels[n - 2..] == ["amazonaws", "com"] {
        // <...>.<service>.<region>.amazonaws.com, or <...>.<service>.amazonaws.com (global).
        if let Some(r) = (0..n - 2).rev().find(|&i| is_region(labels[i])) {
            if r == n - 3 && r > 0 {
                return labels[r - 1..].join(".");
            }
            return labels[r..].join(".");
        }
        let elb = ["elb", "amazonaws", "com"];
        if labels[n - 3..] != elb {
            return labels[n - 3..].join(".");
        }
    }
    let suffix_len = PUBLIC_SUFFIXES
        .iter()
        .filter(|s| name.ends_with(&format!(".{s}")))
        .map(|s| s.split('.').count())
        .max()
        .unwrap_or(1);
    let keep = (suffix_len + 1).min(n);
    labels[n - keep..].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example (resolver-query-logs-example-json), a PTR query: no address.
    const DOC_EXAMPLE: &str = r#"{"srcaddr": "4.5.64.102", "vpc_id": "vpc-7example", "answers": [{"Rdata": "203.0.113.9", "Type": "PTR", "Class": "IN"}], "firewall_rule_group_id": "rslvr-frg-01234567890abcdef", "firewall_rule_action": "BLOCK", "query_name": "15.3.4.32.in-addr.arpa.", "firewall_domain_list_id": "rslvr-fdl-01234567890abcdef", "query_class": "IN", "srcids": {"instance": "i-0d15cd0d3example"}, "rcode": "NOERROR", "query_type": "PTR", "transport": "UDP", "version": "1.100000", "account_id": "111122223333", "srcport": "56067", "query_timestamp": "2021-02-04T17:51:55Z", "region": "us-east-1"}"#;

    fn q(src: &str, name: &str, rcode: &str, answers: &[(&str, &str)]) -> String {
        let a: Vec<serde_json::Value> = answers
            .iter()
            .map(|(t, d)| serde_json::json!({"Rdata": d, "Type": t, "Class": "IN"}))
            .collect();
        serde_json::json!({"version": "1.100000", "account_id": "111122223333", "region": "us-east-1",
            "vpc_id": "vpc-1", "query_timestamp": "2026-11-28T10:00:00Z", "query_name": name, "query_type": "A",
            "query_class": "IN", "rcode": rcode, "answers": a, "srcaddr": src, "srcport": "5353",
            "transport": "UDP", "srcids": {"instance": "i-1"}, "a_field_from_the_future": {"x": 1}})
        .to_string()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_documented_example_is_a_query_without_an_address() {
        let mut d = DnsIndex::new();
        d.line(DOC_EXAMPLE.as_bytes());
        assert_eq!(d.stats().queries, 1);
        assert_eq!(d.stats().without_address, 1);
        assert_eq!(d.stats().malformed, 0);
        assert!(d.is_empty());
    }

    #[test]
    fn the_name_asked_is_kept_through_a_cname_chain_for_a_and_aaaa() {
        let mut d = DnsIndex::new();
        let line = q(
            "10.0.0.5",
            "Registry-1.Docker.io.",
            "NOERROR",
            &[
                ("CNAME", "registry-1.docker.io.cdn.cloudflare.net."),
                ("CNAME", "edge.example.net."),
                ("A", "104.16.1.1"),
                ("A", "104.16.1.2"),
            ],
        );
        let v6 = q(
            "10.0.0.5",
            "registry-1.docker.io.",
            "NOERROR",
            &[("AAAA", "2606:4700::6810:101")],
        );
        d.feed(format!("{line}\n\n{v6}\n").as_bytes());
        assert_eq!(d.stats().lines, 2);
        for dst in ["104.16.1.1", "104.16.1.2", "2606:4700::6810:101"] {
            let n = d.names(Some(ip("10.0.0.5")), ip(dst)).unwrap();
            assert_eq!(n.names, vec!["registry-1.docker.io"], "{dst}");
            assert!(n.asked_by_source);
        }
        // The CNAME targets are no addresses' names.
        assert!(d.names(None, ip("104.16.1.3")).is_none());
    }

    #[test]
    fn nxdomain_and_answerless_queries_name_nothing() {
        let mut d = DnsIndex::new();
        d.line(q("10.0.0.5", "nope.example.", "NXDOMAIN", &[]).as_bytes());
        d.line(q("10.0.0.5", "srv.example.", "SERVFAIL", &[("A", "192.0.2.1")]).as_bytes());
        d.line(q("10.0.0.5", "v6only.example.", "NOERROR", &[]).as_bytes());
        d.line(q("10.0.0.5", "alias.example.", "NOERROR", &[("CNAME", "x.example.")]).as_bytes());
        let s = d.stats();
        assert_eq!((s.queries, s.failed, s.without_address, s.answered), (4, 2, 2, 0));
        assert!(d.is_empty());
    }

    #[test]
    fn several_names_most_queried_first_and_the_sources_own_first() {
        let mut d = DnsIndex::new();
        let cdn = [("A", "151.101.0.1")];
        for _ in 0..3 {
            d.line(q("10.0.0.5", "pypi.org.", "NOERROR", &cdn).as_bytes());
        }
        d.line(q("10.0.0.5", "files.pythonhosted.org.", "NOERROR", &cdn).as_bytes());
        for _ in 0..5 {
            d.line(q("10.0.0.6", "www.example.com.", "NOERROR", &cdn).as_bytes());
        }
        let own = d.names(Some(ip("10.0.0.5")), ip("151.101.0.1")).unwrap();
        assert_eq!(own.names, vec!["pypi.org", "files.pythonhosted.org"]);
        assert!(own.asked_by_source);
        let other = d.names(Some(ip("10.0.0.6")), ip("151.101.0.1")).unwrap();
        assert_eq!(other.names, vec!["www.example.com"]);
        // A host that never asked: every host's names, most queried first.
        let any = d.names(Some(ip("10.0.0.7")), ip("151.101.0.1")).unwrap();
        assert!(!any.asked_by_source);
        assert_eq!(any.names, vec!["www.example.com", "pypi.org", "files.pythonhosted.org"]);
        assert_eq!(d.names(None, ip("151.101.0.1")).unwrap().names, any.names);
        for src in [Some("10.0.0.5"), Some("10.0.0.6"), Some("10.0.0.7"), None] {
            let src = src.map(ip);
            let first = d.names(src, ip("151.101.0.1")).unwrap().names[0].clone();
            assert_eq!(d.top_name(src, ip("151.101.0.1")), Some(first.as_str()));
        }
    }

    #[test]
    fn malformed_lines_are_counted_never_guessed_and_exports_are_read() {
        let mut d = DnsIndex::new();
        let good = q("10.0.0.5", "api.github.com.", "NOERROR", &[("A", "140.82.112.5")]);
        d.line(format!("2026-11-28T10:00:00.000Z {good}").as_bytes());
        for bad in [
            "not json".to_string(),
            r#"{"query_name": "x.example.", "rcode": "NOERROR"}"#.to_string(), // no srcaddr
            q("not-an-ip", "x.example.", "NOERROR", &[("A", "192.0.2.1")]),
            q(
                "10.0.0.5",
                "y.example.",
                "NOERROR",
                &[("A", "192.0.2.1"), ("A", "999.1.1.1")],
            ),
            q("10.0.0.5", "z.example.", "NOERROR", &[("AAAA", "192.0.2.1")]),
            "[1, 2]".to_string(),
        ] {
            d.line(bad.as_bytes());
        }
        let s = d.stats();
        assert_eq!((s.lines, s.queries, s.malformed), (7, 1, 6));
        assert_eq!(s.malformed_examples.len(), EXAMPLES);
        assert_eq!(s.malformed_examples[0], "not json");
        // y.example's valid address was not taken from its malformed line.
        assert!(d.names(None, ip("192.0.2.1")).is_none());
        assert_eq!(
            d.names(Some(ip("10.0.0.5")), ip("140.82.112.5")).unwrap().names,
            vec!["api.github.com"]
        );
    }

    #[test]
    fn merged_indexes_add_up() {
        let (mut a, mut b) = (DnsIndex::new(), DnsIndex::new());
        let cdn = [("A", "151.101.0.1")];
        a.line(q("10.0.0.5", "a.example.", "NOERROR", &cdn).as_bytes());
        b.line(q("10.0.0.5", "b.example.", "NOERROR", &cdn).as_bytes());
        b.line(q("10.0.0.5", "b.example.", "NOERROR", &cdn).as_bytes());
        b.line(b"garbage");
        a.merge(b);
        assert_eq!(
            a.names(Some(ip("10.0.0.5")), ip("151.101.0.1")).unwrap().names,
            vec!["b.example", "a.example"]
        );
        assert_eq!((a.stats().queries, a.stats().malformed), (3, 1));
    }

    #[test]
    fn domains_group_by_registrable_domain_and_aws_service_and_region() {
        for (name, want) in [
            ("registry-1.docker.io", "docker.io"),
            ("auth.docker.io.", "docker.io"),
            ("docker.io", "docker.io"),
            ("www.bbc.co.uk", "bbc.co.uk"),
            ("d111111abcdef8.cloudfront.net", "d111111abcdef8.cloudfront.net"),
            ("objects.githubusercontent.com", "objects.githubusercontent.com"),
            (
                "prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com",
                "s3.us-east-1.amazonaws.com",
            ),
            ("s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "ecr.eu-west-1.amazonaws.com",
            ),
            ("api.ecr.eu-west-1.amazonaws.com", "ecr.eu-west-1.amazonaws.com"),
            ("sqs.us-gov-west-1.amazonaws.com", "sqs.us-gov-west-1.amazonaws.com"),
            ("mybucket.s3.amazonaws.com", "s3.amazonaws.com"),
            ("ec2-1-2-3-4.compute-1.amazonaws.com", "compute-1.amazonaws.com"),
            ("my-lb-123.us-east-1.elb.amazonaws.com", "us-east-1.elb.amazonaws.com"),
            ("a.b.c.example.com", "example.com"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(domain(name), want, "{name}");
        }
    }
}
