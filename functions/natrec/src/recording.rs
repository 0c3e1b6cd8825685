//! The recording lifecycle: start (lock + flow logs), park (token), resume (stop signal),
//! finish (cleanup + notice). Handlers are thin wrappers around these functions.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::error::{RecorderError, Result};
use crate::event::{AlarmEvent, AlarmStateValue};
use crate::nat::{FlowLogTarget, NatGatewayId};
use crate::notice::{self, Notice};
use crate::ports::*;

/// The custom flow-log format: everything the analysis needs, defined once in `natflow` (the
/// saved queries in `queries/` parse exactly this order).
pub use natflow::format::RECORDER_FIELDS as LOG_FORMAT_FIELDS;

pub fn log_format() -> String {
    natflow::Format::recorder().log_format()
}

pub const TAG_STACK: &str = "natrec:stack";
pub const TAG_NAT: &str = "natrec:nat-gateway";
pub const TAG_EXECUTION: &str = "natrec:execution";
pub const TAG_EXPIRES: &str = "natrec:expires-at";

/// Extra lock lifetime beyond the recording time, for cleanup and retries.
pub const LOCK_GRACE_S: i64 = 3600;

/// Deployment settings the start step needs (from the function's environment).
#[derive(Debug, Clone)]
pub struct StartSettings {
    pub stack_name: String,
    pub log_group: String,
    pub delivery_role_arn: String,
    pub recording_time_s: u32,
    pub max_recordings: u32,
}

/// What the start step hands to the rest of the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub status: StartStatus,
    pub nat_id: NatGatewayId,
    /// The NAT's Name tag when it has one (absent in the state of older recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_name: Option<String>,
    pub alarm_name: String,
    pub execution: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub flow_log_ids: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub recording_time: u32,
    pub log_group: String,
    /// Set when the user must be told although nothing was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
    /// Seconds to wait after the recording for flow-log delivery before the report is built.
    #[serde(default)]
    pub report_delay: u32,
    /// The ENI inventory snapshot taken at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventorySnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySnapshot {
    /// Log stream of the reports log group holding it (one interface per event).
    pub stream: String,
    pub interfaces: usize,
    /// Why there is no snapshot (the recording goes on without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The execution's name (the last part of its ARN): names the recording's log streams.
pub fn execution_name(execution: &str) -> &str {
    execution.rsplit(':').next().unwrap_or(execution)
}

pub fn inventory_stream(execution: &str) -> String {
    format!("{}/inventory", execution_name(execution))
}

/// The snapshot taken when the recording ends (by the finish step).
pub fn inventory_end_stream(execution: &str) -> String {
    format!("{}/inventory-end", execution_name(execution))
}

/// The finish step's snapshot of the NAT's VPC, into `<execution>/inventory-end`: the
/// interfaces created during the recording (autoscaling, Lambda, tasks) are named too; the report
/// merges it with the start snapshot. Best effort, like the start's (the report reads what
/// exists): only for a recording that recorded; a failure is logged, never raised. The
/// interfaces stored (None: no snapshot).
pub async fn snapshot_inventory_at_end(
    input: &FinishInput,
    network: &impl NetworkInventory,
    archive: &impl Archive,
) -> Option<usize> {
    let execution = &input.execution;
    let recording = serde_json::from_value::<Recording>(input.state.clone()).ok()?;
    let (StartStatus::Recording, Some(vpc)) = (recording.status, recording.vpc_id.as_deref()) else {
        return None;
    };
    let stream = inventory_end_stream(execution);
    let stored = async {
        let lines: Vec<String> = network
            .interfaces(vpc)
            .await?
            .iter()
            .map(|e| serde_json::to_string(e).expect("an interface serializes"))
            .collect();
        archive.put(&stream, &lines).await?;
        Ok::<usize, RecorderError>(lines.len())
    }
    .await;
    match stored {
        Ok(n) => {
            info!(interfaces = n, %stream, "end inventory snapshot stored");
            Some(n)
        }
        Err(e) => {
            warn!(error = %e, "no end inventory snapshot; the report names talkers from the start snapshot");
            None
        }
    }
}

