//! CloudWatch Logs adapter: the recording's archive (inventory, report) and its flow-log records.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;

use crate::error::{service_code, RecorderError, Result};
use crate::ports::{Archive, FlowRecords, ReadOutcome};

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

#[async_trait]
impl FlowRecords for LogGroup {
    async fn read(
        &self,
        streams: &[String],
        start_ms: i64,
        end_ms: i64,
        max_bytes: u64,
        sink: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
    ) -> Result<ReadOutcome> {
        let mut req = self
            .client
            .filter_log_events()
            .log_group_name(&self.name)
            .start_time(start_ms)
            .end_time(end_ms);
        if !streams.is_empty() {
            // FilterLogEvents takes at most 100 stream names.
            req = req.set_log_stream_names(Some(streams.iter().take(100).cloned().collect()));
        }
        let mut pages = req.into_paginator().send();
        let mut out = ReadOutcome::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("CloudWatch Logs", "FilterLogEvents", &e))?;
            for e in page.events() {
                let Some(m) = e.message() else { continue };
                if out.bytes + m.len() as u64 > max_bytes {
                    out.truncated = true;
                    return Ok(out);
                }
                sink(m.as_bytes());
                out.events += 1;
                out.bytes += m.len() as u64;
            }
        }
        Ok(out)
    }
}
