//! The EC2 adapter's lookups for naming sources (issue 12, item 4) against an in-process EC2
//! endpoint that answers as the EC2 API reference says: DescribeNetworkInterfaces filtered by
//! `addresses.private-ip-address` (at most 200 values per filter, "List and filter using the CLI
//! and API"; `MaxResults` 5 to 1,000, a page may hold fewer, `NextToken` for the rest),
//! DescribeVpcs, DescribeSubnets (a subnet shared with the account has its owner's `OwnerId`),
//! DescribeVpcPeeringConnections, DescribeTransitGatewayAttachments and SearchTransitGatewayRoutes
//! (filters required; `MaxResults` at most 1,000). moto answers no route's attachment (README
//! "Emulator gaps"). Runs with natrec's `ec2` feature (as `cargo test --workspace` does).
#![cfg(feature = "ec2")]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use natflow::Inventory;
use natrec::adapters::ec2::Ec2;
use natrec::naming;

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

/// A region: 300 interfaces elsewhere (10.40.x.y), this account's VPC, a peered VPC, a VPC
/// behind a transit gateway and a subnet shared with the account.
#[derive(Debug, Default)]
struct Region1 {
    requests: Mutex<Vec<BTreeMap<String, String>>>,
    /// The transit gateway is shared from another account: its route tables are not this
    /// account's to search.
    foreign_tgw: bool,
}

const PAGE: usize = 40; // a page may hold fewer than MaxResults

fn eni_ip(i: usize) -> String {
    format!("10.40.{}.{}", i / 200, i % 200 + 1)
}

