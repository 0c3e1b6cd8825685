//! Every source named (issue 12, item 4): the end inventory snapshot, the merged snapshots, the
//! lookup of the sources still unnamed (one paginated DescribeNetworkInterfaces call per 200
//! addresses, against a fake EC2 that pages and limits filters as its API reference says), the
//! networks of other VPCs (peering, transit gateway, shared subnet) and the report's text.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

mod fakes;

use async_trait::async_trait;
use fakes::{FakeRegion, NoQueries};
use natflow::inventory::Network;
use natflow::{Eni, Inventory};
use natrec::naming;
use natrec::pacing::Clock;
use natrec::ports::*;
use natrec::recording::{self, FinishInput};
use natrec::report::{self, ReportInput, ReportSettings};
use natrec::Result;
use serde_json::json;

const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:natrec-x:rec-1";
const T0: i64 = 1_790_000_000;

#[derive(Default)]
struct FakeArchive(Mutex<BTreeMap<String, Vec<String>>>);

#[async_trait]
impl Archive for FakeArchive {
    async fn put(&self, stream: &str, lines: &[String]) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .entry(stream.into())
            .or_default()
            .extend_from_slice(lines);
        Ok(())
    }
    async fn get(&self, stream: &str) -> Result<Vec<String>> {
        Ok(self.0.lock().unwrap().get(stream).cloned().unwrap_or_default())
    }
}

/// The VPC's interfaces now (DescribeNetworkInterfaces by vpc-id).
struct Vpc(Vec<Eni>);

#[async_trait]
impl NetworkInventory for Vpc {
    async fn interfaces(&self, vpc_id: &str) -> Result<Vec<Eni>> {
        Ok(self
            .0
            .iter()
            .filter(|e| e.vpc_id.as_deref() == Some(vpc_id))
            .cloned()
            .collect())
    }
}

struct Records(Vec<String>);

#[async_trait]
impl FlowRecords for Records {
    async fn page(&self, _: &RecordQuery, _: Option<&str>, _: std::time::Duration) -> Result<RecordPage> {
        Ok(RecordPage {
            records: self
                .0
                .iter()
                .map(|m| LogRecord {
                    timestamp_ms: T0 * 1000 + 60_000,
                    message: m.clone(),
                })
                .collect(),
            next_token: None,
        })
    }
}

struct Metrics;

#[async_trait]
impl NatMetrics for Metrics {
    async fn bytes(&self, _: &natrec::nat::NatGatewayId, _: i64, _: i64) -> Result<NatBytes> {
        Ok(NatBytes {
            upload: 1_000_000,
            download: 1_000_000,
        })
    }
}

struct FixedClock;

#[async_trait]
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        (T0 + 2000) * 1000
    }
    async fn sleep(&self, _: std::time::Duration) {}
    fn random(&self) -> f64 {
        0.5
    }
}

fn eni(id: &str, ip: &str, desc: &str) -> Eni {
    Eni {
        interface_id: id.into(),
        private_ips: vec![ip.into()],
        vpc_id: Some("vpc-1".into()),
        description: Some(desc.into()),
        interface_type: Some("interface".into()),
        ..Default::default()
    }
}

fn lambda(id: &str, ip: &str, function: &str) -> Eni {
    let mut e = eni(
        id,
        ip,
        &format!("AWS Lambda VPC ENI-{function}-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"),
    );
    e.interface_type = Some("lambda".into());
    e
}

fn task(id: &str, ip: &str, service: &str) -> Eni {
    let mut e = eni(id, ip, "arn:aws:ecs:us-east-1:123456789012:attachment/x");
    e.tags.insert("aws:ecs:serviceName".into(), service.into());
    e
}

fn net(cidr: &str, vpc: &str, name: Option<&str>, owner: &str, via: &str) -> Network {
    Network {
        cidr: cidr.parse().unwrap(),
        vpc_id: Some(vpc.into()),
        name: name.map(str::to_string),
        owner: Some(owner.into()),
        via: Some(via.into()),
    }
}

fn state(status: &str) -> serde_json::Value {
    json!({
        "status": status, "nat_id": "nat-0123456789abcdef0", "alarm_name": "a", "execution": EXEC,
        "vpc_id": "vpc-1", "interfaces": ["eni-0aaaaaaaaaaaaaaa1"],
        "started_at": chrono::DateTime::from_timestamp(T0, 0).unwrap(),
        "recording_time": 900, "log_group": "/natrec/s/flow-logs",
        "inventory": {"stream": "rec-1/inventory", "interfaces": 1},
    })
}

