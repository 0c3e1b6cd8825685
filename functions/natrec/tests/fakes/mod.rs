//! In-memory fakes of the ports, with call logs and injectable failures.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use natflow::insights::{Group, MAX_ROWS};
use natrec::nat::{NatGateway, NatGatewayId};
use natrec::ports::*;
use natrec::{RecorderError, Result};
use serde_json::Value;

pub fn transient(op: &'static str) -> RecorderError {
    RecorderError::Transient {
        service: "Fake",
        operation: op,
        message: "Throttling: slow down".into(),
    }
}

/// EC2 as its documentation describes it:
/// - CreateFlowLogs with a `ClientToken` ("Ensuring idempotency in Amazon EC2 API requests"): a
///   retry with the same token and the same parameters returns the flow logs of the first call
///   and creates nothing; the same token with any other parameter fails with
///   `IdempotentParameterMismatch`.
/// - DeleteFlowLogs of an ID that does not exist, under this stack's grant (ec2:DeleteFlowLogs
///   only with `aws:ResourceTag/natrec:stack`): IAM cannot match the tag of a resource that is
///   gone, so the whole call is refused with `UnauthorizedOperation` (not
///   `InvalidFlowLogId.NotFound`), and nothing is deleted.
/// - DescribeFlowLogs is eventually consistent ("Eventual consistency in the Amazon EC2 API"):
///   flow logs in `invisible` are not listed yet.
#[derive(Default)]
pub struct FakeEc2 {
    pub nats: Mutex<BTreeMap<String, NatGateway>>,
    /// flow log id -> the request that created it
    pub flow_logs: Mutex<BTreeMap<String, FlowLogRequest>>,
    /// flow log id -> (DeliverLogsStatus, DeliverLogsErrorMessage)
    pub delivery: Mutex<BTreeMap<String, (String, String)>>,
    /// ClientToken -> (request, flow log ids)
    pub tokens: Mutex<BTreeMap<String, (FlowLogRequest, CreatedFlowLogs)>>,
    pub created: Mutex<usize>,
    pub invisible: Mutex<std::collections::BTreeSet<String>>,
    /// The next create is applied but its answer is lost (a timeout): and its flow logs are not
    /// listed by DescribeFlowLogs yet.
    pub lose_next_create_answer: Mutex<bool>,
    pub fail_create: Mutex<Option<RecorderError>>,
    /// Resources CreateFlowLogs refuses (listed in `Unsuccessful`, as for a resource that already
    /// has its limit of flow logs); the call still creates the others (EC2 API reference,
    /// CreateFlowLogs: `FlowLogIds` and `Unsuccessful` in one answer).
    pub refuse_resources: Mutex<Vec<String>>,
    pub fail_delete: Mutex<Option<RecorderError>>,
    /// The next DescribeNatGateways fails with this error.
    pub fail_describe: Mutex<Option<RecorderError>>,
    pub deleted: Mutex<Vec<String>>,
    pub delete_calls: Mutex<Vec<Vec<String>>>,
}

impl FakeEc2 {
    pub fn with_nat(nat: NatGateway) -> Self {
        let me = Self::default();
        me.nats.lock().unwrap().insert(nat.id.to_string(), nat);
        me
    }
    pub fn active(&self) -> Vec<String> {
        self.flow_logs.lock().unwrap().keys().cloned().collect()
    }
    /// DescribeFlowLogs reports this flow log's delivery as FAILED with `error`.
    pub fn fail_delivery(&self, id: &str, error: &str) {
        self.delivery
            .lock()
            .unwrap()
            .insert(id.to_string(), ("FAILED".into(), error.into()));
    }
    /// What DescribeFlowLogs lists: the flow logs `keep` selects, except those not visible yet.
    fn described(&self, keep: impl Fn(&String, &FlowLogRequest) -> bool) -> Vec<TaggedFlowLog> {
        let invisible = self.invisible.lock().unwrap().clone();
        self.flow_logs
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, r)| !invisible.contains(*id) && keep(id, r))
            .map(|(id, r)| self.listed(id, r))
            .collect()
    }
    fn listed(&self, id: &str, r: &FlowLogRequest) -> TaggedFlowLog {
        let (status, error) = self
            .delivery
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .map(|(s, e)| (s, Some(e)))
            .unwrap_or(("SUCCESS".into(), None));
        TaggedFlowLog {
            id: id.to_string(),
            tags: r.tags.iter().cloned().collect(),
            deliver_logs_status: Some(status),
            deliver_logs_error: error,
        }
    }
}

