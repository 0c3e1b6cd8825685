//! The report's server-side path: CloudWatch Logs Insights groups the recording's records
//! (natflow::insights: the query, the window plan, the counting), driven here through the
//! [`LogQueries`] port within a time budget. A run that cannot finish in one invocation returns
//! its progress (the plan, the running and the answered query IDs: small, whatever the size of the
//! recording) for the next invocation to carry on; the answers an earlier invocation counted are
//! fetched again at the end (GetQueryResults keeps them 7 days), so no row travels through the
//! state machine. Each answer is counted as soon as the plan says so and then dropped: at most
//! one answer (up to 100,000 rows, in compact form) is held at a time.

use std::time::Duration;

use natflow::insights::{Plan, Verdict, Window};
use natflow::report::ServerSide;
use natflow::Analyzer;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{RecorderError, Result};
use crate::pacing::Clock;
use crate::ports::{LogQueries, QueryState};

/// Queries of one report in flight at once: the account's concurrent-query quota (30 in the API
/// reference, up to 100 on newer accounts) is shared by every recording and every user, so 20
/// NATs reporting at once stay within it, and a refusal only delays (`LimitExceededException`).
pub const CONCURRENT: usize = 2;
/// Between two polls: 2 queries polled every 2 s is 1 request per second of the account's 10.
pub const POLL: Duration = Duration::from_secs(2);
/// The first polls after a query starts come sooner (a small recording's query answers within a
/// second or two): 250 ms, 500 ms, 1 s, then every [`POLL`].
pub const FIRST_POLL: Duration = Duration::from_millis(250);

/// The wait before the `round`-th poll since the latest query started.
fn poll_delay(round: u32) -> Duration {
    FIRST_POLL.saturating_mul(1 << round.min(3)).min(POLL)
}
/// Consecutive transient failures (throttling above all) of GetQueryResults for one query before
/// the run gives up (about 15 s of polls at the longest interval).
const MAX_POLL_FAILURES: u32 = 8;

/// A query that answered and whose rows count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub window: Window,
    pub query_id: String,
    pub records_scanned: u64,
    pub bytes_scanned: u64,
}

/// Where a server-side run stands between invocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub plan: Plan,
    pub running: Vec<(Window, String)>,
    pub answered: Vec<Answered>,
}

impl Progress {
    pub fn new(start_s: i64, end_s: i64) -> Self {
        Self::with_records_from(start_s, start_s, end_s)
    }

    /// A run over `[start_s, end_s]` whose records exist from `records_from_s` on (the probe
    /// reads the first minute of records, not the margin before them).
    pub fn with_records_from(start_s: i64, records_from_s: i64, end_s: i64) -> Self {
        Self {
            plan: Plan::with_records_from(start_s, records_from_s, end_s),
            ..Default::default()
        }
    }