#[tokio::test]
async fn the_finish_step_snapshots_the_vpc_again_into_its_own_stream() {
    let archive = FakeArchive::default();
    let vpc = Vpc(vec![task("eni-2", "10.20.0.61", "web")]);
    let input = FinishInput {
        execution: EXEC.into(),
        state: state("recording"),
    };
    assert_eq!(
        recording::snapshot_inventory_at_end(&input, &vpc, &archive).await,
        Some(1)
    );
    let stored = archive.get("rec-1/inventory-end").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].contains("eni-2"));
    // A recording that did not record (joined another one, limit reached) takes none.
    let joined = FinishInput {
        execution: "arn:aws:states:us-east-1:123456789012:execution:natrec-x:rec-2".into(),
        state: state("already_recording"),
    };
    assert_eq!(
        recording::snapshot_inventory_at_end(&joined, &vpc, &archive).await,
        None
    );
    assert!(archive.get("rec-2/inventory-end").await.unwrap().is_empty());
}

struct Refused;

#[async_trait]
impl NetworkInventory for Refused {
    async fn interfaces(&self, _: &str) -> Result<Vec<Eni>> {
        Err(fakes::transient("DescribeNetworkInterfaces"))
    }
}

#[tokio::test]
async fn an_end_snapshot_that_fails_is_no_error_and_stores_nothing() {
    let archive = FakeArchive::default();
    let input = FinishInput {
        execution: EXEC.into(),
        state: state("recording"),
    };
    assert_eq!(
        recording::snapshot_inventory_at_end(&input, &Refused, &archive).await,
        None
    );
    assert!(archive.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_lookup_sends_at_most_200_addresses_per_call_and_follows_every_page() {
    // 450 unnamed sources, each held by an interface elsewhere in the region (another VPC).
    let ips: Vec<IpAddr> = (0..450)
        .map(|i| format!("10.40.{}.{}", i / 200, i % 200 + 1).parse().unwrap())
        .collect();
    let region = FakeRegion {
        interfaces: ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let mut e = eni(&format!("eni-r{i}"), &ip.to_string(), "");
                e.instance_id = Some(format!("i-{i}"));
                e
            })
            .collect(),
        page: 7,
        ..Default::default()
    };
    let mut inv = Inventory::default();
    let looked = naming::look_up(&mut inv, &ips, &region).await;
    assert_eq!(looked.by_interface, 450, "{looked:?}");
    assert!(looked.errors.is_empty());
    let calls = region.calls.lock().unwrap();
    // Three filters (200 + 200 + 50 values), each paged 7 interfaces at a time to its end.
    let firsts: Vec<usize> = calls.iter().filter(|c| c.1.is_none()).map(|c| c.0.len()).collect();
    assert_eq!(firsts, vec![200, 200, 50]);
    assert_eq!(calls.len(), 29 + 29 + 8);
    assert!(calls.iter().all(|c| c.0.len() <= 200));
    assert_eq!(inv.name(&ips[449]).unwrap(), "i-449 10.40.2.50");
    // Everything was named by interface: the networks were not needed.
    assert_eq!(*region.network_calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn sources_in_other_vpcs_are_named_by_vpc_and_account_and_the_rest_said_unknown() {
    let region = FakeRegion {
        interfaces: vec![lambda("eni-9", "10.20.3.3", "late-worker")],
        networks: vec![
            net("10.20.0.0/16", "vpc-1", Some("prod"), "123456789012", "this account"),
            net(
                "10.30.0.0/16",
                "vpc-0peer",
                Some("shared-services"),
                "222233334444",
                "peering pcx-0a1",
            ),
            net(
                "10.50.0.0/16",
                "vpc-0tgw",
                None,
                "333344445555",
                "transit gateway tgw-0c3",
            ),
            net(
                "10.60.1.0/24",
                "vpc-0own",
                Some("platform"),
                "444455556666",
                "subnet subnet-0s1",
            ),
        ],
        ..Default::default()
    };
    let addrs: Vec<IpAddr> = ["10.20.3.3", "10.30.4.17", "10.50.9.9", "10.60.1.8", "10.70.0.1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let mut inv = Inventory::default();
    let looked = naming::look_up(&mut inv, &addrs, &region).await;
    assert_eq!((looked.unnamed, looked.by_interface, looked.by_network), (5, 1, 3));
    let names: Vec<String> = addrs.iter().map(|ip| inv.name(ip).unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "Lambda late-worker 10.20.3.3".to_string(),
            "address in VPC vpc-0peer (shared-services) 10.30.0.0/16, account 222233334444, peering pcx-0a1 (10.30.4.17)".into(),
            "address in VPC vpc-0tgw 10.50.0.0/16, account 333344445555, transit gateway tgw-0c3 (10.50.9.9)".into(),
            "address in VPC vpc-0own (platform) 10.60.1.0/24, account 444455556666, subnet subnet-0s1 (10.60.1.8)".into(),
            "unknown private address (10.70.0.1)".into(),
        ]
    );
    // The networks could not be listed: said, and the addresses stay unknown, never guessed.
    let failing = FakeRegion {
        fail_networks: true,
        ..Default::default()
    };
    let mut inv = Inventory::default();
    let looked = naming::look_up(&mut inv, &addrs[1..2], &failing).await;
    assert_eq!(looked.by_network, 0);
    assert!(looked.errors[0].starts_with("networks: "), "{looked:?}");
    assert_eq!(inv.name(&addrs[1]).unwrap(), "unknown private address (10.30.4.17)");
}

fn flow(local: &str, remote: &str, up: u64) -> Vec<String> {
    // As a zonal NAT's interface logs a flow's first half (recorder's format, v9).
    vec![format!(
        "9 123456789012 eni-0aaaaaaaaaaaaaaa1 {local} 10.20.0.10 40000 443 6 10 {up} {s} {e} ACCEPT OK \
         vpc-1 subnet-1 use1-az1 ingress 8 {local} {remote} - - 19 IPv4 -",
        s = T0 + 60,
        e = T0 + 120
    )]
}

#[tokio::test]
async fn the_report_names_sources_from_both_snapshots_and_the_lookup() {
    let archive = FakeArchive::default();
    let line = |e: &Eni| serde_json::to_string(e).unwrap();
    let mut nat = eni(
        "eni-0aaaaaaaaaaaaaaa1",
        "10.20.0.10",
        "Interface for NAT Gateway nat-0123456789abcdef0",
    );
    nat.interface_type = Some("nat_gateway".into());
    // At the start the Lambda holds 10.20.0.61; by the end an ECS task does.
    archive
        .put(
            "rec-1/inventory",
            &[line(&nat), line(&lambda("eni-1", "10.20.0.61", "ingest"))],
        )
        .await
        .unwrap();
    let vpc = Vpc(vec![nat.clone(), task("eni-2", "10.20.0.61", "web")]);
    let finish = FinishInput {
        execution: EXEC.into(),
        state: state("recording"),
    };
    recording::snapshot_inventory_at_end(&finish, &vpc, &archive).await;
    let region = FakeRegion {
        networks: vec![net(
            "10.30.0.0/16",
            "vpc-0peer",
            Some("shared-services"),
            "222233334444",
            "peering pcx-0a1",
        )],
        ..Default::default()
    };
    let mut lines = flow("10.20.0.61", "203.0.113.9", 3_000_000);
    lines.extend(flow("10.30.4.17", "203.0.113.9", 2_000_000));
    lines.extend(flow("10.20.7.7", "198.51.100.7", 1_000_000));
    let mut s = state("recording");
    s["finished"] = json!({"subject": "NAT spike recorded", "message": "facts",
        "ended_at": chrono::DateTime::from_timestamp(T0 + 900, 0).unwrap()});
    let input: ReportInput = serde_json::from_value(json!({"execution": EXEC, "state": s})).unwrap();
    let settings = ReportSettings {
        region: "us-east-1".into(),
        reports_log_group: "/natrec/s/reports".into(),
        max_bytes: 1 << 30,
        reads_per_second: 2.0,
        prices: None,
        top: 10,
        stack_name: "s".into(),
        threshold: None,
        aggregation: report::Aggregation::Streaming,
    };
    let notice = report::build_with_lookup(
        input,
        &settings,
        (T0 + 2900) * 1000,
        &FixedClock,
        &archive,
        &Records(lines),
        &NoQueries,
        &Metrics,
        Some(&region),
    )
    .await
    .unwrap();
    let m = &notice.message;
    assert!(
        m.contains("1. Lambda ingest or ECS task web (eni-2) 10.20.0.61 -> 203.0.113.9: 3.0 MB"),
        "{m}"
    );
    assert!(
        m.contains(
            "2. address in VPC vpc-0peer (shared-services) 10.30.0.0/16, account 222233334444, peering pcx-0a1 \
             (10.30.4.17) -> 203.0.113.9: 2.0 MB"
        ),
        "{m}"
    );
    assert!(
        m.contains("3. unknown private address (10.20.7.7) -> 198.51.100.7: 1.0 MB"),
        "{m}"
    );
    assert!(
        m.contains(
            "Names: from the inventory snapshot taken at the start (log group /natrec/s/reports, stream \
             rec-1/inventory) and the one taken at the end (stream rec-1/inventory-end); 2 source(s) the \
             snapshots did not name looked up across the region: 0 named by interface, 1 by network, 1 unknown."
        ),
        "{m}"
    );
    // Only the two unnamed sources were looked up, in one call: not the region's inventory.
    let calls = region.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let mut asked = calls[0].0.clone();
    asked.sort();
    assert_eq!(asked, vec!["10.20.7.7".to_string(), "10.30.4.17".into()]);
}
