//! Unit tests of the recording lifecycle against in-memory ports, with real-shaped
//! "CloudWatch Alarm State Change" events from tests/fixtures.

mod fakes;

use chrono::{TimeZone, Utc};
use fakes::*;
use natrec::event::AlarmEvent;
use natrec::nat::{FlowLogTarget, NatGateway, NatGatewayId};
use natrec::ports::{NatBytes, Parked, RecordingStore};
use natrec::recording::*;
use natrec::RecorderError;
use serde_json::{json, Value};

const NAT: &str = "nat-0123456789abcdef0";
const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:natrec-test-recorder:e1";

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn nat(interfaces: &[&str]) -> NatGateway {
    NatGateway {
        id: NatGatewayId::parse(NAT).unwrap(),
        state: "available".into(),
        vpc_id: Some("vpc-0a1b2c3d".into()),
        regional: false,
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        name: Some("prod-egress-a".into()),
    }
}

fn settings(max: u32) -> StartSettings {
    StartSettings {
        stack_name: "natrec-test".into(),
        log_group: "/natrec/natrec-test/flow-logs".into(),
        delivery_role_arn: "arn:aws:iam::123456789012:role/delivery".into(),
        recording_time_s: 900,
        max_recordings: max,
    }
}

fn finish_settings() -> FinishSettings {
    FinishSettings {
        stack_name: "natrec-test".into(),
        region: "eu-west-3".into(),
        log_group: "/natrec/natrec-test/flow-logs".into(),
        query_names: vec![
            "natrec/natrec-test/nat-flows".into(),
            "natrec/natrec-test/top-talkers".into(),
        ],
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 1, 12).unwrap()
}

#[test]
fn finds_the_nat_in_math_and_single_metric_alarms_whatever_the_order() {
    for f in [
        "alarm-math-alarm.json",
        "alarm-single-alarm.json",
        "alarm-math-ok.json",
        "alarm-math-insufficient-data.json",
    ] {
        assert_eq!(AlarmEvent::from_value(fixture(f)).unwrap().nat_id.as_str(), NAT, "{f}");
    }
    let mut ev = fixture("alarm-math-alarm.json");
    ev["detail"]["configuration"]["metrics"]
        .as_array_mut()
        .unwrap()
        .reverse();
    assert_eq!(AlarmEvent::from_value(ev).unwrap().nat_id.as_str(), NAT);
}

#[test]
fn odd_events_are_rejected_with_a_message_that_says_why() {
    let err = |v: Value| match AlarmEvent::from_value(v) {
        Err(RecorderError::UnexpectedEvent(m)) => m,
        other => panic!("expected UnexpectedEvent, got {other:?}"),
    };
    assert!(err(fixture("alarm-other-namespace.json")).contains("AWS/EC2"));
    assert!(err(json!({"hello": "world"})).contains("aws.cloudwatch"));
    let mut no_detail = fixture("alarm-math-alarm.json");
    no_detail.as_object_mut().unwrap().remove("detail");
    assert!(err(no_detail).contains("malformed"));
    let mut two = fixture("alarm-math-alarm.json");
    two["detail"]["configuration"]["metrics"][2]["metricStat"]["metric"]["dimensions"]["NatGatewayId"] =
        json!("nat-0a1b2c3d");
    assert!(err(two).contains("several NAT Gateways"));
    let mut bad_id = fixture("alarm-single-alarm.json");
    bad_id["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["NatGatewayId"] =
        json!("nat-zz");
    assert!(err(bad_id).contains("nat-zz"));
}

#[tokio::test]
async fn start_records_every_interface_with_the_full_format_and_tags() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    let store = FakeStore::default();
    let rec = started(&ec2, &store).await;
    assert_eq!(rec.status, StartStatus::Recording);
    assert_eq!(rec.flow_log_ids.len(), 2);
    assert_eq!(rec.interfaces, ["eni-0aaa", "eni-0bbb"]);
    let logs = ec2.flow_logs.lock().unwrap();
    let req = logs.values().next().unwrap();
    assert_eq!(
        req.target,
        FlowLogTarget::Interfaces(vec!["eni-0aaa".into(), "eni-0bbb".into()])
    );
    assert_eq!(req.max_aggregation_seconds, 60);
    for field in [
        "interface-id",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log-status",
        "vpc-id",
        "subnet-id",
        "az-id",
        "flow-direction",
        "traffic-path",
        "pkt-srcaddr",
        "pkt-dstaddr",
        "pkt-src-aws-service",
        "pkt-dst-aws-service",
    ] {
        assert!(
            req.log_format.split(' ').any(|f| f == format!("${{{field}}}")),
            "format lacks {field}"
        );
    }
    let tag = |k: &str| {
        req.tags
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(tag(TAG_EXECUTION), EXEC);
    assert_eq!(tag(TAG_NAT), NAT);
    assert_eq!(tag(TAG_STACK), "natrec-test");
    // The lock's expiry (first attempt's clock + recording time + grace): fixed for the execution.
    assert_eq!(tag(TAG_EXPIRES), "2026-11-25T10:16:12Z", "recording time + grace");
    assert_eq!(req.client_token, client_token(EXEC));
    assert!(req.client_token.len() <= 64);
    assert_ne!(client_token(EXEC), client_token("other"));
    assert_eq!(store.started.lock().unwrap()[NAT], 1);
}

#[tokio::test]
async fn regional_nat_gateways_are_recorded_as_one_regional_resource() {
    let mut n = nat(&[]);
    n.regional = true;
    let ec2 = FakeEc2::with_nat(n);
    let rec = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &FakeStore::default(),
    )
    .await
    .unwrap();
    let logs = ec2.flow_logs.lock().unwrap();
    assert_eq!(
        logs.values().next().unwrap().target,
        FlowLogTarget::RegionalNatGateway(NatGatewayId::parse(NAT).unwrap())
    );
    assert_eq!(rec.flow_log_ids.len(), 1);
}

