//! `--server-side`: CloudWatch Logs Insights groups the log group's records
//! (`queries/report-records.query`, see natflow::insights) and natflow counts the groups, so a
//! week of records is analysed without downloading it.
//!
//! AWS behaviour this depends on (CloudWatch Logs API reference, StartQuery, GetQueryResults,
//! StopQuery; CloudWatch Logs quotas):
//! - `startTime` and `endTime` are epoch seconds and both inclusive: a window split in two is
//!   `[start, mid]` and `[mid + 1, end]`; the halves' scanned records are checked against the
//!   whole window's, and a difference is reported, never hidden.
//! - A query returns at most 10,000 rows: a full answer may miss groups, so its window is asked
//!   again in two halves (until one second holds more than 10,000 groups: an error).
//! - Status Scheduled/Running until Complete; Failed, Cancelled, Timeout (60 minutes) end it.
//! - Concurrent queries per account are limited (`LimitExceededException`, shared with everyone in
//!   the account): the CLI runs a few at a time and waits and retries when refused.
//! - StartQuery and GetQueryResults: 10 requests per second per account and Region: a few queries
//!   polled once a second stay well under.
//! - Price: $0.005 per GB scanned (us-east-1), reported with the report.

use std::collections::VecDeque;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use aws_sdk_cloudwatchlogs::Client;
use indicatif::ProgressBar;
use natflow::insights::{MAX_ROWS, RECORDS, RECORDS_QUERY};
use natflow::report::ServerSide;
use natflow::Analyzer;

use crate::CliError;

/// Queries in flight at once (the account's quota is shared with every other user).
const CONCURRENT: usize = 4;
/// Between two polls of the running queries.
const POLL: Duration = Duration::from_secs(1);
/// StartQuery refused for the concurrent-query quota: retries, 2 s doubling to 30 s.
const START_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    end: i64,
    /// The split window this half belongs to (index into `Run::splits`).
    parent: Option<usize>,
}

/// A full answer's window, asked again in two halves: the halves must scan what it scanned.
struct Split {
    window: (i64, i64),
    scanned: u64,
    halves_scanned: u64,
    halves_done: u8,
}

#[derive(Default)]
struct Run {
    queries: u32,
    splits: Vec<Split>,
    records_scanned: u64,
    bytes_scanned: u64,
    warnings: Vec<String>,
}

fn logs_error(op: &str, group: &str, region: &str, e: impl ProvideErrorMetadata + std::fmt::Display) -> CliError {
    CliError::Aws(format!(
        "{op} on {group} in {region}: {}: {}",
        e.code().unwrap_or("error"),
        e.message()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
            .replace('\n', " ")
    ))
}

/// Starts the report query on one window, waiting while the account's concurrent queries are at
/// their quota.
async fn start_query(client: &Client, group: &str, region: &str, w: &Window) -> Result<String, CliError> {
    let mut wait = Duration::from_secs(2);
    for attempt in 1..=START_ATTEMPTS {
        let sent = client
            .start_query()
            .log_group_name(group)
            .start_time(w.start)
            .end_time(w.end)
            .query_string(RECORDS_QUERY)
            .limit(MAX_ROWS as i32)
            .send()
            .await;
        match sent {
            Ok(out) => {
                return out
                    .query_id()
                    .map(str::to_string)
                    .ok_or_else(|| CliError::Aws(format!("StartQuery on {group}: no query ID in the answer")))
            }
            Err(e) => {
                let e = e.into_service_error();
                if e.code() == Some("LimitExceededException") && attempt < START_ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    continue;
                }
                return Err(match e.code() {
                    Some("LimitExceededException") => CliError::Aws(format!(
                        "StartQuery on {group} in {region}: the account's concurrent Logs Insights queries stayed at \
                         their quota for minutes (LimitExceededException); run again later, or without --server-side"
                    )),
                    _ => logs_error("StartQuery", group, region, e),
                });
            }
        }
    }
    unreachable!("the last attempt returns")
}

async fn stop_all(client: &Client, ids: impl Iterator<Item = &String>) {
    for id in ids {
        // Best effort: a query that already ended answers an error, which changes nothing.
        let _ = client.stop_query().query_id(id).send().await;
    }
}

