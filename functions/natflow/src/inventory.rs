//! The ENI inventory: which resource owns a private IP. Taken when a recording starts, so a
//! talker can still be named after its instance, task or function is gone.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result};

/// One network interface, as the recorder stores it (one JSON object per line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eni {
    pub interface_id: String,
    #[serde(default)]
    pub private_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Instance,
    Lambda,
    EcsTask,
    LoadBalancer,
    VpcEndpoint,
    NatGateway,
    Interface,
}

impl Eni {
    pub fn kind(&self) -> ResourceKind {
        let t = self.interface_type.as_deref().unwrap_or("interface");
        let d = self.description.as_deref().unwrap_or("");
        let requester = self.requester_id.as_deref().unwrap_or("");
        if t == "nat_gateway" || d.starts_with("Interface for NAT Gateway") {
            ResourceKind::NatGateway
        } else if t == "lambda" || d.starts_with("AWS Lambda VPC ENI") {
            ResourceKind::Lambda
        } else if d.contains(":ecs:") || self.tags.keys().any(|k| k.starts_with("aws:ecs:")) {
            ResourceKind::EcsTask
        } else if t == "network_load_balancer"
            || t == "gateway_load_balancer"
            || d.starts_with("ELB ")
            || requester == "amazon-elb"
        {
            ResourceKind::LoadBalancer
        } else if t == "vpc_endpoint" || t == "gateway_load_balancer_endpoint" || d.starts_with("VPC Endpoint") {
            ResourceKind::VpcEndpoint
        } else if self.instance_id.is_some() {
            ResourceKind::Instance
        } else {
            ResourceKind::Interface
        }
    }

    /// A name a person recognises: the resource first, its Name tag in parentheses.
    pub fn label(&self) -> String {
        let d = self.description.as_deref().unwrap_or("");
        let base = match self.kind() {
            ResourceKind::Instance => self.instance_id.clone().unwrap_or_default(),
            ResourceKind::Lambda => {
                let f = d
                    .strip_prefix("AWS Lambda VPC ENI-")
                    .map(strip_uuid_suffix)
                    .unwrap_or(&self.interface_id);
                format!("Lambda {f}")
            }
            ResourceKind::EcsTask => {
                let svc = self
                    .tags
                    .get("aws:ecs:serviceName")
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default();
                format!("ECS task{svc} ({})", self.interface_id)
            }
            ResourceKind::LoadBalancer => match d.strip_prefix("ELB ") {
                Some(lb) => format!("load balancer {lb}"),
                None => format!("load balancer ({})", self.interface_id),
            },
            ResourceKind::VpcEndpoint => match d.split_whitespace().find(|w| w.starts_with("vpce-")) {
                Some(v) => format!("VPC endpoint {v}"),
                None => format!("VPC endpoint ({})", self.interface_id),
            },
            ResourceKind::NatGateway => match d.split_whitespace().find(|w| w.starts_with("nat-")) {
                Some(n) => format!("NAT Gateway {n}"),
                None => format!("NAT Gateway ({})", self.interface_id),
            },
            ResourceKind::Interface => self.interface_id.clone(),
        };
        match self.tags.get("Name") {
            Some(name) if !name.is_empty() => format!("{base} ({name})"),
            _ => base,
        }
    }

    /// The AZ to compare with: the AZ ID where known (the same in every account), else the name.
    pub fn az(&self) -> Option<&str> {
        self.availability_zone_id
            .as_deref()
            .or(self.availability_zone.as_deref())
    }
}

fn strip_uuid_suffix(s: &str) -> &str {
    // "my-function-1b2c3d4e-..." : the ENI description ends with a UUID (5 dash-separated parts).
    let parts: Vec<&str> = s.rsplitn(6, '-').collect();
    if parts.len() == 6 && parts[..5].iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit())) {
        parts[5]
    } else {
        s
    }
}

/// ENIs by private IP and by interface ID.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    enis: Vec<Eni>,
    by_ip: FxHashMap<IpAddr, usize>,
    by_id: FxHashMap<String, usize>,
}

