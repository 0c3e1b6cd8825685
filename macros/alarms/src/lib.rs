//! CloudFormation macro that turns one template alarm into one alarm per NAT Gateway.
//!
//! A resource marked with
//!
//! ```yaml
//! Metadata:
//!   natrec:ForEachNatGateway:
//!     Parameter: NatGatewayIds      # the template parameter holding the comma-separated IDs
//!     Placeholder: NAT_GATEWAY_ID   # text replaced by each ID, anywhere in the resource
//! ```
//!
//! is replaced by copies named `<LogicalId><hex of the NAT ID>`, the placeholder replaced by
//! each validated NAT ID. Malformed IDs fail the deployment with a message naming the bad ID.
//! Everything else of the resource (`DependsOn` included) is copied into every alarm.
//!
//! Every `AWS::CloudWatch::Alarm` of the template is also checked against the limits
//! `PutMetricAlarm` enforces, with the template parameters its properties refer to resolved, so
//! that an impossible combination fails the change set (before any resource is created) with a
//! message naming the parameters, instead of failing halfway through a stack create.

use natrec::nat::NatGatewayId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const MARKER: &str = "natrec:ForEachNatGateway";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MacroRequest {
    pub request_id: String,
    pub fragment: Value,
    #[serde(default)]
    pub template_parameter_values: Map<String, Value>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MacroResponse {
    pub request_id: String,
    pub status: String,
    pub fragment: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExpandError {
    #[error("the template has no Resources section")]
    NoResources,
    #[error("resource {resource}: {MARKER} needs Parameter and Placeholder strings")]
    BadMarker { resource: String },
    #[error("resource {resource}: template parameter {parameter} has no value")]
    MissingParameter { resource: String, parameter: String },
    #[error("parameter {parameter}: {source}")]
    BadNatIds {
        parameter: String,
        #[source]
        source: natrec::nat::NatIdError,
    },
    #[error("resource {0} would be generated twice; rename the template resource")]
    Collision(String),
    #[error("resource {resource}: {message}")]
    AlarmLimit { resource: String, message: String },
}

/// CloudWatch PutMetricAlarm API reference (Period, EvaluationPeriods, DatapointsToAlarm): "An
/// alarm's total current evaluation period can be no longer than seven days, so Period multiplied
/// by EvaluationPeriods can't be more than 604,800 seconds. For alarms with a period of less than
/// one hour (3,600 seconds), the total evaluation period can't be longer than one day (86,400
/// seconds)." DatapointsToAlarm is the M of "M out of N", N being EvaluationPeriods.
pub const MAX_WINDOW_SHORT_PERIODS_S: i64 = 86_400;
pub const MAX_WINDOW_S: i64 = 604_800;
pub const SHORT_PERIOD_BELOW_S: i64 = 3_600;

pub fn handle(req: MacroRequest) -> MacroResponse {
    match expand(req.fragment.clone(), &req.template_parameter_values) {
        Ok(fragment) => MacroResponse {
            request_id: req.request_id,
            status: "success".into(),
            fragment,
            error_message: None,
        },
        Err(e) => MacroResponse {
            request_id: req.request_id,
            status: "failure".into(),
            fragment: req.fragment,
            error_message: Some(e.to_string()),
        },
    }
}

/// A numeric alarm property, resolved: its value and how the user knows it (the template
/// parameter it comes from, or the property's own name).
struct Setting {
    name: String,
    value: i64,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.value)
    }
}

fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `v` as a number: a literal, or `{"Ref": parameter}` resolved from the parameter values
/// CloudFormation passes, else the parameter's default in the template.
fn resolve(property: &str, v: &Value, params: &Map<String, Value>, template: &Value) -> Option<Setting> {
    if let Some(parameter) = v.get("Ref").and_then(Value::as_str) {
        let value = params.get(parameter).and_then(number).or_else(|| {
            template
                .pointer(&format!("/Parameters/{parameter}/Default"))
                .and_then(number)
        })?;
        return Some(Setting {
            name: parameter.to_string(),
            value,
        });
    }
    number(v).map(|value| Setting {
        name: property.to_string(),
        value,
    })
}

