//! Step Functions adapter: delivers the stop to a parked `.waitForTaskToken` task.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use serde_json::Value;

use crate::error::{service_code, RecorderError, Result};
use crate::ports::{TaskTokens, TokenOutcome};

#[derive(Clone)]
pub struct StepFunctions {
    client: Client,
}

impl StepFunctions {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// Errors that mean "the task already ended": not a failure of the stop.
pub fn is_already_over(code: &str) -> bool {
    matches!(code, "TaskTimedOut" | "InvalidToken" | "TaskDoesNotExist")
}

#[async_trait]
impl TaskTokens for StepFunctions {
    async fn succeed(&self, token: &str, output: &Value) -> Result<TokenOutcome> {
        match self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(TokenOutcome::Delivered),
            Err(e) => match service_code(&e) {
                Some(code) if is_already_over(code) => Ok(TokenOutcome::AlreadyOver(code.to_string())),
                _ => Err(RecorderError::from_sdk("Step Functions", "SendTaskSuccess", &e)),
            },
        }
    }
}

#[async_trait]
impl crate::ports::Executions for StepFunctions {
    async fn is_running(&self, execution_arn: &str) -> Result<bool> {
        match self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.status() == &aws_sdk_sfn::types::ExecutionStatus::Running),
            Err(e) if service_code(&e) == Some("ExecutionDoesNotExist") => Ok(false),
            Err(e) => Err(RecorderError::from_sdk("Step Functions", "DescribeExecution", &e)),
        }
    }
}
