//! Last step of every recording, also of failed ones: deletes the execution's flow logs
//! (reconciled by tag), releases the NAT's lock and writes the notice (after a failed start it
//! describes the NAT for its Name tag).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{cloudwatch::CloudWatch, dynamodb::DynamoStore, ec2::Ec2};
use natrec::recording::{self, FinishInput, FinishSettings, Finished};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    settings: FinishSettings,
    ec2: Ec2,
    store: DynamoStore,
    metrics: CloudWatch,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Finished, RecorderError> {
    let input: FinishInput = serde_json::from_value(event.payload)
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the finish step needs execution and state: {e}")))?;
    recording::finish(
        input,
        chrono::Utc::now(),
        &app.settings,
        &app.ec2,
        &app.ec2,
        &app.store,
        &app.metrics,
    )
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let settings = FinishSettings {
        stack_name: env::var("STACK_NAME")?,
        region: env::var("AWS_REGION")?,
        log_group: env::var("FLOW_LOG_GROUP")?,
        query_names: env::var("QUERY_NAMES")?
            .split(',')
            .map(|s| s.trim().to_string())
            .collect(),
    };
    let config = env::aws_config().await;
    let app = App {
        settings,
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        metrics: CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config)),
    };
    run(service_fn(|event| handle(&app, event))).await
}
