//! The notice as its reader gets it, rendered from fixed inputs through the real steps (finish's
//! facts, then the report step with its inventory, records and metrics), and the sample in
//! README ("The report: who caused the spike") kept identical to it.
//!
//! After a change to the notice's text: `NATREC_BLESS=1 cargo test -p natrec --test notice`
//! rewrites the README block; review the diff.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

mod fakes;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fakes::NoQueries;
use natrec::advice::Threshold;
use natrec::nat::NatGatewayId;
use natrec::notice::{self, RecordingFacts};
use natrec::pacing::Clock;
use natrec::ports::*;
use natrec::recording::{Delivery, Ending, FinishSettings, Recording, StartStatus};
use natrec::report::{self, ReportInput, ReportNotice, ReportSettings};
use natrec::Result;
use serde_json::json;

const NAT: &str = "nat-0a1b2c3d4e5f60718";
const NAT_ENI: &str = "eni-0aaaaaaaaaaaaaaa1";
const NAT_IP: &str = "10.0.0.10";
const LAMBDA_IP: &str = "10.0.1.87";
const BATCH_IP: &str = "10.0.5.12";
const S3_IP: &str = "52.216.8.9";
const DDB_IP: &str = "3.218.182.10";
const WEB_IP: &str = "203.0.113.9";
const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:natrec-6c7d1f40:alarm-1795860000";
const README_BEGIN: &str = "<!-- sample notice: begin";
const README_END: &str = "<!-- sample notice: end -->";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct FixedClock;

#[async_trait]
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        t("2026-11-28T10:22:00Z").timestamp_millis()
    }
    async fn sleep(&self, _: Duration) {}
    fn random(&self) -> f64 {
        0.5
    }
}

#[derive(Default)]
struct Archive(Mutex<BTreeMap<String, Vec<String>>>);

#[async_trait]
impl natrec::ports::Archive for Archive {
    async fn put(&self, stream: &str, lines: &[String]) -> Result<()> {
        self.0.lock().unwrap().insert(stream.into(), lines.to_vec());
        Ok(())
    }
    async fn get(&self, stream: &str) -> Result<Vec<String>> {
        Ok(self.0.lock().unwrap().get(stream).cloned().unwrap_or_default())
    }
}

/// One page holding every record (FilterLogEvents without a nextToken).
struct Records(Vec<String>);

#[async_trait]
impl FlowRecords for Records {
    async fn page(&self, q: &RecordQuery, _: Option<&str>, _: Duration) -> Result<RecordPage> {
        Ok(RecordPage {
            records: self
                .0
                .iter()
                .map(|m| LogRecord {
                    timestamp_ms: q.start_ms + 180_000,
                    message: m.clone(),
                })
                .collect(),
            next_token: None,
        })
    }
}

struct Metrics(NatBytes);

#[async_trait]
impl NatMetrics for Metrics {
    async fn bytes(&self, _: &NatGatewayId, _: i64, _: i64) -> Result<NatBytes> {
        Ok(self.0)
    }
}

/// A row of the recorder's format (version 9) on the NAT's interface.
fn row(src: &str, dst: &str, psrc: &str, pdst: &str, bytes: u64, src_svc: &str, dst_svc: &str) -> String {
    format!(
        "9 123456789012 {NAT_ENI} {src} {dst} 40000 443 6 1000 {bytes} 1795860060 1795860120 ACCEPT OK \
         vpc-0example subnet-0public1 use1-az1 ingress 8 {psrc} {pdst} {src_svc} {dst_svc} 19 IPv4 -"
    )
}

/// A flow through a zonal NAT as its interface logs it: each direction twice, once on each side.
fn flow(local: &str, remote: &str, up: u64, down: u64, svc: &str) -> Vec<String> {
    vec![
        row(local, NAT_IP, local, remote, up, "-", svc),
        row(NAT_IP, remote, NAT_IP, remote, up, "-", svc),
        row(remote, NAT_IP, remote, NAT_IP, down, svc, "-"),
        row(NAT_IP, local, remote, local, down, svc, "-"),
    ]
}