#[tokio::test]
async fn a_missing_nat_fails_cleanly_without_lock_or_flow_log() {
    let ec2 = FakeEc2::default();
    let store = FakeStore::default();
    let err = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RecorderError::NatNotFound(ref id) if id == NAT),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "NatNotFound");
    assert!(ec2.active().is_empty());
    assert!(store.items.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_second_alarm_joins_the_running_recording_instead_of_starting_another() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    started(&ec2, &store).await;
    let second = start(
        fixture("alarm-single-alarm.json"),
        "exec-2",
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap();
    assert_eq!(second.status, StartStatus::AlreadyRecording);
    assert!(second.notice.is_none());
    assert_eq!(ec2.active().len(), 1, "no second flow log");
    // A retry of the first execution's start is idempotent: same lock, counted once.
    let again = started(&ec2, &store).await;
    assert_eq!(again.status, StartStatus::Recording);
}

#[tokio::test]
async fn the_recording_limit_stops_new_recordings_and_tells_the_user() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    store.started.lock().unwrap().insert(NAT.into(), 2);
    let rec = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(2),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap();
    assert_eq!(rec.status, StartStatus::LimitReached);
    assert!(ec2.active().is_empty());
    let notice = rec.notice.unwrap();
    assert!(notice.message.contains("NumOfRecordings is 2") && notice.message.contains("count#nat-0123456789abcdef0"));
}

#[tokio::test]
async fn start_refuses_a_non_alarm_state() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let err = start(
        fixture("alarm-math-ok.json"),
        EXEC,
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &FakeStore::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "UnexpectedEvent");
    assert!(ec2.active().is_empty());
}

#[tokio::test]
async fn ok_before_the_token_is_parked_stops_at_once_when_parking() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let tokens = FakeTokens::default();
    let rec = started(&ec2, &store).await;
    let out = resume(fixture("alarm-math-ok.json"), &store, &tokens).await.unwrap();
    assert_eq!(
        out,
        ResumeOutcome::NothingRecording {
            nat_id: rec.nat_id.clone()
        },
        "no token yet"
    );
    let parked = park(&rec.nat_id, EXEC, "token-1", &store, &tokens).await.unwrap();
    assert!(matches!(parked, Parked::StopAlreadyRequested(_)));
    assert_eq!(
        tokens.sent.lock().unwrap().as_slice(),
        [("token-1".to_string(), json!({"reason": "alarm_ok"}))]
    );
}

