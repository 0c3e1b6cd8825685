//! The narrow interfaces ("ports") through which the domain talks to AWS. Each has one SDK
//! adapter in `adapters/` and in-memory fakes in the unit tests.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::nat::{FlowLogTarget, NatGateway, NatGatewayId};

/// EC2 DescribeNatGateways.
#[async_trait]
pub trait NatDirectory: Send + Sync {
    /// `Ok(None)` when the NAT Gateway does not exist.
    async fn describe(&self, id: &NatGatewayId) -> Result<Option<NatGateway>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLogRequest {
    pub target: FlowLogTarget,
    pub log_group: String,
    pub delivery_role_arn: String,
    pub log_format: String,
    pub max_aggregation_seconds: i32,
    pub client_token: String,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaggedFlowLog {
    pub id: String,
    pub tags: std::collections::BTreeMap<String, String>,
    /// DescribeFlowLogs `DeliverLogsStatus`: SUCCESS | FAILED (None when not reported).
    pub deliver_logs_status: Option<String>,
    /// DescribeFlowLogs `DeliverLogsErrorMessage`: "Access error", "Rate limited", "Unknown error".
    pub deliver_logs_error: Option<String>,
}

/// What one CreateFlowLogs call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedFlowLogs {
    /// `FlowLogIds`: the flow logs created.
    pub ids: Vec<String>,
    /// `Unsuccessful`: one "resource: message (code)" per resource refused.
    pub refused: Vec<String>,
}

/// EC2 Create/Describe/DeleteFlowLogs.
#[async_trait]
pub trait FlowLogs: Send + Sync {
    /// Creates the flow logs. CreateFlowLogs creates what it can and lists each resource it
    /// could not in `Unsuccessful` (EC2 API reference, CreateFlowLogs): both come back.
    async fn create(&self, req: &FlowLogRequest) -> Result<CreatedFlowLogs>;
    /// The flow logs carrying tag `key` = `value`, with all their tags.
    async fn find_tagged(&self, key: &str, value: &str) -> Result<Vec<TaggedFlowLog>>;
    /// Those of `ids` that still exist (DescribeFlowLogs), with their tags and delivery status.
    async fn existing(&self, ids: &[String]) -> Result<Vec<TaggedFlowLog>>;
    /// Deletes flow logs; ones that are already gone count as deleted.
    async fn delete(&self, ids: &[String]) -> Result<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    pub nat_id: NatGatewayId,
    pub execution: String,
    /// When the alarm entered ALARM (epoch ms): stop signals older than this are stale.
    pub alarm_at_ms: i64,
    pub now_s: i64,
    /// TTL of the lock (epoch s); an expired lock may be taken over.
    pub expires_at_s: i64,
    /// 0 = no limit.
    pub max_recordings: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// This execution holds the lock, which expires at `expires_at_s` (epoch s): the expiry the
    /// first attempt of the execution stored, also when a retry finds its own lock.
    Acquired {
        expires_at_s: i64,
    },
    /// Another execution records this NAT.
    HeldBy(String),
    /// Another execution holds the lock but its recording is ending (a stop signal newer than
    /// its alarm, older than ours): this alarm is a new spike and must wait for the lock.
    HolderEnding(String),
    LimitReached(u64),
}

/// The signal that ends a recording, stored by the resume side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSignal {
    pub reason: StopReason,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    AlarmOk,
    AlarmInsufficientData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parked {
    /// Token stored; the resume side will deliver the stop.
    Waiting,
    /// A stop arrived before the token was stored: deliver it now.
    StopAlreadyRequested(StopSignal),
}

/// DynamoDB: one item per NAT (lock, parked token, last stop signal) and one counter per NAT.
#[async_trait]
pub trait RecordingStore: Send + Sync {
    async fn acquire(&self, lock: &LockRequest) -> Result<Acquired>;
    /// Records the flow logs and counts the recording as started (idempotent per execution).
    async fn mark_started(&self, nat_id: &NatGatewayId, execution: &str, flow_log_ids: &[String]) -> Result<()>;
    /// Stores the task token if `execution` still holds the lock (else `LockLost`).
    async fn park(&self, nat_id: &NatGatewayId, execution: &str, token: &str) -> Result<Parked>;
    /// Records a stop signal; returns the parked token of a recording that it ends.
    async fn request_stop(&self, nat_id: &NatGatewayId, signal: &StopSignal) -> Result<Option<String>>;
    /// Releases the lock if `execution` holds it; true if it did.
    async fn release(&self, nat_id: &NatGatewayId, execution: &str) -> Result<bool>;
    /// Every held lock: (NAT, execution).
    async fn held_locks(&self) -> Result<Vec<(NatGatewayId, String)>>;
    /// Keeps a delivery failure of `execution`'s flow logs (`note`, small JSON) on the NAT's
    /// item before they are deleted, so that a retried finish step still tells it.
    async fn note_delivery(&self, nat_id: &NatGatewayId, execution: &str, note: &str) -> Result<()>;
    /// The note kept by `note_delivery` for `execution`, if any.
    async fn noted_delivery(&self, nat_id: &NatGatewayId, execution: &str) -> Result<Option<String>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    Delivered,
    /// The task already ended (timed out, stopped, or the token was used): nothing to do.
    AlreadyOver(String),
}

/// Step Functions SendTaskSuccess.
#[async_trait]
pub trait TaskTokens: Send + Sync {
    async fn succeed(&self, token: &str, output: &Value) -> Result<TokenOutcome>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatBytes {
    /// BytesInFromSource: from the VPC towards the destination.
    pub upload: u64,
    /// BytesInFromDestination: from the destination back into the VPC.
    pub download: u64,
}

/// CloudWatch GetMetricData on the NAT's byte metrics.
#[async_trait]
pub trait NatMetrics: Send + Sync {
    async fn bytes(&self, nat_id: &NatGatewayId, start_s: i64, end_s: i64) -> Result<NatBytes>;
}

/// Step Functions DescribeExecution, GetExecutionHistory.
#[async_trait]
pub trait Executions: Send + Sync {
    /// False when the execution ended (any status) or does not exist.
    async fn is_running(&self, execution_arn: &str) -> Result<bool>;
    /// True when the execution published a notice: its history holds a succeeded `sns:publish`
    /// task (every notice of the state machine goes out through one). False if it does not exist.
    async fn notice_sent(&self, execution_arn: &str) -> Result<bool>;
}

/// SNS Publish.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, subject: &str, message: &str) -> Result<()>;
}

/// EC2 DescribeNetworkInterfaces: every interface of a VPC, for the inventory snapshot.
#[async_trait]
pub trait NetworkInventory: Send + Sync {
    async fn interfaces(&self, vpc_id: &str) -> Result<Vec<natflow::Eni>>;
}

/// A log stream per artifact of a recording (its inventory, its report), in the stack's
/// reports log group: CreateLogStream, PutLogEvents, GetLogEvents.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Appends the lines (one event each) to the stream, creating it if needed.
    async fn put(&self, stream: &str, lines: &[String]) -> Result<()>;
    /// Every line of the stream, oldest first; empty if the stream does not exist.
    async fn get(&self, stream: &str) -> Result<Vec<String>>;
}

