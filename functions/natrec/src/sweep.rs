//! The orphan sweeper: deletes recorder flow logs that no running recording owns — executions
//! stopped by hand, cut short by a stack update, or past their expiry tag — releases their
//! locks and tells the user, once per recording.
//!
//! It also makes sure no execution ends without a notice: `States.ALL` catches neither
//! `States.Runtime` nor `States.DataLimitExceeded` (Step Functions developer guide, "Error
//! handling in Step Functions workflows"), and a Notify state can fail after its retries. The
//! execution status change rule calls the sweeper for every execution that ends FAILED, ABORTED
//! or TIMED_OUT ([`after_execution_ended`]); one that published no notice gets one from here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::error::Result;
use crate::nat::{nat_label, nat_short_name, NatGatewayId};
use crate::ports::{
    Executions, FlowLogs, LogQueries, NatDirectory, Notifier, QueryLedger, RecordingStore, TaggedFlowLog,
};
use crate::recording::{TAG_EXECUTION, TAG_EXPIRES, TAG_NAT, TAG_STACK};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub execution: String,
    pub nat_id: Option<String>,
    pub reason: SweepReason,
    pub flow_logs: Vec<String>,
    pub lock_released: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepReason {
    /// The execution that created them is no longer running (stopped by hand, failed hard).
    ExecutionEnded,
    /// Past their `natrec:expires-at` tag: no recording lasts that long.
    Expired,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub checked: usize,
    pub swept: Vec<Swept>,
    /// Locks of executions no longer running, with no flow log left (cleanup failed after
    /// deleting them): released so the NAT can be recorded again before the lock's TTL.
    pub stale_locks_released: Vec<String>,
    /// Executions that ended without sending their notice, told by the sweeper.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub told_unnotified: Vec<String>,
    /// Executions whose status could not be read: their flow logs wait for their expiry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
    /// The report queries stopped ([`stop_queries`]).
    #[serde(skip_serializing_if = "QuerySweep::is_empty")]
    pub queries: QuerySweep,
}

/// What [`stop_queries`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuerySweep {
    /// Logs Insights queries stopped (or found already ended) and taken out of their ledger.
    pub stopped: Vec<String>,
    /// Executions whose status could not be read: their queries wait for the ledger's expiry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
    /// What failed (the ledger unreadable, a StopQuery refused): left for the next sweep.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl QuerySweep {
    pub fn is_empty(&self) -> bool {
        self.stopped.is_empty() && self.unchecked.is_empty() && self.errors.is_empty()
    }
}

/// Whose report queries [`stop_queries`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryScope<'a> {
    /// Those of this execution, which ended (the execution status change rule), and those of
    /// every other execution no longer running.
    Ended(&'a str),
    /// Those of every execution no longer running, or past the ledger's expiry (the schedule).
    NotRunning,
    /// All of them (stack deletion).
    Everything,
}

/// An execution of the recorder that ended abnormally, from EventBridge's "Step Functions
/// Execution Status Change" event (detail: executionArn, status, error, cause, input, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedExecution {
    pub execution_arn: String,
    /// FAILED, ABORTED or TIMED_OUT.
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// From the execution's input (the alarm event), when the event carries it.
    pub nat_id: Option<String>,
}

impl EndedExecution {
    /// `Some` for a status change event of an execution that ended other than SUCCEEDED.
    pub fn from_event(event: &Value) -> Option<Self> {
        if event.get("source").and_then(Value::as_str) != Some("aws.states")
            || event.get("detail-type").and_then(Value::as_str) != Some("Step Functions Execution Status Change")
        {
            return None;
        }
        let detail = event.get("detail")?;
        let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_string);
        let status = text("status")?;
        if !matches!(status.as_str(), "FAILED" | "ABORTED" | "TIMED_OUT") {
            return None;
        }
        let nat_id = text("input")
            .and_then(|i| serde_json::from_str::<Value>(&i).ok())
            .and_then(|input| crate::event::AlarmEvent::from_value(input).ok())
            .map(|alarm| alarm.nat_id.to_string());
        Some(Self {
            execution_arn: text("executionArn")?,
            status,
            error: text("error").filter(|e| !e.is_empty()),
            cause: text("cause").filter(|c| !c.is_empty()),
            nat_id,
        })
    }

    fn what_happened(&self) -> String {
        const MAX_CAUSE_CHARS: usize = 1_000; // a Step Functions cause can be 32,768 characters
        let mut cause: String = self
            .cause
            .as_deref()
            .unwrap_or("no cause given")
            .chars()
            .take(MAX_CAUSE_CHARS)
            .collect();
        if self.cause.as_ref().is_some_and(|c| c.chars().count() > MAX_CAUSE_CHARS) {
            cause.push_str(" [...]");
        }
        format!(
            "The execution ended {} ({}: {cause}).",
            self.status,
            self.error.as_deref().unwrap_or("no error given")
        )
    }
}

