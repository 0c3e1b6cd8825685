//! The CloudWatch Logs adapter's Logs Insights calls against an in-process endpoint that answers
//! as the CloudWatch Logs API reference documents them (the emulator's evaluator pages too, but
//! cannot throttle one page of an answer):
//! - StartQuery: `limit` up to 100,000 ("100,000 limit is only supported for Logs Insights QL");
//!   where the older bound (1 to 10,000) holds, a larger one is refused as
//!   `InvalidParameterException`.
//! - GetQueryResults: "The maximum is 10,000 log events per request" (`maxItems`); "You can
//!   retrieve up to 100,000 log event results from a query by paginating with the `nextToken`".
#![cfg(feature = "logs")]

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use natrec::adapters::logs::LogGroup;
use natrec::ports::{LogQueries, QueryState};
use serde_json::{json, Value};

/// A complete query of `rows` groups, served `maxItems` at a time; the requests whose number is
/// in `throttle` answer ThrottlingException; StartQuery refuses a limit above `max_limit`.
#[derive(Debug)]
struct Insights {
    rows: usize,
    max_limit: i64,
    throttle: Vec<usize>,
    /// Requests (by number) answered with an empty page and a token to the same place (`-e`
    /// added), or, for `repeat`, with the very token they were asked with.
    empty: Vec<usize>,
    repeat: bool,
    requests: Mutex<Vec<Value>>,
}

#[derive(Debug, Clone)]
struct Endpoint(Arc<Insights>);

fn respond(status: u16, body: Value) -> HttpConnectorFuture {
    HttpConnectorFuture::ready(Ok(HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(body.to_string()),
    )))
}

impl HttpConnector for Endpoint {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_string();
        let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap();
        let n = {
            let mut reqs = self.0.requests.lock().unwrap();
            reqs.push(json!({"target": target, "body": body}));
            reqs.len() - 1
        };
        if target.ends_with(".StartQuery") {
            if body["limit"].as_i64().unwrap() > self.0.max_limit {
                return respond(
                    400,
                    json!({"__type": "InvalidParameterException", "message": "limit must be between 1 and 10000"}),
                );
            }
            return respond(200, json!({"queryId": "q-1"}));
        }
        assert!(target.ends_with(".GetQueryResults"), "{target}");
        if self.0.throttle.contains(&n) {
            return respond(
                400,
                json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
            );
        }
        let max = body["maxItems"].as_u64().unwrap_or(1_000) as usize;
        let asked = body["nextToken"].as_str().map(str::to_string);
        let from: usize = asked.as_deref().map_or(0, |t| {
            t.trim_start_matches("at-").trim_end_matches("-e").parse().unwrap()
        });
        let stats = json!({"recordsMatched": 0.0, "recordsScanned": 2.0 * self.0.rows as f64, "bytesScanned": 1e6});
        if self.0.empty.contains(&n) || (self.0.repeat && asked.is_some()) {
            let token = match (self.0.repeat, asked) {
                (true, Some(t)) => t,
                _ => format!("at-{from}-e"),
            };
            return respond(
                200,
                json!({"status": "Complete", "results": [], "statistics": stats, "nextToken": token}),
            );
        }
        let to = (from + max).min(self.0.rows);
        let results: Vec<Value> = (from..to)
            .map(|h| {
                json!([
                    {"field": "interface_id", "value": "eni-0aaa"},
                    {"field": "srcaddr", "value": format!("10.{}.{}.{}", h / 62_500, h / 250 % 250, h % 250 + 1)},
                    {"field": "dstaddr", "value": "203.0.113.7"},
                    {"field": "action", "value": "ACCEPT"},
                    {"field": "log_status", "value": "OK"},
                    {"field": "sum_bytes", "value": "100"},
                    {"field": "records", "value": "2"},
                    {"field": "@ptr", "value": "CmAKJgoi"},
                ])
            })
            .collect();
        let mut out = json!({
            "status": "Complete",
            "results": results,
            "statistics": stats,
        });
        if to < self.0.rows {
            out["nextToken"] = json!(format!("at-{to}"));
        }
        respond(200, out)
    }
}

impl HttpClient for Endpoint {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn group(insights: &Arc<Insights>) -> LogGroup {
    let config = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        // The caller polls again after a failure: no SDK retry, so a throttled page is seen.
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .http_client(SharedHttpClient::new(Endpoint(insights.clone())))
        .build();
    LogGroup::new(aws_sdk_cloudwatchlogs::Client::from_conf(config), "/natrec/flows")
}

fn insights(rows: usize, throttle: Vec<usize>) -> Arc<Insights> {
    Arc::new(Insights {
        rows,
        max_limit: 100_000,
        throttle,
        empty: vec![],
        repeat: false,
        requests: Mutex::new(vec![]),
    })
}

#[tokio::test]
async fn a_complete_answer_is_read_page_by_page_with_next_token() {
    let fake = insights(20_001, vec![]);
    let state = group(&fake).results("q-1").await.unwrap();
    let QueryState::Complete {
        rows, records_scanned, ..
    } = state
    else {
        panic!("{state:?}")
    };
    assert_eq!((rows.len(), records_scanned), (20_001, 40_002));
    assert_eq!(rows.iter().map(|g| g.records()).sum::<u64>(), 40_002);
    let reqs = fake.requests.lock().unwrap();
    let tokens: Vec<&Value> = reqs.iter().map(|r| &r["body"]["nextToken"]).collect();
    assert_eq!(tokens, [&Value::Null, &json!("at-10000"), &json!("at-20000")]);
    assert!(reqs
        .iter()
        .all(|r| r["body"]["maxItems"] == json!(10_000) && r["body"]["queryId"] == "q-1"));
}

#[tokio::test]
async fn a_throttled_page_fails_the_read_as_a_transient_error() {
    let fake = insights(10_001, vec![1]);
    let err = group(&fake).results("q-1").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    // Read again (the next poll): from the first page, every row once.
    let QueryState::Complete { rows, .. } = group(&fake).results("q-1").await.unwrap() else {
        panic!()
    };
    assert_eq!(rows.len(), 10_001);
}

#[tokio::test]
async fn a_refused_limit_names_the_documented_error_first() {
    let mut f = insights(0, vec![]);
    Arc::get_mut(&mut f).unwrap().max_limit = 10_000;
    let logs = group(&f);
    let err = logs.start("stats count(*)", 0, 9, 100_000).await.unwrap_err();
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .contains("StartQuery was refused: InvalidParameterException: limit must be"),
        "{err}"
    );
    assert_eq!(
        logs.start("stats count(*)", 0, 9, 10_000).await.unwrap().as_deref(),
        Some("q-1")
    );
}

/// GetQueryResults promises a token while results remain, not rows on every page: an empty page
/// with a token is read on; a token given back unchanged ends the read as an answer that cannot
/// be read whole (the report then reads the records), never as a short complete one.
#[tokio::test]
async fn an_empty_page_with_a_token_is_read_on_and_a_repeated_token_is_no_answer() {
    let mut f = insights(20_001, vec![]);
    Arc::get_mut(&mut f).unwrap().empty = vec![1];
    let QueryState::Complete { rows, .. } = group(&f).results("q-1").await.unwrap() else {
        panic!()
    };
    assert_eq!(rows.len(), 20_001);
    let mut f = insights(20_001, vec![]);
    Arc::get_mut(&mut f).unwrap().repeat = true;
    let state = group(&f).results("q-1").await.unwrap();
    assert!(
        matches!(&state, QueryState::Ended(why) if why.contains("same nextToken twice")),
        "{state:?}"
    );
}
