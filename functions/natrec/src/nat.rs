//! NAT Gateway identities and what a flow log is attached to.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A syntactically valid NAT Gateway ID: `nat-` followed by 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NatGatewayId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatIdError {
    #[error("{0:?} is not a NAT Gateway ID: expected nat- followed by 8 or 17 lowercase hex digits, e.g. nat-0123456789abcdef0")]
    Malformed(String),
    #[error(
        "no NAT Gateway ID given: expected a comma-separated list such as nat-0123456789abcdef0,nat-0fedcba9876543210"
    )]
    Empty,
    #[error("NAT Gateway ID {0} is listed twice")]
    Duplicate(String),
}

impl NatGatewayId {
    pub fn parse(s: &str) -> Result<Self, NatIdError> {
        let hex = s
            .strip_prefix("nat-")
            .ok_or_else(|| NatIdError::Malformed(s.to_string()))?;
        let ok = matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(NatIdError::Malformed(s.to_string()))
        }
    }

    /// Parses the `NatGatewayIds` parameter: comma-separated, spaces around items tolerated,
    /// no empty items, no duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, NatIdError> {
        if s.trim().is_empty() {
            return Err(NatIdError::Empty);
        }
        let mut ids: Vec<Self> = Vec::new();
        for item in s.split(',') {
            let id = Self::parse(item.trim())?;
            if ids.contains(&id) {
                return Err(NatIdError::Duplicate(id.0));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NatGatewayId {
    type Error = NatIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<NatGatewayId> for String {
    fn from(id: NatGatewayId) -> Self {
        id.0
    }
}

impl fmt::Display for NatGatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What DescribeNatGateways tells us about a NAT Gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGateway {
    pub id: NatGatewayId,
    pub state: String,
    pub vpc_id: Option<String>,
    /// Regional NAT Gateways span AZs and take flow logs as `RegionalNatGateway`.
    pub regional: bool,
    /// Every network interface of the NAT (a zonal NAT has one per address).
    pub interfaces: Vec<String>,
    /// Its `Name` tag (DescribeNatGateways returns the NAT's tags), what people call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A NAT Gateway as a person recognises it: `prod-egress-a (nat-0abc...)`, or its ID alone
/// when it has no Name tag.
pub fn nat_label(id: &NatGatewayId, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} ({id})"),
        None => id.to_string(),
    }
}

/// The shortest name of a NAT Gateway: its Name tag, else its ID (for subjects).
pub fn nat_short_name(id: &NatGatewayId, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => id.to_string(),
    }
}

/// The resources one recording attaches flow logs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowLogTarget {
    Interfaces(Vec<String>),
    RegionalNatGateway(NatGatewayId),
}

impl NatGateway {
    pub fn flow_log_target(&self) -> FlowLogTarget {
        if self.regional {
            FlowLogTarget::RegionalNatGateway(self.id.clone())
        } else {
            FlowLogTarget::Interfaces(self.interfaces.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nat_is_named_by_its_name_tag_and_its_id() {
        let id = NatGatewayId::parse("nat-0123abcd").unwrap();
        assert_eq!(nat_label(&id, Some("prod-egress-a")), "prod-egress-a (nat-0123abcd)");
        assert_eq!(nat_label(&id, None), "nat-0123abcd");
        assert_eq!(nat_label(&id, Some("  ")), "nat-0123abcd");
        assert_eq!(nat_short_name(&id, Some("prod-egress-a")), "prod-egress-a");
        assert_eq!(nat_short_name(&id, None), "nat-0123abcd");
    }

    #[test]
    fn accepts_short_and_long_ids() {
        assert!(NatGatewayId::parse("nat-0123abcd").is_ok());
        assert!(NatGatewayId::parse("nat-0123456789abcdef0").is_ok());
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "nat-",
            "nat-0123abc",
            "nat-0123456789abcdef",
            "NAT-0123abcd",
            "nat-0123ABCD",
            "igw-0123abcd",
            "nat-0123abcg",
            " nat-0123abcd",
        ] {
            assert!(
                matches!(NatGatewayId::parse(bad), Err(NatIdError::Malformed(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn list_tolerates_spaces_and_rejects_empty_items_and_duplicates() {
        let ids = NatGatewayId::parse_list(" nat-0123abcd , nat-0123456789abcdef0").unwrap();
        assert_eq!(
            ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
            ["nat-0123abcd", "nat-0123456789abcdef0"]
        );
        assert_eq!(NatGatewayId::parse_list("  "), Err(NatIdError::Empty));
        assert!(matches!(
            NatGatewayId::parse_list("nat-0123abcd,,nat-0123abce"),
            Err(NatIdError::Malformed(_))
        ));
        assert_eq!(
            NatGatewayId::parse_list("nat-0123abcd, nat-0123abcd"),
            Err(NatIdError::Duplicate("nat-0123abcd".into()))
        );
    }
}
