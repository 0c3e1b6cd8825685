//! The plain-text email that says what was recorded (or what failed and what was cleaned up).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::nat::{nat_label, nat_short_name, NatGatewayId};
use crate::ports::NatBytes;
use crate::recording::{Delivery, Ending, FinishSettings, Recording, StepError, TAG_EXECUTION};

/// The saved top-talkers query, compiled in from `queries/` so the email's command and the
/// deployed query definition are the same text.
pub const TOP_TALKERS_QUERY: &str = include_str!("../../../queries/top-talkers.query");
pub const NAT_FLOWS_QUERY: &str = include_str!("../../../queries/nat-flows.query");

/// Said in the subject when flow-log records were not delivered. The report step finds it in
/// the finish step's subject: the state machine passes on only the finish step's `ending`,
/// `ended_at`, `subject` and `message` (FinishRecording's ResultSelector).
pub const UNDELIVERED: &str = "records NOT delivered";

/// How the warning about undelivered records begins: the first line of every notice that has it.
pub const UNDELIVERED_WARNING: &str = "FLOW-LOG RECORDS WERE NOT DELIVERED";

/// A finish-step message split into its warning about undelivered records (its first paragraph,
/// with the blank line after it) and the rest; the warning is empty when there is none.
pub fn split_warning(message: &str) -> (&str, &str) {
    if message.starts_with(UNDELIVERED_WARNING) {
        if let Some(end) = message.find("\n\n") {
            return message.split_at(end + 2);
        }
    }
    ("", message)
}

/// Flow-log records reach CloudWatch Logs minutes after capture.
pub const DELIVERY_DELAY_S: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub subject: String,
    pub message: String,
}

/// SNS API reference, Publish, `Subject`: "must be ASCII text that begins with a letter,
/// number, or punctuation mark; must not include line breaks or control characters; and must be
/// less than 100 characters long" (newer revisions say UTF-8; SNS replaces a subject with
/// non-ASCII or control characters, so ASCII is the safe side). Longest subject we send.
pub const MAX_SUBJECT: usize = 99;