/// A NAT Gateway as the notices name it: `Name tag (nat-...)` and the short form for a subject.
/// The Name tag comes from DescribeNatGateways; when it cannot be read (the NAT is deleted, the
/// call fails) the ID alone serves, and the notice still goes out.
async fn nat_names(nats: &impl NatDirectory, id: &NatGatewayId) -> (String, String) {
    let name = match nats.describe(id).await {
        Ok(nat) => nat.and_then(|n| n.name),
        Err(e) => {
            warn!(error = %e, nat = %id, "NAT Gateway's Name tag not read; named by its ID");
            None
        }
    };
    (nat_label(id, name.as_deref()), nat_short_name(id, name.as_deref()))
}

fn expired(fl: &TaggedFlowLog, now: DateTime<Utc>) -> bool {
    fl.tags
        .get(TAG_EXPIRES)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.with_timezone(&Utc) < now)
}

/// Sweeps this stack's flow logs. `everything` (stack deletion) deletes all of them.
pub async fn sweep(
    stack_name: &str,
    now: DateTime<Utc>,
    everything: bool,
    flow_logs: &(impl FlowLogs + NatDirectory),
    executions: &impl Executions,
    store: &impl RecordingStore,
    notifier: &impl Notifier,
) -> Result<SweepReport> {
    sweep_with(
        stack_name, now, everything, None, flow_logs, executions, store, notifier,
    )
    .await
}

/// Stops the report queries that no running execution waits for: those left in the ledger of an
/// execution that ended while they ran (stopped by hand during WaitForQueries, failed hard, timed
/// out), or that its report could not take out. StopQuery on a query that already ended is
/// answered with an error ("CloudWatch Logs API reference, StopQuery": "If the query has already
/// ended, the operation returns an error"), which the adapter takes as done. Never fails: what
/// could not be done is reported and left for the next sweep (every 15 minutes), so that it never
/// keeps the flow-log sweep from running.
pub async fn stop_queries(
    now: DateTime<Utc>,
    scope: QueryScope<'_>,
    ledger: &impl QueryLedger,
    queries: &impl LogQueries,
    executions: &impl Executions,
) -> QuerySweep {
    let mut out = QuerySweep::default();
    let ledgers = match ledger.all().await {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "query ledger not read: its queries are stopped by a later sweep");
            out.errors.push(format!("the query ledger could not be read: {e}"));
            return out;
        }
    };
    for entry in ledgers.into_iter().filter(|l| !l.query_ids.is_empty()) {
        let execution = &entry.execution;
        // The execution of a status change event has ended, and a ledger past its expiry holds
        // no running query: no need to ask.
        let known_ended = matches!(scope, QueryScope::Ended(arn) if arn == execution);
        if scope != QueryScope::Everything && !known_ended && entry.expires_at_s > now.timestamp() {
            match executions.is_running(execution).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, %execution, "execution status unknown: its queries are kept until the ledger expires");
                    out.unchecked.push(execution.clone());
                    continue;
                }
            }
        }
        let expired = entry.expires_at_s <= now.timestamp();
        for id in &entry.query_ids {
            match queries.stop(id).await {
                Ok(()) => {}
                // Past the ledger's expiry no query still runs: taken out all the same, so that a
                // StopQuery refused for good is not tried again until DynamoDB's TTL deletes it.
                Err(e) if expired => {
                    warn!(error = %e, %execution, query = %id, "StopQuery failed on an expired ledger")
                }
                Err(e) => {
                    warn!(error = %e, %execution, query = %id, "StopQuery failed: the next sweep tries again");
                    out.errors.push(format!("query {id} of {execution} not stopped: {e}"));
                    continue;
                }
            }
            match ledger.forget(execution, id).await {
                Ok(()) => {
                    info!(%execution, query = %id, "stopped a query of an execution no longer running");
                    out.stopped.push(id.clone());
                }
                Err(e) => out
                    .errors
                    .push(format!("query {id} of {execution} stopped, still in the ledger: {e}")),
            }
        }
    }
    out
}