/// Runs the report query over `[start, end]` (epoch seconds, inclusive) and feeds every group to
/// `a`. Returns what the queries did.
pub async fn read(
    client: &Client,
    a: &mut Analyzer,
    group: &str,
    region: &str,
    start: i64,
    end: i64,
    bar: &ProgressBar,
) -> Result<(ServerSide, Vec<String>), CliError> {
    let mut run = Run::default();
    let mut todo: VecDeque<Window> = VecDeque::from([Window {
        start,
        end,
        parent: None,
    }]);
    let mut running: Vec<(Window, String)> = Vec::new();
    // Every query started: on any failure all are stopped (stopping one that ended is harmless),
    // so none goes on scanning, and costing, after natflow gave up.
    let mut started: Vec<String> = Vec::new();
    let mut rows_fed = 0usize;
    while !todo.is_empty() || !running.is_empty() {
        while running.len() < CONCURRENT {
            let Some(w) = todo.pop_front() else { break };
            let id = match start_query(client, group, region, &w).await {
                Ok(id) => id,
                Err(e) => {
                    stop_all(client, started.iter()).await;
                    return Err(e);
                }
            };
            started.push(id.clone());
            run.queries += 1;
            running.push((w, id));
        }
        tokio::time::sleep(POLL).await;
        let mut still = Vec::with_capacity(running.len());
        for (w, id) in std::mem::take(&mut running) {
            let out = match client.get_query_results().query_id(&id).send().await {
                Ok(out) => out,
                Err(e) => {
                    let err = logs_error("GetQueryResults", group, region, e.into_service_error());
                    stop_all(client, started.iter()).await;
                    return Err(err);
                }
            };
            match out.status() {
                Some(QueryStatus::Complete) => {}
                Some(QueryStatus::Scheduled | QueryStatus::Running) => {
                    still.push((w, id));
                    continue;
                }
                other => {
                    stop_all(client, started.iter()).await;
                    return Err(CliError::Aws(format!(
                        "the Logs Insights query of {group} for {}..{} ended {} (query {id}); run again, or without \
                         --server-side to read the records",
                        w.start,
                        w.end,
                        other.map_or("without a status", |s| s.as_str())
                    )));
                }
            }
            let stats = out.statistics();
            let scanned = stats.map_or(0.0, |s| s.records_scanned()) as u64;
            let bytes = stats.map_or(0.0, |s| s.bytes_scanned()) as u64;
            if let Some(p) = w.parent {
                let s = &mut run.splits[p];
                s.halves_scanned += scanned;
                s.halves_done += 1;
                if s.halves_done == 2 && s.halves_scanned != s.scanned {
                    run.warnings.push(format!(
                        "Logs Insights scanned {} records in the window {}..{} but {} in its two halves: the figures \
                         may be off by the difference (records at the boundary second)",
                        s.scanned, s.window.0, s.window.1, s.halves_scanned
                    ));
                }
            }
            let rows = out.results();
            if rows.len() >= MAX_ROWS {
                // A full answer may be missing groups: ask again in halves.
                if w.end <= w.start {
                    stop_all(client, started.iter()).await;
                    return Err(CliError::Aws(format!(
                        "more than {MAX_ROWS} groups of records in the one second {} of {group}: too many for \
                         --server-side; read the records without it",
                        w.start
                    )));
                }
                run.splits.push(Split {
                    window: (w.start, w.end),
                    scanned,
                    halves_scanned: 0,
                    halves_done: 0,
                });
                let p = Some(run.splits.len() - 1);
                let mid = w.start + (w.end - w.start) / 2;
                todo.push_back(Window {
                    start: w.start,
                    end: mid,
                    parent: p,
                });
                todo.push_back(Window {
                    start: mid + 1,
                    end: w.end,
                    parent: p,
                });
                run.bytes_scanned += bytes;
                continue;
            }
            let mut grouped = 0u64;
            for row in rows {
                let row: Vec<(String, String)> = row
                    .iter()
                    .filter_map(|f| Some((f.field()?.to_string(), f.value()?.to_string())))
                    .filter(|(f, _)| f != "@ptr")
                    .collect();
                grouped += row
                    .iter()
                    .find(|(f, _)| f == RECORDS)
                    .and_then(|(_, v)| v.parse::<f64>().ok())
                    .unwrap_or(0.0) as u64;
                a.feed_group(&row);
            }
            rows_fed += rows.len();
            // Events the pattern did not match form no group (or an empty one, fed as malformed).
            let unmatched = scanned.saturating_sub(grouped);
            if unmatched > 0 {
                a.add_malformed(unmatched);
            }
            run.records_scanned += scanned;
            run.bytes_scanned += bytes;
            a.add_bytes_read(bytes);
        }
        running = still;
        bar.set_message(format!(
            "Logs Insights on {group}: {} queries, {} running, {rows_fed} groups counted",
            run.queries,
            running.len()
        ));
        bar.tick();
    }
    let server_side = ServerSide {
        queries: run.queries,
        split: run.splits.len() as u32,
        records_scanned: run.records_scanned,
        bytes_scanned: run.bytes_scanned,
        cost_usd: 0.0, // priced by the report
    };
    Ok((server_side, run.warnings))
}
