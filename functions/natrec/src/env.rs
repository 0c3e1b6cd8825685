//! Lambda start-up: JSON logs and configuration from the environment.

use crate::error::{RecorderError, Result};

/// JSON logs for CloudWatch (Lambda's JSON log format); `RUST_LOG` filters, default info.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
}

/// A required environment variable.
pub fn var(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(RecorderError::Misconfigured(format!(
            "environment variable {name} is not set"
        ))),
    }
}

/// A required numeric environment variable.
pub fn number<T: std::str::FromStr>(name: &str) -> Result<T> {
    let v = var(name)?;
    v.trim()
        .parse()
        .map_err(|_| RecorderError::Misconfigured(format!("environment variable {name}={v:?} is not a valid number")))
}

/// A hung AWS call is abandoned after this long and retried by the SDK (well inside the
/// functions' 30 s Lambda timeout).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// One `FilterLogEvents` attempt of the report's reader may take this long: it searches every
/// stream of the flow-log group in the window, which takes longer than a control-plane call
/// (and the reader retries itself, paced; see `adapters::logs::LogGroup::reader`).
pub const READ_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Timeouts of the report's reader: one attempt (no SDK retries) of at most `attempt`.
#[cfg(feature = "aws")]
pub fn read_timeouts(attempt: std::time::Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3).min(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt)
        .build()
}

/// The SDK configuration, built once per cold start.
#[cfg(feature = "aws")]
pub async fn aws_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(std::time::Duration::from_secs(20))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}
