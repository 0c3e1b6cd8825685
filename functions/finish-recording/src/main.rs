//! Last step of every recording, also of failed ones: deletes the execution's flow logs (by tag),
//! releases the NAT's lock, writes the notice (after a failed start, with the NAT's Name tag), then
//! takes the end inventory snapshot (best effort, for the report's names).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{cloudwatch::CloudWatch, dynamodb::DynamoStore, ec2::Ec2, logs::LogGroup};
use natrec::recording::{self, FinishInput, FinishSettings, Finished};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    settings: FinishSettings,
    ec2: Ec2,
    store: DynamoStore,
    metrics: CloudWatch,
    archive: LogGroup,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Finished, RecorderError> {
    let input: FinishInput = serde_json::from_value(event.payload)
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the finish step needs execution and state: {e}")))?;
    let end = input.clone();
    let finished = recording::finish(
        input,
        chrono::Utc::now(),
        &app.settings,
        &app.ec2,
        &app.ec2,
        &app.store,
        &app.metrics,
    )
    .await;
    recording::snapshot_inventory_at_end(&end, &app.ec2, &app.archive).await;
    finished
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
    let (config, reports) = (env::aws_config().await, env::var("REPORT_LOG_GROUP")?);
    let app = App {
        settings,
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        metrics: CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config)),
        archive: LogGroup::new(aws_sdk_cloudwatchlogs::Client::new(&config), reports),
    };
    run(service_fn(|event| handle(&app, event))).await
}