#[async_trait]
impl NatDirectory for FakeEc2 {
    async fn describe(&self, id: &NatGatewayId) -> Result<Option<NatGateway>> {
        if let Some(e) = self.fail_describe.lock().unwrap().take() {
            return Err(e);
        }
        Ok(self.nats.lock().unwrap().get(id.as_str()).cloned())
    }
}

#[async_trait]
impl FlowLogs for FakeEc2 {
    async fn create(&self, req: &FlowLogRequest) -> Result<CreatedFlowLogs> {
        if let Some(e) = self.fail_create.lock().unwrap().take() {
            return Err(e);
        }
        let mut tokens = self.tokens.lock().unwrap();
        if let Some((first, ids)) = tokens.get(&req.client_token) {
            if first != req {
                return Err(RecorderError::Aws {
                    service: "EC2",
                    operation: "CreateFlowLogs",
                    message: "IdempotentParameterMismatch: the client token was already used with other parameters"
                        .into(),
                });
            }
            return Ok(ids.clone());
        }
        let resources: Vec<String> = match &req.target {
            natrec::nat::FlowLogTarget::Interfaces(enis) => enis.clone(),
            natrec::nat::FlowLogTarget::RegionalNatGateway(id) => vec![id.to_string()],
        };
        let refuse = self.refuse_resources.lock().unwrap().clone();
        let refused: Vec<String> = resources
            .iter()
            .filter(|r| refuse.contains(r))
            .map(|r| format!("{r}: the resource has reached its flow-log limit (FlowLogsLimitExceeded)"))
            .collect();
        let n = resources.len() - refused.len();
        let mut logs = self.flow_logs.lock().unwrap();
        let mut created = self.created.lock().unwrap();
        let ids: Vec<String> = (0..n).map(|i| format!("fl-{:08x}", *created + i)).collect();
        *created += n;
        for id in &ids {
            logs.insert(id.clone(), req.clone());
        }
        let answer = CreatedFlowLogs { ids, refused };
        tokens.insert(req.client_token.clone(), (req.clone(), answer.clone()));
        if std::mem::take(&mut *self.lose_next_create_answer.lock().unwrap()) {
            self.invisible.lock().unwrap().extend(answer.ids.iter().cloned());
            return Err(transient("CreateFlowLogs"));
        }
        Ok(answer)
    }
    async fn find_tagged(&self, key: &str, value: &str) -> Result<Vec<TaggedFlowLog>> {
        Ok(self.described(|_, r| r.tags.iter().any(|(k, v)| k == key && v == value)))
    }
    async fn existing(&self, ids: &[String]) -> Result<Vec<TaggedFlowLog>> {
        Ok(self.described(|id, _| ids.contains(id)))
    }
    async fn delete(&self, ids: &[String]) -> Result<()> {
        self.delete_calls.lock().unwrap().push(ids.to_vec());
        if let Some(e) = self.fail_delete.lock().unwrap().take() {
            return Err(e);
        }
        let mut logs = self.flow_logs.lock().unwrap();
        if ids.iter().any(|id| !logs.contains_key(id)) {
            return Err(RecorderError::Aws {
                service: "EC2",
                operation: "DeleteFlowLogs",
                message: "UnauthorizedOperation: You are not authorized to perform this operation.".into(),
            });
        }
        for id in ids {
            logs.remove(id);
            self.deleted.lock().unwrap().push(id.clone());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct LockItem {
    pub execution: Option<String>,
    pub alarm_at_ms: Option<i64>,
    pub token: Option<String>,
    pub flow_log_ids: Vec<String>,
    pub last_stop: Option<StopSignal>,
    pub released: Option<String>,
    /// (execution, note) kept by note_delivery; release leaves it.
    pub delivery_note: Option<(String, String)>,
    pub expires_at_s: Option<i64>,
}

/// Same contract as the DynamoDB adapter, in memory.
#[derive(Default)]
pub struct FakeStore {
    pub items: Mutex<BTreeMap<String, LockItem>>,
    pub started: Mutex<BTreeMap<String, u64>>,
}

#[async_trait]
impl RecordingStore for FakeStore {
    async fn acquire(&self, lock: &LockRequest) -> Result<Acquired> {
        let mut items = self.items.lock().unwrap();
        let item = items.entry(lock.nat_id.to_string()).or_default();
        if item.released.as_deref() == Some(lock.execution.as_str()) {
            return Ok(Acquired::HeldBy("a replay of a released execution".into()));
        }
        match &item.execution {
            Some(e) if e == &lock.execution => {
                return Ok(Acquired::Acquired {
                    expires_at_s: item.expires_at_s.unwrap_or(lock.expires_at_s),
                })
            }
            Some(e) => {
                let ending = item
                    .last_stop
                    .as_ref()
                    .is_some_and(|s| s.at_ms > item.alarm_at_ms.unwrap_or(i64::MAX) && lock.alarm_at_ms > s.at_ms);
                return Ok(if ending {
                    Acquired::HolderEnding(e.clone())
                } else {
                    Acquired::HeldBy(e.clone())
                });
            }
            None => {}
        }
        let count = *self.started.lock().unwrap().get(lock.nat_id.as_str()).unwrap_or(&0);
        if lock.max_recordings > 0 && count >= u64::from(lock.max_recordings) {
            return Ok(Acquired::LimitReached(count));
        }
        item.execution = Some(lock.execution.clone());
        item.alarm_at_ms = Some(lock.alarm_at_ms);
        item.token = None;
        item.expires_at_s = Some(lock.expires_at_s);
        Ok(Acquired::Acquired {
            expires_at_s: lock.expires_at_s,
        })
    }
    async fn mark_started(&self, nat_id: &NatGatewayId, execution: &str, ids: &[String]) -> Result<()> {
        let mut items = self.items.lock().unwrap();
        let item = items
            .get_mut(nat_id.as_str())
            .filter(|i| i.execution.as_deref() == Some(execution));
        let Some(item) = item else {
            return Err(RecorderError::LockLost {
                nat_id: nat_id.to_string(),
                holder: "nobody".into(),
            });
        };
        if !item.flow_log_ids.is_empty() {
            return Ok(()); // counted once per execution
        }
        item.flow_log_ids = ids.to_vec();
        *self.started.lock().unwrap().entry(nat_id.to_string()).or_default() += 1;
        Ok(())
    }
    async fn park(&self, nat_id: &NatGatewayId, execution: &str, token: &str) -> Result<Parked> {
        let mut items = self.items.lock().unwrap();
        let item = items
            .get_mut(nat_id.as_str())
            .filter(|i| i.execution.as_deref() == Some(execution));
        let Some(item) = item else {
            return Err(RecorderError::LockLost {
                nat_id: nat_id.to_string(),
                holder: "nobody".into(),
            });
        };
        item.token = Some(token.to_string());
        match &item.last_stop {
            Some(s) if s.at_ms > item.alarm_at_ms.unwrap_or(i64::MAX) => Ok(Parked::StopAlreadyRequested(s.clone())),
            _ => Ok(Parked::Waiting),
        }
    }
    async fn request_stop(&self, nat_id: &NatGatewayId, signal: &StopSignal) -> Result<Option<String>> {
        let mut items = self.items.lock().unwrap();
        let item = items.entry(nat_id.to_string()).or_default();
        if item.last_stop.as_ref().is_some_and(|s| s.at_ms >= signal.at_ms) {
            return Ok(None);
        }
        item.last_stop = Some(signal.clone());
        match (&item.execution, &item.token, item.alarm_at_ms) {
            (Some(_), Some(t), Some(a)) if a < signal.at_ms => Ok(Some(t.clone())),
            _ => Ok(None),
        }
    }
    async fn held_locks(&self) -> Result<Vec<(NatGatewayId, String)>> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(nat, i)| Some((NatGatewayId::parse(nat).ok()?, i.execution.clone()?)))
            .collect())
    }
    async fn note_delivery(&self, nat_id: &NatGatewayId, execution: &str, note: &str) -> Result<()> {
        let mut items = self.items.lock().unwrap();
        items.entry(nat_id.to_string()).or_default().delivery_note = Some((execution.into(), note.into()));
        Ok(())
    }
    async fn noted_delivery(&self, nat_id: &NatGatewayId, execution: &str) -> Result<Option<String>> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .get(nat_id.as_str())
            .and_then(|i| i.delivery_note.clone())
            .filter(|(e, _)| e == execution)
            .map(|(_, n)| n))
    }
    async fn release(&self, nat_id: &NatGatewayId, execution: &str) -> Result<bool> {
        let mut items = self.items.lock().unwrap();
        match items.get_mut(nat_id.as_str()) {
            Some(item) if item.execution.as_deref() == Some(execution) => {
                item.released = item.execution.take();
                item.token = None;
                item.flow_log_ids.clear();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[derive(Default)]
pub struct FakeTokens {
    pub sent: Mutex<Vec<(String, Value)>>,
    pub over: Mutex<Option<String>>,
}

#[async_trait]
impl TaskTokens for FakeTokens {
    async fn succeed(&self, token: &str, output: &Value) -> Result<TokenOutcome> {
        if let Some(code) = self.over.lock().unwrap().clone() {
            return Ok(TokenOutcome::AlreadyOver(code));
        }
        self.sent.lock().unwrap().push((token.to_string(), output.clone()));
        Ok(TokenOutcome::Delivered)
    }
}

pub struct FakeMetrics(pub Option<NatBytes>);

#[async_trait]
impl NatMetrics for FakeMetrics {
    async fn bytes(&self, _: &NatGatewayId, _: i64, _: i64) -> Result<NatBytes> {
        self.0.ok_or_else(|| transient("GetMetricData"))
    }
}

#[derive(Default)]
pub struct FakeExecutions {
    pub running: Mutex<Vec<String>>,
    /// Executions whose history holds a succeeded sns:publish task.
    pub notified: Mutex<Vec<String>>,
    /// Executions DescribeExecution refuses (AccessDeniedException: another state machine).
    pub unreadable: Mutex<Vec<String>>,
}

#[async_trait]
impl Executions for FakeExecutions {
    async fn is_running(&self, arn: &str) -> Result<bool> {
        if self.unreadable.lock().unwrap().iter().any(|r| r == arn) {
            return Err(RecorderError::Aws {
                service: "Step Functions",
                operation: "DescribeExecution",
                message: "AccessDeniedException: not authorized on this execution".into(),
            });
        }
        Ok(self.running.lock().unwrap().iter().any(|r| r == arn))
    }
    async fn notice_sent(&self, arn: &str) -> Result<bool> {
        Ok(self.notified.lock().unwrap().iter().any(|r| r == arn))
    }
}

#[derive(Default)]
pub struct FakeNotifier {
    pub sent: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Notifier for FakeNotifier {
    async fn publish(&self, subject: &str, message: &str) -> Result<()> {
        self.sent.lock().unwrap().push((subject.into(), message.into()));
        Ok(())
    }
}

/// Logs Insights as the CloudWatch Logs API reference documents it: StartQuery refused with
/// `LimitExceededException` while the account's concurrent queries are at their quota; a query
/// Scheduled/Running for a while, then Complete with at most `limit` rows (StartQuery: up to
/// 100,000, read in pages by the adapter) and its statistics, or
/// Failed/Cancelled/Timeout; GetQueryResults answers again for a complete query (results are kept
/// 7 days); StopQuery ends a running query.
/// An upload of `bytes` through eni-0aaa from host `h` (10.0.0.1 on; up to 15 million hosts),
/// `records` records.
pub fn row(h: u32, bytes: u64, records: u64) -> Vec<(String, String)> {
    let host = format!("10.{}.{}.{}", h / 62_500, h / 250 % 250, h % 250 + 1);
    [
        ("interface_id", "eni-0aaa".to_string()),
        ("srcaddr", host.clone()),
        ("dstaddr", "10.0.0.9".into()),
        ("action", "ACCEPT".into()),
        ("log_status", "OK".into()),
        ("pkt_srcaddr", host),
        ("pkt_dstaddr", "203.0.113.7".into()),
        ("sum_bytes", bytes.to_string()),
        ("sum_packets", "1".into()),
        ("records", records.to_string()),
    ]
    .into_iter()
    .map(|(f, v)| (f.to_string(), v))
    .collect()
}

/// What the fake answers for a window: its rows and records scanned.
pub type Answer = dyn Fn(i64, i64) -> (Vec<Vec<(String, String)>>, u64) + Send + Sync;

pub struct Query {
    pub window: (i64, i64),
    /// StartQuery's `limit`: the answer holds at most that many rows.
    pub limit: usize,
    pub polls_left: u32,
    pub ended: Option<String>,
    pub stopped: bool,
}

pub struct FakeInsights {
    pub answer: Box<Answer>,
    pub quota: usize,
    /// Polls a query stays Running.
    pub polls: u32,
    /// Queries of these windows end with this status.
    pub fail: BTreeMap<(i64, i64), String>,
    pub queries: Mutex<Vec<Query>>,
    pub refused: Mutex<u32>,
    pub most_running: Mutex<usize>,
    pub results_calls: Mutex<BTreeMap<String, u32>>,
    /// The largest `limit` StartQuery accepts: above it, `InvalidParameterException` (where the
    /// API reference's older bound, 1 to 10,000, holds).
    pub max_limit: usize,
    /// The next GetQueryResults calls of a complete query that fail transiently (one of its
    /// pages throttled: the adapter fails the whole call).
    pub failing_reads: Mutex<u32>,
    /// Every StartQuery refused with this message (code first), whatever its limit.
    pub refuse_start: Option<String>,
}

impl FakeInsights {
    pub fn new(answer: Box<Answer>) -> Self {
        Self {
            answer,
            quota: 30,
            polls: 2,
            fail: BTreeMap::new(),
            queries: Mutex::new(vec![]),
            refused: Mutex::new(0),
            most_running: Mutex::new(0),
            results_calls: Mutex::new(BTreeMap::new()),
            max_limit: MAX_ROWS,
            failing_reads: Mutex::new(0),
            refuse_start: None,
        }
    }
    fn running(q: &[Query]) -> usize {
        q.iter()
            .filter(|q| q.polls_left > 0 && !q.stopped && q.ended.is_none())
            .count()
    }
}

#[async_trait]
impl LogQueries for FakeInsights {
    async fn start(&self, query: &str, start_s: i64, end_s: i64, limit: usize) -> Result<Option<String>> {
        assert!(query.contains("stats sum(bytes)"));
        if let Some(l) = query.lines().find(|l| l.starts_with("| limit ")) {
            assert_eq!(
                l,
                format!("| limit {limit}"),
                "the query's limit and StartQuery's agree"
            );
        }
        if let Some(m) = &self.refuse_start {
            return Err(RecorderError::Aws {
                service: "CloudWatch Logs",
                operation: "StartQuery",
                message: m.clone(),
            });
        }
        if limit > self.max_limit {
            return Err(RecorderError::Aws {
                service: "CloudWatch Logs",
                operation: "StartQuery",
                message: format!("InvalidParameterException: limit {limit} is out of range"),
            });
        }
        let mut qs = self.queries.lock().unwrap();
        if Self::running(&qs) >= self.quota {
            *self.refused.lock().unwrap() += 1;
            return Ok(None);
        }
        qs.push(Query {
            window: (start_s, end_s),
            limit,
            polls_left: self.polls,
            ended: self.fail.get(&(start_s, end_s)).cloned(),
            stopped: false,
        });
        let n = Self::running(&qs);
        let mut most = self.most_running.lock().unwrap();
        *most = (*most).max(n);
        Ok(Some(format!("q{}", qs.len() - 1)))
    }
    async fn results(&self, id: &str) -> Result<QueryState> {
        *self.results_calls.lock().unwrap().entry(id.to_string()).or_default() += 1;
        let i: usize = id[1..].parse().unwrap();
        let mut qs = self.queries.lock().unwrap();
        let q = &mut qs[i];
        if q.stopped {
            return Ok(QueryState::Ended("Cancelled".into()));
        }
        if q.polls_left > 0 {
            q.polls_left -= 1;
            return Ok(QueryState::Running);
        }
        if let Some(status) = &q.ended {
            return Ok(QueryState::Ended(status.clone()));
        }
        {
            let mut failing = self.failing_reads.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(RecorderError::Transient {
                    service: "CloudWatch Logs",
                    operation: "GetQueryResults",
                    message: "ThrottlingException: Rate exceeded".into(),
                });
            }
        }
        let (mut rows, scanned) = (self.answer)(q.window.0, q.window.1);
        rows.truncate(q.limit);
        Ok(QueryState::Complete {
            rows: rows.iter().map(|r| Group::from_row(r)).collect(),
            records_scanned: scanned,
            bytes_scanned: scanned * 200,
        })
    }
    async fn stop(&self, id: &str) -> Result<()> {
        let i: usize = id[1..].parse().unwrap();
        self.queries.lock().unwrap()[i].stopped = true;
        Ok(())
    }
}

/// For reports that read the records one by one: any query is a test failure.
pub struct NoQueries;

#[async_trait]
impl LogQueries for NoQueries {
    async fn start(&self, _: &str, _: i64, _: i64, _: usize) -> Result<Option<String>> {
        panic!("a streaming report started a Logs Insights query")
    }
    async fn results(&self, _: &str) -> Result<QueryState> {
        panic!("a streaming report asked for query results")
    }
    async fn stop(&self, _: &str) -> Result<()> {
        panic!("a streaming report stopped a query")
    }
}

/// The query ledger as the DynamoDB adapter keeps it: per execution a set of query IDs
/// (UpdateItem ADD / DELETE on a string set: adding one already there or taking out one not
/// there changes nothing) and the TTL of its latest write. `fail_*`: the next calls refused, a
/// throttling (transient) error each.
#[derive(Default)]
pub struct FakeLedger {
    pub ledgers: Mutex<BTreeMap<String, (std::collections::BTreeSet<String>, i64)>>,
    pub fail_record: Mutex<u32>,
    pub fail_forget: Mutex<u32>,
    pub fail_read: Mutex<u32>,
}

impl FakeLedger {
    /// The queries in `execution`'s ledger.
    pub fn of(&self, execution: &str) -> Vec<String> {
        self.ledgers
            .lock()
            .unwrap()
            .get(execution)
            .map(|(ids, _)| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
    pub fn is_empty(&self) -> bool {
        self.ledgers.lock().unwrap().values().all(|(ids, _)| ids.is_empty())
    }
    fn failing(counter: &Mutex<u32>, op: &'static str) -> Result<()> {
        let mut n = counter.lock().unwrap();
        if *n > 0 {
            *n -= 1;
            return Err(transient(op));
        }
        Ok(())
    }
}

#[async_trait]
impl QueryLedger for FakeLedger {
    async fn record(&self, execution: &str, query_id: &str, expires_at_s: i64) -> Result<()> {
        Self::failing(&self.fail_record, "UpdateItem")?;
        let mut l = self.ledgers.lock().unwrap();
        let entry = l.entry(execution.to_string()).or_default();
        entry.0.insert(query_id.to_string());
        entry.1 = expires_at_s;
        Ok(())
    }
    async fn forget(&self, execution: &str, query_id: &str) -> Result<()> {
        Self::failing(&self.fail_forget, "UpdateItem")?;
        if let Some((ids, _)) = self.ledgers.lock().unwrap().get_mut(execution) {
            ids.remove(query_id);
        }
        Ok(())
    }
    async fn of_execution(&self, execution: &str) -> Result<Vec<String>> {
        Self::failing(&self.fail_read, "GetItem")?;
        Ok(self.of(execution))
    }
    async fn all(&self) -> Result<Vec<LedgeredQueries>> {
        Self::failing(&self.fail_read, "Scan")?;
        Ok(self
            .ledgers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (ids, _))| !ids.is_empty())
            .map(|(execution, (ids, expires_at_s))| LedgeredQueries {
                execution: execution.clone(),
                query_ids: ids.iter().cloned().collect(),
                expires_at_s: *expires_at_s,
            })
            .collect())
    }
}

/// EC2 as the address lookup sees it (issue 12, item 4), per the EC2 API reference:
/// DescribeNetworkInterfaces with filter `addresses.private-ip-address` matches an interface
/// holding any of the values (primary or secondary private IPv4 address; values are joined with
/// OR, "Filter" data type); at most 200 values per filter (EC2 user guide, "List and filter using
/// the CLI and API"): more is `InvalidParameterValue`; answers at most `page` interfaces and a
/// `NextToken` while more remain (`MaxResults` 5 to 1,000; a service page may hold fewer); an
/// unknown token is `InvalidNextToken`.
#[derive(Default)]
pub struct FakeRegion {
    pub interfaces: Vec<natflow::Eni>,
    pub networks: Vec<natflow::inventory::Network>,
    /// Interfaces per page (0: 1,000).
    pub page: usize,
    /// Each DescribeNetworkInterfaces call: (values in the filter, NextToken sent).
    pub calls: Mutex<Vec<(Vec<String>, Option<String>)>>,
    pub network_calls: Mutex<u32>,
    pub fail_networks: bool,
}

#[async_trait]
impl AddressLookup for FakeRegion {
    async fn interfaces_page(&self, addresses: &[String], next_token: Option<&str>) -> Result<InterfacePage> {
        self.calls
            .lock()
            .unwrap()
            .push((addresses.to_vec(), next_token.map(str::to_string)));
        if addresses.is_empty() || addresses.len() > 200 {
            return Err(RecorderError::Aws {
                service: "EC2",
                operation: "DescribeNetworkInterfaces",
                message: format!("InvalidParameterValue: {} filter values (1 to 200)", addresses.len()),
            });
        }
        let matching: Vec<&natflow::Eni> = self
            .interfaces
            .iter()
            .filter(|e| e.private_ips.iter().any(|ip| addresses.contains(ip)))
            .collect();
        let start: usize = match next_token {
            None => 0,
            Some(t) => t.parse().map_err(|_| RecorderError::Aws {
                service: "EC2",
                operation: "DescribeNetworkInterfaces",
                message: "InvalidNextToken".into(),
            })?,
        };
        let page = if self.page == 0 { 1000 } else { self.page };
        let end = (start + page).min(matching.len());
        Ok(InterfacePage {
            interfaces: matching[start.min(end)..end].iter().map(|e| (*e).clone()).collect(),
            next_token: (end < matching.len()).then(|| end.to_string()),
        })
    }

    async fn networks(&self) -> Result<Vec<natflow::inventory::Network>> {
        *self.network_calls.lock().unwrap() += 1;
        if self.fail_networks {
            return Err(transient("DescribeVpcs"));
        }
        Ok(self.networks.clone())
    }
}
