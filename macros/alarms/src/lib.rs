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
}

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

/// Expands every marked resource of the template.
pub fn expand(mut template: Value, params: &Map<String, Value>) -> Result<Value, ExpandError> {
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

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = expand(template(), &params("nat-0a1b2c3d,nat-0a1b2c3d")).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