#[tokio::test]
async fn an_ok_from_before_the_alarm_does_not_stop_the_new_recording() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let tokens = FakeTokens::default();
    let mut old_ok = fixture("alarm-math-ok.json");
    old_ok["detail"]["state"]["timestamp"] = json!("2026-11-25T08:59:00.000+0000");
    resume(old_ok, &store, &tokens).await.unwrap();
    let rec = started(&ec2, &store).await;
    assert_eq!(
        park(&rec.nat_id, EXEC, "t", &store, &tokens).await.unwrap(),
        Parked::Waiting
    );
    assert!(tokens.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ok_and_insufficient_data_deliver_the_stop_with_their_reason() {
    for (fixture_name, reason) in [
        ("alarm-math-ok.json", "alarm_ok"),
        ("alarm-math-insufficient-data.json", "alarm_insufficient_data"),
    ] {
        let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
        let store = FakeStore::default();
        let tokens = FakeTokens::default();
        let rec = started(&ec2, &store).await;
        park(&rec.nat_id, EXEC, "tok", &store, &tokens).await.unwrap();
        let out = resume(fixture(fixture_name), &store, &tokens).await.unwrap();
        assert_eq!(
            out,
            ResumeOutcome::Stopped {
                nat_id: rec.nat_id.clone()
            }
        );
        assert_eq!(tokens.sent.lock().unwrap()[0].1, json!({ "reason": reason }));
    }
}

#[tokio::test]
async fn a_late_ok_is_already_over_not_an_error() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let tokens = FakeTokens::default();
    let rec = started(&ec2, &store).await;
    park(&rec.nat_id, EXEC, "tok", &store, &tokens).await.unwrap();
    *tokens.over.lock().unwrap() = Some("TaskTimedOut".into());
    let out = resume(fixture("alarm-math-ok.json"), &store, &tokens).await.unwrap();
    assert!(matches!(out, ResumeOutcome::AlreadyOver { ref detail, .. } if detail == "TaskTimedOut"));
    // An ALARM event sent to the resume function is a wiring error, said clearly.
    assert_eq!(
        resume(fixture("alarm-math-alarm.json"), &store, &tokens)
            .await
            .unwrap_err()
            .error_type(),
        "UnexpectedEvent"
    );
}

/// A recording of NAT started by execution EXEC from the math-alarm fixture.
async fn started(ec2: &FakeEc2, store: &FakeStore) -> Recording {
    start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        ec2,
        ec2,
        store,
    )
    .await
    .unwrap()
}

async fn recorded(ec2: &FakeEc2, store: &FakeStore) -> Value {
    let rec = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        ec2,
        ec2,
        store,
    )
    .await
    .unwrap();
    serde_json::to_value(rec).unwrap()
}

#[tokio::test]
async fn finish_after_ok_deletes_everything_releases_the_lock_and_reports() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    let end = now() + chrono::Duration::minutes(8);
    let metrics = FakeMetrics(Some(NatBytes {
        upload: 1_500_000_000,
        download: 250_000_000,
    }));
    let done = finish(
        FinishInput {
            execution: EXEC.into(),
            state,
        },
        end,
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &metrics,
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::AlarmOk);
    assert!(ec2.active().is_empty());
    assert_eq!(done.deleted_flow_logs.len(), 2);
    assert!(done.lock_released);
    assert!(store.items.lock().unwrap()[NAT].execution.is_none());
    let m = &done.message;
    for needle in [NAT, "eni-0aaa, eni-0bbb", "alarm returned to OK", "1.8 GB total", "1.5 GB from the VPC",
        "https://eu-west-3.console.aws.amazon.com/cloudwatch/home?region=eu-west-3#logsV2:log-groups/log-group/$252Fnatrec$252Fnatrec-test$252Fflow-logs",
        "natrec/natrec-test/top-talkers", "aws logs start-query --region eu-west-3 --log-group-name '/natrec/natrec-test/flow-logs'",
        "2026-11-25T09:01:12Z -> 2026-11-25T09:09:12Z (8.0 min)"] {
        assert!(m.contains(needle), "notice lacks {needle:?}:\n{m}");
    }
    assert_eq!(done.subject, "NAT spike recorded: prod-egress-a (8 min, alarm OK)");
    assert!(m.contains(&format!("NAT Gateway:  prod-egress-a ({NAT})")), "{m}");
    assert!(
        m.contains(&format!("NAT Gateway prod-egress-a ({NAT}) was above")),
        "{m}"
    );
}

