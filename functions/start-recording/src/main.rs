//! Step 1 of a recording: find the NAT in the alarm event, take the NAT's lock (respecting
//! NumOfRecordings) and create flow logs on every interface of the NAT.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, ec2::Ec2};
use natrec::recording::{self, Recording, StartSettings};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    settings: StartSettings,
    ec2: Ec2,
    store: DynamoStore,
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
    recording::start(
        alarm,
        &execution,
        chrono::Utc::now(),
        &app.settings,
        &app.ec2,
        &app.ec2,
        &app.store,
    )
    .await
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
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
    };
    run(service_fn(|event| handle(&app, event))).await
}
