//! The report step: after flow-log delivery, who caused the spike. Reads the recording's
//! records from the flow-log group (streamed, bounded), its inventory snapshot and the NAT's
//! metrics for the coverage line, builds the `natflow` report, stores it as JSON next to the
//! recording and puts its text into the notice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use std::time::Duration;

use crate::advice::{self, NextSteps, Threshold};
use crate::error::{RecorderError, Result};
use crate::insights::{self, Outcome, Progress};
use crate::nat::nat_label;
use crate::notice::human_bytes;
use crate::pacing::{Backoff, Clock, RateLimiter};
use crate::ports::{AddressLookup, Archive, FlowRecords, LogQueries, NatMetrics, ReadOutcome, RecordQuery, Truncation};
use crate::recording::{inventory_end_stream, report_stream, Delivery, Ending, Recording};

/// Flow-log records are stamped with their capture window's start; a record of the recording's
/// last minute can start before it and end after it: read a little around the window.
pub const WINDOW_MARGIN_S: i64 = 120;

/// States entered by a normal recording (for its Step Functions cost).
pub const NORMAL_STATE_TRANSITIONS: u32 = 9;

/// Time kept back from reading, before the Lambda's deadline, to finish the analysis, store the
/// JSON report (CreateLogStream, PutLogEvents: 20 s operation timeout each) and return. At most a
/// fifth of the time left at the start, so that a short test deadline still reads.
pub const TIME_RESERVE: Duration = Duration::from_secs(60);
/// A request is started only with at least this much time left before reading must stop.
pub const MIN_REQUEST_TIME: Duration = Duration::from_secs(2);
/// Backoff after a throttled or failed request: 0.5 s doubling to 16 s, with jitter.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
pub const BACKOFF_CAP: Duration = Duration::from_secs(16);
/// Consecutive transient failures after which reading gives up (about 1.5 minutes of backoff).
pub const MAX_FAILURES: u32 = 8;

/// When reading must stop, for a Lambda invocation whose deadline is `deadline_ms`.
pub fn stop_reading_at(now_ms: i64, deadline_ms: i64) -> i64 {
    let reserve = (TIME_RESERVE.as_millis() as i64).min((deadline_ms - now_ms).max(0) / 5);
    deadline_ms - reserve
}

/// How the records are read: a byte budget, a pace, a time limit.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_bytes: u64,
    /// `FilterLogEvents` requests per second, retries included.
    pub reads_per_second: f64,
    /// No request starts, no backoff sleeps past this time (epoch ms).
    pub stop_ms: i64,
}

