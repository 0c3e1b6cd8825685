//! CloudWatch Logs adapter: the recording's archive (inventory, report) and its flow-log records.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;

use crate::error::{service_code, RecorderError, Result};
use crate::ports::{Archive, FlowRecords, LogQueries, LogRecord, QueryState, RecordPage, RecordQuery};

/// PutLogEvents limits: 10,000 events and 1,048,576 bytes (with 26 bytes per event) a batch.
const BATCH_EVENTS: usize = 9_000;
const BATCH_BYTES: usize = 900_000;

/// One log group.
#[derive(Clone)]
pub struct LogGroup {
    client: Client,
    name: String,
}

impl LogGroup {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Archive for LogGroup {
    async fn put(&self, stream: &str, lines: &[String]) -> Result<()> {
        match self
            .client
            .create_log_stream()
            .log_group_name(&self.name)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if service_code(&e) == Some("ResourceAlreadyExistsException") => {}
            Err(e) => return Err(RecorderError::from_sdk("CloudWatch Logs", "CreateLogStream", &e)),
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut batch: Vec<InputLogEvent> = Vec::new();
        let mut size = 0;
        for (i, line) in lines.iter().enumerate() {
            batch.push(
                InputLogEvent::builder()
                    .timestamp(now)
                    .message(line)
                    .build()
                    .map_err(|e| RecorderError::Misconfigured(format!("a log event could not be built: {e}")))?,
            );
            size += line.len() + 26;
            let last = i + 1 == lines.len();
            if last || batch.len() >= BATCH_EVENTS || size + lines[i + 1].len() + 26 > BATCH_BYTES {
                self.client
                    .put_log_events()
                    .log_group_name(&self.name)
                    .log_stream_name(stream)
                    .set_log_events(Some(std::mem::take(&mut batch)))
                    .send()
                    .await
                    .map_err(|e| RecorderError::from_sdk("CloudWatch Logs", "PutLogEvents", &e))?;
                size = 0;
            }
        }
        Ok(())
    }

    async fn get(&self, stream: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match self
                .client
                .get_log_events()
                .log_group_name(&self.name)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
            {
                Ok(p) => p,
                Err(e) if service_code(&e) == Some("ResourceNotFoundException") => return Ok(vec![]),
                Err(e) => return Err(RecorderError::from_sdk("CloudWatch Logs", "GetLogEvents", &e)),
            };
            let events = page.events();
            out.extend(events.iter().filter_map(|e| e.message().map(str::to_string)));
            // The forward token repeats once the end is reached.
            let next = page.next_forward_token().map(str::to_string);
            if events.is_empty() || next.is_none() || next == token {
                return Ok(out);
            }
            token = next;
        }
    }
}

impl LogGroup {
    /// The flow-log reader: its own client, with a longer attempt timeout than the control-plane
    /// calls (`FilterLogEvents` over a whole group can take seconds) and no SDK retries. Standard
    /// retry mode would retry a throttled request up to 3 attempts with up to 20 s of backoff
    /// (AWS SDKs and Tools reference guide, "Retry behavior"), unseen by the report's pacing and
    /// blind to the Lambda's deadline: `report::read_records` retries instead, paced, from the
    /// same `nextToken`, and only while time is left.
    pub fn reader(config: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        let conf = aws_sdk_cloudwatchlogs::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(crate::env::read_timeouts(crate::env::READ_ATTEMPT_TIMEOUT))
            .build();
        Self::new(Client::from_conf(conf), name)
    }
}

#[async_trait]
impl FlowRecords for LogGroup {
    /// One `FilterLogEvents` request (API reference: at most 1 MB or 10,000 events a page,
    /// possibly empty while `nextToken` says there is more; a request with `nextToken` repeats
    /// the others' parameters).
    async fn page(
        &self,
        query: &RecordQuery,
        next_token: Option<&str>,
        time_limit: std::time::Duration,
    ) -> Result<RecordPage> {
        let mut req = self
            .client
            .filter_log_events()
            .log_group_name(&self.name)
            .start_time(query.start_ms)
            .end_time(query.end_ms)
            .set_next_token(next_token.map(str::to_string));
        if !query.streams.is_empty() {
            // FilterLogEvents takes at most 100 stream names.
            req = req.set_log_stream_names(Some(query.streams.iter().take(100).cloned().collect()));
        }
        // No request may outlive the time the report has left.
        let limit = time_limit.min(crate::env::READ_ATTEMPT_TIMEOUT);
        let page = req
            .customize()
            .config_override(
                aws_sdk_cloudwatchlogs::config::Builder::default().timeout_config(crate::env::read_timeouts(limit)),
            )
            .send()
            .await
            .map_err(|e| RecorderError::from_sdk("CloudWatch Logs", "FilterLogEvents", &e))?;
        Ok(RecordPage {
            records: page
                .events()
                .iter()
                .filter_map(|e| {
                    e.message().map(|m| LogRecord {
                        timestamp_ms: e.timestamp().unwrap_or_default(),
                        message: m.to_string(),
                    })
                })
                .collect(),
            next_token: page.next_token().map(str::to_string),
        })
    }
}

