//! The EC2 adapter against an in-process EC2 endpoint that pages as the EC2 API reference says
//! (moto answers every Describe call in one page, whatever `MaxResults` says: README "Emulator
//! gaps"). Runs when natrec is built with its `ec2` feature (as `cargo test --workspace` does).
//!
//! EC2 API reference: DescribeNetworkInterfaces and DescribeFlowLogs take `MaxResults` 5 to
//! 1,000 and answer at most that many items with a `nextToken` for the rest;
//! DescribeNetworkInterfaces: "We strongly recommend using only paginated requests.
//! Unpaginated requests are susceptible to throttling and timeouts."
#![cfg(feature = "ec2")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use natrec::adapters::ec2::Ec2;
use natrec::ports::{FlowLogs, NetworkInventory};

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A paging EC2: `enis` interfaces in one VPC, `flow_logs` flow logs tagged natrec:execution=e.
#[derive(Debug, Default)]
struct PagingEc2 {
    enis: usize,
    flow_logs: usize,
    /// Every request: its parameters.
    requests: Mutex<Vec<BTreeMap<String, String>>>,
}

impl PagingEc2 {
    fn page(&self, params: &BTreeMap<String, String>, total: usize) -> Result<(usize, usize, Option<String>), String> {
        let start: usize = params.get("NextToken").map(|t| t.parse().unwrap()).unwrap_or(0);
        let max = match params.get("MaxResults") {
            None => total, // unpaginated: everything at once (if it does not time out)
            Some(m) => {
                let m: usize = m.parse().unwrap();
                if !(5..=1000).contains(&m) {
                    return Err(format!("MaxResults {m} is not between 5 and 1000"));
                }
                m
            }
        };
        let end = (start + max).min(total);
        Ok((start, end, (end < total).then(|| end.to_string())))
    }

    fn answer(&self, body: &str) -> (u16, String) {
        let params: BTreeMap<String, String> = body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        self.requests.lock().unwrap().push(params.clone());
        let action = params["Action"].clone();
        let (total, set) = match action.as_str() {
            "DescribeNetworkInterfaces" => (self.enis, "networkInterfaceSet"),
            "DescribeFlowLogs" => (self.flow_logs, "flowLogSet"),
            other => return (400, error("InvalidAction", other)),
        };
        let (start, end, next) = match self.page(&params, total) {
            Ok(p) => p,
            Err(m) => return (400, error("InvalidParameterValue", &m)),
        };
        let items: String = (start..end)
            .map(|i| match action.as_str() {
                "DescribeNetworkInterfaces" => format!(
                    "<item><networkInterfaceId>eni-{i:017x}</networkInterfaceId><vpcId>vpc-1</vpcId>\
                     <subnetId>subnet-1</subnetId><privateIpAddressesSet><item><privateIpAddress>10.0.{}.{}\
                     </privateIpAddress></item></privateIpAddressesSet></item>",
                    i / 250,
                    i % 250
                ),
                _ => format!(
                    "<item><flowLogId>fl-{i:017x}</flowLogId><deliverLogsStatus>{}</deliverLogsStatus>{}\
                     <tagSet><item><key>natrec:execution</key><value>e</value></item></tagSet></item>",
                    if i == 7 { "FAILED" } else { "SUCCESS" },
                    if i == 7 {
                        "<deliverLogsErrorMessage>Rate limited</deliverLogsErrorMessage>"
                    } else {
                        ""
                    }
                ),
            })
            .collect();
        let next = next.map(|t| format!("<nextToken>{t}</nextToken>")).unwrap_or_default();
        (
            200,
            format!(
                "<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>\
                 <{set}>{items}</{set}>{next}</{action}Response>"
            ),
        )
    }
}

fn error(code: &str, message: &str) -> String {
    format!(
        "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>\
         <RequestID>r</RequestID></Response>"
    )
}

#[derive(Debug, Clone)]
struct Endpoint(Arc<PagingEc2>);

impl HttpConnector for Endpoint {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = std::str::from_utf8(request.body().bytes().unwrap_or_default())
            .unwrap()
            .to_string();
        let (status, xml) = self.0.answer(&body);
        HttpConnectorFuture::ready(Ok(HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(xml),
        )))
    }
}

impl HttpClient for Endpoint {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn adapter(fake: Arc<PagingEc2>) -> Ec2 {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .http_client(SharedHttpClient::new(Endpoint(fake)))
        .build();
    Ec2::new(aws_sdk_ec2::Client::from_conf(config))
}

fn requests(fake: &PagingEc2, action: &str) -> Vec<BTreeMap<String, String>> {
    fake.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r["Action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_vpc_with_5000_interfaces_is_snapshotted_whole_with_paginated_requests_only() {
    let fake = Arc::new(PagingEc2 {
        enis: 5000,
        ..Default::default()
    });
    let enis = adapter(fake.clone()).interfaces("vpc-1").await.unwrap();
    assert_eq!(enis.len(), 5000, "every page followed");
    assert_eq!(enis[4999].interface_id, format!("eni-{:017x}", 4999));
    let reqs = requests(&fake, "DescribeNetworkInterfaces");
    assert_eq!(reqs.len(), 5, "1,000 a page");
    for r in &reqs {
        assert_eq!(
            r.get("MaxResults").map(String::as_str),
            Some("1000"),
            "unpaginated request: {r:?}"
        );
        assert_eq!(r.get("Filter.1.Name").map(String::as_str), Some("vpc-id"));
    }
}

#[tokio::test]
async fn every_flow_log_of_an_execution_is_found_across_pages_with_its_delivery_status() {
    let fake = Arc::new(PagingEc2 {
        flow_logs: 2500,
        ..Default::default()
    });
    let ec2 = adapter(fake.clone());
    let found = ec2.find_tagged("natrec:execution", "e").await.unwrap();
    assert_eq!(found.len(), 2500);
    assert_eq!(found[7].deliver_logs_status.as_deref(), Some("FAILED"));
    assert_eq!(found[7].deliver_logs_error.as_deref(), Some("Rate limited"));
    assert_eq!(found[8].deliver_logs_status.as_deref(), Some("SUCCESS"));
    let reqs = requests(&fake, "DescribeFlowLogs");
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter()
            .all(|r| r.get("MaxResults").map(String::as_str) == Some("1000")),
        "{reqs:?}"
    );
    assert_eq!(
        reqs[0].get("Filter.1.Name").map(String::as_str),
        Some("tag:natrec:execution")
    );

    // Looking up 450 IDs: at most 200 values per filter (EC2 API reference, Filter), all pages.
    let ids: Vec<String> = (0..450).map(|i| format!("fl-{i:017x}")).collect();
    fake.requests.lock().unwrap().clear();
    ec2.existing(&ids).await.unwrap();
    let reqs = requests(&fake, "DescribeFlowLogs");
    assert!(reqs
        .iter()
        .all(|r| r.keys().filter(|k| k.starts_with("Filter.1.Value.")).count() <= 200));
    let asked: usize = reqs
        .iter()
        .filter(|r| !r.contains_key("NextToken"))
        .map(|r| r.keys().filter(|k| k.starts_with("Filter.1.Value.")).count())
        .sum();
    assert_eq!(asked, 450, "every ID asked for");
}
