//! Flow-log record formats: which field is in which column.

use crate::error::{AnalysisError, Result};

/// The recorder's custom format (what `natrec` asks CreateFlowLogs for), in this order. The
/// saved queries in `queries/` parse exactly this order. `resource-id` (version 9) is last: a
/// regional NAT Gateway's records have `interface-id` `-` and carry the NAT's ID there (VPC user
/// guide, "Flow log records", resource-id; "Flow log record examples", regional NAT gateway), so
/// they can be told from another NAT's records in the shared log group.
pub const RECORDER_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "az-id",
    "flow-direction",
    "traffic-path",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "tcp-flags",
    "type",
    "resource-id",
];

/// The recorder's format before `resource-id` was added: records of older recordings (the flow-log
/// group keeps them for its retention) are still read as what they are.
pub const RECORDER_FIELDS_V5: &[&str] = RECORDER_FIELDS.split_at(RECORDER_FIELDS.len() - 1).0;

/// AWS's default format (version 2).
pub const DEFAULT_V2_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Every field name AWS documents (versions 2 to 5, and 7 and 8's additions); anything else in a
/// format is a typo.
const KNOWN_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
    "resource-id",
    "encryption-status",
];

/// The most fields one record may have.
pub const MAX_FIELDS: usize = 64;

/// Column of each field the analysis uses (`None`: not in this format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    pub interface_id: Option<usize>,
    pub srcaddr: Option<usize>,
    pub dstaddr: Option<usize>,
    pub packets: Option<usize>,
    pub bytes: Option<usize>,
    pub start: Option<usize>,
    pub end: Option<usize>,
    pub action: Option<usize>,
    pub log_status: Option<usize>,
    pub az_id: Option<usize>,
    pub pkt_srcaddr: Option<usize>,
    pub pkt_dstaddr: Option<usize>,
    pub pkt_src_aws_service: Option<usize>,
    pub pkt_dst_aws_service: Option<usize>,
    pub resource_id: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    fields: Vec<String>,
    pub columns: Columns,
}

impl Format {
    pub fn recorder() -> Self {
        Self::from_names(RECORDER_FIELDS.iter().copied()).expect("the recorder format is valid")
    }

    /// The recorder's format before `resource-id` (records of older recordings).
    pub fn recorder_v5() -> Self {
        Self::from_names(RECORDER_FIELDS_V5.iter().copied()).expect("the recorder's earlier format is valid")
    }

    pub fn is_recorder(&self) -> bool {
        self.fields
            .iter()
            .map(String::as_str)
            .eq(RECORDER_FIELDS.iter().copied())
    }

    pub fn default_v2() -> Self {
        Self::from_names(DEFAULT_V2_FIELDS.iter().copied()).expect("the default format is valid")
    }

    /// A format from a field list as CreateFlowLogs takes it (`${version} ${srcaddr} ...`), as a
    /// header line of an S3 flow-log file (`version srcaddr ...`), or comma-separated.
    pub fn parse(spec: &str) -> Result<Self> {
        let names = spec
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_start_matches("${").trim_end_matches('}'));
        Self::from_names(names)
    }

    fn from_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<Self> {
        let fields: Vec<String> = names.map(str::to_string).collect();
        if fields.is_empty() {
            return Err(AnalysisError::Format("the field list is empty".into()));
        }
        if fields.len() > MAX_FIELDS {
            return Err(AnalysisError::Format(format!(
                "{} fields; a flow-log format has at most {MAX_FIELDS}",
                fields.len()
            )));
        }
        for (i, f) in fields.iter().enumerate() {
            if !KNOWN_FIELDS.contains(&f.as_str()) {
                return Err(AnalysisError::Format(format!(
                    "unknown field {f:?}; flow-log fields are named like srcaddr, pkt-dstaddr, log-status"
                )));
            }
            if fields[..i].contains(f) {
                return Err(AnalysisError::Format(format!("field {f:?} is listed twice")));
            }
        }
        let col = |name: &str| fields.iter().position(|f| f == name);
        let columns = Columns {
            interface_id: col("interface-id"),
            srcaddr: col("srcaddr"),
            dstaddr: col("dstaddr"),
            packets: col("packets"),
            bytes: col("bytes"),
            start: col("start"),
            end: col("end"),
            action: col("action"),
            log_status: col("log-status"),
            az_id: col("az-id"),
            pkt_srcaddr: col("pkt-srcaddr"),
            pkt_dstaddr: col("pkt-dstaddr"),
            pkt_src_aws_service: col("pkt-src-aws-service"),
            pkt_dst_aws_service: col("pkt-dst-aws-service"),
            resource_id: col("resource-id"),
        };
        for (need, have) in [
            ("srcaddr", columns.srcaddr),
            ("dstaddr", columns.dstaddr),
            ("bytes", columns.bytes),
        ] {
            if have.is_none() {
                return Err(AnalysisError::Format(format!(
                    "the format has no {need} field, which attribution needs"
                )));
            }
        }
        Ok(Self { fields, columns })
    }

    /// A header line (`version account-id ...`), as S3 flow-log files start with.
    pub fn from_header(line: &str) -> Option<Self> {
        let first = line.split_whitespace().next()?;
        if KNOWN_FIELDS.contains(&first) {
            Self::parse(line).ok()
        } else {
            None
        }
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The packet-level addresses are what lets each NAT flow be counted once with its real
    /// endpoints; without them the NAT's own addresses are needed.
    pub fn has_packet_addresses(&self) -> bool {
        self.columns.pkt_srcaddr.is_some() && self.columns.pkt_dstaddr.is_some()
    }

    /// The format as CreateFlowLogs' `LogFormat` wants it.
    pub fn log_format(&self) -> String {
        self.fields
            .iter()
            .map(|f| format!("${{{f}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn name(&self) -> String {
        if self
            .fields
            .iter()
            .map(String::as_str)
            .eq(RECORDER_FIELDS.iter().copied())
        {
            "recorder".into()
        } else if self
            .fields
            .iter()
            .map(String::as_str)
            .eq(RECORDER_FIELDS_V5.iter().copied())
        {
            "recorder (before resource-id)".into()
        } else if self
            .fields
            .iter()
            .map(String::as_str)
            .eq(DEFAULT_V2_FIELDS.iter().copied())
        {
            "default (v2)".into()
        } else {
            format!("custom ({} fields)", self.fields.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_format_header_and_comma_lists_alike() {
        let a = Format::parse("${version} ${srcaddr} ${dstaddr} ${bytes}").unwrap();
        let b = Format::from_header("version srcaddr dstaddr bytes").unwrap();
        let c = Format::parse("version,srcaddr, dstaddr,bytes").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.columns.bytes, Some(3));
        assert!(!a.has_packet_addresses());
        assert_eq!(
            Format::parse(&Format::recorder().log_format()).unwrap(),
            Format::recorder()
        );
    }

    #[test]
    fn rejects_typos_duplicates_and_formats_without_addresses() {
        let e = Format::parse("version srcadr dstaddr bytes").unwrap_err().to_string();
        assert!(e.contains("\"srcadr\""), "{e}");
        assert!(Format::parse("srcaddr dstaddr bytes bytes").is_err());
        let e = Format::parse("version srcaddr dstaddr").unwrap_err().to_string();
        assert!(e.contains("no bytes field"), "{e}");
        assert!(Format::from_header("2 123456789012 eni-1 10.0.0.1").is_none());
    }

    #[test]
    fn names_known_formats() {
        assert_eq!(Format::recorder().name(), "recorder");
        assert_eq!(Format::default_v2().name(), "default (v2)");
        assert!(Format::recorder().has_packet_addresses());
    }
}
