//! "CloudWatch Alarm State Change" events, as EventBridge delivers them.
//!
//! The NAT Gateway is found by searching every metric of the alarm for a `NatGatewayId`
//! dimension (single-metric and metric-math alarms alike), never by position.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{RecorderError, Result};
use crate::nat::NatGatewayId;

pub const NAT_NAMESPACE: &str = "AWS/NATGateway";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateChange {
    pub alarm_name: String,
    pub state: AlarmState,
    #[serde(default)]
    pub previous_state: Option<AlarmState>,
    #[serde(default)]
    pub configuration: AlarmConfiguration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlarmState {
    pub value: AlarmStateValue,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmStateValue {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmStateValue {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlarmConfiguration {
    #[serde(default)]
    pub metrics: Vec<AlarmMetric>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmMetric {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub metric_stat: Option<MetricStat>,
    #[serde(default)]
    pub expression: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricStat {
    pub metric: Metric,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metric {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dimensions: std::collections::BTreeMap<String, String>,
}

/// A parsed alarm event with the one NAT Gateway it is about.
#[derive(Debug, Clone)]
pub struct AlarmEvent {
    pub id: String,
    pub time: DateTime<Utc>,
    pub region: Option<String>,
    pub alarm_arn: Option<String>,
    pub detail: AlarmStateChange,
    pub nat_id: NatGatewayId,
}

impl AlarmEvent {
    /// Parses and checks an event; every way it can be wrong gives an `UnexpectedEvent`
    /// error that says what was expected.
    pub fn from_value(value: Value) -> Result<Self> {
        let source = value
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string();
        let detail_type = value
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string();
        if source != "aws.cloudwatch" || detail_type != "CloudWatch Alarm State Change" {
            return Err(RecorderError::UnexpectedEvent(format!(
                "expected source aws.cloudwatch and detail-type \"CloudWatch Alarm State Change\", got source {source:?} and detail-type {detail_type:?}"
            )));
        }
        let event: EventBridgeEvent<AlarmStateChange> = serde_json::from_value(value)
            .map_err(|e| RecorderError::UnexpectedEvent(format!("malformed alarm event: {e}")))?;
        let nat_id = find_nat_gateway(&event.detail)?;
        let time = event
            .time
            .ok_or_else(|| RecorderError::UnexpectedEvent("the alarm event has no time".into()))?;
        Ok(Self {
            id: event.id.unwrap_or_default(),
            time,
            region: event.region,
            alarm_arn: event.resources.and_then(|r| r.into_iter().next()),
            detail: event.detail,
            nat_id,
        })
    }

    pub fn state(&self) -> AlarmStateValue {
        self.detail.state.value
    }
}

/// Searches every metric of the alarm for exactly one NAT Gateway.
pub fn find_nat_gateway(detail: &AlarmStateChange) -> Result<NatGatewayId> {
    let mut found: Vec<&str> = Vec::new();
    let mut other_namespaces: Vec<&str> = Vec::new();
    for metric in detail
        .configuration
        .metrics
        .iter()
        .filter_map(|m| m.metric_stat.as_ref())
    {
        let namespace = metric.metric.namespace.as_deref().unwrap_or("");
        match metric.metric.dimensions.get("NatGatewayId") {
            Some(id) if namespace == NAT_NAMESPACE => {
                if !found.contains(&id.as_str()) {
                    found.push(id);
                }
            }
            _ => other_namespaces.push(namespace),
        }
    }
    match found.as_slice() {
        [one] => NatGatewayId::parse(one).map_err(|e| RecorderError::UnexpectedEvent(e.to_string())),
        [] if other_namespaces.is_empty() => Err(RecorderError::UnexpectedEvent(format!(
            "alarm {} has no metric with a NatGatewayId dimension",
            detail.alarm_name
        ))),
        [] => Err(RecorderError::UnexpectedEvent(format!(
            "alarm {} watches {} metrics, not {NAT_NAMESPACE} with a NatGatewayId dimension",
            detail.alarm_name,
            other_namespaces.join(", ")
        ))),
        many => Err(RecorderError::UnexpectedEvent(format!(
            "alarm {} watches several NAT Gateways ({}); use one alarm per NAT Gateway",
            detail.alarm_name,
            many.join(", ")
        ))),
    }
}