fn inventory() -> Vec<String> {
    [
        json!({"interface_id": NAT_ENI, "private_ips": [NAT_IP], "subnet_id": "subnet-0public1",
               "availability_zone": "us-east-1a", "availability_zone_id": "use1-az1",
               "interface_type": "nat_gateway", "description": format!("Interface for NAT Gateway {NAT}")}),
        json!({"interface_id": "eni-0bbbbbbbbbbbbbbb2", "private_ips": [LAMBDA_IP], "subnet_id": "subnet-0private1",
               "availability_zone": "us-east-1a", "availability_zone_id": "use1-az1", "interface_type": "lambda",
               "description": "AWS Lambda VPC ENI-thumbnailer-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"}),
        json!({"interface_id": "eni-0ccccccccccccccc3", "private_ips": [BATCH_IP], "subnet_id": "subnet-0private2",
               "availability_zone": "us-east-1b", "availability_zone_id": "use1-az2",
               "instance_id": "i-0123456789abcdef0", "tags": {"Name": "batch-worker"}}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

fn recording() -> Recording {
    Recording {
        status: StartStatus::Recording,
        nat_id: NatGatewayId::parse(NAT).unwrap(),
        nat_name: Some("prod-egress-a".into()),
        alarm_name: format!("natrec-natgw-{NAT}"),
        execution: EXEC.into(),
        vpc_id: Some("vpc-0example".into()),
        interfaces: vec![NAT_ENI.into()],
        flow_log_ids: vec!["fl-0123456789abcdef0".into()],
        started_at: t("2026-11-28T10:00:00Z"),
        recording_time: 900,
        log_group: "/natrec/natrec/flow-logs".into(),
        notice: None,
        report_delay: 600,
        inventory: Some(natrec::recording::InventorySnapshot {
            stream: "alarm-1795860000/inventory".into(),
            interfaces: 3,
            error: None,
        }),
    }
}

/// The notice of a 12-minute recording: a Lambda function sending to S3, a batch instance in
/// another AZ reaching an internet host, a little DynamoDB.
async fn sample_notice() -> ReportNotice {
    notice_of(Ending::AlarmOk, vec![]).await
}

async fn notice_of(ending: Ending, failed: Vec<natrec::recording::FailedDelivery>) -> ReportNotice {
    let rec = recording();
    let ended_at = t("2026-11-28T10:12:00Z");
    let traffic = NatBytes {
        upload: 4_550_000_000,
        download: 650_000_000,
    };
    let finish_settings = FinishSettings {
        stack_name: "natrec".into(),
        region: "us-east-1".into(),
        log_group: rec.log_group.clone(),
        query_names: vec!["natrec/natrec/nat-flows".into(), "natrec/natrec/top-talkers".into()],
    };
    let delivery = Delivery { checked: 1, failed };
    let finished = notice::recorded(&RecordingFacts {
        settings: &finish_settings,
        recording: &rec,
        ending: ending.clone(),
        ended_at,
        traffic: Some(traffic),
        delivery: &delivery,
    });
    let mut state = serde_json::to_value(&rec).unwrap();
    // What FinishRecording's ResultSelector passes on (statemachine/recorder.asl.json).
    state["finished"] = json!({
        "subject": finished.subject, "message": finished.message, "ended_at": ended_at, "ending": ending,
    });
    let input: ReportInput = serde_json::from_value(json!({"execution": EXEC, "state": state})).unwrap();
    let archive = Archive::default();
    archive
        .0
        .lock()
        .unwrap()
        .insert("alarm-1795860000/inventory".into(), inventory());
    let mut lines = flow(LAMBDA_IP, S3_IP, 3_100_000_000, 150_000_000, "S3");
    lines.extend(flow(BATCH_IP, WEB_IP, 1_000_000_000, 300_000_000, "-"));
    lines.extend(flow(LAMBDA_IP, DDB_IP, 250_000_000, 50_000_000, "DYNAMODB"));
    let settings = ReportSettings {
        region: "us-east-1".into(),
        reports_log_group: "/natrec/natrec/reports".into(),
        max_bytes: 1 << 30,
        reads_per_second: 2.0,
        prices: None,
        top: 10,
        stack_name: "natrec".into(),
        threshold: Some(Threshold {
            bytes: 100_000_000,
            period_s: 60,
        }),
        aggregation: report::Aggregation::Streaming,
    };
    let deadline = FixedClock.now_ms() + 900_000;
    report::build(
        input,
        &settings,
        deadline,
        &FixedClock,
        &archive,
        &Records(lines),
        &NoQueries,
        &Metrics(traffic),
    )
    .await
    .unwrap()
}

fn rendered(n: &ReportNotice) -> String {
    format!("Subject: {}\n\n{}", n.subject, n.message)
}

#[tokio::test]
async fn the_sample_notice_answers_in_its_subject_and_closes_with_what_to_do() {
    let n = sample_notice().await;
    assert_eq!(
        n.subject,
        "NAT spike on prod-egress-a: 4.8 GB, 67% Lambda thumbnailer -> S3"
    );
    let m = &n.message;
    assert!(
        m.starts_with(&format!("Who caused the spike on prod-egress-a ({NAT}):\n")),
        "{m}"
    );
    let next = m.find("What to do next:\n").expect(m);
    let facts = m.find("Flow logs were recorded while").expect(m);
    assert!(
        next < facts,
        "the actions close the report, before the recording's facts"
    );
    for needle in [
        "--service-name com.amazonaws.us-east-1.s3 --route-table-ids <route table IDs>",
        "--service-name com.amazonaws.us-east-1.dynamodb",
        "The route tables of the subnets that sent it (subnet-0private1): a subnet listed uses the route table \
         next to it, a subnet not listed uses the VPC's main route table (the row marked main):",
        "aws ec2 describe-route-tables --region us-east-1 --filters Name=vpc-id,Values=vpc-0example --query \
         'RouteTables[].Associations[] | [?contains(`[\"subnet-0private1\"]`, SubnetId) || Main].[SubnetId || `\"main\"`, \
         RouteTableId]' --output text\n",
        "aws ec2 modify-vpc-endpoint --region us-east-1 --vpc-endpoint-id <endpoint ID> --add-route-table-ids",
        // 5.2 GB in 12 minutes: 433.3 MB per 60 s on average, not the doubled 100 MB threshold.
        "on average 433.3 MB per 60 s",
        "sam deploy --region us-east-1 --stack-name natrec --parameter-overrides Threshold=500000000\n",
        "sam delete --region us-east-1 --stack-name natrec)",
        &format!(
            "natflow analyze --region us-east-1 --log-group /natrec/natrec/flow-logs --start 2026-11-28T09:58:00Z \
             --end 2026-11-28T10:14:00Z --streams {NAT_ENI}\n"
        ),
        "use1-az2 -> NAT in use1-az1",
    ] {
        assert!(m.contains(needle), "notice lacks {needle:?}:\n{m}");
    }
    let natflow = m
        .lines()
        .find(|l| l.trim_start().starts_with("natflow analyze"))
        .unwrap();
    let start_query = m.lines().find(|l| l.starts_with("aws logs start-query")).unwrap();
    assert!(natflow.trim().len() < 200 && natflow.len() < start_query.len());
}

/// The report step's subject keeps what the finish step's said: records not delivered, a
/// recording ended by its time limit.
#[tokio::test]
async fn the_subject_still_says_undelivered_records_and_the_time_limit() {
    let failed = vec![natrec::recording::FailedDelivery {
        flow_log_id: "fl-0123456789abcdef0".into(),
        error: "Access error".into(),
    }];
    let n = notice_of(Ending::TimeLimit, failed).await;
    assert_eq!(
        n.subject,
        "NAT spike on prod-egress-a: 4.8 GB, 67% Lambda thumbna... -> S3 (time limit, records NOT delivered)"
    );
    // Said first, before any figure of the report it makes wrong, and once.
    assert!(
        n.message
            .starts_with("FLOW-LOG RECORDS WERE NOT DELIVERED: 1 of the recording's 1 flow log(s) reported"),
        "{}",
        n.message
    );
    assert_eq!(n.message.matches("FLOW-LOG RECORDS WERE NOT DELIVERED").count(), 1);
    assert!(n
        .message
        .contains("does not mean the NAT was quiet.\n\nWho caused the spike on prod-egress-a"));
    assert!(n.message.contains("no new recording starts until it returns to OK"));
}

#[tokio::test]
async fn the_readme_sample_is_what_the_code_produces() {
    let text = rendered(&sample_notice().await);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let begin = readme
        .find(README_BEGIN)
        .expect("README has the sample notice's begin marker");
    let body_start = readme[begin..]
        .find("```text\n")
        .map(|i| begin + i + "```text\n".len())
        .unwrap();
    let body_end = readme[body_start..].find("```\n").map(|i| body_start + i).unwrap();
    assert!(readme[body_end..].contains(README_END));
    if std::env::var_os("NATREC_BLESS").is_some() {
        let updated = format!("{}{}{}", &readme[..body_start], text, &readme[body_end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert!(
        readme[body_start..body_end] == text,
        "README's sample notice (\"The report: who caused the spike\") differs from what the code produces; \
         review the change and run `NATREC_BLESS=1 cargo test -p natrec --test notice` to update README.\n\
         --- produced ---\n{text}"
    );
}
