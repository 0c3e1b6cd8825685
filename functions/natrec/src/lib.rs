//! natrec: records VPC flow logs on a NAT Gateway only while its traffic spikes.
//!
//! The domain logic lives here; every AWS call goes through a port (`ports`) implemented by
//! an SDK adapter (`adapters`). The Lambda functions in `functions/*` are thin handlers.

pub mod adapters;
pub mod advice;
pub mod env;
pub mod error;
pub mod event;
pub mod insights;
pub mod ledger;
pub mod naming;
pub mod nat;
pub mod notice;
pub mod pacing;
pub mod ports;
pub mod recording;
pub mod report;
pub mod sweep;

pub use error::{RecorderError, Result};