/// Reads the records page by page: paced, retrying throttled and failed requests from the same
/// `nextToken` (no page already read is lost or read twice), stopping at `max_bytes` or in time
/// for the Lambda's deadline, with what was read and why it stopped.
pub async fn read_records(
    records: &impl FlowRecords,
    clock: &impl Clock,
    query: &RecordQuery,
    limits: ReadLimits,
    sink: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
) -> Result<ReadOutcome> {
    let min_ms = MIN_REQUEST_TIME.as_millis() as i64;
    let mut out = ReadOutcome::default();
    let mut limiter = RateLimiter::new(limits.reads_per_second);
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP);
    let mut token: Option<String> = None;
    loop {
        let now = clock.now_ms();
        let slot = limiter.next_slot(now);
        if limits.stop_ms - slot < min_ms {
            out.truncated = Some(Truncation::Deadline);
            return Ok(out);
        }
        if slot > now {
            clock.sleep(Duration::from_millis((slot - now) as u64)).await;
        }
        let started = clock.now_ms();
        limiter.taken(started);
        let time_limit = Duration::from_millis((limits.stop_ms - started).max(0) as u64);
        match records.page(query, token.as_deref(), time_limit).await {
            Ok(page) => {
                backoff.reset();
                out.pages += 1;
                for r in &page.records {
                    let len = r.message.len() as u64;
                    if out.bytes + len > limits.max_bytes {
                        out.truncated = Some(Truncation::MaxBytes);
                        return Ok(out);
                    }
                    sink(r.message.as_bytes());
                    out.events += 1;
                    out.bytes += len;
                    out.last_timestamp_ms =
                        Some(out.last_timestamp_ms.map_or(r.timestamp_ms, |t| t.max(r.timestamp_ms)));
                }
                match page.next_token {
                    // An empty page with a token is normal: the search goes on.
                    Some(t) => token = Some(t),
                    None => return Ok(out),
                }
            }
            Err(e) if e.is_transient() => {
                out.retried += 1;
                if backoff.failures() + 1 >= MAX_FAILURES {
                    if out.pages == 0 {
                        // Nothing read yet: nothing lost if the state machine retries the step.
                        return Err(e);
                    }
                    out.truncated = Some(Truncation::Failing(e.to_string()));
                    return Ok(out);
                }
                let wait = backoff.next_delay(clock.random());
                warn!(error = %e, wait_ms = wait.as_millis() as u64, pages = out.pages, "FilterLogEvents: backing off");
                if limits.stop_ms - (clock.now_ms() + wait.as_millis() as i64) < min_ms {
                    out.truncated = Some(Truncation::Deadline);
                    return Ok(out);
                }
                clock.sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The TRUNCATED line: how much of the recording was read and why not all of it.
fn truncation_note(
    read: &ReadOutcome,
    settings: &ReportSettings,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<String> {
    let reason = read.truncated.as_ref()?;
    let rest = "the whole recording is in the log group: analyse it with `natflow analyze --log-group`";
    let span = (end - start).num_milliseconds().max(1) as f64;
    let reached = match read.last_timestamp_ms {
        Some(t) => {
            let share = ((t - start.timestamp_millis()) as f64 / span).clamp(0.0, 1.0);
            let at = DateTime::<Utc>::from_timestamp_millis(t).unwrap_or(start);
            format!(
                "records captured up to {} were read, {:.0}% of the recording's window; the last {:.0}% of the window is not counted",
                at.format("%H:%M:%SZ"),
                share * 100.0,
                (1.0 - share) * 100.0
            )
        }
        None => "no record was read; the whole window is missing".into(),
    };
    let throttled = if read.retried > 0 {
        format!(", {} throttled or failed requests retried", read.retried)
    } else {
        String::new()
    };
    Some(match reason {
        Truncation::MaxBytes => format!(
            "only the first {} of records were read (ReportMaxBytes, the report function's REPORT_MAX_BYTES); {reached}; {rest}",
            human_bytes(read.bytes)
        ),
        Truncation::Deadline => format!(
            "the report ran out of time, not bytes: it read {} of records in {} FilterLogEvents pages at {} requests per second \
             (ReportReadsPerSecond){throttled} and stopped in time to build this report before its Lambda's time limit; \
             {reached}; {rest}",
            human_bytes(read.bytes),
            read.pages,
            settings.reads_per_second
        ),
        Truncation::Failing(e) => format!(
            "FilterLogEvents kept failing after {} of records in {} pages ({e}); {reached}; {rest}",
            human_bytes(read.bytes),
            read.pages
        ),
    })
}

#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub region: String,
    pub reports_log_group: String,
    /// Most bytes of records read; beyond, the report is marked truncated.
    pub max_bytes: u64,
    /// `FilterLogEvents` requests per second (a share of the account's 5).
    pub reads_per_second: f64,
    /// Price overrides (prices.json layout).
    pub prices: Option<String>,
    pub top: usize,
    /// For the commands of "What to do next".
    pub stack_name: String,
    /// The alarm's threshold, when the function is told it (THRESHOLD, SAMPLING_PERIOD).
    pub threshold: Option<Threshold>,
    /// Who counts the records (REPORT_AGGREGATION).
    pub aggregation: Aggregation,
}

impl ReportSettings {
    /// The report function's settings from its environment (template.yaml, BuildReportFunction).
    pub fn from_env() -> Result<Self> {
        use crate::env;
        Ok(Self {
            region: env::var("AWS_REGION")?,
            reports_log_group: env::var("REPORT_LOG_GROUP")?,
            max_bytes: env::number("REPORT_MAX_BYTES")?,
            reads_per_second: env::number("REPORT_READS_PER_SECOND")?,
            prices: std::env::var("PRICES").ok().filter(|p| !p.trim().is_empty()),
            top: 10,
            stack_name: env::var("STACK_NAME")?,
            // Optional: without them the advice says `Threshold=<bytes per SamplingPeriod>`.
            threshold: match (env::number("THRESHOLD"), env::number("SAMPLING_PERIOD")) {
                (Ok(bytes), Ok(period_s)) => Some(Threshold { bytes, period_s }),
                _ => None,
            },
            // Optional: Logs Insights unless told to read the records one by one.
            aggregation: match std::env::var("REPORT_AGGREGATION") {
                Ok(v) if !v.trim().is_empty() => v.parse()?,
                _ => Aggregation::Insights,
            },
        })
    }
}

/// Who counts the recording's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// CloudWatch Logs Insights groups them (any size; [`crate::insights`]); the records are read
    /// one by one only if the queries fail.
    Insights,
    /// The report reads them one by one (FilterLogEvents, bounded by ReportMaxBytes and time).
    Streaming,
}

impl std::str::FromStr for Aggregation {
    type Err = RecorderError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "insights" => Ok(Self::Insights),
            "streaming" => Ok(Self::Streaming),
            other => Err(RecorderError::Misconfigured(format!(
                "REPORT_AGGREGATION is {other:?}: insights or streaming"
            ))),
        }
    }
}