impl Region1 {
    fn answer(&self, body: &str) -> (u16, String) {
        let p: BTreeMap<String, String> = body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        self.requests.lock().unwrap().push(p.clone());
        let action = p["Action"].clone();
        if let Some(m) = p.get("MaxResults") {
            let m: usize = m.parse().unwrap();
            if !(5..=1000).contains(&m) {
                return (400, error("InvalidParameterValue", "MaxResults"));
            }
        }
        let values: Vec<&String> = p
            .iter()
            .filter(|(k, _)| k.starts_with("Filter.1.Value."))
            .map(|(_, v)| v)
            .collect();
        if values.len() > 200 {
            return (400, error("InvalidParameterValue", "more than 200 filter values"));
        }
        let inner = match action.as_str() {
            "DescribeNetworkInterfaces" => {
                assert_eq!(p["Filter.1.Name"], "addresses.private-ip-address");
                let matching: Vec<usize> = (0..300).filter(|i| values.contains(&&eni_ip(*i))).collect();
                let start: usize = p.get("NextToken").map(|t| t.parse().unwrap()).unwrap_or(0);
                let end = (start + PAGE).min(matching.len());
                let items: String = matching[start..end]
                    .iter()
                    .map(|i| {
                        format!(
                            "<item><networkInterfaceId>eni-{i:017x}</networkInterfaceId><vpcId>vpc-0far</vpcId>\
                             <attachment><instanceId>i-{i:017x}</instanceId></attachment>\
                             <privateIpAddressesSet><item><privateIpAddress>{}</privateIpAddress></item>\
                             </privateIpAddressesSet></item>",
                            eni_ip(*i)
                        )
                    })
                    .collect();
                let next = if end < matching.len() {
                    format!("<nextToken>{end}</nextToken>")
                } else {
                    String::new()
                };
                format!("<networkInterfaceSet>{items}</networkInterfaceSet>{next}")
            }
            "DescribeVpcs" => "<vpcSet><item><vpcId>vpc-0own</vpcId><ownerId>111122223333</ownerId>\
                <cidrBlock>10.20.0.0/16</cidrBlock><cidrBlockAssociationSet><item><cidrBlock>10.20.0.0/16</cidrBlock>\
                </item><item><cidrBlock>100.64.0.0/16</cidrBlock></item></cidrBlockAssociationSet>\
                <tagSet><item><key>Name</key><value>prod</value></item></tagSet></item>\
                <item><vpcId>vpc-0tgw</vpcId><ownerId>333344445555</ownerId><cidrBlock>10.50.0.0/16</cidrBlock>\
                <tagSet><item><key>Name</key><value>spoke</value></item></tagSet></item></vpcSet>"
                .to_string(),
            "DescribeSubnets" => "<subnetSet><item><subnetId>subnet-0sh</subnetId><vpcId>vpc-0shared</vpcId>\
                <cidrBlock>10.60.1.0/24</cidrBlock><ownerId>444455556666</ownerId></item></subnetSet>"
                .to_string(),
            "DescribeVpcPeeringConnections" => {
                assert_eq!(p["Filter.1.Name"], "status-code");
                "<vpcPeeringConnectionSet><item><vpcPeeringConnectionId>pcx-0a1</vpcPeeringConnectionId>\
                 <requesterVpcInfo><vpcId>vpc-0own</vpcId><ownerId>111122223333</ownerId>\
                 <cidrBlock>10.20.0.0/16</cidrBlock></requesterVpcInfo>\
                 <accepterVpcInfo><vpcId>vpc-0peer</vpcId><ownerId>222233334444</ownerId>\
                 <cidrBlock>10.30.0.0/16</cidrBlock><cidrBlockSet><item><cidrBlock>10.30.0.0/16</cidrBlock></item>\
                 <item><cidrBlock>10.31.0.0/16</cidrBlock></item></cidrBlockSet></accepterVpcInfo></item>\
                 </vpcPeeringConnectionSet>"
                    .to_string()
            }
            "DescribeTransitGatewayAttachments" => {
                assert_eq!(
                    (p["Filter.1.Name"].as_str(), p["Filter.1.Value.1"].as_str()),
                    ("resource-type", "vpc")
                );
                "<transitGatewayAttachments><item><transitGatewayAttachmentId>tgw-attach-1</transitGatewayAttachmentId>\
                 <transitGatewayId>tgw-0c3</transitGatewayId><resourceOwnerId>333344445555</resourceOwnerId>\
                 <resourceType>vpc</resourceType><resourceId>vpc-0tgw</resourceId><state>available</state>\
                 <association><transitGatewayRouteTableId>tgw-rtb-1</transitGatewayRouteTableId>\
                 <state>associated</state></association></item></transitGatewayAttachments>"
                    .to_string()
            }
            "SearchTransitGatewayRoutes" if self.foreign_tgw => {
                return (
                    400,
                    error(
                        "UnauthorizedOperation",
                        "You are not authorized to perform this operation.",
                    ),
                )
            }
            "SearchTransitGatewayRoutes" => {
                // Filters are required (API reference).
                if !p.contains_key("Filter.1.Name") || p["TransitGatewayRouteTableId"] != "tgw-rtb-1" {
                    return (400, error("MissingParameter", "Filter"));
                }
                "<routeSet><item><destinationCidrBlock>10.50.0.0/16</destinationCidrBlock><transitGatewayAttachments>\
                 <item><resourceId>vpc-0tgw</resourceId><transitGatewayAttachmentId>tgw-attach-1\
                 </transitGatewayAttachmentId><resourceType>vpc</resourceType></item></transitGatewayAttachments>\
                 <type>propagated</type><state>active</state></item></routeSet>\
                 <additionalRoutesAvailable>false</additionalRoutesAvailable>"
                    .to_string()
            }
            other => return (400, error("InvalidAction", other)),
        };
        (
            200,
            format!(
                "<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>\
                 {inner}</{action}Response>"
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
struct Endpoint(Arc<Region1>);

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

fn adapter(fake: Arc<Region1>) -> Ec2 {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .http_client(SharedHttpClient::new(Endpoint(fake)))
        .build();
    Ec2::new(aws_sdk_ec2::Client::from_conf(config))
}

#[tokio::test]
async fn unnamed_sources_are_found_by_address_and_by_the_networks_the_account_sees() {
    let fake = Arc::new(Region1::default());
    let ec2 = adapter(fake.clone());
    let mut addrs: Vec<IpAddr> = (0..300).map(|i| eni_ip(i).parse().unwrap()).collect();
    for a in [
        "10.30.4.17",
        "10.31.0.9",
        "10.50.9.9",
        "10.60.1.8",
        "100.64.3.3",
        "10.70.0.1",
    ] {
        addrs.push(a.parse().unwrap());
    }
    let mut inv = Inventory::default();
    let looked = naming::look_up(&mut inv, &addrs, &ec2).await;
    assert!(looked.errors.is_empty(), "{looked:?}");
    assert_eq!((looked.by_interface, looked.by_network), (300, 5));
    assert_eq!(inv.name(&addrs[299]).unwrap(), format!("i-{:017x} 10.40.1.100", 299));
    let name = |s: &str| inv.name(&s.parse().unwrap()).unwrap();
    assert_eq!(
        name("10.30.4.17"),
        "address in VPC vpc-0peer 10.30.0.0/16, account 222233334444, peering pcx-0a1 (10.30.4.17)"
    );
    assert!(name("10.31.0.9").starts_with("address in VPC vpc-0peer 10.31.0.0/16, account 222233334444"));
    assert_eq!(
        name("10.50.9.9"),
        "address in VPC vpc-0tgw (spoke) 10.50.0.0/16, account 333344445555, transit gateway tgw-0c3 (10.50.9.9)"
    );
    assert_eq!(
        name("10.60.1.8"),
        "address in VPC vpc-0shared 10.60.1.0/24, account 444455556666, subnet subnet-0sh (10.60.1.8)"
    );
    assert_eq!(
        name("100.64.3.3"),
        "address in VPC vpc-0own (prod) 100.64.0.0/16, account 111122223333 (100.64.3.3)"
    );
    assert_eq!(name("10.70.0.1"), "unknown private address (10.70.0.1)");
    // By address: 306 addresses in two filters (200 + 106 values), each followed to its last page
    // (300 interfaces found, 40 a page), every request paginated.
    let reqs: Vec<_> = fake
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r["Action"] == "DescribeNetworkInterfaces")
        .cloned()
        .collect();
    let firsts: Vec<usize> = reqs
        .iter()
        .filter(|r| !r.contains_key("NextToken"))
        .map(|r| r.keys().filter(|k| k.starts_with("Filter.1.Value.")).count())
        .collect();
    assert_eq!(firsts, vec![200, 106]);
    assert_eq!(reqs.len(), 5 + 3, "200 found: 5 pages; 100 found: 3 pages");
    assert!(reqs
        .iter()
        .all(|r| r.get("MaxResults").map(String::as_str) == Some("1000")));
}

/// A transit gateway shared from another account: this account cannot search its route tables.
/// The refusal costs those routes only: peered VPCs and shared subnets are still named.
#[tokio::test]
async fn a_transit_gateway_whose_routes_cannot_be_read_leaves_the_other_networks_named() {
    let fake = Arc::new(Region1 {
        foreign_tgw: true,
        ..Default::default()
    });
    let ec2 = adapter(fake);
    let addrs: Vec<IpAddr> = ["10.30.4.17", "10.50.9.9", "10.60.1.8"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let mut inv = Inventory::default();
    let looked = naming::look_up(&mut inv, &addrs, &ec2).await;
    assert!(looked.errors.is_empty(), "{looked:?}");
    let name = |s: &str| inv.name(&s.parse().unwrap()).unwrap();
    assert!(name("10.30.4.17").contains("peering pcx-0a1"));
    assert!(name("10.60.1.8").contains("subnet subnet-0sh"));
    // Without its routes, the spoke is named only as far as DescribeVpcs shows it.
    assert_eq!(
        name("10.50.9.9"),
        "address in VPC vpc-0tgw (spoke) 10.50.0.0/16, account 333344445555 (10.50.9.9)"
    );
}
