//! The orphan sweeper: deletes recorder flow logs that no running recording owns — executions
//! stopped by hand, cut short by a stack update, or past their expiry tag — releases their
//! locks and tells the user, once per recording.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::error::Result;
use crate::nat::NatGatewayId;
use crate::ports::{Executions, FlowLogs, Notifier, RecordingStore, TaggedFlowLog};
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
    flow_logs: &impl FlowLogs,
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
        let reason = if everything || group.iter().any(|f| expired(f, now)) {
            SweepReason::Expired
        } else if execution.is_empty() || !executions.is_running(&execution).await? {
            SweepReason::ExecutionEnded
        } else {
            continue;
        };
        let ids: Vec<String> = group.iter().map(|f| f.id.clone()).collect();
        flow_logs.delete(&ids).await?;
        let nat_id = group.iter().find_map(|f| f.tags.get(TAG_NAT)).cloned();
        let lock_released = match nat_id.as_deref().map(NatGatewayId::parse) {
            Some(Ok(nat)) => store.release(&nat, &execution).await?,
            _ => false,
        };
        let nat = nat_id.clone().unwrap_or_else(|| "unknown NAT Gateway".into());
        let why = match reason {
            SweepReason::ExecutionEnded => {
                "its execution is no longer running (stopped by hand or ended without cleanup)"
            }
            SweepReason::Expired => "it was past its expiry time (natrec:expires-at), or the stack is being deleted",
        };
        let subject = format!("NAT spike recording of {nat} ended by the sweeper");
        let message = format!(
            "Flow logs of a recording of {nat} were still active although {why}.\n\n\
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
