//! The report step: after flow-log delivery, who caused the spike. Reads the recording's
//! records from the flow-log group (streamed, bounded), its inventory snapshot and the NAT's
//! metrics for the coverage line, builds the `natflow` report, stores it as JSON next to the
//! recording and puts its text into the notice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::error::{RecorderError, Result};
use crate::notice::human_bytes;
use crate::ports::{Archive, FlowRecords, NatMetrics};
use crate::recording::{report_stream, Recording};

/// Flow-log records are stamped with their capture window's start; a record of the recording's
/// last minute can start before it and end after it: read a little around the window.
pub const WINDOW_MARGIN_S: i64 = 120;

/// States entered by a normal recording (for its Step Functions cost).
pub const NORMAL_STATE_TRANSITIONS: u32 = 8;

#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub region: String,
    pub reports_log_group: String,
    /// Most bytes of records read; beyond, the report is marked truncated.
    pub max_bytes: u64,
    /// Price overrides (prices.json layout).
    pub prices: Option<String>,
    pub top: usize,
}

/// What the finish step said (`$.finished`).
#[derive(Debug, Clone, Deserialize)]
pub struct FinishedNotice {
    pub subject: String,
    pub message: String,
    pub ended_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportInput {
    pub execution: String,
    pub state: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportNotice {
    pub subject: String,
    pub message: String,
    pub report_stream: String,
    pub truncated: bool,
}

pub async fn build(
    input: ReportInput,
    settings: &ReportSettings,
    archive: &impl Archive,
    records: &impl FlowRecords,
    metrics: &impl NatMetrics,
) -> Result<ReportNotice> {
    let recording: Recording = serde_json::from_value(input.state.clone())
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the report step needs the recording's state: {e}")))?;
    let finished: FinishedNotice = input
        .state
        .get("finished")
        .cloned()
        .ok_or_else(|| RecorderError::UnexpectedEvent("the report step needs $.finished".into()))
        .and_then(|f| {
            serde_json::from_value(f)
                .map_err(|e| RecorderError::UnexpectedEvent(format!("$.finished is not the finish step's output: {e}")))
        })?;

    // The inventory snapshot, when one was taken.
    let mut inventory_note = None;
    let inventory = match &recording.inventory {
        Some(snap) if snap.error.is_none() => {
            let lines = archive.get(&snap.stream).await?;
            match natflow::Inventory::from_json(&lines.join("\n")) {
                Ok(inv) => Some(inv),
                Err(e) => {
                    inventory_note = Some(format!("the inventory snapshot could not be read ({e})"));
                    None
                }
            }
        }
        Some(snap) => {
            inventory_note = Some(format!(
                "no inventory snapshot was taken ({})",
                snap.error.as_deref().unwrap_or("unknown")
            ));
            None
        }
        None => None,
    };
    let nat_ips = inventory.as_ref().map(|i| i.nat_ips()).unwrap_or_default();
    let mut analyzer = natflow::Analyzer::new(natflow::Format::recorder(), &nat_ips)
        .map_err(|e| RecorderError::Misconfigured(e.to_string()))?;

    // The whole group in the window, this NAT's interfaces only: the group holds every NAT's
    // recordings, and stream names are the service's to choose (`<eni>-all`). A regional NAT
    // Gateway's records are kept whatever their interface.
    let enis: Vec<&String> = recording.interfaces.iter().filter(|i| i.starts_with("eni-")).collect();
    if !enis.is_empty() {
        analyzer.only_interfaces(&enis);
    }
    let start_ms = (recording.started_at.timestamp() - WINDOW_MARGIN_S) * 1000;
    let end_ms = (finished.ended_at.timestamp() + WINDOW_MARGIN_S) * 1000;
    let read = records
        .read(&[], start_ms, end_ms, settings.max_bytes, &mut |line| {
            analyzer.feed(line)
        })
        .await?;
    info!(
        events = read.events,
        bytes = read.bytes,
        truncated = read.truncated,
        "flow-log records read"
    );

    let nat_metrics = match metrics
        .bytes(
            &recording.nat_id,
            recording.started_at.timestamp(),
            finished.ended_at.timestamp(),
        )
        .await
    {
        Ok(b) => Some((b.upload, b.download)),
        Err(e) => {
            warn!(error = %e, "NAT metrics unavailable for the coverage line");
            None
        }
    };
    let prices = natflow::Prices::for_region(&settings.region, settings.prices.as_deref())
        .map_err(|e| RecorderError::Misconfigured(format!("PRICES: {e}")))?;
    let mut options = natflow::ReportOptions::new(prices);
    options.inventory = inventory.as_ref();
    options.nat_metrics = nat_metrics;
    options.top = settings.top;
    options.state_transitions = Some(NORMAL_STATE_TRANSITIONS);
    options.truncated = read.truncated.then(|| {
        format!(
            "only the first {} of records were read (the report function's REPORT_MAX_BYTES); the whole recording \
             is in the log group: analyse it with `natflow analyze --log-group`",
            human_bytes(read.bytes)
        )
    });
    let report = natflow::Report::build(&analyzer, &options);

    let stream = report_stream(&input.execution);
    let json = serde_json::to_string(&report).expect("a report serializes");
    let stored = match archive.put(&stream, &[json]).await {
        Ok(()) => format!(
            "Full report (JSON): log group {}, stream {stream}.",
            settings.reports_log_group
        ),
        Err(e) => {
            warn!(error = %e, "the JSON report could not be stored");
            format!("The JSON report could not be stored: {e}")
        }
    };
    let inventory_line = match (&inventory_note, &recording.inventory) {
        (Some(n), _) => format!("Names: {n}; talkers are named by address.\n"),
        (None, Some(s)) => format!(
            "Names: from the inventory snapshot taken at the start (log group {}, stream {}).\n",
            settings.reports_log_group, s.stream
        ),
        (None, None) => String::new(),
    };
    let message = format!(
        "Who caused the spike on {nat}:\n\n{text}{inventory_line}{stored}\n\n\
         ----------------------------------------------------------------------\n\n{finish}",
        nat = recording.nat_id,
        text = report.to_text(),
        finish = finished.message,
    );
    Ok(ReportNotice {
        subject: finished.subject,
        message,
        report_stream: stream,
        truncated: read.truncated,
    })
}