/// A server-side report that gives up after this long reads the records instead: a Logs
/// Insights query times out after 60 minutes (CloudWatch Logs quotas).
pub const MAX_QUERY_TIME_MS: i64 = 65 * 60 * 1000;

/// Where a server-side report stands between invocations (`$.report_progress`): its queries,
/// and since when it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarryOn {
    pub progress: Progress,
    pub since_ms: i64,
}

/// What the finish step said (`$.finished`).
#[derive(Debug, Clone, Deserialize)]
pub struct FinishedNotice {
    pub subject: String,
    pub message: String,
    pub ended_at: DateTime<Utc>,
    /// The flow logs' delivery status, when the state carries it (the state machine passes the
    /// finish step's subject, which says `notice::UNDELIVERED`, not this).
    #[serde(default)]
    pub delivery: Delivery,
    /// Why the recording ended (absent in the output of older finish steps).
    #[serde(default)]
    pub ending: Option<Ending>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportInput {
    pub execution: String,
    pub state: Value,
}

/// The report step's answer: the notice, or (`pending` set, the rest empty) a server-side run
/// to carry on after a wait. Every field is always present, for the state machine's paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportNotice {
    pub subject: String,
    pub message: String,
    pub report_stream: String,
    pub truncated: bool,
    pub pending: Option<CarryOn>,
}

/// Most bytes of report text in a notice. The notice travels as BuildReport's output through
/// the state machine (256 KiB per state input/output, `States.DataLimitExceeded`, which
/// `States.ALL` does not catch: Step Functions quotas) into SNS Publish (256 KiB message): with
/// many talkers listed (`top`) the text could reach either; the JSON report keeps everything.
pub const MAX_REPORT_TEXT: usize = 64 * 1024;

/// The report as the notice shows it: its destination advice is left to "What to do next"
/// (advice.rs), where the commands carry the recording's VPC, so that it is not said twice.
pub fn notice_text(report: &natflow::Report) -> String {
    if report.destination_advice.is_empty() {
        return capped(report.to_text());
    }
    let without = natflow::Report {
        destination_advice: Vec::new(),
        ..report.clone()
    };
    capped(without.to_text())
}

fn capped(mut text: String) -> String {
    if text.len() > MAX_REPORT_TEXT {
        let mut cut = MAX_REPORT_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(text[..cut].rfind('\n').map_or(cut, |n| n + 1));
        text.push_str("[... the report is longer than 64 KB: the notice shows its beginning; the rest is in the JSON report below]\n\n");
    }
    text
}

/// The end snapshot, if the finish step stored one that reads (a stream that does not exist
/// reads empty: no snapshot).
async fn load_end_snapshot(archive: &impl Archive, stream: &str) -> Option<natflow::Inventory> {
    match archive.get(stream).await {
        Ok(lines) if !lines.is_empty() => match natflow::Inventory::from_json(&lines.join("\n")) {
            Ok(inv) => Some(inv),
            Err(e) => {
                warn!(error = %e, %stream, "the end inventory snapshot could not be read");
                None
            }
        },
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, %stream, "the end inventory snapshot could not be read");
            None
        }
    }
}