/// The limits PutMetricAlarm enforces on an alarm's evaluation settings (see the constants).
fn check_alarm(
    logical_id: &str,
    alarm: &Value,
    params: &Map<String, Value>,
    template: &Value,
) -> Result<(), ExpandError> {
    let fail = |message: String| ExpandError::AlarmLimit {
        resource: logical_id.to_string(),
        message,
    };
    let props = alarm.get("Properties").unwrap_or(&Value::Null);
    let get = |name: &str| props.get(name).and_then(|v| resolve(name, v, params, template));
    let evaluation = get("EvaluationPeriods");
    if let (Some(datapoints), Some(evaluation)) = (get("DatapointsToAlarm"), &evaluation) {
        if datapoints.value > evaluation.value {
            return Err(fail(format!(
                "{datapoints} must be at most {evaluation}: the alarm needs that many breaching \
                 data points out of the periods it evaluates"
            )));
        }
    }
    let Some(evaluation) = evaluation else {
        return Ok(());
    };
    // A single-metric alarm has Period; a metric-math alarm has one per MetricStat.
    let metric_periods = props
        .get("Metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.pointer("/MetricStat/Period"));
    let periods = props
        .get("Period")
        .into_iter()
        .chain(metric_periods)
        .filter_map(|v| resolve("Period", v, params, template));
    for period in periods {
        let window = period.value.saturating_mul(evaluation.value);
        let (limit, what) = if period.value < SHORT_PERIOD_BELOW_S {
            (MAX_WINDOW_SHORT_PERIODS_S, "one day, for periods under an hour")
        } else {
            (MAX_WINDOW_S, "seven days")
        };
        if window > limit {
            return Err(fail(format!(
                "{period} s x {evaluation} = {window} s, longer than CloudWatch allows an alarm to \
                 evaluate ({limit} s: {what}); with {} = {}, {} can be at most {}",
                period.name,
                period.value,
                evaluation.name,
                limit / period.value.max(1)
            )));
        }
    }
    Ok(())
}

/// Expands every marked resource of the template.
pub fn expand(mut template: Value, params: &Map<String, Value>) -> Result<Value, ExpandError> {
    let snapshot = template.clone();
    for (logical_id, resource) in snapshot
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or(ExpandError::NoResources)?
    {
        if resource.get("Type").and_then(Value::as_str) == Some("AWS::CloudWatch::Alarm") {
            check_alarm(logical_id, resource, params, &snapshot)?;
        }
    }
    let resources = template
        .get_mut("Resources")
        .and_then(Value::as_object_mut)
        .ok_or(ExpandError::NoResources)?;
    let marked: Vec<String> = resources
        .iter()
        .filter(|(_, r)| r.pointer(&format!("/Metadata/{MARKER}")).is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for logical_id in marked {
        let mut resource = resources.remove(&logical_id).expect("listed above");
        let marker = resource
            .get("Metadata")
            .and_then(|m| m.get(MARKER))
            .cloned()
            .unwrap_or(Value::Null);
        let (Some(parameter), Some(placeholder)) = (
            marker.get("Parameter").and_then(Value::as_str),
            marker.get("Placeholder").and_then(Value::as_str),
        ) else {
            return Err(ExpandError::BadMarker { resource: logical_id });
        };
        let value = match params.get(parameter) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => {
                return Err(ExpandError::MissingParameter {
                    resource: logical_id,
                    parameter: parameter.into(),
                })
            }
        };
        let ids = NatGatewayId::parse_list(&value).map_err(|source| ExpandError::BadNatIds {
            parameter: parameter.into(),
            source,
        })?;
        if let Some(meta) = resource.get_mut("Metadata").and_then(Value::as_object_mut) {
            meta.remove(MARKER);
            if meta.is_empty() {
                resource.as_object_mut().map(|r| r.remove("Metadata"));
            }
        }
        for id in ids {
            let name = format!("{logical_id}{}", &id.as_str()["nat-".len()..]);
            if resources.contains_key(&name) {
                return Err(ExpandError::Collision(name));
            }
            resources.insert(name, replace_strings(&resource, placeholder, id.as_str()));
        }
    }
    Ok(template)
}

fn replace_strings(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_strings(x, from, to)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), replace_strings(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "Resources": {
                "Topic": {"Type": "AWS::SNS::Topic"},
                "NatAlarm": {
                    "Type": "AWS::CloudWatch::Alarm",
                    "Metadata": {MARKER: {"Parameter": "NatGatewayIds", "Placeholder": "NAT_GATEWAY_ID"}},
                    "Properties": {
                        "AlarmName": {"Fn::Sub": "${AWS::StackName}-natgw-NAT_GATEWAY_ID"},
                        "Metrics": [{"Id": "m1", "MetricStat": {"Metric": {"Dimensions": [{"Name": "NatGatewayId", "Value": "NAT_GATEWAY_ID"}]}}}]
                    }
                }
            }
        })
    }

    fn params(ids: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("NatGatewayIds".into(), Value::String(ids.into()));
        m
    }

    #[test]
    fn one_alarm_per_nat_with_the_id_substituted_everywhere() {
        let out = expand(template(), &params("nat-0123456789abcdef0, nat-0a1b2c3d")).unwrap();
        let res = out["Resources"].as_object().unwrap();
        assert!(!res.contains_key("NatAlarm"));
        assert!(res.contains_key("Topic"));
        let a = &res["NatAlarm0123456789abcdef0"];
        assert_eq!(
            a["Properties"]["AlarmName"]["Fn::Sub"],
            "${AWS::StackName}-natgw-nat-0123456789abcdef0"
        );
        assert_eq!(
            a["Properties"]["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
            "nat-0123456789abcdef0"
        );
        assert!(a.get("Metadata").is_none(), "marker must not survive expansion");
        assert_eq!(
            res["NatAlarm0a1b2c3d"]["Properties"]["AlarmName"]["Fn::Sub"],
            "${AWS::StackName}-natgw-nat-0a1b2c3d"
        );
        assert_eq!(res.len(), 3);
    }

    #[test]
    fn comma_delimited_list_parameters_are_accepted() {
        let mut p = Map::new();
        p.insert("NatGatewayIds".into(), json!(["nat-0a1b2c3d", " nat-0a1b2c3e"]));
        let out = expand(template(), &p).unwrap();
        assert!(out["Resources"].get("NatAlarm0a1b2c3e").is_some());
    }

    #[test]
    fn malformed_ids_fail_with_the_bad_id_named() {
        let resp = handle(MacroRequest {
            request_id: "r1".into(),
            fragment: template(),
            template_parameter_values: params("nat-0123456789abcdef0,nat-XYZ"),
        });
        assert_eq!(resp.status, "failure");
        let msg = resp.error_message.unwrap();
        assert!(msg.contains("\"nat-XYZ\"") && msg.contains("NatGatewayIds"), "{msg}");
        assert_eq!(
            resp.fragment,
            template(),
            "a failed expansion returns the fragment untouched"
        );
    }

    #[test]
    fn missing_parameter_and_bad_marker_are_reported() {
        assert!(matches!(
            expand(template(), &Map::new()),
            Err(ExpandError::MissingParameter { .. })
        ));
        let mut t = template();
        t["Resources"]["NatAlarm"]["Metadata"][MARKER] = json!({"Parameter": "NatGatewayIds"});
        assert!(matches!(
            expand(t, &params("nat-0a1b2c3d")),
            Err(ExpandError::BadMarker { .. })
        ));
        assert_eq!(expand(json!({}), &Map::new()), Err(ExpandError::NoResources));
    }

    /// A metric-math alarm whose evaluation settings come from parameters, as in template.yaml.
    fn alarm_template() -> Value {
        let mut t = template();
        t["Parameters"] = json!({
            "SamplingPeriod": {"Type": "Number", "Default": 60},
            "EvaluationPeriods": {"Type": "Number", "Default": 1},
            "DatapointsToAlarm": {"Type": "Number", "Default": 1}
        });
        let alarm = &mut t["Resources"]["NatAlarm"];
        alarm["DependsOn"] = json!("Topic");
        alarm["Properties"]["EvaluationPeriods"] = json!({"Ref": "EvaluationPeriods"});
        alarm["Properties"]["DatapointsToAlarm"] = json!({"Ref": "DatapointsToAlarm"});
        alarm["Properties"]["Metrics"][0]["MetricStat"]["Period"] = json!({"Ref": "SamplingPeriod"});
        t
    }

    fn with(settings: &[(&str, &str)]) -> Map<String, Value> {
        let mut p = params("nat-0a1b2c3d");
        for (k, v) in settings {
            p.insert((*k).into(), Value::String((*v).into()));
        }
        p
    }

    #[test]
    fn more_datapoints_than_evaluation_periods_fail_naming_both_parameters() {
        let err = expand(
            alarm_template(),
            &with(&[("EvaluationPeriods", "3"), ("DatapointsToAlarm", "4")]),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ExpandError::AlarmLimit { .. }), "{msg}");
        assert!(
            msg.contains("DatapointsToAlarm (4) must be at most EvaluationPeriods (3)"),
            "{msg}"
        );
        assert!(expand(
            alarm_template(),
            &with(&[("EvaluationPeriods", "3"), ("DatapointsToAlarm", "3")])
        )
        .is_ok());
    }

    #[test]
    fn an_evaluation_window_over_a_day_fails_for_periods_under_an_hour() {
        // PutMetricAlarm: Period x EvaluationPeriods <= 86,400 s below an hour, <= 604,800 s else.
        let err = expand(
            alarm_template(),
            &with(&[("SamplingPeriod", "1800"), ("EvaluationPeriods", "49")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SamplingPeriod (1800) s x EvaluationPeriods (49) = 88200 s")
                && err.contains("EvaluationPeriods can be at most 48"),
            "{err}"
        );
        for ok in [("1800", "48"), ("3600", "60"), ("60", "60"), ("600", "144")] {
            assert!(
                expand(
                    alarm_template(),
                    &with(&[("SamplingPeriod", ok.0), ("EvaluationPeriods", ok.1)])
                )
                .is_ok(),
                "{ok:?}"
            );
        }
        let err = expand(
            alarm_template(),
            &with(&[("SamplingPeriod", "3600"), ("EvaluationPeriods", "169")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("604800 s: seven days"), "{err}");
    }

    #[test]
    fn parameters_not_passed_take_the_template_defaults() {
        let mut t = alarm_template();
        t["Parameters"]["SamplingPeriod"]["Default"] = json!(1800);
        t["Parameters"]["EvaluationPeriods"]["Default"] = json!(60);
        let err = expand(t, &params("nat-0a1b2c3d")).unwrap_err();
        assert!(matches!(err, ExpandError::AlarmLimit { .. }), "{err}");
    }

    #[test]
    fn the_failure_reaches_cloudformation_as_a_failed_expansion() {
        let resp = handle(MacroRequest {
            request_id: "r2".into(),
            fragment: alarm_template(),
            template_parameter_values: with(&[("EvaluationPeriods", "2"), ("DatapointsToAlarm", "5")]),
        });
        assert_eq!(resp.status, "failure");
        assert!(resp.error_message.unwrap().contains("DatapointsToAlarm (5)"));
    }

    #[test]
    fn every_expanded_alarm_keeps_the_depends_on() {
        // Stack deletion order: the alarms must be deleted before the cleanup they depend on.
        let out = expand(alarm_template(), &params("nat-0a1b2c3d,nat-0123456789abcdef0")).unwrap();
        for id in ["NatAlarm0a1b2c3d", "NatAlarm0123456789abcdef0"] {
            assert_eq!(out["Resources"][id]["DependsOn"], "Topic", "{id}");
        }
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = expand(template(), &params("nat-0a1b2c3d,nat-0a1b2c3d")).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
