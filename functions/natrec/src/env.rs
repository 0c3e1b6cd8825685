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

/// The SDK configuration, built once per cold start.
#[cfg(feature = "aws")]
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