/// Why the report read fewer records than the recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truncation {
    /// `max_bytes` of records were read.
    MaxBytes,
    /// The Lambda's remaining time ran out (what is left is kept for the report itself).
    Deadline,
    /// `FilterLogEvents` kept failing transiently (throttling, 5xx, timeouts): the last error.
    Failing(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadOutcome {
    pub events: u64,
    pub bytes: u64,
    /// `FilterLogEvents` responses read.
    pub pages: u64,
    /// Requests answered with a transient error (throttling above all) and retried.
    pub retried: u64,
    /// The latest event timestamp read (ms): how far into the window the records were read.
    pub last_timestamp_ms: Option<i64>,
    /// Set when the records were not all read, and why.
    pub truncated: Option<Truncation>,
}

/// The records to read: the streams (all if empty) between the times (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    pub streams: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One flow-log record as CloudWatch Logs returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub timestamp_ms: i64,
    pub message: String,
}

/// One `FilterLogEvents` response: at most 1 MB or 10,000 events, possibly none while
/// `next_token` says there are more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordPage {
    pub records: Vec<LogRecord>,
    pub next_token: Option<String>,
}

/// CloudWatch Logs FilterLogEvents on the flow-log group, one request at a time: the caller
/// (`report::read_records`) paginates, paces, retries and watches the deadline.
#[async_trait]
pub trait FlowRecords: Send + Sync {
    /// The page after `next_token` (the first without one). The request is abandoned after
    /// `time_limit` (a transient error).
    async fn page(
        &self,
        query: &RecordQuery,
        next_token: Option<&str>,
        time_limit: std::time::Duration,
    ) -> Result<RecordPage>;
}

