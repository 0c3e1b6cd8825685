//! Errors of the analysis: each says what to change.

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("flow-log format: {0}")]
    Format(String),
    #[error(
        "the format has no pkt-srcaddr/pkt-dstaddr, so the NAT's own addresses are needed to tell the two halves \
         of each translated flow apart: give an inventory that includes the NAT Gateway's interfaces, or the NAT's \
         private IPs"
    )]
    NatAddressesNeeded,
    #[error("inventory: {0}")]
    Inventory(String),
    #[error("ip-ranges file: {0}")]
    IpRanges(String),
    #[error("price table: {0}")]
    Prices(String),
}

pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;
