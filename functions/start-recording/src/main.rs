//! Step 1 of a recording: find the NAT in the alarm event, take the NAT's lock (respecting
//! NumOfRecordings), create flow logs on every interface of the NAT and snapshot the VPC's
//! interfaces for the report.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, ec2::Ec2, logs::LogGroup};
use natrec::recording::{self, Recording, StartSettings};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    settings: StartSettings,
    report_delay: u32,
    ec2: Ec2,
    store: DynamoStore,
    archive: LogGroup,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Recording, RecorderError> {
    let (payload, _ctx) = event.into_parts();
    let execution = payload
        .get("execution")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RecorderError::UnexpectedEvent("the start step needs {\"event\": ..., \"execution\": ...}".into())
        })?
        .to_string();
    let alarm = payload.get("event").cloned().unwrap_or(Value::Null);
    let mut recording = recording::start(
        alarm,
        &execution,
        chrono::Utc::now(),
        &app.settings,
        &app.ec2,
        &app.ec2,
        &app.store,
    )
    .await?;
    recording.report_delay = app.report_delay;
    recording::snapshot_inventory(&mut recording, &app.ec2, &app.archive).await;
    Ok(recording)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let settings = StartSettings {
        stack_name: env::var("STACK_NAME")?,
        log_group: env::var("FLOW_LOG_GROUP")?,
        delivery_role_arn: env::var("FLOW_LOG_ROLE_ARN")?,
        recording_time_s: env::number("RECORDING_TIME")?,
        max_recordings: env::number("NUM_OF_RECORDINGS")?,
    };
    let config = env::aws_config().await;
    let app = App {
        settings,
        report_delay: env::number("REPORT_DELAY")?,
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        archive: LogGroup::new(
            aws_sdk_cloudwatchlogs::Client::new(&config),
            env::var("REPORT_LOG_GROUP")?,
        ),
    };
    run(service_fn(|event| handle(&app, event))).await
}