#[tokio::test]
async fn finish_after_timeout_says_the_time_limit_ended_it() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["error"] = json!({"Error": "States.Timeout", "Cause": "timed out"});
    let done = finish(
        FinishInput {
            execution: EXEC.into(),
            state,
        },
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::TimeLimit);
    assert!(done.message.contains(
        "Stopped:      the recording time limit of 900 s (RecordingTime) was reached. The alarm may still be in \
         ALARM: no new recording starts until it returns to OK (or INSUFFICIENT_DATA) and enters ALARM again. \
         To record again now: aws cloudwatch set-alarm-state --region eu-west-3 --alarm-name \
         natrec-test-natgw-nat-0123456789abcdef0 --state-value OK --state-reason 'record again' (README \"When \
         the alarm stays in ALARM\")\n"
    ));
    assert_eq!(done.subject, "NAT spike recorded: prod-egress-a (0 min, time limit)");
    assert!(
        done.message.contains("not available"),
        "metrics failure is tolerated and said"
    );
    assert!(ec2.active().is_empty());
}

#[tokio::test]
async fn finish_reconciles_by_tag_when_the_ids_were_lost() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let state = recorded(&ec2, &store).await;
    // The start step's output is lost: the state is the raw event plus the error.
    let mut event_state = fixture("alarm-math-alarm.json");
    event_state["error"] =
        json!({"Error": "Lambda.Unknown", "Cause": "{\"errorType\":\"Lambda.Unknown\",\"errorMessage\":\"crashed\"}"});
    let _ = state;
    let done = finish(
        FinishInput {
            execution: EXEC.into(),
            state: event_state,
        },
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::Failed);
    assert!(ec2.active().is_empty(), "flow logs found by the execution tag");
    assert!(done.lock_released, "NAT found in the raw event");
    assert!(
        done.message.contains("Lambda.Unknown: crashed") && done.message.contains("deleted flow logs fl-"),
        "{}",
        done.message
    );
    // Without the start step's output the finish step describes the NAT for its Name tag.
    assert_eq!(
        done.subject,
        "NAT spike recording FAILED: prod-egress-a (Lambda.Unknown)"
    );
}

#[tokio::test]
async fn finish_after_a_missing_nat_tells_the_user_nothing_is_left() {
    let ec2 = FakeEc2::default();
    let store = FakeStore::default();
    let mut state = fixture("alarm-math-alarm.json");
    state["error"] = json!({"Error": "NatNotFound", "Cause": json!({"errorType": "NatNotFound", "errorMessage": "NAT Gateway nat-0123456789abcdef0 does not exist"}).to_string()});
    let done = finish(
        FinishInput {
            execution: EXEC.into(),
            state,
        },
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::Failed);
    assert!(!done.lock_released);
    assert!(done
        .message
        .contains("NatNotFound: NAT Gateway nat-0123456789abcdef0 does not exist"));
    assert!(done.message.contains("no flow log of this recording was active"));
}

#[tokio::test]
async fn a_failing_delete_fails_the_finish_so_it_is_retried() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    *ec2.fail_delete.lock().unwrap() = Some(transient("DeleteFlowLogs"));
    let err = finish(
        FinishInput {
            execution: EXEC.into(),
            state: state.clone(),
        },
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Transient");
    assert!(
        !store.items.lock().unwrap()[NAT].execution.is_none(),
        "lock kept until the flow logs are gone"
    );
    let done = finish(
        FinishInput {
            execution: EXEC.into(),
            state,
        },
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert!(ec2.active().is_empty() && done.lock_released);
}

#[tokio::test]
async fn alarm_ok_alarm_in_a_second_waits_for_the_ending_recording_instead_of_joining_it() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let tokens = FakeTokens::default();
    started(&ec2, &store).await;
    let ok = fixture("alarm-math-ok.json"); // 09:09:10.456
    resume(ok, &store, &tokens).await.unwrap();
    let mut again = fixture("alarm-math-alarm.json");
    again["detail"]["state"]["timestamp"] = json!("2026-11-25T09:09:11.000+0000");
    let err = start(again.clone(), "exec-2", now(), &settings(0), &ec2, &ec2, &store)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "RecordingEnding", "retried by the state machine");
    // Once the first recording released the lock, the new spike records.
    store.release(&NatGatewayId::parse(NAT).unwrap(), EXEC).await.unwrap();
    let rec = start(again, "exec-2", now(), &settings(0), &ec2, &ec2, &store)
        .await
        .unwrap();
    assert_eq!(rec.status, StartStatus::Recording);
}

