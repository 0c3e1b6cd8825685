//! CloudWatch adapter: the bytes a NAT Gateway's own metrics counted in a window.

use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_cloudwatch::Client;

use crate::error::{RecorderError, Result};
use crate::nat::NatGatewayId;
use crate::ports::{NatBytes, NatMetrics};

#[derive(Clone)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn query(id: &str, metric: &str, nat_id: &NatGatewayId) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/NATGateway")
                        .metric_name(metric)
                        .dimensions(Dimension::builder().name("NatGatewayId").value(nat_id.as_str()).build())
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build()
}

#[async_trait]
impl NatMetrics for CloudWatch {
    async fn bytes(&self, nat_id: &NatGatewayId, start_s: i64, end_s: i64) -> Result<NatBytes> {
        // Whole minutes covering the window: NAT metrics are 1-minute data points.
        let start = start_s - start_s.rem_euclid(60);
        let end = (end_s + 59) - (end_s + 59).rem_euclid(60);
        let mut pages = self
            .client
            .get_metric_data()
            .metric_data_queries(query("upload", "BytesInFromSource", nat_id))
            .metric_data_queries(query("download", "BytesInFromDestination", nat_id))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end.max(start + 60)))
            .into_paginator()
            .send();
        // Each series is summed on its own here, no metric math: a minute one series lacks adds
        // 0 to it and nothing to the other. (An expression `upload + download` would drop the
        // minutes where either series has no point; the alarm uses FILL(x, 0) for that reason.)
        let mut bytes = NatBytes { upload: 0, download: 0 };
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("CloudWatch", "GetMetricData", &e))?;
            for result in page.metric_data_results() {
                let sum: f64 = result.values().iter().sum();
                match result.id() {
                    Some("upload") => bytes.upload += sum as u64,
                    Some("download") => bytes.download += sum as u64,
                    _ => {}
                }
            }
        }
        Ok(bytes)
    }
}
