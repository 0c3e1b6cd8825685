//! The price table: what a GB through the NAT, across AZs and into the flow-log group costs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result};

/// The documented table (`functions/natflow/prices.json`).
pub const BUILT_IN: &str = include_str!("../prices.json");

/// Bytes per GB as AWS bills data (GiB).
pub const GB: f64 = (1u64 << 30) as f64;

/// AWS's commercial, GovCloud and China Regions by code, to reject a misspelt `--region` before
/// any call goes to an endpoint that does not exist. Source: AWS Global Infrastructure, "AWS Region
/// billing codes" (docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html)
/// and "Regions and Zones". A Region AWS opens later: add its code here (one line, kept sorted).
pub const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Whether `name` is an AWS Region code of [`AWS_REGIONS`].
pub fn is_aws_region(name: &str) -> bool {
    AWS_REGIONS.binary_search(&name).is_ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegionPrices {
    pub nat_per_gb: f64,
    pub nat_per_hour: f64,
    pub cross_az_per_gb: f64,
    pub flow_log_ingestion_per_gb: f64,
    pub interface_endpoint_per_gb: f64,
    pub interface_endpoint_per_hour: f64,
    /// CloudWatch Logs Insights queries, per GB scanned (CloudWatch pricing, Logs, "Analyze").
    pub logs_insights_per_gb: f64,
}

/// The prices used for one report, and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub region: String,
    /// Which table entry: the region itself, `us-east-1 (no entry for <region>)`, or for a region
    /// given only some prices by an override, which prices came from where.
    pub source: String,
    #[serde(flatten)]
    pub per: RegionPrices,
}

type Entries = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// A price file's entries (keys starting with `_` are comments), each an object of prices.
fn entries(text: &str) -> Result<Entries> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| AnalysisError::Prices(e.to_string()))?;
    raw.into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| match v {
            serde_json::Value::Object(m) => Ok((k, m)),
            other => Err(AnalysisError::Prices(format!(
                "region {k}: expected an object of prices, found {other}"
            ))),
        })
        .collect()
}

/// The price names of [`RegionPrices`].
const PRICE_NAMES: &[&str] = &[
    "nat_per_gb",
    "nat_per_hour",
    "cross_az_per_gb",
    "flow_log_ingestion_per_gb",
    "interface_endpoint_per_gb",
    "interface_endpoint_per_hour",
    "logs_insights_per_gb",
];

fn prices_of(region: &str, m: &serde_json::Map<String, serde_json::Value>) -> Result<RegionPrices> {
    // Not serde's deny_unknown_fields: RegionPrices is flattened into Prices, where it cannot be.
    if let Some(k) = m.keys().find(|k| !PRICE_NAMES.contains(&k.as_str())) {
        return Err(AnalysisError::Prices(format!(
            "region {region}: unknown price {k:?}; the prices are {}",
            PRICE_NAMES.join(", ")
        )));
    }
    serde_json::from_value(serde_json::Value::Object(m.clone()))
        .map_err(|e| AnalysisError::Prices(format!("region {region}: {e}")))
}

impl Prices {
    /// Prices for `region` from the built-in table, overridden field by field by `overrides`
    /// (same layout as prices.json): an override may give one region only some prices, and the
    /// others come from the built-in entry of that region, else from us-east-1's (said in `source`).
    /// An unknown price name or a value that is not a number is an error naming the region.
    pub fn for_region(region: &str, overrides: Option<&str>) -> Result<Self> {
        let built_in = entries(BUILT_IN)?;
        let fallback = built_in
            .get("us-east-1")
            .ok_or_else(|| AnalysisError::Prices("no us-east-1 entry to fall back on".into()))?
            .clone();
        let mut given = entries(overrides.unwrap_or("{}"))?;
        // Check every overridden region, not only the one used: a typo elsewhere is still a typo.
        for (r, m) in &given {
            let mut full = built_in.get(r).unwrap_or(&fallback).clone();
            full.extend(m.clone());
            prices_of(r, &full)?;
        }
        let own = given.remove(region);
        let base = built_in.get(region);
        let mut merged = base.unwrap_or(&fallback).clone();
        let source = match (&own, base) {
            (None, None) => format!("us-east-1 (no entry for {region})"),
            (Some(m), None) if m.len() < fallback.len() => {
                let names: Vec<&str> = m.keys().map(String::as_str).collect();
                format!("{region} ({} given; the rest us-east-1's)", names.join(", "))
            }
            _ => region.to_string(),
        };
        if let Some(m) = own {
            merged.extend(m);
        }
        Ok(Self {
            region: region.into(),
            source,
            per: prices_of(region, &merged)?,
        })
    }