/// `aws ec2 describe-network-interfaces` output, so its JSON can be used as it is.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsEnis {
    network_interfaces: Vec<AwsEni>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsEni {
    network_interface_id: String,
    #[serde(default)]
    private_ip_addresses: Vec<AwsPrivateIp>,
    #[serde(default)]
    ipv6_addresses: Vec<AwsIpv6>,
    subnet_id: Option<String>,
    availability_zone: Option<String>,
    availability_zone_id: Option<String>,
    vpc_id: Option<String>,
    interface_type: Option<String>,
    description: Option<String>,
    requester_id: Option<String>,
    attachment: Option<AwsAttachment>,
    #[serde(default)]
    tag_set: Vec<AwsTag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsPrivateIp {
    private_ip_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsIpv6 {
    ipv6_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsAttachment {
    instance_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsTag {
    key: String,
    value: String,
}

impl From<AwsEni> for Eni {
    fn from(a: AwsEni) -> Self {
        Eni {
            interface_id: a.network_interface_id,
            private_ips: a
                .private_ip_addresses
                .into_iter()
                .map(|p| p.private_ip_address)
                .chain(a.ipv6_addresses.into_iter().map(|p| p.ipv6_address))
                .collect(),
            subnet_id: a.subnet_id,
            availability_zone: a.availability_zone,
            availability_zone_id: a.availability_zone_id,
            vpc_id: a.vpc_id,
            interface_type: a.interface_type,
            description: a.description.filter(|d| !d.is_empty()),
            requester_id: a.requester_id,
            instance_id: a.attachment.and_then(|x| x.instance_id),
            tags: a.tag_set.into_iter().map(|t| (t.key, t.value)).collect(),
        }
    }
}

impl Inventory {
    pub fn new(enis: impl IntoIterator<Item = Eni>) -> Self {
        let mut inv = Self::default();
        for eni in enis {
            inv.add(eni);
        }
        inv
    }

    /// A later entry for the same interface replaces the earlier one (a retried snapshot).
    pub fn add(&mut self, eni: Eni) {
        let idx = match self.by_id.get(&eni.interface_id) {
            Some(&i) => {
                self.enis[i] = eni;
                i
            }
            None => {
                self.enis.push(eni);
                self.enis.len() - 1
            }
        };
        let e = &self.enis[idx];
        self.by_id.insert(e.interface_id.clone(), idx);
        for ip in &e.private_ips {
            if let Ok(ip) = ip.parse::<IpAddr>() {
                self.by_ip.insert(ip, idx);
            }
        }
    }

    /// Reads the recorder's JSON lines, a JSON array of the same objects, or the output of
    /// `aws ec2 describe-network-interfaces`.
    pub fn from_json(text: &str) -> Result<Self> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            let enis: Vec<Eni> = serde_json::from_str(text).map_err(|e| AnalysisError::Inventory(e.to_string()))?;
            return Ok(Self::new(enis));
        }
        if trimmed.starts_with('{') {
            if let Ok(aws) = serde_json::from_str::<AwsEnis>(text) {
                return Ok(Self::new(aws.network_interfaces.into_iter().map(Eni::from)));
            }
        }
        let mut inv = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let eni: Eni = serde_json::from_str(line).map_err(|e| {
                AnalysisError::Inventory(format!(
                    "line {}: {e} (expected one interface per line, a JSON array, or describe-network-interfaces output)",
                    n + 1
                ))
            })?;
            inv.add(eni);
        }
        Ok(inv)
    }

    pub fn by_ip(&self, ip: &IpAddr) -> Option<&Eni> {
        self.by_ip.get(ip).map(|&i| &self.enis[i])
    }

    pub fn by_interface(&self, id: &str) -> Option<&Eni> {
        self.by_id.get(id).map(|&i| &self.enis[i])
    }

    pub fn len(&self) -> usize {
        self.enis.len()
    }

    pub fn is_empty(&self) -> bool {
        self.enis.is_empty()
    }

    pub fn enis(&self) -> &[Eni] {
        &self.enis
    }

    /// The private IPs of the NAT Gateways' interfaces.
    pub fn nat_ips(&self) -> Vec<IpAddr> {
        self.enis
            .iter()
            .filter(|e| e.kind() == ResourceKind::NatGateway)
            .flat_map(|e| e.private_ips.iter().filter_map(|ip| ip.parse().ok()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eni(id: &str, t: &str, d: &str) -> Eni {
        Eni {
            interface_id: id.into(),
            interface_type: Some(t.into()),
            description: Some(d.into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_resources_from_type_description_requester_and_tags() {
        let mut i = eni("eni-1", "interface", "");
        i.instance_id = Some("i-0abc".into());
        i.tags.insert("Name".into(), "web-1".into());
        assert_eq!(i.label(), "i-0abc (web-1)");
        assert_eq!(
            eni(
                "eni-2",
                "lambda",
                "AWS Lambda VPC ENI-resize-images-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"
            )
            .label(),
            "Lambda resize-images"
        );
        let mut t = eni("eni-3", "interface", "arn:aws:ecs:us-east-1:123456789012:attachment/x");
        t.tags.insert("aws:ecs:serviceName".into(), "api".into());
        assert_eq!(t.label(), "ECS task api (eni-3)");
        assert_eq!(
            eni("eni-4", "interface", "ELB app/shop/50dc6c495c0c9188").label(),
            "load balancer app/shop/50dc6c495c0c9188"
        );
        assert_eq!(
            eni("eni-5", "vpc_endpoint", "VPC Endpoint Interface vpce-0123").label(),
            "VPC endpoint vpce-0123"
        );
        assert_eq!(
            eni("eni-6", "nat_gateway", "Interface for NAT Gateway nat-0123").label(),
            "NAT Gateway nat-0123"
        );
        assert_eq!(eni("eni-7", "interface", "").label(), "eni-7");
    }

    #[test]
    fn reads_json_lines_arrays_and_describe_network_interfaces_output() {
        let line = r#"{"interface_id":"eni-1","private_ips":["10.0.1.5"],"availability_zone":"us-east-1a"}"#;
        let a = Inventory::from_json(&format!("{line}\n\n")).unwrap();
        let b = Inventory::from_json(&format!("[{line}]")).unwrap();
        let ip: IpAddr = "10.0.1.5".parse().unwrap();
        assert_eq!(a.by_ip(&ip), b.by_ip(&ip));
        let aws = r#"{"NetworkInterfaces":[{"NetworkInterfaceId":"eni-9","SubnetId":"subnet-1",
            "AvailabilityZone":"us-east-1b","InterfaceType":"interface","Description":"",
            "Attachment":{"InstanceId":"i-9"},"PrivateIpAddresses":[{"PrivateIpAddress":"10.0.2.9"}],
            "TagSet":[{"Key":"Name","Value":"batch"}]}]}"#;
        let c = Inventory::from_json(aws).unwrap();
        let e = c.by_ip(&"10.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(e.label(), "i-9 (batch)");
        assert_eq!(e.az(), Some("us-east-1b"));
        let err = Inventory::from_json("{\"interface_id\": 3}\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
