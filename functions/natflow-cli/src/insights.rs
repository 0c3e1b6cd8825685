//! `--server-side`: CloudWatch Logs Insights groups the log group's records
//! (`queries/report-records.query`, see natflow::insights) and natflow counts the groups, so a
//! week of records is analysed without downloading it.
//!
//! AWS behaviour this depends on (CloudWatch Logs API reference, StartQuery, GetQueryResults,
//! StopQuery; CloudWatch Logs quotas):
//! - `startTime` and `endTime` are epoch seconds and both inclusive: a window split in two is
//!   `[start, mid]` and `[mid + 1, end]`; the halves' scanned records are checked against the
//!   whole window's, and a difference is reported, never hidden.
//! - A query returns at most 100,000 rows (StartQuery `limit`, "only supported for Logs Insights
//!   QL"), read 10,000 a GetQueryResults request (`maxItems`) with `nextToken` for the next page.
//!   Where a limit above 10,000 is refused (the older bound, 1 to 10,000:
//!   `InvalidParameterException` or `MalformedQueryException`), queries of 10,000 rows are used.
//!   A full answer may miss groups, so its window is asked again in two halves (until one second
//!   holds more groups than an answer: an error).
//! - Status Scheduled/Running until Complete; Failed, Cancelled, Timeout (60 minutes) end it.
//! - Concurrent queries per account are limited (`LimitExceededException`, shared with everyone in
//!   the account): the CLI runs a few at a time and waits and retries when refused.
//! - StartQuery and GetQueryResults: 10 requests per second per account and Region: a few queries
//!   polled once a second stay well under.
//! - Price: $0.005 per GB scanned (us-east-1), reported with the report.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use aws_sdk_cloudwatchlogs::Client;
use indicatif::ProgressBar;
use natflow::insights::{Group, PageStep, Pages, Plan, Verdict, Window, MAX_ROWS, PAGE_ROWS};
use natflow::report::ServerSide;
use natflow::Analyzer;

use crate::CliError;

/// Queries in flight at once (the account's quota is shared with every other user).
const CONCURRENT: usize = 4;
/// Between two polls of the running queries.
const POLL: Duration = Duration::from_secs(1);
/// StartQuery refused for the concurrent-query quota: retries, 2 s doubling to 30 s.
const START_ATTEMPTS: u32 = 10;

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

/// Why a query was not started.
enum NotStarted {
    /// The limit of more than 10,000 rows was refused (the error code and message).
    Rows(String),
    Failed(CliError),
}

impl From<CliError> for NotStarted {
    fn from(e: CliError) -> Self {
        Self::Failed(e)
    }
}

