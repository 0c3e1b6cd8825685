//! After flow-log delivery: who caused the spike. Reads the recording's records (bounded in
//! bytes, paced, and stopping in time for this invocation's deadline), its inventory snapshot
//! and the NAT's metrics, stores the JSON report next to the recording and returns the notice.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{cloudwatch::CloudWatch, logs::LogGroup};
use natrec::pacing::SystemClock;
use natrec::report::{self, ReportInput, ReportNotice, ReportSettings};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    settings: ReportSettings,
    archive: LogGroup,
    records: LogGroup,
    metrics: CloudWatch,
    clock: SystemClock,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<ReportNotice, RecorderError> {
    let input: ReportInput = serde_json::from_value(event.payload)
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the report step needs execution and state: {e}")))?;
    let deadline_ms = event.context.deadline as i64;
    report::build(
        input,
        &app.settings,
        deadline_ms,
        &app.clock,
        &app.archive,
        &app.records,
        &app.metrics,
    )
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let reports = env::var("REPORT_LOG_GROUP")?;
    let settings = ReportSettings {
        region: env::var("AWS_REGION")?,
        reports_log_group: reports.clone(),
        max_bytes: env::number("REPORT_MAX_BYTES")?,
        reads_per_second: env::number("REPORT_READS_PER_SECOND")?,
        prices: std::env::var("PRICES").ok().filter(|p| !p.trim().is_empty()),
        top: 10,
        stack_name: env::var("STACK_NAME")?,
        // Optional: without them the advice says `Threshold=<bytes per SamplingPeriod>`.
        threshold: match (env::number("THRESHOLD"), env::number("SAMPLING_PERIOD")) {
            (Ok(bytes), Ok(period_s)) => Some(natrec::advice::Threshold { bytes, period_s }),
            _ => None,
        },
    };
    let config = env::aws_config().await;
    let app = App {
        settings,
        archive: LogGroup::new(aws_sdk_cloudwatchlogs::Client::new(&config), reports),
        // Its own client: longer attempt timeout, no SDK retries (the report paces and retries).
        records: LogGroup::reader(&config, env::var("FLOW_LOG_GROUP")?),
        metrics: CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config)),
        clock: SystemClock::default(),
    };
    run(service_fn(|event| handle(&app, event))).await
}