/// An execution ended FAILED, ABORTED or TIMED_OUT: sweeps (its flow logs, if any are left, get
/// one notice that says how it ended), then, if it left none and its history shows no notice
/// published, tells the user that it ended without one. An execution that sent its notice (a
/// failure notice before its `Fail` state, a report before a later failure) gets no second one.
#[allow(clippy::too_many_arguments)]
pub async fn after_execution_ended(
    stack_name: &str,
    now: DateTime<Utc>,
    ended: &EndedExecution,
    flow_logs: &(impl FlowLogs + NatDirectory),
    executions: &impl Executions,
    store: &impl RecordingStore,
    notifier: &impl Notifier,
) -> Result<SweepReport> {
    let arn = &ended.execution_arn;
    let held = store.held_locks().await?.into_iter().any(|(_, e)| &e == arn);
    let mut report = sweep_with(
        stack_name,
        now,
        false,
        Some(ended),
        flow_logs,
        executions,
        store,
        notifier,
    )
    .await?;
    if report.swept.iter().any(|s| &s.execution == arn) || executions.notice_sent(arn).await? {
        return Ok(report);
    }
    let (nat, short) = match ended.nat_id.as_deref().map(NatGatewayId::parse) {
        Some(Ok(id)) => nat_names(flow_logs, &id).await,
        _ => ("a NAT Gateway".to_string(), "a NAT Gateway".to_string()),
    };
    // The sweep above releases the lock of an execution that is no longer running.
    let lock = if held {
        "its lock was still held: released now"
    } else {
        "no lock held"
    };
    let subject = crate::notice::subject(format!(
        "NAT spike recording of {short} {} without its notice",
        ended.status
    ));
    let message = format!(
        "A recording of {nat} ended before it could send its notice, so the sweeper sends this one.\n\n\
         {}\n\n\
         Flow logs: none of this execution is left (checked by its tag natrec:execution). Lock: {lock}.\n\
         Its report, if any, was not sent: the records that were delivered stay in the stack's flow-log \
         group; analyse them with natflow analyze --log-group (see README). The execution's history in \
         the Step Functions console shows which state failed.\n\n\
         Stack: {stack_name}. Execution: {arn}\n",
        ended.what_happened()
    );
    notifier.publish(&subject, &message).await?;
    info!(execution = %arn, status = %ended.status, "told an execution that ended without its notice");
    report.told_unnotified.push(arn.clone());
    Ok(report)
}

