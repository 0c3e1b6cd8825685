//! natflow: who caused a NAT Gateway spike.
//!
//! Streams VPC flow-log records (any format, garbage tolerated) into per-talker byte counts,
//! counting each flow through the NAT once, then names the endpoints (AWS service, resource from
//! an ENI inventory), flags cross-AZ traffic and traffic a gateway endpoint would make free, and
//! prices it. Memory grows with the number of distinct talkers, not with the input. No AWS
//! dependency: the recorder's Lambda and the `natflow` CLI both feed it lines.

pub mod analyze;
pub mod destinations;
pub mod dns;
pub mod error;
pub mod format;
pub mod insights;
pub mod inventory;
pub mod ipranges;
pub mod prices;
pub mod report;
pub mod synth;

pub use analyze::Analyzer;
pub use error::{AnalysisError, Result};
pub use format::Format;
pub use inventory::{Eni, Inventory};
pub use ipranges::IpRanges;
pub use prices::Prices;
pub use report::{Report, ReportOptions};
