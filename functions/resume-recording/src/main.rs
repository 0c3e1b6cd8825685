//! EventBridge target for an alarm leaving ALARM (OK or INSUFFICIENT_DATA): ends the NAT's
//! recording. A recording that is already over is not an error (no retry storm).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, sfn::StepFunctions};
use natrec::recording::{self, ResumeOutcome};
use natrec::{env, RecorderError};
use serde_json::Value;
use tracing::info;

struct App {
    store: DynamoStore,
    tokens: StepFunctions,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<ResumeOutcome, RecorderError> {
    let outcome = recording::resume(event.payload, &app.store, &app.tokens).await?;
    info!(?outcome, "stop signal handled");
    Ok(outcome)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let config = env::aws_config().await;
    let app = App {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        tokens: StepFunctions::new(aws_sdk_sfn::Client::new(&config)),
    };
    run(service_fn(|event| handle(&app, event))).await
}