#[tokio::test]
async fn a_start_retried_after_a_hidden_success_reuses_its_flow_logs() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    let store = FakeStore::default();
    let first = started(&ec2, &store).await;
    let retry = started(&ec2, &store).await;
    assert_eq!(retry.flow_log_ids, first.flow_log_ids);
    assert_eq!(ec2.active().len(), 2, "no second set of flow logs");
    assert_eq!(store.started.lock().unwrap()[NAT], 1, "counted once");
}

#[tokio::test]
async fn a_start_replayed_after_its_recording_ended_does_not_take_the_lock_again() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    started(&ec2, &store).await;
    store.release(&NatGatewayId::parse(NAT).unwrap(), EXEC).await.unwrap();
    let replay = started(&ec2, &store).await;
    assert_eq!(replay.status, StartStatus::AlreadyRecording);
    assert!(store.items.lock().unwrap()[NAT].execution.is_none());
}

fn finish_input(state: Value) -> FinishInput {
    FinishInput {
        execution: EXEC.into(),
        state,
    }
}

/// CreateFlowLogs answered by a timeout after it created the flow logs, which DescribeFlowLogs
/// does not list yet (eventual consistency): the retry, a minute later by the clock, must send
/// exactly the same parameters with its ClientToken, or EC2 answers IdempotentParameterMismatch.
#[tokio::test]
async fn a_start_retried_after_a_lost_answer_sends_identical_parameters_and_gets_the_same_flow_logs() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0bbb", "eni-0aaa"]));
    let store = FakeStore::default();
    *ec2.lose_next_create_answer.lock().unwrap() = true;
    let first = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap_err();
    assert_eq!(first.error_type(), "Transient", "retried by the state machine");
    let later = now() + chrono::Duration::seconds(75);
    let retry = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        later,
        &settings(0),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap();
    assert_eq!(retry.status, StartStatus::Recording);
    assert_eq!(
        ec2.active(),
        retry.flow_log_ids,
        "the first attempt's flow logs, no duplicates"
    );
    assert_eq!(ec2.active().len(), 2);
    assert_eq!(store.started.lock().unwrap()[NAT], 1, "counted once");
}

#[tokio::test]
async fn the_fake_enforces_client_token_semantics() {
    use natrec::ports::FlowLogs;
    let ec2 = FakeEc2::default();
    let req = natrec::ports::FlowLogRequest {
        target: FlowLogTarget::Interfaces(vec!["eni-0aaa".into()]),
        log_group: "g".into(),
        delivery_role_arn: "r".into(),
        log_format: "f".into(),
        max_aggregation_seconds: 60,
        client_token: "t".into(),
        tags: vec![("k".into(), "1".into())],
    };
    let ids = ec2.create(&req).await.unwrap();
    assert_eq!(
        ec2.create(&req).await.unwrap(),
        ids,
        "same token, same parameters: same flow logs"
    );
    assert_eq!(ec2.active().len(), 1);
    let mut other = req.clone();
    other.tags[0].1 = "2".into();
    let err = ec2.create(&other).await.unwrap_err();
    assert!(err.to_string().contains("IdempotentParameterMismatch"), "{err}");
    // Deleting an ID that is gone is refused as a whole, as under a tag-conditioned grant.
    ec2.delete(&ids.ids).await.unwrap();
    let err = ec2.delete(&ids.ids).await.unwrap_err();
    assert!(err.to_string().contains("UnauthorizedOperation"), "{err}");
}

/// The finish step's answer is lost after it deleted the flow logs (Lambda timeout): its retry
/// must not delete them again, because AWS answers UnauthorizedOperation for an ID that is gone
/// under the tag-conditioned grant, and that is not retried: the recording would end in
/// "CLEANUP FAILED" although everything was cleaned up.
#[tokio::test]
async fn a_retried_finish_deletes_only_what_still_exists() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    let first = finish(
        finish_input(state.clone()),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(first.deleted_flow_logs.len(), 2);
    let retry = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(retry.ending, Ending::AlarmOk);
    assert_eq!(
        retry.deleted_flow_logs, first.deleted_flow_logs,
        "all gone, none deleted twice"
    );
    assert_eq!(ec2.delete_calls.lock().unwrap().len(), 1, "the retry deleted nothing");
    assert!(ec2.active().is_empty());
    assert_eq!(
        retry.delivery, first.delivery,
        "the first attempt saw no delivery failure"
    );
    assert!(
        retry.message.contains("Delivery:     no failure reported"),
        "{}",
        retry.message
    );
}

