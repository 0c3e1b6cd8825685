//! Step Functions adapter: delivers the stop to a parked `.waitForTaskToken` task; tells the
//! sweeper whether an execution runs and whether it sent its notice.

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

    /// Step Functions API reference, GetExecutionHistory: paginated (`nextToken`, at most 1,000
    /// events a page), `reverseOrder` lists the latest events first (a notice is sent near the
    /// end), `includeExecutionData` false leaves out inputs and outputs (they can be large). A
    /// notice is an `sns:publish` task of the state machine: a `TaskSucceeded` event whose
    /// `resourceType` is "sns" and `resource` "publish" (HistoryEvent, TaskSucceededEventDetails).
    async fn notice_sent(&self, execution_arn: &str) -> Result<bool> {
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .include_execution_data(false)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) if service_code(&e) == Some("ExecutionDoesNotExist") => return Ok(false),
                Err(e) => return Err(RecorderError::from_sdk("Step Functions", "GetExecutionHistory", &e)),
            };
            if page.events().iter().any(is_notice_published) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A succeeded `arn:aws:states:::sns:publish` task.
pub fn is_notice_published(event: &aws_sdk_sfn::types::HistoryEvent) -> bool {
    event.r#type() == &aws_sdk_sfn::types::HistoryEventType::TaskSucceeded
        && event
            .task_succeeded_event_details()
            .is_some_and(|d| d.resource_type() == "sns" && d.resource() == "publish")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType, TaskFailedEventDetails, TaskSucceededEventDetails};

    fn event(kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(7)
            .timestamp(DateTime::from_secs(0))
            .r#type(kind)
    }

    #[test]
    fn only_a_succeeded_sns_publish_task_is_a_notice() {
        let succeeded = |resource_type: &str, resource: &str| {
            event(HistoryEventType::TaskSucceeded)
                .task_succeeded_event_details(
                    TaskSucceededEventDetails::builder()
                        .resource_type(resource_type)
                        .resource(resource)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        assert!(is_notice_published(&succeeded("sns", "publish")));
        assert!(!is_notice_published(&succeeded("lambda", "invoke")));
        let failed = event(HistoryEventType::TaskFailed)
            .task_failed_event_details(
                TaskFailedEventDetails::builder()
                    .resource_type("sns")
                    .resource("publish")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(!is_notice_published(&failed));
    }
}