/// A Logs Insights query as GetQueryResults reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryState {
    /// Scheduled or Running.
    Running,
    /// Complete: every result row (all GetQueryResults pages, read with `nextToken`), each in
    /// the compact form the analysis counts, and what the query scanned.
    Complete {
        rows: Vec<natflow::insights::Group>,
        records_scanned: u64,
        bytes_scanned: u64,
    },
    /// Failed, Cancelled, Timeout (or a status this code does not know): the status.
    Ended(String),
}

/// CloudWatch Logs Insights on the flow-log group: StartQuery, GetQueryResults, StopQuery
/// (CloudWatch Logs API reference; quotas: StartQuery and GetQueryResults 10 requests per second
/// per account and Region, concurrent queries per account limited, 60-minute query timeout,
/// results kept 7 days).
#[async_trait]
pub trait LogQueries: Send + Sync {
    /// Starts `query` over `[start_s, end_s]` (epoch seconds, both inclusive) returning at most
    /// `limit` rows. `Ok(None)`: the account's concurrent queries are at their quota
    /// (`LimitExceededException`): start it later.
    async fn start(&self, query: &str, start_s: i64, end_s: i64, limit: usize) -> Result<Option<String>>;
    async fn results(&self, query_id: &str) -> Result<QueryState>;
    /// Stops a query; one that already ended is not an error.
    async fn stop(&self, query_id: &str) -> Result<()>;
}

/// The report's Logs Insights queries that may still run, by execution: one ledger per
/// execution in the recorder's DynamoDB table. A query is written in right after StartQuery
/// answers and taken out once it ended or was stopped (`crate::ledger::Ledgered` does both around
/// [`LogQueries`]), so that the sweeper can stop the queries of an execution that ended while
/// they ran (stopped by hand, failed hard, timed out), instead of leaving them to scan and bill
/// for up to 60 minutes.
#[async_trait]
pub trait QueryLedger: Send + Sync {
    /// Writes `query_id` into `execution`'s ledger, which expires (table TTL) at `expires_at_s`.
    async fn record(&self, execution: &str, query_id: &str, expires_at_s: i64) -> Result<()>;
    /// Takes `query_id` out of `execution`'s ledger; one not in it is not an error.
    async fn forget(&self, execution: &str, query_id: &str) -> Result<()>;
    /// The queries in `execution`'s ledger.
    async fn of_execution(&self, execution: &str) -> Result<Vec<String>>;
    /// Every ledger that holds a query.
    async fn all(&self) -> Result<Vec<LedgeredQueries>>;
}

/// One execution's ledger of queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgeredQueries {
    pub execution: String,
    pub query_ids: Vec<String>,
    /// Its TTL (epoch s): no query runs longer than 60 minutes, so past it none of them runs.
    pub expires_at_s: i64,
}

// ---- Naming every source (issue 12 item 4) ----

/// One DescribeNetworkInterfaces answer (EC2 API reference: at most `MaxResults` items, 5 to
/// 1,000, and a `NextToken` while more remain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfacePage {
    pub interfaces: Vec<natflow::Eni>,
    pub next_token: Option<String>,
}

/// EC2 lookups of the addresses the inventory snapshots do not name, across the account's
/// region: DescribeNetworkInterfaces by address, and the networks this account can see
/// (DescribeVpcs, DescribeVpcPeeringConnections, DescribeSubnets, DescribeTransitGatewayAttachments,
/// SearchTransitGatewayRoutes).
#[async_trait]
pub trait AddressLookup: Send + Sync {
    /// One page of the interfaces holding any of `addresses` (filter
    /// `addresses.private-ip-address`, at most [`MAX_FILTER_VALUES`] values), `MaxResults` [`LOOKUP_PAGE`].
    async fn interfaces_page(&self, addresses: &[String], next_token: Option<&str>) -> Result<InterfacePage>;
    /// Every VPC, peered VPC, VPC behind a transit gateway and shared subnet this account can see.
    async fn networks(&self) -> Result<Vec<natflow::inventory::Network>>;
}

/// EC2 API reference, "Filter your resources" (List and filter your resources, API): at most
/// 200 values per filter in one request.
pub const MAX_FILTER_VALUES: usize = 200;
/// DescribeNetworkInterfaces `MaxResults`: 5 to 1,000.
pub const LOOKUP_PAGE: i32 = 1000;