/// A subject SNS accepts: control characters and line breaks become spaces, other non-ASCII
/// characters `?`, runs of spaces collapse, and a subject over `MAX_SUBJECT` characters is cut
/// (at a word boundary if one is near the end) with "..." (subjects put the NAT ID first, so the cut takes the detail).
pub fn subject(s: impl AsRef<str>) -> String {
    let mut out = String::with_capacity(MAX_SUBJECT);
    for c in s.as_ref().chars() {
        let c = match c {
            c if c.is_ascii_graphic() => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let mut out = out.trim_end().to_string();
    if out.is_empty() {
        return "NAT spike recorder notice".into();
    }
    if out.len() > MAX_SUBJECT {
        out.truncate(MAX_SUBJECT - 3);
        if let Some(space) = out.rfind(' ').filter(|&i| i + 16 >= MAX_SUBJECT) {
            out.truncate(space);
        }
        out = out.trim_end_matches([' ', ',', ';', ':', '(']).to_string() + "...";
    }
    out
}

/// What the documentation says a `DeliverLogsErrorMessage` means (EC2 API reference, FlowLog).
fn delivery_error_meaning(error: &str) -> &'static str {
    match error {
        "Access error" => {
            "the flow log's IAM role may not publish to CloudWatch Logs: check the stack's FlowLogDeliveryRole"
        }
        "Rate limited" => "CloudWatch Logs throttled the delivery, or the account reached its limit of log groups",
        "Unknown error" => "an internal error of the flow-log service",
        _ => "see DeliverLogsErrorMessage in the VPC Flow Logs documentation",
    }
}

/// The notice's lines about delivery: a warning at the top (empty when delivery succeeded)
/// and the "Delivery:" line.
fn delivery_lines(d: &Delivery) -> (String, String) {
    if d.failed.is_empty() {
        let line = if d.checked == 0 {
            "no flow log was found to check".to_string()
        } else {
            "no failure reported by the flow logs (DeliverLogsStatus at the end of the recording)".to_string()
        };
        return (String::new(), line);
    }
    let mut errors: Vec<&str> = d.failed.iter().map(|f| f.error.as_str()).collect();
    errors.sort();
    errors.dedup();
    let why: Vec<String> = errors
        .iter()
        .map(|e| format!("\"{e}\" ({})", delivery_error_meaning(e)))
        .collect();
    let ids: Vec<&str> = d.failed.iter().map(|f| f.flow_log_id.as_str()).collect();
    let all = d.failed.len() >= d.checked;
    let warning = format!(
        "{UNDELIVERED_WARNING}: {} of the recording's {} flow log(s) reported DeliverLogsStatus \
         FAILED: {}. {} in the log group; an empty or small traffic report does not mean the NAT was quiet.\n\n",
        d.failed.len(),
        d.checked,
        why.join("; "),
        if all {
            "Records of this recording are missing"
        } else {
            "Records of those interfaces are missing"
        },
    );
    let line = format!("FAILED for {} ({})", ids.join(", "), errors.join(", "));
    (warning, line)
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
    pub delivery: &'a Delivery,
}

pub fn recorded(f: &RecordingFacts<'_>) -> Notice {
    let r = f.recording;
    let s = f.settings;
    let why = match f.ending {
        Ending::AlarmOk => "the alarm returned to OK (traffic is back below the threshold)".to_string(),
        Ending::AlarmInsufficientData => {
            "the alarm went to INSUFFICIENT_DATA (the NAT stopped reporting traffic)".to_string()
        }
        // The recording starts on the alarm's change to ALARM (an EventBridge "CloudWatch Alarm
        // State Change" event, sent on a change of state only): an alarm still in ALARM sends
        // none, so the next recording waits for it to leave ALARM and enter it again.
        Ending::TimeLimit => format!(
            "the recording time limit of {} s (RecordingTime) was reached. The alarm may still be in ALARM: \
             no new recording starts until it returns to OK (or INSUFFICIENT_DATA) and enters ALARM again. \
             To record again now: aws cloudwatch set-alarm-state --region {} --alarm-name {} --state-value OK \
             --state-reason 'record again' (README \"When the alarm stays in ALARM\")",
            r.recording_time, s.region, r.alarm_name
        ),
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
    let (warning, delivery) = delivery_lines(f.delivery);
    let message = format!(
        "{warning}Flow logs were recorded while NAT Gateway {nat} was above its traffic threshold.\n\
         \n\
         NAT Gateway:  {nat}\n\
         VPC:          {vpc}\n\
         Interfaces:   {ifaces}\n\
         Alarm:        {alarm}\n\
         Recorded:     {start} -> {end} ({minutes:.1} min)\n\
         Stopped:      {why}\n\
         NAT traffic:  {traffic}\n\
         Flow logs:    {flow_logs} (deleted; the records stay in the log group)\n\
         Delivery:     {delivery}\n\
         \n\
         Log group:    {log_group}\n\
         Console:      {console}\n\
         Saved queries (CloudWatch > Logs Insights > Queries): {queries}\n\
         \n\
         Records reach the log group up to ~10 minutes after capture. Top talkers with CloudWatch Logs Insights \
         (no natflow needed), from a shell:\n\
         \n\
         aws logs start-query --region {region} --log-group-name '{log_group}' --start-time {start_s} --end-time {end_s} --query-string '{query}'\n\
         aws logs get-query-results --region {region} --query-id <queryId printed above>\n\
         \n\
         Stack: {stack}. Execution: {execution}\n",
        nat = nat_label(&r.nat_id, r.nat_name.as_deref()),
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
    let undelivered = if f.delivery.failed.is_empty() {
        String::new()
    } else {
        format!(", {UNDELIVERED}")
    };
    Notice {
        subject: subject(format!(
            "NAT spike recorded: {} ({minutes:.0} min, {why_short}{undelivered})",
            nat_short_name(&r.nat_id, r.nat_name.as_deref())
        )),
        message,
    }
}

pub struct FailureFacts<'a> {
    pub stack_name: &'a str,
    pub execution: &'a str,
    pub nat_id: Option<&'a NatGatewayId>,
    /// The NAT's Name tag, when the recording got as far as describing the NAT.
    pub nat_name: Option<&'a str>,
    pub error: Option<&'a StepError>,
    pub deleted_flow_logs: &'a [String],
    pub lock_released: bool,
    pub delivery: &'a Delivery,
}

pub fn failed(f: &FailureFacts<'_>) -> Notice {
    let nat = f
        .nat_id
        .map(|n| nat_label(n, f.nat_name))
        .unwrap_or_else(|| "unknown NAT Gateway".into());
    let short = f
        .nat_id
        .map(|n| nat_short_name(n, f.nat_name))
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
    let (warning, _) = delivery_lines(f.delivery);
    let message = format!(
        "{warning}A recording of {nat} failed. Nothing of it is left running.\n\
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
        subject: subject(format!("NAT spike recording FAILED: {short} ({kind})")),
        message,
    }
}

pub fn limit_reached(stack_name: &str, nat_id: &NatGatewayId, nat_name: Option<&str>, count: u64, max: u32) -> Notice {
    let short = nat_short_name(nat_id, nat_name);
    let nat = nat_label(nat_id, nat_name);
    Notice {
        subject: subject(format!("NAT spike not recorded: {short} reached its recording limit")),
        message: format!(
            "NAT Gateway {nat} is above its traffic threshold again, but it has already been recorded \
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
