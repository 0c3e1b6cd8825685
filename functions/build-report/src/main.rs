//! After flow-log delivery: who caused the spike, from the records (bounded, paced, in time), the
//! inventory snapshots (sources still unnamed looked up by address) and the NAT's metrics.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{cloudwatch::CloudWatch, dynamodb::DynamoStore, ec2::Ec2, logs::LogGroup};
use natrec::ledger::Ledgered;
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
    ledger: DynamoStore,
    ec2: Ec2,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<ReportNotice, RecorderError> {
    let input: ReportInput = serde_json::from_value(event.payload)
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the report step needs execution and state: {e}")))?;
    // Each query is in the execution's ledger while it may run, for the sweeper (natrec::ledger).
    let queries = Ledgered::new(&app.records, &app.ledger, &app.clock, input.execution.clone());
    let notice = report::build_with_lookup(
        input,
        &app.settings,
        event.context.deadline as i64,
        &app.clock,
        &app.archive,
        &app.records,
        &queries,
        &app.metrics,
        Some(&app.ec2),
    )
    .await?;
    queries.after_report(&notice).await;
    Ok(notice)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let settings = ReportSettings::from_env()?;
    let (reports, config) = (settings.reports_log_group.clone(), env::aws_config().await);
    let app = App {
        settings,
        archive: LogGroup::new(aws_sdk_cloudwatchlogs::Client::new(&config), reports),
        // Its own client: longer attempt timeout, no SDK retries (the report paces and retries).
        records: LogGroup::reader(&config, env::var("FLOW_LOG_GROUP")?),
        metrics: CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config)),
        clock: SystemClock::default(),
        ledger: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
    };
    run(service_fn(|event| handle(&app, event))).await
}