/// Starts the plan's query on one window, waiting while the account's concurrent queries are at
/// their quota.
async fn start_query(
    client: &Client,
    group: &str,
    region: &str,
    plan: &Plan,
    w: &Window,
) -> Result<String, NotStarted> {
    let mut wait = Duration::from_secs(2);
    for attempt in 1..=START_ATTEMPTS {
        let sent = client
            .start_query()
            .log_group_name(group)
            .start_time(w.start)
            .end_time(w.end)
            .query_string(plan.query())
            .limit(plan.max_rows() as i32)
            .send()
            .await;
        match sent {
            Ok(out) => {
                return out
                    .query_id()
                    .map(str::to_string)
                    .ok_or_else(|| CliError::Aws(format!("StartQuery on {group}: no query ID in the answer")).into())
            }
            Err(e) => {
                let e = e.into_service_error();
                if plan.max_rows() == MAX_ROWS
                    && matches!(e.code(), Some("InvalidParameterException" | "MalformedQueryException"))
                    // No error is documented for the limit alone: a refusal that speaks of it.
                    && e.message().is_some_and(|m| m.to_ascii_lowercase().contains("limit"))
                {
                    return Err(NotStarted::Rows(format!(
                        "{}: {}",
                        e.code().unwrap_or_default(),
                        e.message().unwrap_or_default()
                    )));
                }
                if e.code() == Some("LimitExceededException") && attempt < START_ATTEMPTS {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    continue;
                }
                return Err(NotStarted::Failed(match e.code() {
                    Some("LimitExceededException") => CliError::Aws(format!(
                        "StartQuery on {group} in {region}: the account's concurrent Logs Insights queries stayed at \
                         their quota for minutes (LimitExceededException); run again later, or without --server-side"
                    )),
                    _ => logs_error("StartQuery", group, region, e),
                }));
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
/// `a`. Returns what the queries did and what the report must say about them.
pub async fn read(
    client: &Client,
    a: &mut Analyzer,
    group: &str,
    region: &str,
    start: i64,
    end: i64,
    bar: &ProgressBar,
) -> Result<(ServerSide, Vec<String>), CliError> {
    let mut plan = Plan::new(start, end);
    let mut running: Vec<(Window, String)> = Vec::new();
    // Every query started: on any failure all are stopped (stopping one that ended is harmless),
    // so none goes on scanning, and costing, after natflow gave up.
    let mut started: Vec<String> = Vec::new();
    let mut rows_fed = 0usize;
    let result = async {
        while plan.has_windows() || !running.is_empty() {
            while running.len() < CONCURRENT {
                let Some(w) = plan.next_window() else { break };
                match start_query(client, group, region, &plan, &w).await {
                    Ok(id) => {
                        started.push(id.clone());
                        running.push((w, id));
                    }
                    Err(NotStarted::Rows(why)) => {
                        plan.rows_refused(w, &why);
                    }
                    Err(NotStarted::Failed(e)) => return Err(e),
                }
            }
            tokio::time::sleep(POLL).await;
            let mut still = Vec::with_capacity(running.len());
            for (w, id) in std::mem::take(&mut running) {
                let page = |token: Option<String>| {
                    client
                        .get_query_results()
                        .query_id(&id)
                        .max_items(PAGE_ROWS as i32)
                        .set_next_token(token)
                        .send()
                };
                let out = page(None)
                    .await
                    .map_err(|e| logs_error("GetQueryResults", group, region, e.into_service_error()))?;
                match out.status() {
                    Some(QueryStatus::Complete) => {}
                    Some(QueryStatus::Scheduled | QueryStatus::Running) => {
                        still.push((w, id));
                        continue;
                    }
                    other => {
                        return Err(CliError::Aws(format!(
                            "the Logs Insights query of {group} for {}..{} ended {} (query {id}); run again, or \
                             without --server-side to read the records",
                            w.start,
                            w.end,
                            other.map_or("without a status", |s| s.as_str())
                        )))
                    }
                }
                let stats = out.statistics();
                let scanned = stats.map_or(0.0, |s| s.records_scanned()) as u64;
                let bytes = stats.map_or(0.0, |s| s.bytes_scanned()) as u64;
                // Every page of the answer, 10,000 rows each (`maxItems`), in compact form as it
                // arrives; a repeated token or an empty page ends it rather than looping.
                let groups = |out: &aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput| {
                    out.results()
                        .iter()
                        .map(|row| Group::from_result(row.iter().map(|f| (f.field(), f.value()))))
                        .collect::<Vec<_>>()
                };
                let mut rows = groups(&out);
                let mut pages = Pages::default();
                let mut step = pages.after(rows.len(), out.next_token());
                while let PageStep::Next(t) = step {
                    let next = page(Some(t))
                        .await
                        .map_err(|e| logs_error("GetQueryResults", group, region, e.into_service_error()))?;
                    let before = rows.len();
                    rows.extend(groups(&next));
                    step = pages.after(rows.len() - before, next.next_token());
                }
                if let PageStep::Broken(why) = step {
                    return Err(CliError::Aws(format!(
                        "{group}: {why}; read the records without --server-side"
                    )));
                }
                match plan.answered(w, rows.len(), scanned, bytes) {
                    Verdict::Split => {}
                    Verdict::TooDense(why) => {
                        return Err(CliError::Aws(format!(
                            "{group}: {why}; read the records without --server-side"
                        )))
                    }
                    Verdict::Count => {
                        rows_fed += rows.len();
                        a.feed_answer(&rows, scanned, bytes);
                    }
                }
            }
            running = still;
            bar.set_message(format!(
                "Logs Insights on {group}: {} queries, {} running, {rows_fed} groups counted",
                plan.server_side().queries,
                running.len()
            ));
            bar.tick();
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        stop_all(client, started.iter()).await;
        return Err(e);
    }
    Ok((plan.server_side(), plan.warnings().to_vec()))
}