pub fn report_stream(execution: &str) -> String {
    format!("{}/report", execution_name(execution))
}

/// Snapshots every interface of the NAT's VPC into the archive, so the report can name a
/// talker whose instance, task or function is gone by then. Best effort: a recording is worth
/// more than its names, so a failure is noted in the recording, not raised.
pub async fn snapshot_inventory(recording: &mut Recording, network: &impl NetworkInventory, archive: &impl Archive) {
    if recording.status != StartStatus::Recording {
        return;
    }
    let stream = inventory_stream(&recording.execution);
    let result = async {
        let vpc = recording
            .vpc_id
            .as_deref()
            .ok_or_else(|| RecorderError::UnexpectedEvent("the NAT Gateway has no VPC".into()))?;
        let enis = network.interfaces(vpc).await?;
        let lines: Vec<String> = enis
            .iter()
            .map(|e| serde_json::to_string(e).expect("an interface serializes"))
            .collect();
        archive.put(&stream, &lines).await?;
        Ok::<usize, RecorderError>(lines.len())
    }
    .await;
    recording.inventory = Some(match result {
        Ok(n) => {
            info!(interfaces = n, %stream, "inventory snapshot stored");
            InventorySnapshot {
                stream,
                interfaces: n,
                error: None,
            }
        }
        Err(e) => {
            warn!(error = %e, "no inventory snapshot; the report will name talkers by address only");
            InventorySnapshot {
                stream,
                interfaces: 0,
                error: Some(e.to_string()),
            }
        }
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartStatus {
    Recording,
    /// Another execution is already recording this NAT (duplicate or overlapping alarm).
    AlreadyRecording,
    /// NumOfRecordings reached for this NAT.
    LimitReached,
}

/// A ClientToken (<= 64 ASCII chars) that is the same for every retry of one execution.
pub fn client_token(execution: &str) -> String {
    let digest = Sha256::digest(execution.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn state_time_ms(event: &AlarmEvent) -> i64 {
    event
        .detail
        .state
        .timestamp
        .as_deref()
        .and_then(parse_alarm_timestamp)
        .unwrap_or(event.time)
        .timestamp_millis()
}

/// CloudWatch writes state timestamps as `2019-10-02T17:20:48.551+0000`.
pub fn parse_alarm_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The flow logs of a CreateFlowLogs call that created all of them, or `FlowLogsFailed`. A call
/// that refused some resources (`Unsuccessful`) may have created the others: they are deleted
/// here by ID, at once, rather than left to the failure cleanup's DescribeFlowLogs, which may
/// not list them yet ("Eventual consistency in the Amazon EC2 API"); a recording never runs on
/// part of a NAT's interfaces.
async fn created_or_undone(flow_logs: &impl FlowLogs, created: CreatedFlowLogs) -> Result<Vec<String>> {
    if created.refused.is_empty() && !created.ids.is_empty() {
        return Ok(created.ids);
    }
    let mut why = if created.refused.is_empty() {
        "CreateFlowLogs returned no flow log ID".to_string()
    } else {
        format!("CreateFlowLogs refused {}", created.refused.join("; "))
    };
    if !created.ids.is_empty() {
        match flow_logs.delete(&created.ids).await {
            Ok(()) => why.push_str(&format!(
                "; the flow logs it did create were deleted ({})",
                created.ids.join(", ")
            )),
            Err(e) => why.push_str(&format!(
                "; the flow logs it did create ({}) could not be deleted yet ({e}): the cleanup deletes them by tag",
                created.ids.join(", ")
            )),
        }
    }
    Err(RecorderError::FlowLogsFailed(why))
}

pub async fn start(
    event: Value,
    execution: &str,
    now: DateTime<Utc>,
    settings: &StartSettings,
    nats: &impl NatDirectory,
    flow_logs: &impl FlowLogs,
    store: &impl RecordingStore,
) -> Result<Recording> {
    let event = AlarmEvent::from_value(event)?;
    if event.state() != AlarmStateValue::Alarm {
        return Err(RecorderError::UnexpectedEvent(format!(
            "a recording starts on state ALARM, but alarm {} is {}",
            event.detail.alarm_name,
            event.state().as_str()
        )));
    }
    let nat_id = event.nat_id.clone();
    let mut recording = Recording {
        status: StartStatus::Recording,
        nat_id: nat_id.clone(),
        nat_name: None,
        alarm_name: event.detail.alarm_name.clone(),
        execution: execution.to_string(),
        vpc_id: None,
        interfaces: vec![],
        flow_log_ids: vec![],
        started_at: now,
        recording_time: settings.recording_time_s,
        log_group: settings.log_group.clone(),
        notice: None,
        report_delay: 0,
        inventory: None,
    };

    let nat = nats
        .describe(&nat_id)
        .await?
        .ok_or_else(|| RecorderError::NatNotFound(nat_id.to_string()))?;
    if nat.state != "available" {
        return Err(RecorderError::NatNotAvailable {
            nat_id: nat_id.to_string(),
            state: nat.state,
        });
    }
    if !nat.regional && nat.interfaces.is_empty() {
        return Err(RecorderError::NatNotAvailable {
            nat_id: nat_id.to_string(),
            state: "without network interfaces".into(),
        });
    }
    recording.vpc_id = nat.vpc_id.clone();
    recording.interfaces = nat.interfaces.clone();
    recording.nat_name = nat.name.clone();

    let expires_at_s = now.timestamp() + i64::from(settings.recording_time_s) + LOCK_GRACE_S;
    let lock = LockRequest {
        nat_id: nat_id.clone(),
        execution: execution.to_string(),
        alarm_at_ms: state_time_ms(&event),
        now_s: now.timestamp(),
        expires_at_s,
        max_recordings: settings.max_recordings,
    };
    let expires_at_s = match store.acquire(&lock).await? {
        Acquired::Acquired { expires_at_s } => expires_at_s,
        Acquired::HolderEnding(holder) => {
            return Err(RecorderError::RecordingEnding {
                nat_id: nat_id.to_string(),
                holder,
            });
        }
        Acquired::HeldBy(holder) => {
            info!(nat = %nat_id, %holder, "already recording; this alarm joins the running recording");
            recording.status = StartStatus::AlreadyRecording;
            return Ok(recording);
        }
        Acquired::LimitReached(count) => {
            info!(nat = %nat_id, count, "NumOfRecordings reached; not recording");
            recording.status = StartStatus::LimitReached;
            recording.notice = Some(notice::limit_reached(
                &settings.stack_name,
                &nat_id,
                nat.name.as_deref(),
                count,
                settings.max_recordings,
            ));
            return Ok(recording);
        }
    };

    // Every CreateFlowLogs parameter, tags included, must be the same in every attempt of this
    // execution: EC2 "Ensuring idempotency" (ClientToken): a retry with the same token and other
    // parameters fails with IdempotentParameterMismatch instead of returning the flow logs of the
    // first attempt. So the expiry is the lock's, stored by the first attempt of this execution
    // (a retry finds its own lock with it), never the clock of this attempt. (The alarm's
    // timestamp would be fixed too, but an event delivered late would make the flow logs
    // expire at once.)
    let expires = Utc.timestamp_opt(expires_at_s, 0).single().unwrap_or(now);
    let request = FlowLogRequest {
        target: nat.flow_log_target(),
        log_group: settings.log_group.clone(),
        delivery_role_arn: settings.delivery_role_arn.clone(),
        log_format: log_format(),
        max_aggregation_seconds: 60,
        client_token: client_token(execution),
        tags: vec![
            ("Name".into(), format!("{} {}", settings.stack_name, nat_id)),
            (TAG_STACK.into(), settings.stack_name.clone()),
            (TAG_NAT.into(), nat_id.to_string()),
            (TAG_EXECUTION.into(), execution.to_string()),
            (
                TAG_EXPIRES.into(),
                expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ],
    };
    // A retry after a timeout that hid a success finds this execution's flow logs by tag and
    // keeps them (the ClientToken makes a repeated create idempotent too, on AWS).
    let existing: Vec<String> = flow_logs
        .find_tagged(TAG_EXECUTION, execution)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    let ids = if existing.is_empty() {
        created_or_undone(flow_logs, flow_logs.create(&request).await?).await?
    } else {
        existing
    };
    store.mark_started(&nat_id, execution, &ids).await?;
    if let FlowLogTarget::RegionalNatGateway(_) = request.target {
        recording.interfaces = vec![format!("{nat_id} (regional)")];
    }
    recording.flow_log_ids = ids;
    info!(nat = %nat_id, flow_logs = ?recording.flow_log_ids, "recording started");
    Ok(recording)
}

/// The `.waitForTaskToken` step: stores the token, or ends the wait at once if the alarm
/// already left ALARM.
pub async fn park(
    nat_id: &NatGatewayId,
    execution: &str,
    token: &str,
    store: &impl RecordingStore,
    tokens: &impl TaskTokens,
) -> Result<Parked> {
    let parked = store.park(nat_id, execution, token).await?;
    if let Parked::StopAlreadyRequested(signal) = &parked {
        info!(nat = %nat_id, reason = ?signal.reason, "stop arrived before the token was parked; stopping now");
        tokens.succeed(token, &json!({ "reason": signal.reason })).await?;
    }
    Ok(parked)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum ResumeOutcome {
    Stopped { nat_id: NatGatewayId },
    NothingRecording { nat_id: NatGatewayId },
    AlreadyOver { nat_id: NatGatewayId, detail: String },
}

/// An alarm left ALARM: end the NAT's recording, whatever stage it is in.
pub async fn resume(event: Value, store: &impl RecordingStore, tokens: &impl TaskTokens) -> Result<ResumeOutcome> {
    let event = AlarmEvent::from_value(event)?;
    let reason = match event.state() {
        AlarmStateValue::Ok => StopReason::AlarmOk,
        AlarmStateValue::InsufficientData => StopReason::AlarmInsufficientData,
        AlarmStateValue::Alarm => {
            return Err(RecorderError::UnexpectedEvent(format!(
                "the resume function handles OK and INSUFFICIENT_DATA, but alarm {} is ALARM",
                event.detail.alarm_name
            )))
        }
    };
    let nat_id = event.nat_id.clone();
    let signal = StopSignal {
        reason,
        at_ms: state_time_ms(&event),
    };
    match store.request_stop(&nat_id, &signal).await? {
        None => Ok(ResumeOutcome::NothingRecording { nat_id }),
        Some(token) => match tokens.succeed(&token, &json!({ "reason": reason })).await? {
            TokenOutcome::Delivered => Ok(ResumeOutcome::Stopped { nat_id }),
            TokenOutcome::AlreadyOver(detail) => Ok(ResumeOutcome::AlreadyOver { nat_id, detail }),
        },
    }
}

/// Deployment settings the finish step needs.
#[derive(Debug, Clone)]
pub struct FinishSettings {
    pub stack_name: String,
    pub region: String,
    pub log_group: String,
    pub query_names: Vec<String>,
}

/// Error as Step Functions puts it in `ResultPath` of a Catch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl StepError {
    /// The readable message: a Lambda's error arrives as JSON in `Cause`.
    pub fn message(&self) -> String {
        let cause = self.cause.clone().unwrap_or_default();
        match serde_json::from_str::<Value>(&cause) {
            Ok(v) => v
                .get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(cause),
            Err(_) => cause,
        }
    }
}

/// The finish step's input: the state at the end of the recording (or at the failure).
#[derive(Debug, Clone, Deserialize)]
pub struct FinishInput {
    pub execution: String,
    pub state: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    AlarmOk,
    AlarmInsufficientData,
    TimeLimit,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finished {
    pub ending: Ending,
    pub ended_at: DateTime<Utc>,
    pub deleted_flow_logs: Vec<String>,
    pub lock_released: bool,
    /// Delivery status of the flow logs at the end of the recording.
    pub delivery: Delivery,
    pub subject: String,
    pub message: String,
}

pub async fn finish(
    input: FinishInput,
    now: DateTime<Utc>,
    settings: &FinishSettings,
    nats: &impl NatDirectory,
    flow_logs: &impl FlowLogs,
    store: &impl RecordingStore,
    metrics: &impl NatMetrics,
) -> Result<Finished> {
    let state = input.state;
    let error: Option<StepError> = state.get("error").cloned().and_then(|e| serde_json::from_value(e).ok());
    let stop: Option<StopReason> = state
        .get("stop")
        .and_then(|s| s.get("reason"))
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok());
    let recording: Option<Recording> = serde_json::from_value(state.clone()).ok();
    // Without a Recording the start step failed; the NAT may still be named by the event.
    let nat_id = recording
        .as_ref()
        .map(|r| r.nat_id.clone())
        .or_else(|| AlarmEvent::from_value(state.clone()).ok().map(|e| e.nat_id));
    let ending = match (&error, stop) {
        (Some(e), _) if e.error == "States.Timeout" => Ending::TimeLimit,
        (Some(_), _) => Ending::Failed,
        (None, Some(StopReason::AlarmOk)) => Ending::AlarmOk,
        (None, Some(StopReason::AlarmInsufficientData)) => Ending::AlarmInsufficientData,
        (None, None) => Ending::Failed,
    };

    // Reconcile by tag: every flow log of this execution, not only the IDs passed along; and
    // of the IDs passed along only those DescribeFlowLogs still returns (a retried finish finds
    // them gone). Their delivery status is read here, while they still exist.
    let mut found = flow_logs.find_tagged(TAG_EXECUTION, &input.execution).await?;
    let untagged: Vec<String> = recording
        .iter()
        .flat_map(|r| r.flow_log_ids.iter())
        .filter(|id| !found.iter().any(|f| &f.id == *id))
        .cloned()
        .collect();
    if !untagged.is_empty() {
        found.extend(flow_logs.existing(&untagged).await?);
    }
    let mut delivery = Delivery::of(&found);
    if !delivery.failed.is_empty() {
        warn!(failed = ?delivery.failed, "flow-log delivery failed");
        // Kept before the flow logs go: a finish retried after a lost answer finds them gone.
        if let Some(nat) = &nat_id {
            let note = serde_json::to_string(&delivery).expect("a delivery status serializes");
            store.note_delivery(nat, &input.execution, &note).await?;
        }
    } else if found.is_empty() && !untagged.is_empty() {
        delivery.checked = untagged.len();
    }
    delete_existing(flow_logs, &found).await?;
    // Every flow log of this execution is gone now: the ones deleted here, and IDs passed along
    // that an earlier attempt (or the sweeper) deleted.
    let mut ids: Vec<String> = found.iter().map(|f| f.id.clone()).chain(untagged).collect();
    ids.sort();
    ids.dedup();
    let lock_released = match &nat_id {
        Some(nat) => store.release(nat, &input.execution).await?,
        None => false,
    };
    info!(execution = %input.execution, deleted = ?ids, lock_released, ?ending, "recording cleaned up");
    // No failure now, but one noted earlier is still told: seen by an earlier attempt of this
    // step (which deleted the flow logs: no note means it saw none), or by the sweeper during the
    // recording (a failure such as "Rate limited" can clear before the end). Read after the
    // cleanup and best effort: the note only adds to the notice.
    if let (true, Some(nat), Some(_)) = (delivery.failed.is_empty(), &nat_id, &recording) {
        match store.noted_delivery(nat, &input.execution).await {
            Ok(Some(note)) => delivery = serde_json::from_str(&note).unwrap_or(delivery),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "delivery note unreadable; the notice tells the end's status"),
        }
    }

    let traffic = match &recording {
        Some(r) if ending != Ending::Failed || !r.flow_log_ids.is_empty() => {
            match metrics
                .bytes(&r.nat_id, r.started_at.timestamp(), now.timestamp())
                .await
            {
                Ok(b) => Some(b),
                Err(e) => {
                    warn!(error = %e, "NAT metrics unavailable for the notice");
                    None
                }
            }
        }
        _ => None,
    };
    // A start that failed passes on the alarm event, not its recording: the NAT's Name tag is
    // looked up again (DescribeNatGateways), best effort, after the cleanup: a NAT that is gone
    // or a refused call leaves the notice with the ID only.
    let described_name = match (&recording, &nat_id) {
        (None, Some(nat)) => match nats.describe(nat).await {
            Ok(found) => found.and_then(|n| n.name),
            Err(e) => {
                warn!(error = %e, "the NAT could not be described: the notice names it by its ID");
                None
            }
        },
        _ => None,
    };
    let nat_name = recording
        .as_ref()
        .and_then(|r| r.nat_name.as_deref())
        .or(described_name.as_deref());
    let n = match (&ending, &recording) {
        (Ending::Failed, _) | (_, None) => notice::failed(&notice::FailureFacts {
            stack_name: &settings.stack_name,
            execution: &input.execution,
            nat_id: nat_id.as_ref(),
            nat_name,
            error: error.as_ref(),
            deleted_flow_logs: &ids,
            lock_released,
            delivery: &delivery,
        }),
        (ending, Some(r)) => notice::recorded(&notice::RecordingFacts {
            settings,
            recording: r,
            ending: ending.clone(),
            ended_at: now,
            traffic,
            delivery: &delivery,
        }),
    };
    Ok(Finished {
        ending,
        ended_at: now,
        deleted_flow_logs: ids,
        lock_released,
        delivery,
        subject: n.subject,
        message: n.message,
    })
}

/// The delivery status of a recording's flow logs, read (DescribeFlowLogs) at the end of the
/// recording, before they are deleted. EC2 API reference, FlowLog: `DeliverLogsStatus`
/// SUCCESS | FAILED; `DeliverLogsErrorMessage` "Rate limited", "Access error", "Unknown error".
/// A flow log whose delivery fails is still created and ACTIVE: only this status tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Flow logs whose status was read.
    pub checked: usize,
    /// Flow logs reporting FAILED, with the service's error message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedDelivery>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedDelivery {
    pub flow_log_id: String,
    pub error: String,
}

impl Delivery {
    pub fn of(flow_logs: &[TaggedFlowLog]) -> Self {
        Self {
            checked: flow_logs.len(),
            failed: flow_logs
                .iter()
                .filter(|f| f.deliver_logs_status.as_deref() == Some("FAILED"))
                .map(|f| FailedDelivery {
                    flow_log_id: f.id.clone(),
                    error: f
                        .deliver_logs_error
                        .clone()
                        .unwrap_or_else(|| "no error message".into()),
                })
                .collect(),
        }
    }
}

/// Deletes the flow logs that DescribeFlowLogs returned. Deleting an ID that no longer exists
/// is answered `InvalidFlowLogId.NotFound`, or `UnauthorizedOperation` when the grant is
/// conditioned on the flow log's tag (IAM cannot match the tag of a resource that is gone): so
/// when the delete fails, the flow logs are looked up again, and if none is left (the sweeper or
/// an earlier attempt deleted them meanwhile) the deletion has happened.
pub async fn delete_existing(flow_logs: &impl FlowLogs, found: &[TaggedFlowLog]) -> Result<()> {
    let ids: Vec<String> = found.iter().map(|f| f.id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    match flow_logs.delete(&ids).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let left: Vec<String> = flow_logs.existing(&ids).await?.into_iter().map(|f| f.id).collect();
            if left.is_empty() {
                info!(flow_logs = ?ids, error = %e, "the flow logs were already gone");
                Ok(())
            } else if left.len() < ids.len() {
                flow_logs.delete(&left).await
            } else {
                Err(e)
            }
        }
    }
}