/// A running recording's flow logs are checked on every sweep: a delivery failure seen during the
/// recording (DescribeFlowLogs `DeliverLogsStatus` FAILED, e.g. "Rate limited", which can clear
/// before the end) is noted on the NAT's item, and the finish step's notice tells it.
async fn note_delivery_failure(execution: &str, group: &[TaggedFlowLog], store: &impl RecordingStore) -> Result<()> {
    let delivery = crate::recording::Delivery::of(group);
    let nat = group
        .iter()
        .find_map(|f| f.tags.get(TAG_NAT))
        .map(|n| NatGatewayId::parse(n));
    if let (false, Some(Ok(nat))) = (delivery.failed.is_empty(), nat) {
        warn!(%execution, failed = ?delivery.failed, "flow-log delivery failing during a recording");
        let note = serde_json::to_string(&delivery).expect("a delivery status serializes");
        store.note_delivery(&nat, execution, &note).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn sweep_with(
    stack_name: &str,
    now: DateTime<Utc>,
    everything: bool,
    ended: Option<&EndedExecution>,
    flow_logs: &(impl FlowLogs + NatDirectory),
    executions: &impl Executions,
    store: &impl RecordingStore,
    notifier: &impl Notifier,
) -> Result<SweepReport> {
    let found = flow_logs.find_tagged(TAG_STACK, stack_name).await?;
    let mut by_execution: BTreeMap<String, Vec<TaggedFlowLog>> = BTreeMap::new();
    for fl in &found {
        let execution = fl.tags.get(TAG_EXECUTION).cloned().unwrap_or_default();
        by_execution.entry(execution).or_default().push(fl.clone());
    }
    let mut report = SweepReport {
        checked: found.len(),
        ..Default::default()
    };
    for (execution, group) in by_execution {
        // The execution of a status change event has ended: no need to ask.
        let known_ended = ended.is_some_and(|e| e.execution_arn == execution);
        let running = match known_ended || execution.is_empty() || everything || group.iter().any(|f| expired(f, now)) {
            true => false,
            false => match executions.is_running(&execution).await {
                Ok(running) => running,
                // One execution that cannot be described (e.g. of a state machine an update
                // replaced, which the grants no longer name) must not stop the sweep of the
                // others; its flow logs are swept once past their natrec:expires-at.
                Err(e) => {
                    warn!(error = %e, %execution, "execution status unknown: its flow logs are kept until they expire");
                    report.unchecked.push(execution);
                    continue;
                }
            },
        };
        let reason = if everything || group.iter().any(|f| expired(f, now)) {
            SweepReason::Expired
        } else if !running {
            SweepReason::ExecutionEnded
        } else {
            note_delivery_failure(&execution, &group, store).await?;
            continue;
        };
        let ids: Vec<String> = group.iter().map(|f| f.id.clone()).collect();
        // Only what DescribeFlowLogs still lists counts as left: the finish step may delete
        // them meanwhile (a gone ID can be answered UnauthorizedOperation).
        crate::recording::delete_existing(flow_logs, &group).await?;
        let nat_id = group.iter().find_map(|f| f.tags.get(TAG_NAT)).cloned();
        let lock_released = match nat_id.as_deref().map(NatGatewayId::parse) {
            Some(Ok(nat)) => store.release(&nat, &execution).await?,
            _ => false,
        };
        // Only a well-formed NAT ID is looked up and named (SNS: subjects under 100 characters).
        let (nat, short) = match nat_id.as_deref().map(NatGatewayId::parse) {
            Some(Ok(id)) => nat_names(flow_logs, &id).await,
            _ => ("unknown NAT Gateway".to_string(), "unknown NAT Gateway".to_string()),
        };
        let why = match reason {
            SweepReason::ExecutionEnded => {
                "its execution is no longer running (stopped by hand or ended without cleanup)"
            }
            SweepReason::Expired => "it was past its expiry time (natrec:expires-at), or the stack is being deleted",
        };
        let subject = crate::notice::subject(format!("NAT spike recording of {short} ended by the sweeper"));
        let how = ended
            .filter(|e| e.execution_arn == execution)
            .map(|e| format!("{}\n\n", e.what_happened()))
            .unwrap_or_default();
        let message = format!(
            "Flow logs of a recording of {nat} were still active although {why}.\n\n{how}\
             Deleted flow logs: {}\nLock released: {}\n\nStack: {stack_name}. Execution: {execution}\n",
            ids.join(", "),
            if lock_released { "yes" } else { "no lock was held" },
        );
        if let Err(e) = notifier.publish(&subject, &message).await {
            warn!(error = %e, %execution, "sweep notice not sent");
            return Err(e);
        }
        info!(%execution, ?reason, flow_logs = ?ids, "swept orphaned flow logs");
        report.swept.push(Swept {
            execution,
            nat_id,
            reason,
            flow_logs: ids,
            lock_released,
        });
    }
    for (nat, execution) in store.held_locks().await? {
        if !everything && executions.is_running(&execution).await? {
            continue;
        }
        if store.release(&nat, &execution).await? {
            info!(nat = %nat, %execution, "released a stale lock");
            report.stale_locks_released.push(nat.to_string());
        }
    }
    Ok(report)
}

/// The sweeper's ports and its entry points: the schedule, the execution status change rule and
/// stack deletion. Each stops report queries first ([`stop_queries`], which never fails), so that
/// a failing flow-log sweep leaves no query running, then sweeps flow logs and locks.
pub struct Sweeper<'a, F, X, S, N, Q, L> {
    pub stack_name: &'a str,
    pub flow_logs: &'a F,
    pub executions: &'a X,
    pub store: &'a S,
    pub notifier: &'a N,
    pub queries: &'a Q,
    pub ledger: &'a L,
}

impl<F, X, S, N, Q, L> Sweeper<'_, F, X, S, N, Q, L>
where
    F: FlowLogs + NatDirectory,
    X: Executions,
    S: RecordingStore,
    N: Notifier,
    Q: LogQueries,
    L: QueryLedger,
{
    pub fn new<'a>(
        stack_name: &'a str,
        flow_logs: &'a F,
        executions: &'a X,
        store: &'a S,
        notifier: &'a N,
        queries: &'a Q,
        ledger: &'a L,
    ) -> Sweeper<'a, F, X, S, N, Q, L> {
        Sweeper {
            stack_name,
            flow_logs,
            executions,
            store,
            notifier,
            queries,
            ledger,
        }
    }

    /// What EventBridge delivers: an execution's status change (ended FAILED, ABORTED or
    /// TIMED_OUT: [`after_execution_ended`]), or the schedule's event (anything else).
    pub async fn on_event(&self, now: DateTime<Utc>, event: &Value) -> Result<SweepReport> {
        let Some(ended) = EndedExecution::from_event(event) else {
            return self.sweep(now, false).await;
        };
        let scope = QueryScope::Ended(&ended.execution_arn);
        let queries = stop_queries(now, scope, self.ledger, self.queries, self.executions).await;
        let (f, x, s, n) = (self.flow_logs, self.executions, self.store, self.notifier);
        let mut report = after_execution_ended(self.stack_name, now, &ended, f, x, s, n).await?;
        report.queries = queries;
        Ok(report)
    }

    /// The schedule, or (`everything`) stack deletion: every query, flow log and lock goes.
    pub async fn sweep(&self, now: DateTime<Utc>, everything: bool) -> Result<SweepReport> {
        let scope = match everything {
            true => QueryScope::Everything,
            false => QueryScope::NotRunning,
        };
        let queries = stop_queries(now, scope, self.ledger, self.queries, self.executions).await;
        let (f, x, s, n) = (self.flow_logs, self.executions, self.store, self.notifier);
        let mut report = sweep(self.stack_name, now, everything, f, x, s, n).await?;
        report.queries = queries;
        Ok(report)
    }

    /// Answers a CloudFormation custom resource request (the stack's FlowLogCleanupOnDelete):
    /// Delete sweeps everything; Create and Update do nothing. The response body to PUT to its
    /// `ResponseURL`.
    pub async fn answer(&self, now: DateTime<Utc>, cr: &CustomResource) -> Value {
        let (status, reason) = if cr.request_type == "Delete" {
            match self.sweep(now, true).await {
                Ok(report) => (
                    "SUCCESS",
                    format!("deleted the flow logs of {} recording(s)", report.swept.len()),
                ),
                Err(e) => {
                    warn!(error = %e, "stack deletion sweep failed");
                    ("FAILED", format!("could not delete the recorder's flow logs: {e}. Retry the deletion; flow logs carry the tag natrec:stack={}", self.stack_name))
                }
            }
        } else {
            ("SUCCESS", "nothing to do".to_string())
        };
        serde_json::json!({
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": cr.physical_resource_id.clone().unwrap_or_else(|| format!("{}-flow-log-cleanup", self.stack_name)),
            "StackId": cr.stack_id,
            "RequestId": cr.request_id,
            "LogicalResourceId": cr.logical_resource_id,
        })
    }
}

/// A CloudFormation custom resource request.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResource {
    pub request_type: String,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
}
