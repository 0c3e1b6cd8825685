//! The `.waitForTaskToken` step: parks the task token on the NAT's lock item so the alarm's
//! return to OK can end the recording; ends it at once if that already happened.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, sfn::StepFunctions};
use natrec::nat::NatGatewayId;
use natrec::{env, recording, RecorderError};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct ParkRequest {
    token: String,
    nat_id: NatGatewayId,
    execution: String,
}

struct App {
    store: DynamoStore,
    tokens: StepFunctions,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, RecorderError> {
    let req: ParkRequest = serde_json::from_value(event.payload)
        .map_err(|e| RecorderError::UnexpectedEvent(format!("the park step needs token, nat_id and execution: {e}")))?;
    let parked = recording::park(&req.nat_id, &req.execution, &req.token, &app.store, &app.tokens).await?;
    Ok(json!({ "parked": matches!(parked, natrec::ports::Parked::Waiting) }))
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
