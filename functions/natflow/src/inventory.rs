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

/// A network beyond the recorded VPC's interfaces that this account can see (a VPC of its own, a
/// peered VPC, a VPC attached to a transit gateway, a subnet shared with it): names an address
/// no interface lookup found, at least by VPC and account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub cidr: ipnet::IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The VPC's Name tag, where this account can read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The owner account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// How this account sees it: "peering pcx-...", "transit gateway tgw-...", "subnet subnet-..." (with
    /// its owner: one shared with this account, or its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl Network {
    /// `VPC vpc-0b2 (shared-services) 10.30.0.0/16, account 222233334444, peering pcx-1`.
    pub fn label(&self) -> String {
        let mut s = match &self.vpc_id {
            Some(v) => format!("VPC {v}"),
            None => "network".to_string(),
        };
        if let Some(n) = self.name.as_deref().filter(|n| !n.is_empty()) {
            s.push_str(&format!(" ({n})"));
        }
        s.push_str(&format!(" {}", self.cidr));
        if let Some(o) = &self.owner {
            s.push_str(&format!(", account {o}"));
        }
        if let Some(v) = &self.via {
            s.push_str(&format!(", {v}"));
        }
        s
    }
}

/// ENIs by private IP and by interface ID. An address several interfaces held during the
/// recording (start and end snapshots merged, a lookup) maps to all of them, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    enis: Vec<Eni>,
    by_ip: FxHashMap<IpAddr, Vec<usize>>,
    by_id: FxHashMap<String, usize>,
    networks: Vec<Network>,
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

    /// A later entry for the same interface (a retried snapshot, the end snapshot) updates the
    /// earlier one and keeps the addresses of both: the interface held each of them in the window.
    pub fn add(&mut self, mut eni: Eni) {
        let idx = match self.by_id.get(&eni.interface_id) {
            Some(&i) => {
                let old = std::mem::take(&mut self.enis[i].private_ips);
                for ip in old.into_iter().rev() {
                    if !eni.private_ips.contains(&ip) {
                        eni.private_ips.insert(0, ip);
                    }
                }
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
                let holders = self.by_ip.entry(ip).or_default();
                if !holders.contains(&idx) {
                    holders.push(idx);
                }
            }
        }
    }

    /// Merges a later snapshot (or a lookup's interfaces) into this one.
    pub fn merge(&mut self, later: Inventory) {
        for e in later.enis {
            self.add(e);
        }
        for n in later.networks {
            self.add_network(n);
        }
    }

    /// A network that names the addresses no interface holds (longest prefix wins).
    pub fn add_network(&mut self, n: Network) {
        if !self.networks.contains(&n) {
            self.networks.push(n);
        }
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// Every interface that held `ip` in the window, oldest first.
    pub fn holders(&self, ip: &IpAddr) -> Vec<&Eni> {
        self.by_ip
            .get(ip)
            .map(|v| v.iter().map(|&i| &self.enis[i]).collect())
            .unwrap_or_default()
    }

    /// The most specific known network holding `ip`.
    pub fn network_of(&self, ip: &IpAddr) -> Option<&Network> {
        self.networks
            .iter()
            .filter(|n| n.cidr.contains(ip))
            .max_by_key(|n| n.cidr.prefix_len())
    }

    /// How the report names `ip` (the address included), None for an address the inventory
    /// cannot speak for (a public one outside its networks):
    /// - the interface(s) that held it: `Lambda ingest 10.20.0.61`, and when several interfaces
    ///   held it in the window, all of them, never one guessed: `Lambda ingest or ECS task web (eni-2) 10.20.0.61`;
    /// - else the network it is in: `address in VPC vpc-0b2 (shared) 10.30.0.0/16, account 2222..., peering pcx-1 (10.30.4.17)`;
    /// - else, for a private address: `unknown private address (10.30.4.17)`.
    pub fn name(&self, ip: &IpAddr) -> Option<String> {
        let holders = self.holders(ip);
        if !holders.is_empty() {
            let mut labels: Vec<String> = Vec::new();
            for e in holders {
                let l = e.label();
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
            return Some(format!("{} {ip}", labels.join(" or ")));
        }
        if let Some(n) = self.network_of(ip) {
            // How else the same VPC is reached (a subnet of a VPC behind a transit gateway).
            let mut label = n.label();
            for other in self
                .networks
                .iter()
                .filter(|o| o.cidr.contains(ip) && o.vpc_id == n.vpc_id)
            {
                if let Some(v) = other.via.as_deref().filter(|v| !label.contains(*v)) {
                    label.push_str(&format!(", {v}"));
                }
            }
            return Some(format!("address in {label} ({ip})"));
        }
        crate::analyze::is_private(*ip).then(|| format!("unknown private address ({ip})"))
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

    /// The interface that held `ip` (the latest one, if several did: see [`Inventory::holders`]).
    pub fn by_ip(&self, ip: &IpAddr) -> Option<&Eni> {
        self.by_ip.get(ip).and_then(|v| v.last()).map(|&i| &self.enis[i])
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

    #[test]
    fn merged_snapshots_name_an_address_with_every_interface_that_held_it() {
        let ip: IpAddr = "10.20.0.61".parse().unwrap();
        let mut lambda = eni(
            "eni-1",
            "lambda",
            "AWS Lambda VPC ENI-ingest-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab",
        );
        lambda.private_ips = vec!["10.20.0.61".into()];
        let mut start = Inventory::new([lambda.clone()]);
        assert_eq!(start.name(&ip).unwrap(), "Lambda ingest 10.20.0.61");
        // By the end the Lambda interface is gone and an ECS task's holds the address.
        let mut task = eni("eni-2", "interface", "arn:aws:ecs:us-east-1:123456789012:attachment/x");
        task.private_ips = vec!["10.20.0.61".into()];
        task.tags.insert("aws:ecs:serviceName".into(), "web".into());
        start.merge(Inventory::new([task]));
        assert_eq!(
            start.name(&ip).unwrap(),
            "Lambda ingest or ECS task web (eni-2) 10.20.0.61"
        );
        assert_eq!(start.holders(&ip).len(), 2);
        // The same interface in both snapshots, its address changed: both addresses are its.
        let mut moved = lambda.clone();
        moved.private_ips = vec!["10.20.0.99".into()];
        start.merge(Inventory::new([moved, lambda]));
        assert_eq!(start.len(), 2);
        assert_eq!(
            start.name(&"10.20.0.99".parse().unwrap()).unwrap(),
            "Lambda ingest 10.20.0.99"
        );
        assert_eq!(
            start.name(&ip).unwrap(),
            "Lambda ingest or ECS task web (eni-2) 10.20.0.61"
        );
    }

    #[test]
    fn addresses_outside_the_interfaces_are_named_by_network_or_said_unknown() {
        let mut inv = Inventory::default();
        inv.add_network(Network {
            cidr: "10.30.0.0/16".parse().unwrap(),
            vpc_id: Some("vpc-0b2".into()),
            name: Some("shared-services".into()),
            owner: Some("222233334444".into()),
            via: Some("peering pcx-1".into()),
        });
        inv.add_network(Network {
            cidr: "10.30.8.0/24".parse().unwrap(),
            vpc_id: Some("vpc-0b2".into()),
            name: None,
            owner: Some("333344445555".into()),
            via: Some("subnet subnet-9 shared with this account".into()),
        });
        assert_eq!(
            inv.name(&"10.30.4.17".parse().unwrap()).unwrap(),
            "address in VPC vpc-0b2 (shared-services) 10.30.0.0/16, account 222233334444, peering pcx-1 (10.30.4.17)"
        );
        // The most specific network wins.
        assert!(inv
            .name(&"10.30.8.5".parse().unwrap())
            .unwrap()
            .contains("account 333344445555, subnet subnet-9 shared with this account, peering pcx-1"));
        assert_eq!(
            inv.name(&"10.40.4.17".parse().unwrap()).unwrap(),
            "unknown private address (10.40.4.17)"
        );
        assert_eq!(inv.name(&"203.0.113.9".parse().unwrap()), None);
    }
}
