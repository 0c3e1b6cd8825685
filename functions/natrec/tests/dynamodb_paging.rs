//! The DynamoDB adapter's Scan (held locks, for the sweeper) against an in-process endpoint
//! that pages as the DynamoDB API reference says: a Scan reads at most 1 MB per call and
//! returns `LastEvaluatedKey` when there is more; a filter applies after the read, so a page can
//! hold no item and still have a `LastEvaluatedKey`. moto's tables here are too small to page.
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
use natrec::ports::RecordingStore;
use serde_json::{json, Value};

/// Pages of (NAT, execution) lock items; an empty page stands for 1 MB of items the filter dropped.
#[derive(Debug)]
struct PagingTable {
    pages: Vec<Vec<(String, String)>>,
    requests: Mutex<Vec<Value>>,
}

#[derive(Debug, Clone)]
struct Endpoint(Arc<PagingTable>);

impl HttpConnector for Endpoint {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap();
        self.0.requests.lock().unwrap().push(body.clone());
        let page: usize = body["ExclusiveStartKey"]["pk"]["S"]
            .as_str()
            .map(|k| k.trim_start_matches("page-").parse().unwrap())
            .unwrap_or(0);
        let items: Vec<Value> = self.0.pages[page]
            .iter()
            .map(|(nat, e)| json!({"pk": {"S": nat}, "execution": {"S": e}}))
            .collect();
        let mut out = json!({"Items": items, "Count": items.len(), "ScannedCount": 1000});
        if page + 1 < self.0.pages.len() {
            out["LastEvaluatedKey"] = json!({"pk": {"S": format!("page-{}", page + 1)}});
        }
        HttpConnectorFuture::ready(Ok(HttpResponse::new(
            StatusCode::try_from(200).unwrap(),
            SdkBody::from(out.to_string()),
        )))
    }
}

impl HttpClient for Endpoint {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

#[tokio::test]
async fn held_locks_are_read_from_every_scan_page_including_empty_filtered_ones() {
    let nat = |i: u32| format!("nat-{i:017x}");
    let table = Arc::new(PagingTable {
        pages: vec![
            vec![(nat(1), "e1".into())],
            vec![], // the filter dropped every item of this page
            vec![(nat(2), "e2".into()), (nat(3), "e3".into())],
        ],
        requests: Mutex::new(vec![]),
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .http_client(SharedHttpClient::new(Endpoint(table.clone())))
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t");
    let locks = store.held_locks().await.unwrap();
    let execs: Vec<&str> = locks.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(execs, ["e1", "e2", "e3"]);
    let reqs = table.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3, "every page read, the empty one too");
    assert!(reqs.iter().all(|r| r["ConsistentRead"] == json!(true)));
}