    /// Every query of the run (to stop them when it is abandoned).
    pub fn query_ids(&self) -> impl Iterator<Item = &str> {
        self.running.iter().map(|(_, id)| id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every group was counted into the analyzer.
    Done {
        server_side: ServerSide,
        warnings: Vec<String>,
    },
    /// Not finished before `stop_ms`: carry on with this. The analyzer holds part of the answers
    /// (counted as they came): discard it; the next invocation counts them again.
    Pending(Progress),
    /// A query failed, timed out or was cancelled, or the records are too dense to count
    /// server-side: every running query was stopped; the caller reads the records instead, into a
    /// fresh analyzer (this one holds the answers counted before the failure).
    Failed(String),
}

/// Stops the queries, best effort: one that cannot be stopped ends by itself within 60 minutes.
pub async fn stop_all(queries: &impl LogQueries, ids: impl Iterator<Item = &str>) {
    for id in ids {
        if let Err(e) = queries.stop(id).await {
            warn!(error = %e, query = id, "StopQuery failed; the query ends by itself within 60 minutes");
        }
    }
}

/// Where the documented older bound on `limit` (1 to 10,000) holds, StartQuery refuses a larger
/// one as a bad parameter (API reference, StartQuery, Errors: `InvalidParameterException`,
/// `MalformedQueryException`). The reference names no error for the limit alone, so only such a
/// refusal that speaks of the limit counts; any other is the query's failure, said as such.
fn refuses_rows(e: &RecorderError) -> bool {
    matches!(e, RecorderError::Aws { message, .. }
        if (message.starts_with("InvalidParameterException") || message.starts_with("MalformedQueryException"))
            && message.to_ascii_lowercase().contains("limit"))
}

/// Carries a run on until it is done, fails, or `stop_ms` (epoch ms) comes. `analyzer` must be
/// fresh: the answers are counted into it as they come.
pub async fn advance(
    queries: &impl LogQueries,
    clock: &impl Clock,
    mut p: Progress,
    stop_ms: i64,
    analyzer: &mut Analyzer,
) -> Result<Outcome> {
    let mut failures: std::collections::HashMap<String, u32> = Default::default();
    let mut round = 0u32;
    // Answers counted into `analyzer` by this invocation (earlier ones are fetched at the end).
    let mut counted: std::collections::HashSet<String> = Default::default();
    loop {
        while p.running.len() < CONCURRENT {
            let Some(w) = p.plan.next_window() else { break };
            match queries.start(&p.plan.query(), w.start, w.end, p.plan.max_rows()).await {
                Ok(Some(id)) => {
                    p.running.push((w, id));
                    round = 0;
                }
                Ok(None) => {
                    // The account's concurrent queries are at their quota: wait, never fail.
                    p.plan.not_started(w);
                    break;
                }
                Err(e) if e.is_transient() => {
                    p.plan.not_started(w);
                    break;
                }
                // A limit of 100,000 refused: 10,000-row queries instead (once).
                Err(e) if refuses_rows(&e) && p.plan.rows_refused(w, &e.to_string()) => {
                    warn!(error = %e, "StartQuery refused 100,000 rows: queries of 10,000 rows instead");
                }
                Err(e) => {
                    stop_all(queries, p.query_ids()).await;
                    return Ok(Outcome::Failed(format!("StartQuery was refused: {e}")));
                }
            }
        }
        if p.running.is_empty() && !p.plan.has_windows() {
            break;
        }
        let wait = poll_delay(round);
        round += 1;
        if clock.now_ms() + wait.as_millis() as i64 >= stop_ms {
            info!(
                running = p.running.len(),
                "Logs Insights queries still running: carrying on later"
            );
            return Ok(Outcome::Pending(p));
        }
        clock.sleep(wait).await;
        let mut still = Vec::with_capacity(p.running.len());
        for (w, id) in std::mem::take(&mut p.running) {
            match queries.results(&id).await {
                Ok(QueryState::Running) => {
                    failures.remove(&id);
                    still.push((w, id));
                }
                Err(e) if e.is_transient() => {
                    let n = failures.entry(id.clone()).or_default();
                    *n += 1;
                    if *n >= MAX_POLL_FAILURES {
                        stop_all(queries, still.iter().map(|(_, i)| i.as_str()).chain([id.as_str()])).await;
                        return Ok(Outcome::Failed(format!("GetQueryResults kept failing: {e}")));
                    }
                    still.push((w, id));
                }
                Err(e) => {
                    stop_all(queries, still.iter().map(|(_, i)| i.as_str()).chain([id.as_str()])).await;
                    return Ok(Outcome::Failed(format!("GetQueryResults was refused: {e}")));
                }
                Ok(QueryState::Ended(status)) => {
                    stop_all(queries, still.iter().map(|(_, i)| i.as_str())).await;
                    return Ok(Outcome::Failed(format!(
                        "the Logs Insights query for {}..{} ended {status}",
                        w.start, w.end
                    )));
                }
                Ok(QueryState::Complete {
                    rows,
                    records_scanned,
                    bytes_scanned,
                }) => match p.plan.answered(w, rows.len(), records_scanned, bytes_scanned) {
                    Verdict::Split => {}
                    Verdict::TooDense(why) => {
                        stop_all(queries, still.iter().map(|(_, i)| i.as_str())).await;
                        return Ok(Outcome::Failed(why));
                    }
                    Verdict::Count => {
                        analyzer.feed_answer(&rows, records_scanned, bytes_scanned);
                        drop(rows);
                        counted.insert(id.clone());
                        p.answered.push(Answered {
                            window: w,
                            query_id: id,
                            records_scanned,
                            bytes_scanned,
                        });
                    }
                },
            }
        }
        p.running = still;
    }
    // Every answer is in: count those of earlier invocations, fetched again one at a time.
    for a in p.answered.iter().filter(|a| !counted.contains(&a.query_id)) {
        let rows = match queries.results(&a.query_id).await? {
            QueryState::Complete { rows, .. } => rows,
            QueryState::Running => {
                return Ok(Outcome::Failed(format!(
                    "the answer of query {} could not be read again (Running)",
                    a.query_id
                )))
            }
            QueryState::Ended(status) => {
                return Ok(Outcome::Failed(format!(
                    "the answer of query {} could not be read again ({status})",
                    a.query_id
                )))
            }
        };
        analyzer.feed_answer(&rows, a.records_scanned, a.bytes_scanned);
    }
    Ok(Outcome::Done {
        server_side: p.plan.server_side(),
        warnings: p.plan.warnings().to_vec(),
    })
}