/// Another deleter (the sweeper) removes a flow log between the finish step's DescribeFlowLogs
/// and its DeleteFlowLogs: the refused delete is checked against what still exists.
#[tokio::test]
async fn a_flow_log_deleted_by_someone_else_meanwhile_is_not_a_cleanup_failure() {
    use natrec::ports::FlowLogs;
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    let store = FakeStore::default();
    recorded(&ec2, &store).await;
    let found = ec2.find_tagged(TAG_EXECUTION, EXEC).await.unwrap();
    ec2.delete(&[found[0].id.clone()]).await.unwrap();
    delete_existing(&ec2, &found).await.unwrap();
    assert!(ec2.active().is_empty());
    // A real refusal (the flow logs are still there) stays an error.
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    recorded(&ec2, &FakeStore::default()).await;
    let found = ec2.find_tagged(TAG_EXECUTION, EXEC).await.unwrap();
    *ec2.fail_delete.lock().unwrap() = Some(natrec::RecorderError::Aws {
        service: "EC2",
        operation: "DeleteFlowLogs",
        message: "UnauthorizedOperation: denied".into(),
    });
    assert!(delete_existing(&ec2, &found).await.is_err());
    assert_eq!(ec2.active().len(), 1);
}

/// A flow log that failed to deliver (DescribeFlowLogs: DeliverLogsStatus FAILED,
/// DeliverLogsErrorMessage "Access error") is still deleted, and the notice says the records
/// were not delivered and why, in the subject and at the top of the message.
#[tokio::test]
async fn a_delivery_failure_is_said_in_the_notice_and_the_flow_logs_still_deleted() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    let ids = ec2.active();
    ec2.fail_delivery(&ids[1], "Access error");
    let done = finish(
        finish_input(state),
        now() + chrono::Duration::minutes(5),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert!(ec2.active().is_empty(), "deleted all the same");
    assert_eq!(done.delivery.checked, 2);
    assert_eq!(done.delivery.failed.len(), 1);
    assert_eq!(done.delivery.failed[0].flow_log_id, ids[1]);
    assert!(done.subject.contains("NOT delivered"), "{}", done.subject);
    assert!(done.subject.len() < 100 && done.subject.is_ascii());
    let m = &done.message;
    assert!(
        m.starts_with("FLOW-LOG RECORDS WERE NOT DELIVERED: 1 of the recording's 2"),
        "{m}"
    );
    assert!(
        m.contains("\"Access error\"") && m.contains("FlowLogDeliveryRole"),
        "{m}"
    );
    assert!(
        m.contains(&format!("Delivery:     FAILED for {} (Access error)", ids[1])),
        "{m}"
    );
    // State payloads stay small: the delivery status is two short fields.
    let json = serde_json::to_string(&done.delivery).unwrap();
    assert!(json.len() < 200, "{json}");

    // A failure notice says it too.
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["error"] = json!({"Error": "LockLost", "Cause": "lost"});
    ec2.fail_delivery(&ec2.active()[0], "Rate limited");
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::Failed);
    assert!(
        done.message.contains("\"Rate limited\" (CloudWatch Logs throttled"),
        "{}",
        done.message
    );
}

#[tokio::test]
async fn a_recording_that_delivered_says_so_without_a_warning() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert!(done.delivery.failed.is_empty() && done.delivery.checked == 1);
    assert!(!done.subject.contains("delivered"));
    assert!(done.message.starts_with("Flow logs were recorded"));
    assert!(done.message.contains("Delivery:     no failure reported"));
}

