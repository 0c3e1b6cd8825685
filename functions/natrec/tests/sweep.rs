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
        name: None,
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
    // Past natrec:expires-at: the alarm's state time + RecordingTime + the lock's grace, well beyond.
    let later = now + Duration::seconds(900 + 2 * 3600);
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

// --- Executions that end without their notice (issue 9, item 7) ----------------------------------
//
// Step Functions developer guide, "Error handling in Step Functions workflows": States.ALL catches
// neither States.Runtime nor the terminal States.DataLimitExceeded, so such an execution ends FAILED
// without reaching a Notify state. EventBridge then sends "Step Functions Execution Status Change"
// (EventBridge events reference, aws.states) with detail.status FAILED, error, cause and the input.

use natrec::sweep::{after_execution_ended, EndedExecution};

const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:natrec-6c7d1f40:exec-1";

/// A status change event as EventBridge delivers it, the execution's input being the alarm event.
fn status_event(status: &str, error: &str, cause: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "time": "2026-11-25T09:20:00Z", "region": "us-east-1",
        "resources": [EXEC],
        "detail": {
            "executionArn": EXEC, "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:natrec-6c7d1f40",
            "name": "exec-1", "status": status, "startDate": 1_764_061_200_000_i64, "stopDate": 1_764_062_400_000_i64,
            "input": fixture().to_string(), "inputDetails": {"included": true},
            "output": null, "outputDetails": null, "error": error, "cause": cause
        }
    })
}

#[test]
fn status_change_events_of_abnormal_ends_are_recognised_with_their_nat() {
    let e = EndedExecution::from_event(&status_event("FAILED", "States.DataLimitExceeded", "too big")).unwrap();
    assert_eq!(e.execution_arn, EXEC);
    assert_eq!(e.status, "FAILED");
    assert_eq!(e.error.as_deref(), Some("States.DataLimitExceeded"));
    assert_eq!(e.nat_id.as_deref(), Some(NAT));
    assert!(EndedExecution::from_event(&status_event("SUCCEEDED", "", "")).is_none());
    assert!(
        EndedExecution::from_event(&serde_json::json!({})).is_none(),
        "the schedule's event"
    );
    let mut no_input = status_event("ABORTED", "", "");
    no_input["detail"]["input"] = serde_json::Value::Null;
    let e = EndedExecution::from_event(&no_input).unwrap();
    assert_eq!((e.nat_id, e.error), (None, None));
}

#[tokio::test]
async fn an_execution_that_failed_after_its_cleanup_but_before_its_notice_is_told_once() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 20, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    // The recording ran and was cleaned up (flow logs deleted, lock released), then BuildReport's
    // output blew the payload limit: FAILED, no Notify state reached, no sns:publish in its history.
    start(fixture(), EXEC, now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    let ids = ec2.active();
    natrec::ports::FlowLogs::delete(&ec2, &ids).await.unwrap();
    let nat = NatGatewayId::parse(NAT).unwrap();
    natrec::ports::RecordingStore::release(&store, &nat, EXEC)
        .await
        .unwrap();

    let cause = "The state/task 'BuildReport' returned a result with a size exceeding the maximum number of bytes service limit.";
    let ended = EndedExecution::from_event(&status_event("FAILED", "States.DataLimitExceeded", cause)).unwrap();
    let report = after_execution_ended("natrec-test", now, &ended, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.told_unnotified, [EXEC]);
    let sent = notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (subject, message) = &sent[0];
    assert_eq!(
        subject,
        &format!("NAT spike recording of {NAT} FAILED without its notice")
    );
    assert!(subject.len() < 100, "SNS: Subject must be shorter than 100 characters");
    assert!(
        message.contains("ended FAILED (States.DataLimitExceeded: The state/task 'BuildReport'"),
        "{message}"
    );
    assert!(
        message.contains(EXEC) && message.contains("none of this execution is left"),
        "{message}"
    );
    assert!(message.contains("Lock: no lock held"), "{message}");
}

#[tokio::test]
async fn an_execution_that_failed_before_its_cleanup_has_its_lock_released_and_is_told() {
    // FAILED with States.Runtime after taking the lock; its flow logs are already gone.
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 20, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    start(fixture(), EXEC, now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    let ids = ec2.active();
    natrec::ports::FlowLogs::delete(&ec2, &ids).await.unwrap();
    let ended = EndedExecution::from_event(&status_event("FAILED", "States.Runtime", "path not found")).unwrap();
    let report = after_execution_ended("natrec-test", now, &ended, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.stale_locks_released, [NAT]);
    assert!(store.items.lock().unwrap()[NAT].execution.is_none());
    let sent = notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].1.contains("its lock was still held: released now"),
        "{}",
        sent[0].1
    );
}

