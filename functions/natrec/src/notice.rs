//! The plain-text email that says what was recorded (or what failed and what was cleaned up).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::nat::NatGatewayId;
use crate::ports::NatBytes;
use crate::recording::{Ending, FinishSettings, Recording, StepError, TAG_EXECUTION};

/// The saved top-talkers query, compiled in from `queries/` so the email's command and the
/// deployed query definition are the same text.
pub const TOP_TALKERS_QUERY: &str = include_str!("../../../queries/top-talkers.query");
pub const NAT_FLOWS_QUERY: &str = include_str!("../../../queries/nat-flows.query");

/// Flow-log records reach CloudWatch Logs minutes after capture.
pub const DELIVERY_DELAY_S: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub subject: String,
    pub message: String,
}

/// SNS email subjects are limited to 100 characters.
fn subject(s: String) -> String {
    if s.chars().count() <= 100 {
        s
    } else {
        s.chars().take(99).collect::<String>() + "…"
    }
}

/// A query on one line without its comments, for a shell command.
pub fn one_line(query: &str) -> String {
    query
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn console_log_group_url(region: &str, log_group: &str) -> String {
    let encoded = log_group.replace('/', "$252F");
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{encoded}"
    )
}

pub use natflow::report::human_bytes;

pub struct RecordingFacts<'a> {
    pub settings: &'a FinishSettings,
    pub recording: &'a Recording,
    pub ending: Ending,
    pub ended_at: DateTime<Utc>,
    pub traffic: Option<NatBytes>,
}

pub fn recorded(f: &RecordingFacts<'_>) -> Notice {
    let r = f.recording;
    let s = f.settings;
    let why = match f.ending {
        Ending::AlarmOk => "the alarm returned to OK (traffic is back below the threshold)".to_string(),
        Ending::AlarmInsufficientData => {
            "the alarm went to INSUFFICIENT_DATA (the NAT stopped reporting traffic)".to_string()
        }
        Ending::TimeLimit => format!("the recording time limit of {} s was reached", r.recording_time),
        Ending::Failed => "a failure".to_string(),
    };
    let minutes = (f.ended_at - r.started_at).num_seconds().max(0) as f64 / 60.0;
    let traffic = match f.traffic {
        Some(b) => format!(
            "{} total: {} from the VPC (BytesInFromSource), {} back from destinations (BytesInFromDestination)",
            human_bytes(b.upload + b.download),
            human_bytes(b.upload),
            human_bytes(b.download)
        ),
        None => "not available (CloudWatch metrics could not be read)".to_string(),
    };
    let start_s = r.started_at.timestamp();
    let end_s = f.ended_at.timestamp() + DELIVERY_DELAY_S;
    let message = format!(
        "Flow logs were recorded while NAT Gateway {nat} was above its traffic threshold.\n\
         \n\
         NAT Gateway:  {nat}\n\
         VPC:          {vpc}\n\
         Interfaces:   {ifaces}\n\
         Alarm:        {alarm}\n\
         Recorded:     {start} -> {end} ({minutes:.1} min)\n\
         Stopped:      {why}\n\
         NAT traffic:  {traffic}\n\
         Flow logs:    {flow_logs} (deleted; the records stay in the log group)\n\
         \n\
         Log group:    {log_group}\n\
         Console:      {console}\n\
         Saved queries (CloudWatch > Logs Insights > Queries): {queries}\n\
         \n\
         Records reach the log group up to ~10 minutes after capture. Top talkers from a shell:\n\
         \n\
         aws logs start-query --region {region} --log-group-name '{log_group}' --start-time {start_s} --end-time {end_s} --query-string '{query}'\n\
         aws logs get-query-results --region {region} --query-id <queryId printed above>\n\
         \n\
         Stack: {stack}. Execution: {execution}\n",
        nat = r.nat_id,
        vpc = r.vpc_id.as_deref().unwrap_or("unknown"),
        ifaces = r.interfaces.join(", "),
        alarm = r.alarm_name,
        start = r.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end = f.ended_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        flow_logs = r.flow_log_ids.join(", "),
        log_group = s.log_group,
        console = console_log_group_url(&s.region, &s.log_group),
        queries = s.query_names.join(", "),
        region = s.region,
        query = one_line(TOP_TALKERS_QUERY),
        stack = s.stack_name,
        execution = r.execution,
    );
    let why_short = match f.ending {
        Ending::AlarmOk => "alarm OK",
        Ending::AlarmInsufficientData => "alarm INSUFFICIENT_DATA",
        Ending::TimeLimit => "time limit",
        Ending::Failed => "failed",
    };
    Notice {
        subject: subject(format!(
            "NAT spike recorded: {} ({minutes:.0} min, {why_short})",
            r.nat_id
        )),
        message,
    }
}

pub struct FailureFacts<'a> {
    pub stack_name: &'a str,
    pub execution: &'a str,
    pub nat_id: Option<&'a NatGatewayId>,
    pub error: Option<&'a StepError>,
    pub deleted_flow_logs: &'a [String],
    pub lock_released: bool,
}

pub fn failed(f: &FailureFacts<'_>) -> Notice {
    let nat = f
        .nat_id
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown NAT Gateway".into());
    let (kind, what) = match f.error {
        Some(e) => (e.error.clone(), e.message()),
        None => (
            "Unknown".to_string(),
            "the recording ended without a stop signal or an error".to_string(),
        ),
    };
    let deleted = if f.deleted_flow_logs.is_empty() {
        "no flow log of this recording was active".to_string()
    } else {
        format!("deleted flow logs {}", f.deleted_flow_logs.join(", "))
    };
    let lock = if f.lock_released {
        "released the NAT's recording lock"
    } else {
        "no recording lock was held"
    };
    let message = format!(
        "A recording of {nat} failed. Nothing of it is left running.\n\
         \n\
         What failed:  {kind}: {what}\n\
         Cleanup:      {deleted}; {lock}.\n\
         \n\
         Flow logs of this recording carry the tag {TAG_EXECUTION}={execution}.\n\
         Stack: {stack}. Execution: {execution}\n",
        execution = f.execution,
        stack = f.stack_name,
    );
    Notice {
        subject: subject(format!("NAT spike recording FAILED: {nat} ({kind})")),
        message,
    }
}

pub fn limit_reached(stack_name: &str, nat_id: &NatGatewayId, count: u64, max: u32) -> Notice {
    Notice {
        subject: subject(format!("NAT spike not recorded: {nat_id} reached its recording limit")),
        message: format!(
            "NAT Gateway {nat_id} is above its traffic threshold again, but it has already been recorded \
             {count} time(s) and NumOfRecordings is {max}, so no flow logs were created.\n\
             \n\
             To allow more recordings, raise NumOfRecordings (0 = no limit) with sam deploy, or reset the \
             count by deleting the item with key pk = count#{nat_id} from the stack's RecordingsTable \
             (see README, \"Recording limit\").\n\
             \n\
             Stack: {stack_name}\n"
        ),
    }
}
