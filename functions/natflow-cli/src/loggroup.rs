//! A log group through the CloudWatch Logs API (FilterLogEvents, paginated): every event's
//! message is one record. Credentials and region come from the usual AWS environment.

use aws_sdk_cloudwatchlogs::Client;
use indicatif::{ProgressBar, ProgressStyle};
use natflow::Analyzer;

use crate::CliError;

/// Epoch seconds, or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, CliError> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| {
            CliError::Usage(format!(
                "{s:?} is not a time: give epoch seconds or RFC 3339 (2026-11-28T10:00:00Z)"
            ))
        })
}

pub fn read(
    mut a: Analyzer,
    group: &str,
    streams: &[String],
    start: i64,
    end: i64,
    progress: bool,
) -> Result<Analyzer, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Logs(e.to_string()))?;
    let bar = if progress {
        let b = ProgressBar::new_spinner();
        b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        b
    } else {
        ProgressBar::hidden()
    };
    rt.block_on(async {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = Client::new(&config);
        let mut req = client
            .filter_log_events()
            .log_group_name(group)
            .start_time(start * 1000)
            .end_time(end * 1000);
        if !streams.is_empty() {
            req = req.set_log_stream_names(Some(streams.to_vec()));
        }
        let mut pages = req.into_paginator().send();
        let (mut events, mut bytes) = (0u64, 0u64);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                CliError::Logs(format!(
                    "FilterLogEvents on {group}: {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e)
                ))
            })?;
            for e in page.events() {
                if let Some(m) = e.message() {
                    a.feed(m.as_bytes());
                    events += 1;
                    bytes += m.len() as u64;
                }
            }
            bar.set_message(format!("{events} records, {bytes} bytes from {group}"));
            bar.tick();
        }
        bar.finish_and_clear();
        Ok(a)
    })
}
