//! The query ledger's DynamoDB adapter against an in-process endpoint that answers as the
//! DynamoDB API reference says: a Scan reads at most 1 MB a call and returns `LastEvaluatedKey`
//! when there is more, its filter applies after the read (a page can hold no item and still have
//! a `LastEvaluatedKey`); a conditional UpdateItem whose condition fails answers
//! `ConditionalCheckFailedException` (HTTP 400). moto's tables here are too small to page.
#![cfg(feature = "dynamodb")]

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use natrec::adapters::dynamodb::DynamoStore;
use natrec::ports::QueryLedger;
use serde_json::{json, Value};

/// Scan pages of ledger items (execution, query IDs); an empty page stands for 1 MB the filter
/// dropped. UpdateItem: the ledger is gone (its condition fails) when `gone`.
#[derive(Debug)]
struct Table {
    pages: Vec<Vec<(String, Vec<String>)>>,
    gone: bool,
    requests: Mutex<Vec<(String, Value)>>,
}

#[derive(Debug, Clone)]
struct Endpoint(Arc<Table>);

impl HttpConnector for Endpoint {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_string();
        let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap();
        self.0.requests.lock().unwrap().push((target.clone(), body.clone()));
        let (status, out) = if target.ends_with("UpdateItem") && self.0.gone {
            (
                400,
                json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                       "message": "The conditional request failed"}),
            )
        } else if target.ends_with("UpdateItem") {
            (200, json!({}))
        } else {
            let page: usize = body["ExclusiveStartKey"]["pk"]["S"]
                .as_str()
                .map(|k| k.trim_start_matches("page-").parse().unwrap())
                .unwrap_or(0);
            let items: Vec<Value> = self.0.pages[page]
                .iter()
                .map(|(e, ids)| {
                    json!({"pk": {"S": format!("queries#{e}")}, "query_execution": {"S": e},
                           "query_ids": {"SS": ids}, "expires_at": {"N": "1795604400"}})
                })
                .collect();
            let mut out = json!({"Items": items, "Count": items.len(), "ScannedCount": 1000});
            if page + 1 < self.0.pages.len() {
                out["LastEvaluatedKey"] = json!({"pk": {"S": format!("page-{}", page + 1)}});
            }
            (200, out)
        };
        HttpConnectorFuture::ready(Ok(HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(out.to_string()),
        )))
    }
}

impl HttpClient for Endpoint {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn store(table: &Arc<Table>) -> DynamoStore {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .http_client(SharedHttpClient::new(Endpoint(table.clone())))
        .build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t")
}

#[tokio::test]
async fn every_ledger_is_read_from_every_scan_page_including_empty_filtered_ones() {
    let table = Arc::new(Table {
        pages: vec![
            vec![("e1".into(), vec!["q1".into()])],
            vec![], // the filter dropped every item of this page
            vec![("e2".into(), vec!["q3".into(), "q2".into()])],
        ],
        gone: false,
        requests: Mutex::new(vec![]),
    });
    let ledgers = store(&table).all().await.unwrap();
    let got: Vec<(&str, Vec<&str>)> = ledgers
        .iter()
        .map(|l| (l.execution.as_str(), l.query_ids.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(got, [("e1", vec!["q1"]), ("e2", vec!["q2", "q3"])]);
    assert_eq!(ledgers[0].expires_at_s, 1_795_604_400);
    let reqs = table.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3, "every page read, the empty one too");
    assert!(reqs.iter().all(|(_, r)| r["ConsistentRead"] == json!(true)));
}

#[tokio::test]
async fn forgetting_a_query_of_a_ledger_already_gone_is_not_an_error_and_creates_nothing() {
    let table = Arc::new(Table {
        pages: vec![],
        gone: true,
        requests: Mutex::new(vec![]),
    });
    store(&table).forget("e1", "q1").await.unwrap();
    let reqs = table.requests.lock().unwrap();
    let (_, update) = &reqs[0];
    assert_eq!(update["Key"]["pk"]["S"], "queries#e1");
    assert!(
        update["ConditionExpression"]
            .as_str()
            .unwrap()
            .contains("attribute_exists"),
        "UpdateItem creates a missing item unless told not to (API reference, UpdateItem)"
    );
}
