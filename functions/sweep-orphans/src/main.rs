//! Scheduled sweeper: deletes this stack's flow logs that no running recording owns (see
//! natrec::sweep). Invoked by a schedule and when a recorder execution ends abnormally.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, ec2::Ec2, sfn::StepFunctions, sns::Sns};
use natrec::sweep::{self, SweepReport};
use natrec::{env, RecorderError};
use serde_json::Value;

struct App {
    stack_name: String,
    ec2: Ec2,
    executions: StepFunctions,
    store: DynamoStore,
    notifier: Sns,
}

async fn handle(app: &App, _event: LambdaEvent<Value>) -> Result<SweepReport, RecorderError> {
    let report = sweep::sweep(
        &app.stack_name,
        chrono::Utc::now(),
        false,
        &app.ec2,
        &app.executions,
        &app.store,
        &app.notifier,
    )
    .await?;
    tracing::info!(
        checked = report.checked,
        swept = report.swept.len(),
        "sweep done"
    );
    Ok(report)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let config = env::aws_config().await;
    let app = App {
        stack_name: env::var("STACK_NAME")?,
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
        executions: StepFunctions::new(aws_sdk_sfn::Client::new(&config)),
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            env::var("TABLE_NAME")?,
        ),
        notifier: Sns::new(aws_sdk_sns::Client::new(&config), env::var("TOPIC_ARN")?),
    };
    run(service_fn(|event| handle(&app, event))).await
}