#[tokio::test]
async fn an_execution_that_sent_its_notice_before_failing_gets_no_second_one() {
    // RecordingFailed / CleanupFailed: the failure notice went out (sns:publish succeeded), then
    // the Fail state ended the execution FAILED, which also triggers the sweeper.
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 20, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    execs.notified.lock().unwrap().push(EXEC.into());
    let ended = EndedExecution::from_event(&status_event("FAILED", "RecordingFailed", "cleaned up")).unwrap();
    let report = after_execution_ended("natrec-test", now, &ended, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert!(report.told_unnotified.is_empty());
    assert!(notifier.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_aborted_recording_with_flow_logs_left_gets_one_notice_saying_how_it_ended() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    start(fixture(), EXEC, now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    let ended = EndedExecution::from_event(&status_event("ABORTED", "", "")).unwrap();
    let report = after_execution_ended("natrec-test", now, &ended, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.swept.len(), 1);
    assert!(ec2.active().is_empty());
    let sent = notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "the sweep's notice is the execution's notice: {sent:?}");
    assert!(sent[0].1.contains("The execution ended ABORTED"), "{}", sent[0].1);
}

#[tokio::test]
async fn a_long_cause_is_cut_in_the_notice() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        ec2(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    let cause = "é".repeat(32_768); // Step Functions causes go up to 32,768 characters
    let ended = EndedExecution::from_event(&status_event("FAILED", "States.Runtime", &cause)).unwrap();
    after_execution_ended("natrec-test", now, &ended, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    let sent = notifier.sent.lock().unwrap().clone();
    assert!(
        sent[0].1.len() < 4_000 && sent[0].1.contains("[...]"),
        "{}",
        sent[0].1.len()
    );
}

#[tokio::test]
async fn a_sweep_notice_subject_stays_under_100_characters_whatever_the_tags_say() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let (ec2, store, execs, notifier) = (
        FakeEc2::default(),
        FakeStore::default(),
        FakeExecutions::default(),
        FakeNotifier::default(),
    );
    // A flow log tagged by hand: the stack's tag, a NAT tag of 200 characters.
    let request = natrec::ports::FlowLogRequest {
        target: natrec::nat::FlowLogTarget::Interfaces(vec!["eni-0aaa".into()]),
        log_group: "g".into(),
        delivery_role_arn: "r".into(),
        log_format: "f".into(),
        max_aggregation_seconds: 60,
        client_token: "t".into(),
        tags: vec![
            ("natrec:stack".into(), "natrec-test".into()),
            ("natrec:nat-gateway".into(), "n".repeat(200)),
        ],
    };
    natrec::ports::FlowLogs::create(&ec2, &request).await.unwrap();
    sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    let sent = notifier.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0.len() < 100, "{}", sent[0].0);
}

/// An execution the sweeper may not describe (one of the state machine a stack update replaced)
/// does not stop the sweep of the others; its flow logs wait for their expiry tag.
#[tokio::test]
async fn an_execution_that_cannot_be_described_does_not_stop_the_sweep() {
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
    // One of the two flow logs belongs to an execution of the replaced state machine.
    let old = ec2.active()[0].clone();
    for tag in ec2.flow_logs.lock().unwrap().get_mut(&old).unwrap().tags.iter_mut() {
        if tag.0 == "natrec:execution" {
            tag.1 = "exec-old".into();
        }
    }
    execs.unreadable.lock().unwrap().push("exec-old".into());

    let report = sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    assert_eq!(report.unchecked, vec!["exec-old".to_string()]);
    assert_eq!(report.swept.len(), 1, "exec-1 (ended) swept all the same");
    assert_eq!(ec2.active(), vec![old.clone()]);

    // Past its natrec:expires-at it goes without asking.
    let later = sweep(
        "natrec-test",
        now + Duration::days(2),
        false,
        &ec2,
        &execs,
        &store,
        &notifier,
    )
    .await
    .unwrap();
    assert_eq!(later.swept.len(), 1);
    assert!(ec2.active().is_empty());
}

/// The sweeper's notices name the NAT by its Name tag as the recorder's own do (looked up with
/// DescribeNatGateways); a NAT that cannot be described any more is named by its ID.
#[tokio::test]
async fn the_sweepers_notices_name_the_nat_by_its_name_tag() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let ec2 = ec2();
    ec2.nats.lock().unwrap().get_mut(NAT).unwrap().name = Some("prod-egress-a".into());
    let (store, execs, notifier) = (FakeStore::default(), FakeExecutions::default(), FakeNotifier::default());
    start(fixture(), "exec-1", now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap();
    sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    let (subject, message) = notifier.sent.lock().unwrap()[0].clone();
    assert_eq!(subject, "NAT spike recording of prod-egress-a ended by the sweeper");
    assert!(
        message.contains(&format!("a recording of prod-egress-a ({NAT}) were still active")),
        "{message}"
    );

    // The NAT is gone by the next orphan: its ID serves.
    ec2.nats.lock().unwrap().clear();
    start(fixture(), "exec-2", now, &settings(), &ec2, &ec2, &store)
        .await
        .unwrap_err();
    let fl = natrec::ports::FlowLogRequest {
        target: natrec::nat::FlowLogTarget::Interfaces(vec!["eni-0ccc".into()]),
        log_group: "g".into(),
        delivery_role_arn: "r".into(),
        log_format: "f".into(),
        max_aggregation_seconds: 60,
        client_token: "t2".into(),
        tags: vec![
            (natrec::recording::TAG_STACK.into(), "natrec-test".into()),
            (natrec::recording::TAG_NAT.into(), NAT.into()),
            (natrec::recording::TAG_EXECUTION.into(), "exec-2".into()),
        ],
    };
    natrec::ports::FlowLogs::create(&ec2, &fl).await.unwrap();
    sweep("natrec-test", now, false, &ec2, &execs, &store, &notifier)
        .await
        .unwrap();
    let (subject, _) = notifier.sent.lock().unwrap()[1].clone();
    assert_eq!(subject, format!("NAT spike recording of {NAT} ended by the sweeper"));
}
