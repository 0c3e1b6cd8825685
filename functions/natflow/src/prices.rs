//! The price table: what a GB through the NAT, across AZs and into the flow-log group costs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result};

/// The documented table (`functions/natflow/prices.json`).
pub const BUILT_IN: &str = include_str!("../prices.json");

/// Bytes per GB as AWS bills data (GiB).
pub const GB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegionPrices {
    pub nat_per_gb: f64,
    pub nat_per_hour: f64,
    pub cross_az_per_gb: f64,
    pub flow_log_ingestion_per_gb: f64,
    pub interface_endpoint_per_gb: f64,
    pub interface_endpoint_per_hour: f64,
}

/// The prices used for one report, and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub region: String,
    /// Which table entry: the region itself, or `us-east-1 (no entry for <region>)`.
    pub source: String,
    #[serde(flatten)]
    pub per: RegionPrices,
}

fn table(text: &str) -> Result<BTreeMap<String, RegionPrices>> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| AnalysisError::Prices(e.to_string()))?;
    raw.into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| {
            serde_json::from_value(v)
                .map(|p| (k.clone(), p))
                .map_err(|e| AnalysisError::Prices(format!("region {k}: {e}")))
        })
        .collect()
}

impl Prices {
    /// Prices for `region` from the built-in table, overridden region by region by `overrides`
    /// (same layout as prices.json).
    pub fn for_region(region: &str, overrides: Option<&str>) -> Result<Self> {
        let mut t = table(BUILT_IN)?;
        if let Some(o) = overrides {
            t.extend(table(o)?);
        }
        if let Some(p) = t.get(region) {
            return Ok(Self {
                region: region.into(),
                source: region.into(),
                per: *p,
            });
        }
        let p = t
            .get("us-east-1")
            .ok_or_else(|| AnalysisError::Prices("no us-east-1 entry to fall back on".into()))?;
        Ok(Self {
            region: region.into(),
            source: format!("us-east-1 (no entry for {region})"),
            per: *p,
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
            "flow_log_ingestion_per_gb": 0.5, "interface_endpoint_per_gb": 0.01, "interface_endpoint_per_hour": 0.01}}"#;
        let p = Prices::for_region("eu-north-1", Some(o)).unwrap();
        assert_eq!(p.per.nat_per_gb, 0.05);
        assert_eq!(p.source, "eu-north-1");
        let e = Prices::for_region("us-east-1", Some(r#"{"x": {"nat_per_gb": 1}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("region x"), "{e}");
    }
}
