//! The orphan sweeper against in-memory ports.

mod fakes;

use chrono::{Duration, TimeZone, Utc};
use fakes::*;
use natrec::nat::{NatGateway, NatGatewayId};
use natrec::recording::{start, StartSettings};
use natrec::sweep::{sweep, SweepReason};

const NAT: &str = "nat-0123456789abcdef0";

fn fixture() -> serde_json::Value {
    let path = format!(
        "{}/../../tests/fixtures/alarm-math-alarm.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn settings() -> StartSettings {
    StartSettings {
        stack_name: "natrec-test".into(),
        log_group: "/natrec/natrec-test/flow-logs".into(),
        delivery_role_arn: "arn:aws:iam::123456789012:role/d".into(),
        recording_time_s: 900,
        max_recordings: 0,
    }
}

fn ec2() -> FakeEc2 {
    FakeEc2::with_nat(NatGateway {
        id: NatGatewayId::parse(NAT).unwrap(),
        state: "available".into(),
        vpc_id: None,
        regional: false,
        interfaces: vec!["eni-0aaa".into(), "eni-0bbb".into()],
    })
}

#[tokio::test]
async fn running_recordings_are_left_alone_and_ended_ones_swept_once() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    start(fixture(), "exec-1", now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    execs.running.lock().unwrap().push("exec-1".into());

    let report = sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!((report.checked, report.swept.len()), (2, 0));
    assert_eq!(ec2.active().len(), 2);

    execs.running.lock().unwrap().clear(); // stopped by hand
    let report = sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.swept.len(), 1);
    assert_eq!(report.swept[0].reason, SweepReason::ExecutionEnded);
    assert!(report.swept[0].lock_released);
    assert!(ec2.active().is_empty());
    assert!(store.items.lock().unwrap()[NAT].execution.is_none());
    assert_eq!(notifier.sent.lock().unwrap().len(), 1);

    let again = sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert!(again.swept.is_empty());
    assert_eq!(notifier.sent.lock().unwrap().len(), 1, "one notice per recording");
}

#[tokio::test]
async fn expired_flow_logs_go_even_if_the_execution_still_runs() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    start(fixture(), "exec-1", now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    execs.running.lock().unwrap().push("exec-1".into());
    let later = now + Duration::seconds(900 + 3600 + 1);
    let report = sweep("natrec-test", later, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.swept[0].reason, SweepReason::Expired);
    assert!(ec2.active().is_empty());
}

#[tokio::test]
async fn other_stacks_flow_logs_are_not_touched() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    start(fixture(), "exec-1", now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    let report = sweep("natrec-prod", now, true, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.checked, 0);
    assert_eq!(ec2.active().len(), 2);
}

#[tokio::test]
async fn a_lock_left_by_an_ended_execution_is_released_without_a_notice() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    start(fixture(), "exec-1", now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    let ids = ec2.active();
    natrec::ports::FlowLogs::delete(&ec2, &ids).await.unwrap(); // cleanup deleted them, then failed
    let report = sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.stale_locks_released, [NAT]);
    assert!(store.items.lock().unwrap()[NAT].execution.is_none());
    assert!(notifier.sent.lock().unwrap().is_empty());
}
