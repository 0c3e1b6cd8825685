//! After flow-log delivery: who caused the spike. Reads the recording's records (bounded),
//! its inventory snapshot and the NAT's metrics, stores the JSON report next to the recording
//! and returns the notice with the report in it.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{cloudwatch::CloudWatch, logs::LogGroup};
use natrec::report::{self, ReportInput, ReportNotice, ReportSettings};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    settings: ReportSettings,
    archive: LogGroup,
    records: LogGroup,
    metrics: CloudWatch,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<ReportNotice, RecorderError> {
    let input: ReportInput = serde_json::from_value(event.payload)
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the report step needs execution and state: {e}")))?;
    report::build(input, &app.settings, &app.archive, &app.records, &app.metrics).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let reports = env::var("REPORT_LOG_GROUP")?;
    let settings = ReportSettings {
        region: env::var("AWS_REGION")?,
        reports_log_group: reports.clone(),
        max_bytes: env::number("REPORT_MAX_BYTES")?,
        prices: std::env::var("PRICES").ok().filter(|p| !p.trim().is_empty()),
        top: 10,
    };
    let config = env::aws_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let app = App {
        settings,
        archive: LogGroup::new(logs.clone(), reports),
        records: LogGroup::new(logs, env::var("FLOW_LOG_GROUP")?),
        metrics: CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config)),
    };
    run(service_fn(|event| handle(&app, event))).await
}
