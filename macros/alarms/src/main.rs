//! The macro's Lambda: CloudFormation calls it with the template of every stack that lists
//! the macro in its `Transform`.

use alarms_macro::{handle, MacroRequest, MacroResponse};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

async fn handler(event: LambdaEvent<MacroRequest>) -> Result<MacroResponse, Error> {
    let resp = handle(event.payload);
    if let Some(msg) = &resp.error_message {
        tracing::warn!(error = %msg, "template rejected");
    }
    Ok(resp)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    natrec::env::init_tracing();
    run(service_fn(handler)).await
}
