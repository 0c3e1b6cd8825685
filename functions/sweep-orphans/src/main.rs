//! The sweeper: deletes this stack's flow logs that no running recording owns (see
//! natrec::sweep). Invoked on a schedule, when a recorder execution ends abnormally, and as a
//! CloudFormation custom resource so that deleting the stack deletes every recorder flow log.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use natrec::adapters::{dynamodb::DynamoStore, ec2::Ec2, logs::LogGroup, sfn::StepFunctions, sns::Sns};
use natrec::sweep::{self, EndedExecution, QueryScope, SweepReport};
use natrec::{env, RecorderError};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{error, info};

struct App {
    stack_name: String,
    ec2: Ec2,
    executions: StepFunctions,
    store: DynamoStore,
    notifier: Sns,
    /// StopQuery: the report queries in the ledger of executions no longer running.
    queries: LogGroup,
}

impl App {
    async fn sweep(&self, everything: bool) -> Result<SweepReport, RecorderError> {
        let now = chrono::Utc::now();
        let scope = if everything {
            QueryScope::Everything
        } else {
            QueryScope::NotRunning
        };
        let queries = self.stop_queries(scope).await;
        let mut report = sweep::sweep(
            &self.stack_name,
            now,
            everything,
            &self.ec2,
            &self.executions,
            &self.store,
            &self.notifier,
        )
        .await?;
        report.queries = queries;
        Ok(report)
    }

    /// First, and never failing: a failed flow-log sweep must not leave queries running.
    async fn stop_queries(&self, scope: QueryScope<'_>) -> sweep::QuerySweep {
        let now = chrono::Utc::now();
        sweep::stop_queries(now, scope, &self.store, &self.queries, &self.executions).await
    }
}

/// A CloudFormation custom resource request.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CustomResource {
    request_type: String,
    #[serde(rename = "ResponseURL")]
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    #[serde(default)]
    physical_resource_id: Option<String>,
}

async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, RecorderError> {
    if let Ok(cr) = serde_json::from_value::<CustomResource>(event.payload.clone()) {
        return on_stack_event(app, cr).await;
    }
    // The execution status change rule: an execution ended FAILED, ABORTED or TIMED_OUT.
    let report = match EndedExecution::from_event(&event.payload) {
        Some(ended) => {
            let queries = app.stop_queries(QueryScope::Ended(&ended.execution_arn)).await;
            let (e, s, n, st) = (&app.ec2, &app.executions, &app.notifier, &app.store);
            let mut report =
                sweep::after_execution_ended(&app.stack_name, chrono::Utc::now(), &ended, e, s, st, n).await?;
            report.queries = queries;
            report
        }
        None => app.sweep(false).await?,
    };
    info!(
        checked = report.checked,
        swept = report.swept.len(),
        queries_stopped = report.queries.stopped.len(),
        told = report.told_unnotified.len(),
        "sweep done"
    );
    Ok(serde_json::to_value(report).unwrap_or_default())
}

/// Stack deletion deletes every flow log of the stack; create and update do nothing.
async fn on_stack_event(app: &App, cr: CustomResource) -> Result<Value, RecorderError> {
    let (status, reason) = if cr.request_type == "Delete" {
        match app.sweep(true).await {
            Ok(report) => (
                "SUCCESS",
                format!("deleted the flow logs of {} recording(s)", report.swept.len()),
            ),
            Err(e) => {
                error!(error = %e, "stack deletion sweep failed");
                ("FAILED", format!("could not delete the recorder's flow logs: {e}. Retry the deletion; flow logs carry the tag natrec:stack={}", app.stack_name))
            }
        }
    } else {
        ("SUCCESS", "nothing to do".to_string())
    };
    let body = json!({
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": cr.physical_resource_id.clone().unwrap_or_else(|| format!("{}-flow-log-cleanup", app.stack_name)),
        "StackId": cr.stack_id,
        "RequestId": cr.request_id,
        "LogicalResourceId": cr.logical_resource_id,
    });
    let url = cr.response_url.clone();
    let payload = body.to_string();
    tokio::task::spawn_blocking(move || ureq::put(&url).header("Content-Type", "").send(payload.as_bytes()))
        .await
        .map_err(|e| RecorderError::Misconfigured(format!("response task failed: {e}")))?
        .map_err(|e| RecorderError::Transient {
            service: "CloudFormation",
            operation: "custom resource response",
            message: e.to_string(),
        })?;
    info!(request_type = %cr.request_type, status, "answered CloudFormation");
    Ok(body)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    env::init_tracing();
    let config = env::aws_config().await;
    let app = App {
        stack_name: env::var("STACK_NAME")?,
        ec2: Ec2::new(aws_sdk_ec2::Client::new(&config)),
        executions: StepFunctions::new(aws_sdk_sfn::Client::new(&config)),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), env::var("TABLE_NAME")?),
        notifier: Sns::new(aws_sdk_sns::Client::new(&config), env::var("TOPIC_ARN")?),
        queries: LogGroup::new(
            aws_sdk_cloudwatchlogs::Client::new(&config),
            env::var("FLOW_LOG_GROUP")?,
        ),
    };
    run(service_fn(|event| handle(&app, event))).await
}