    pub fn nat(&self, bytes: u64) -> f64 {
        bytes as f64 / GB * self.per.nat_per_gb
    }

    pub fn cross_az(&self, bytes: u64) -> f64 {
        bytes as f64 / GB * self.per.cross_az_per_gb
    }

    pub fn flow_log_ingestion(&self, bytes: u64) -> f64 {
        bytes as f64 / GB * self.per.flow_log_ingestion_per_gb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table_falls_back_to_us_east_1_and_says_so() {
        let p = Prices::for_region("us-east-1", None).unwrap();
        assert_eq!(p.per.nat_per_gb, 0.045);
        assert!((p.nat(1 << 30) - 0.045).abs() < 1e-12);
        let q = Prices::for_region("eu-north-1", None).unwrap();
        assert_eq!(q.per, p.per);
        assert_eq!(q.source, "us-east-1 (no entry for eu-north-1)");
    }

    #[test]
    fn overrides_replace_a_region_and_bad_files_are_named() {
        let o = r#"{"eu-north-1": {"nat_per_gb": 0.05, "nat_per_hour": 0.05, "cross_az_per_gb": 0.02,
            "flow_log_ingestion_per_gb": 0.5, "interface_endpoint_per_gb": 0.01, "interface_endpoint_per_hour": 0.01,
            "logs_insights_per_gb": 0.005}}"#;
        let p = Prices::for_region("eu-north-1", Some(o)).unwrap();
        assert_eq!(p.per.nat_per_gb, 0.05);
        assert_eq!(p.source, "eu-north-1");
        let e = Prices::for_region("us-east-1", Some(r#"{"x": {"nat_per_gb": "cheap"}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("region x"), "{e}");
        let e = Prices::for_region("us-east-1", Some(r#"{"us-east-1": {"nat_per_gbb": 1}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("region us-east-1") && e.contains("nat_per_gbb"), "{e}");
    }

    #[test]
    fn a_partial_override_merges_with_the_built_in_table() {
        // One region, one field: the other prices stay the built-in ones.
        let p = Prices::for_region("us-east-2", Some(r#"{"us-east-2": {"nat_per_gb": 0.05}}"#)).unwrap();
        let built_in = Prices::for_region("us-east-2", None).unwrap();
        assert_eq!(p.per.nat_per_gb, 0.05);
        assert_eq!(
            RegionPrices {
                nat_per_gb: built_in.per.nat_per_gb,
                ..p.per
            },
            built_in.per
        );
        assert_eq!(p.source, "us-east-2");
        // A region without a built-in entry: the rest are us-east-1's, and the source says so.
        let q = Prices::for_region("eu-north-1", Some(r#"{"eu-north-1": {"cross_az_per_gb": 0.03}}"#)).unwrap();
        assert_eq!(q.per.cross_az_per_gb, 0.03);
        assert_eq!(q.per.nat_per_gb, 0.045);
        assert_eq!(q.source, "eu-north-1 (cross_az_per_gb given; the rest us-east-1's)");
    }

    #[test]
    fn region_codes_are_checked_against_aws_list() {
        assert!(AWS_REGIONS.windows(2).all(|w| w[0] < w[1]), "sorted, for binary search");
        assert!(is_aws_region("eu-north-1") && is_aws_region("us-gov-west-1"));
        assert!(!is_aws_region("eu-nort-1") && !is_aws_region("US-EAST-1"));
    }
}