/// Logs Insights on the log group (CloudWatch Logs API reference: StartQuery, GetQueryResults,
/// StopQuery). `startTime`/`endTime` are epoch seconds, inclusive; StartQuery's `limit` at most
/// 100,000 ("only supported for Logs Insights QL"; 10,000 where the older bound holds: the caller
/// falls back, natflow::insights::Plan::rows_refused); GetQueryResults returns at most 10,000 rows
/// a request (`maxItems`) and the rest through `nextToken`, up to 100,000.
#[async_trait]
impl LogQueries for LogGroup {
    async fn start(&self, query: &str, start_s: i64, end_s: i64, limit: usize) -> Result<Option<String>> {
        let sent = self
            .client
            .start_query()
            .log_group_name(&self.name)
            .start_time(start_s)
            .end_time(end_s)
            .query_string(query)
            .limit(limit as i32)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.query_id().map(str::to_string).or_else(|| {
                tracing::warn!("StartQuery answered without a query ID");
                None
            })),
            // StartQuery, Errors: "LimitExceededException: You have reached the maximum number of
            // resources that can be created" (the concurrent-query quota): start it later.
            Err(e) if service_code(&e) == Some("LimitExceededException") => Ok(None),
            Err(e) => Err(RecorderError::from_sdk("CloudWatch Logs", "StartQuery", &e)),
        }
    }

    /// A complete query's answer is read page by page (`maxItems` 10,000, then `nextToken` until
    /// none is returned), each page's rows turned into compact groups as it arrives. A page that
    /// fails fails the whole call (the caller polls again, from the first page, as after any
    /// failed poll): no partial answer is returned. GetQueryResults API reference
    /// (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetQueryResults.html):
    /// "The maximum is 10,000 log events per request. You can retrieve up to 100,000 log event
    /// results from a query by paginating with the nextToken"; "The token expires after 1 hour":
    /// the pages are read one after the other, at once.
    async fn results(&self, query_id: &str) -> Result<QueryState> {
        use aws_sdk_cloudwatchlogs::types::QueryStatus;
        use natflow::insights::{Group, PageStep, Pages, PAGE_ROWS};
        let page = |token: Option<String>| {
            self.client
                .get_query_results()
                .query_id(query_id)
                .max_items(PAGE_ROWS as i32)
                .set_next_token(token)
                .send()
        };
        let groups = |out: &aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput| {
            out.results()
                .iter()
                .map(|row| Group::from_result(row.iter().map(|f| (f.field(), f.value()))))
                .collect::<Vec<_>>()
        };
        let out = page(None)
            .await
            .map_err(|e| RecorderError::from_sdk("CloudWatch Logs", "GetQueryResults", &e))?;
        Ok(match out.status() {
            Some(QueryStatus::Complete) => {
                let stats = out.statistics();
                let (records_scanned, bytes_scanned) = (
                    stats.map_or(0.0, |s| s.records_scanned()) as u64,
                    stats.map_or(0.0, |s| s.bytes_scanned()) as u64,
                );
                let mut rows = groups(&out);
                let mut pages = Pages::default();
                let mut step = pages.after(rows.len(), out.next_token());
                while let PageStep::Next(t) = step {
                    let next = page(Some(t))
                        .await
                        .map_err(|e| RecorderError::from_sdk("CloudWatch Logs", "GetQueryResults", &e))?;
                    let before = rows.len();
                    rows.extend(groups(&next));
                    step = pages.after(rows.len() - before, next.next_token());
                }
                if let PageStep::Broken(why) = step {
                    return Ok(QueryState::Ended(format!(
                        "with an answer that could not be read whole ({why})"
                    )));
                }
                QueryState::Complete {
                    rows,
                    records_scanned,
                    bytes_scanned,
                }
            }
            Some(QueryStatus::Scheduled | QueryStatus::Running) => QueryState::Running,
            other => QueryState::Ended(other.map_or("without a status", |s| s.as_str()).to_string()),
        })
    }

    async fn stop(&self, query_id: &str) -> Result<()> {
        match self.client.stop_query().query_id(query_id).send().await {
            Ok(_) => Ok(()),
            // A query that already ended cannot be stopped: nothing is left running.
            Err(e)
                if matches!(
                    service_code(&e),
                    Some("InvalidParameterException" | "ResourceNotFoundException")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(RecorderError::from_sdk("CloudWatch Logs", "StopQuery", &e)),
        }
    }
}
