//! Errors of the recorder. Each variant maps to a stable `errorType` that the state machine
//! matches on: `Transient` is retried with backoff; everything else goes straight to cleanup.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

/// Every SDK call returns this error type over an HTTP response.
pub type SdkError<E> = aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Throttling, 5xx, timeouts: worth retrying.
    #[error("{service} {operation} failed transiently (retry later): {message}")]
    Transient {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    /// AWS refused the call for a reason retrying will not fix (AccessDenied, validation, ...).
    #[error("{service} {operation} was refused: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error(
        "NAT Gateway {0} does not exist in this account and region (or was deleted); check the NatGatewayIds parameter"
    )]
    NatNotFound(String),
    #[error("NAT Gateway {nat_id} is {state}; only an available NAT Gateway can be recorded")]
    NatNotAvailable { nat_id: String, state: String },
    #[error("the event is not a CloudWatch alarm state change on a NAT Gateway: {0}")]
    UnexpectedEvent(String),
    #[error("CreateFlowLogs did not create every flow log: {0}")]
    FlowLogsFailed(String),
    #[error("the recording lock for {nat_id} is no longer held by this execution (held by {holder})")]
    LockLost { nat_id: String, holder: String },
    /// Retried by the state machine until the previous recording has released the NAT.
    #[error("the previous recording of {nat_id} ({holder}) is ending; this new spike starts once it has cleaned up")]
    RecordingEnding { nat_id: String, holder: String },
    #[error("configuration error: {0} (check the function's environment in template.yaml)")]
    Misconfigured(String),
}

impl RecorderError {
    /// The `errorType` reported to Lambda, and so the `Error` name Step Functions sees.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "Transient",
            Self::Aws { .. } => "AwsRefused",
            Self::NatNotFound(_) => "NatNotFound",
            Self::NatNotAvailable { .. } => "NatNotAvailable",
            Self::UnexpectedEvent(_) => "UnexpectedEvent",
            Self::FlowLogsFailed(_) => "FlowLogsFailed",
            Self::LockLost { .. } => "LockLost",
            Self::RecordingEnding { .. } => "RecordingEnding",
            Self::Misconfigured(_) => "Misconfigured",
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Classifies an SDK error: throttling, server errors, timeouts and dispatch failures are
    /// transient; anything else (access denied, validation, not found) is not.
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: &SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = sdk_message(err);
        let transient = match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(se) => {
                let code = se.err().code().unwrap_or_default();
                let status = se.raw().status().as_u16();
                is_transient_code(code) || status >= 500 || status == 429
            }
            _ => false,
        };
        if transient {
            Self::Transient {
                service,
                operation,
                message,
            }
        } else {
            Self::Aws {
                service,
                operation,
                message,
            }
        }
    }
}

/// Error codes AWS documents as retryable (throttling and server-side).
pub fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "InternalError"
            | "InternalFailure"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "Unavailable"
            | "LimitExceededException"
    )
}

/// "Code: message" of an SDK error, for logs and notices.
pub fn sdk_message<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("Unknown"),
                e.message().unwrap_or("no message")
            )
        }
        other => format!("{}", aws_smithy_types::error::display::DisplayErrorContext(other)),
    }
}

impl From<RecorderError> for Diagnostic {
    fn from(e: RecorderError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

pub type Result<T, E = RecorderError> = std::result::Result<T, E>;

/// The AWS error code of a service error, if it is one.
pub fn service_code<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}