/// Builds the report. `deadline_ms` is the Lambda invocation's deadline (epoch ms): reading
/// stops in time to finish before it. Sources are named from the inventory snapshots only
/// (see [`build_with_lookup`]).
#[allow(clippy::too_many_arguments)]
pub async fn build(
    input: ReportInput,
    settings: &ReportSettings,
    deadline_ms: i64,
    clock: &impl Clock,
    archive: &impl Archive,
    records: &impl FlowRecords,
    queries: &impl LogQueries,
    metrics: &impl NatMetrics,
) -> Result<ReportNotice> {
    build_with_lookup(
        input,
        settings,
        deadline_ms,
        clock,
        archive,
        records,
        queries,
        metrics,
        None,
    )
    .await
}

/// [`build`], with the sources the snapshots do not name looked up across the region
/// (`crate::naming`).
#[allow(clippy::too_many_arguments)]
pub async fn build_with_lookup(
    input: ReportInput,
    settings: &ReportSettings,
    deadline_ms: i64,
    clock: &impl Clock,
    archive: &impl Archive,
    records: &impl FlowRecords,
    queries: &impl LogQueries,
    metrics: &impl NatMetrics,
    lookup: Option<&dyn AddressLookup>,
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
    let mut inventory = match &recording.inventory {
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
    // The end snapshot (the finish step's, best effort), merged: an address two interfaces held
    // in the window is named with both.
    let end_stream = inventory_end_stream(&input.execution);
    let end_snapshot = match &recording.inventory {
        Some(_) => load_end_snapshot(archive, &end_stream).await,
        None => None,
    };
    if let Some(end) = &end_snapshot {
        inventory
            .get_or_insert_with(natflow::Inventory::default)
            .merge(end.clone());
    }
    let nat_ips = inventory.as_ref().map(|i| i.nat_ips()).unwrap_or_default();
    // The whole group in the window, this NAT's records only: the group holds every NAT's
    // recordings, and stream names are the service's to choose (`<eni>-all`). A zonal NAT's
    // records are selected by its interfaces, a regional NAT's by `resource-id` (its flow log
    // writes `-` as interface-id; VPC user guide, flow-logs-records-examples).
    let enis: Vec<&String> = recording.interfaces.iter().filter(|i| i.starts_with("eni-")).collect();
    let new_analyzer = || -> Result<natflow::Analyzer> {
        let mut a = natflow::Analyzer::new(natflow::Format::recorder(), &nat_ips)
            .map_err(|e| RecorderError::Misconfigured(e.to_string()))?;
        a.only_nat(recording.nat_id.as_str(), &enis);
        Ok(a)
    };
    let mut analyzer = new_analyzer()?;
    // The NAT's own metrics first (one short call), so that the reading can use the time left.
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

    let query = RecordQuery {
        streams: vec![],
        start_ms: (recording.started_at.timestamp() - WINDOW_MARGIN_S) * 1000,
        end_ms: (finished.ended_at.timestamp() + WINDOW_MARGIN_S) * 1000,
    };
    let stop_ms = stop_reading_at(clock.now_ms(), deadline_ms);
    // Logs Insights first: it counts a recording of any size; the records are read one by one
    // only when its queries fail (or take longer than a query may run).
    let mut server_side = None;
    let mut query_notes: Vec<String> = Vec::new();
    if settings.aggregation == Aggregation::Insights {
        let carried: Option<CarryOn> = input
            .state
            .get("report_progress")
            .filter(|v| !v.is_null())
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| RecorderError::UnexpectedEvent(format!("$.report_progress is not the report's: {e}")))?;
        let since_ms = carried.as_ref().map_or(clock.now_ms(), |c| c.since_ms);
        let progress = carried.map(|c| c.progress).unwrap_or_else(|| {
            Progress::with_records_from(
                recording.started_at.timestamp() - WINDOW_MARGIN_S,
                recording.started_at.timestamp(),
                finished.ended_at.timestamp() + WINDOW_MARGIN_S,
            )
        });
        let outcome = if clock.now_ms() - since_ms > MAX_QUERY_TIME_MS {
            insights::stop_all(queries, progress.query_ids()).await;
            Outcome::Failed(format!(
                "its queries ran for more than {} minutes",
                MAX_QUERY_TIME_MS / 60_000
            ))
        } else {
            insights::advance(queries, clock, progress, stop_ms, &mut analyzer).await?
        };
        match outcome {
            Outcome::Done {
                server_side: q,
                warnings,
            } => {
                server_side = Some(q);
                query_notes = warnings;
            }
            Outcome::Pending(progress) => {
                info!(
                    running = progress.running.len(),
                    "Logs Insights queries carry on after a wait"
                );
                return Ok(ReportNotice {
                    subject: String::new(),
                    message: String::new(),
                    report_stream: String::new(),
                    truncated: false,
                    pending: Some(CarryOn { progress, since_ms }),
                });
            }
            Outcome::Failed(why) => {
                warn!(%why, "Logs Insights could not count the records: reading them");
                query_notes.push(format!(
                    "CloudWatch Logs Insights could not count the records ({why}): they were read one by one \
                     instead (FilterLogEvents), within ReportMaxBytes and the report's time"
                ));
                analyzer = new_analyzer()?;
            }
        }
    }
    let limits = ReadLimits {
        max_bytes: settings.max_bytes,
        reads_per_second: settings.reads_per_second,
        stop_ms,
    };
    let read = if server_side.is_some() {
        ReadOutcome::default()
    } else {
        read_records(records, clock, &query, limits, &mut |line| analyzer.feed(line)).await?
    };
    info!(
        events = read.events,
        bytes = read.bytes,
        pages = read.pages,
        retried = read.retried,
        truncated = ?read.truncated,
        "flow-log records read"
    );

    let prices = natflow::Prices::for_region(&settings.region, settings.prices.as_deref())
        .map_err(|e| RecorderError::Misconfigured(format!("PRICES: {e}")))?;
    // The sources still unnamed, looked up across the region (one paginated call per 200 addresses).
    let mut looked = None;
    if let (Some(lookup), Some(inv)) = (lookup, inventory.as_mut()) {
        let unnamed = crate::naming::unnamed_sources(inv, analyzer.flows().map(|(k, c)| (k.local, c.bytes())));
        looked = Some(crate::naming::look_up(inv, &unnamed, lookup).await);
    }
    let mut options = natflow::ReportOptions::new(prices);
    options.inventory = inventory.as_ref();
    options.nat_metrics = nat_metrics;
    options.top = settings.top;
    options.state_transitions = Some(NORMAL_STATE_TRANSITIONS);
    options.truncated = truncation_note(&read, settings, recording.started_at, finished.ended_at);
    options.server_side = server_side;
    let mut report = natflow::Report::build(&analyzer, &options);
    report.warnings.extend(query_notes);

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
        (Some(n), _) if end_snapshot.is_some() => format!(
            "Names: {n}; from the inventory snapshot taken at the end (log group {}, stream {end_stream}){}.\n",
            settings.reports_log_group,
            looked.as_ref().map(|l| l.sentence()).unwrap_or_default(),
        ),
        (Some(n), _) => format!("Names: {n}; talkers are named by address.\n"),
        (None, Some(s)) => format!(
            "Names: from the inventory snapshot taken at the start (log group {}, stream {}){}{}.\n",
            settings.reports_log_group,
            s.stream,
            match &end_snapshot {
                Some(_) => format!(" and the one taken at the end (stream {end_stream})"),
                None => String::new(),
            },
            looked.as_ref().map(|l| l.sentence()).unwrap_or_default(),
        ),
        (None, None) => String::new(),
    };
    let next = advice::what_to_do_next(
        &report,
        &NextSteps {
            region: &settings.region,
            stack_name: &settings.stack_name,
            recording: &recording,
            ended_at: finished.ended_at,
            margin_s: WINDOW_MARGIN_S,
            threshold: settings.threshold,
        },
    );
    // Records not delivered make the report's figures wrong: said first, before any figure (the
    // finish step's message opens with the warning; it moves here, not repeated).
    let (warning, finish) = crate::notice::split_warning(&finished.message);
    let message = format!(
        "{warning}Who caused the spike on {nat}:\n\n{text}{inventory_line}{stored}\n\n{next}\n\
         ----------------------------------------------------------------------\n\n{finish}",
        nat = nat_label(&recording.nat_id, recording.nat_name.as_deref()),
        text = notice_text(&report),
    );
    let subject = advice::subject(
        &report,
        &recording.nat_id,
        recording.nat_name.as_deref(),
        finished.ending == Some(Ending::TimeLimit),
        !finished.delivery.failed.is_empty() || finished.subject.contains(crate::notice::UNDELIVERED),
    );
    Ok(ReportNotice {
        subject,
        message,
        report_stream: stream,
        truncated: read.truncated.is_some(),
        pending: None,
    })
}