/// SNS Publish: the subject must be ASCII without line breaks or control characters and shorter
/// than 100 characters, or the publish fails (and with it the notice).
#[test]
fn every_subject_fits_sns() {
    use natrec::notice::{self, subject, MAX_SUBJECT};
    let ok = |s: &str| {
        assert!(s.len() <= MAX_SUBJECT && s.len() < 100, "{} chars: {s}", s.len());
        assert!(s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()), "{s:?}");
        assert!(s.chars().next().is_some_and(|c| c.is_ascii_graphic()), "{s:?}");
    };
    let nat_id = NatGatewayId::parse(NAT).unwrap();
    let long_stack = "s".repeat(128);
    let kind = format!(
        "{}\nLine two \u{e9}t\u{e9} \u{2014} {}",
        "States.TaskFailed".repeat(8),
        "x".repeat(50)
    );
    let error = natrec::recording::StepError {
        error: kind,
        cause: None,
    };
    let failed = notice::failed(&notice::FailureFacts {
        stack_name: &long_stack,
        execution: EXEC,
        nat_id: Some(&nat_id),
        nat_name: None,
        error: Some(&error),
        deleted_flow_logs: &[],
        lock_released: false,
        delivery: &Default::default(),
    });
    ok(&failed.subject);
    assert!(failed
        .subject
        .starts_with(&format!("NAT spike recording FAILED: {NAT} (States.TaskFailed")));
    assert!(failed.subject.ends_with("..."), "{}", failed.subject);
    ok(&notice::limit_reached(&long_stack, &nat_id, Some(&"n".repeat(256)), 3, 3).subject);
    for s in [
        "",
        "\n\t",
        &"word ".repeat(40),
        &"\u{e9}".repeat(120),
        "  leading spaces",
    ] {
        ok(&subject(s));
    }
    assert_eq!(subject("a\r\nb\u{e9}"), "a b?");
    assert_eq!(subject("short one"), "short one", "a fitting subject is left alone");
}

/// The finish step deleted flow logs whose delivery had failed, then its answer was lost
/// (Lambda timeout): the retry finds them gone and still tells the delivery failure.
#[tokio::test]
async fn a_retried_finish_still_tells_the_delivery_failure_it_saw() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    ec2.fail_delivery(&ec2.active()[0], "Access error");
    let first = finish(
        finish_input(state.clone()),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    let retry = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert!(ec2.active().is_empty());
    assert_eq!(retry.delivery, first.delivery);
    assert!(retry.subject.contains("NOT delivered"), "{}", retry.subject);
    assert!(retry.message.starts_with("FLOW-LOG RECORDS WERE NOT DELIVERED"));
}

/// A delivery failure can clear before the end ("Rate limited"): the sweeper, which checks the
/// running recordings' flow logs on its schedule, notes it, and the end's notice still tells it
/// although DescribeFlowLogs says SUCCESS by then.
#[tokio::test]
async fn a_delivery_failure_seen_during_the_recording_is_told_at_the_end() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state["stop"] = json!({"reason": "alarm_ok"});
    let id = ec2.active()[0].clone();
    let executions = FakeExecutions::default();
    executions.running.lock().unwrap().push(EXEC.to_string());
    let notifier = FakeNotifier::default();
    ec2.fail_delivery(&id, "Rate limited");
    let swept = natrec::sweep::sweep("natrec-test", now(), false, &ec2, &executions, &store, &notifier)
        .await
        .unwrap();
    assert!(
        swept.swept.is_empty() && ec2.active() == vec![id.clone()],
        "a running recording is left alone"
    );
    assert!(notifier.sent.lock().unwrap().is_empty(), "no notice mid-recording");
    ec2.delivery.lock().unwrap().clear(); // delivering again by the end
    let done = finish(
        finish_input(state),
        now() + chrono::Duration::minutes(5),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert!(ec2.active().is_empty());
    assert_eq!(done.delivery.failed.len(), 1, "{:?}", done.delivery);
    assert_eq!(done.delivery.failed[0].error, "Rate limited");
    assert!(done.subject.contains("NOT delivered"), "{}", done.subject);
}

/// The NAT's Name tag, read by the start step, names the NAT in a failure notice too.
#[tokio::test]
async fn a_failed_recording_names_the_nat_by_its_name_tag() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    assert_eq!(state["nat_name"], "prod-egress-a");
    state["error"] = json!({"Error": "States.TaskFailed", "Cause": "boom"});
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(
        done.subject,
        "NAT spike recording FAILED: prod-egress-a (States.TaskFailed)"
    );
    assert!(
        done.message
            .starts_with(&format!("A recording of prod-egress-a ({NAT}) failed.")),
        "{}",
        done.message
    );
}

/// The state of a recording started before the Name tag was kept still finishes: the NAT goes
/// by its ID.
#[tokio::test]
async fn the_state_of_an_older_recording_without_the_name_still_finishes() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    let store = FakeStore::default();
    let mut state = recorded(&ec2, &store).await;
    state.as_object_mut().unwrap().remove("nat_name");
    state["stop"] = json!({"reason": "alarm_ok"});
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::AlarmOk);
    assert!(
        done.subject.starts_with(&format!("NAT spike recorded: {NAT} (")),
        "{}",
        done.subject
    );
    assert!(
        done.message.contains(&format!("NAT Gateway:  {NAT}\n")),
        "{}",
        done.message
    );
}

