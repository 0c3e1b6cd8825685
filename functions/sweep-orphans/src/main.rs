//! The sweeper: stops the report queries and deletes the flow logs of this stack that no running
//! recording owns (see natrec::sweep). Invoked on a schedule, when a recorder execution ends
//! abnormally, and as a CloudFormation custom resource so that deleting the stack deletes every
//! recorder flow log.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, ec2::Ec2, logs::LogGroup, sfn::StepFunctions, sns::Sns};
use natrec::sweep::{CustomResource, Sweeper};
use natrec::{env, RecorderError};
use serde_json::Value;
use tracing::info;

type App = (String, Ec2, StepFunctions, DynamoStore, Sns, LogGroup);

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, RecorderError> {
    let (stack, flow_logs, executions, store, notifier, queries) = app;
    let sweeper = Sweeper::new(stack, flow_logs, executions, store, notifier, queries, store);
    let now = chrono::Utc::now();
    let Ok(cr) = serde_json::from_value::<CustomResource>(event.payload.clone()) else {
        let report = sweeper.on_event(now, &event.payload).await?;
        info!(swept = report.swept.len(), queries = ?report.queries.stopped, "sweep done");
        return Ok(serde_json::to_value(report).unwrap_or_default());
    };
    let body = sweeper.answer(now, &cr).await;
    let (url, payload) = (cr.response_url.clone(), body.to_string());
    tokio::task::spawn_blocking(move || ureq::put(&url).header("Content-Type", "").send(payload.as_bytes()))
        .await
        .map_err(|e| RecorderError::Misconfigured(format!("response task failed: {e}")))?
        .map_err(|e| RecorderError::Transient {
            service: "CloudFormation",
            operation: "custom resource response",
            message: e.to_string(),
        })?;
    info!(request_type = %cr.request_type, status = %body["Status"], "answered CloudFormation");
    Ok(body)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let config = env::aws_config().await;
    let app: App = (
        env::var("STACK_NAME")?,
        Ec2::new(aws_sdk_ec2::Client::new(&config)),
        StepFunctions::new(aws_sdk_sfn::Client::new(&config)),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        Sns::new(aws_sdk_sns::Client::new(&config), env::var("TOPIC_ARN")?),
        LogGroup::new(
            aws_sdk_cloudwatchlogs::Client::new(&config),
            env::var("FLOW_LOG_GROUP")?,
        ),
    );
    run(service_fn(|event| handle(&app, event))).await
}