/// CreateFlowLogs refuses one of the NAT's two interfaces (e.g. it already has its flow-log
/// limit) and creates the other in the same call, which DescribeFlowLogs does not list yet
/// (eventual consistency): the start deletes the one it got by ID at once, fails with
/// FlowLogsFailed naming the refused interface, and the failure cleanup finds the lock to release.
#[tokio::test]
async fn a_partly_refused_create_deletes_what_it_created_and_fails() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    ec2.refuse_resources.lock().unwrap().push("eni-0bbb".into());
    let store = FakeStore::default();
    let err = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "FlowLogsFailed");
    let text = err.to_string();
    assert!(
        text.contains("eni-0bbb: the resource has reached its flow-log limit"),
        "{text}"
    );
    assert!(
        text.contains("the flow logs it did create were deleted (fl-00000000)"),
        "{text}"
    );
    assert!(ec2.active().is_empty(), "a recording never runs on part of a NAT");
    assert_eq!(*ec2.deleted.lock().unwrap(), ["fl-00000000"]);

    // The Catch path: the finish step releases the lock and tells the user; nothing is left.
    let mut state = fixture("alarm-math-alarm.json");
    state["error"] = json!({"Error": "FlowLogsFailed", "Cause": json!({"errorType": "FlowLogsFailed", "errorMessage": text}).to_string()});
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::Failed);
    assert!(done.lock_released);
    assert!(done.message.contains("eni-0bbb"), "{}", done.message);
    assert!(ec2.active().is_empty());
    // The start described the NAT before it failed, but its state is lost with the failure (the
    // Catch passes on the event and the error): the finish step looks the Name tag up again.
    assert_eq!(
        done.subject,
        "NAT spike recording FAILED: prod-egress-a (FlowLogsFailed)"
    );
    assert!(
        done.message
            .contains(&format!("A recording of prod-egress-a ({NAT}) failed.")),
        "{}",
        done.message
    );
}

/// A failed start whose NAT cannot be described again (refused, or gone): the notice names it
/// by its ID and the cleanup is done all the same.
#[tokio::test]
async fn a_failed_start_is_told_with_the_nat_id_when_the_nat_cannot_be_described() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa"]));
    *ec2.fail_describe.lock().unwrap() = Some(RecorderError::Aws {
        service: "EC2",
        operation: "DescribeNatGateways",
        message: "UnauthorizedOperation".into(),
    });
    let store = FakeStore::default();
    let mut state = fixture("alarm-math-alarm.json");
    state["error"] = json!({"Error": "AwsRefused", "Cause": "refused"});
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::Failed);
    assert_eq!(done.subject, format!("NAT spike recording FAILED: {NAT} (AwsRefused)"));
    assert!(
        done.message.contains(&format!("A recording of {NAT} failed.")),
        "{}",
        done.message
    );
}

/// The same, but the immediate delete fails too: the error says so, and the failure cleanup
/// deletes the flow log by its execution tag once DescribeFlowLogs lists it.
#[tokio::test]
async fn a_partly_refused_create_whose_undo_fails_is_cleaned_up_by_tag() {
    let ec2 = FakeEc2::with_nat(nat(&["eni-0aaa", "eni-0bbb"]));
    ec2.refuse_resources.lock().unwrap().push("eni-0aaa".into());
    *ec2.fail_delete.lock().unwrap() = Some(transient("DeleteFlowLogs"));
    let store = FakeStore::default();
    let err = start(
        fixture("alarm-math-alarm.json"),
        EXEC,
        now(),
        &settings(0),
        &ec2,
        &ec2,
        &store,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "FlowLogsFailed");
    assert!(err.to_string().contains("could not be deleted yet"), "{err}");
    assert_eq!(ec2.active().len(), 1);
    let mut state = fixture("alarm-math-alarm.json");
    state["error"] = json!({"Error": "FlowLogsFailed", "Cause": "refused"});
    let done = finish(
        finish_input(state),
        now(),
        &finish_settings(),
        &ec2,
        &ec2,
        &store,
        &FakeMetrics(None),
    )
    .await
    .unwrap();
    assert_eq!(done.ending, Ending::Failed);
    assert!(ec2.active().is_empty(), "the cleanup deleted it by tag");
}
