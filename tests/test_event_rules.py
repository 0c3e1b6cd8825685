"""The EventBridge rule patterns of template.yaml against real-shaped alarm events.

moto 5.2.5 does not implement TestEventPattern and cannot deliver to Step Functions or Lambda
targets, so each pattern becomes a rule on the emulator's default bus with an SQS target, the
event is put on the bus, and the queue tells whether the rule matched."""
import json

import pytest

from tests.harness.stack import ROOT, Resolver

RULES = {"start": ("RecorderStateMachine", "AlarmFired"), "resume": ("ResumeRecordingFunction", "AlarmLeftAlarm"),
         "ended": ("SweepOrphansFunction", "RecordingEndedAbnormally")}


def pattern(template, resource, event_name):
    props = template["Resources"][resource]["Properties"]["Events"][event_name]["Properties"]
    return json.dumps(Resolver({}, {})(props["Pattern"]))


@pytest.fixture
def bus(recorder, template):
    """Rules with the template's patterns, each delivering to its own queue."""
    events, sqs = recorder.emu.client("events"), recorder.emu.client("sqs")
    queues = {}
    for name, (resource, event_name) in RULES.items():
        url = sqs.create_queue(QueueName=f"rule-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventPattern=pattern(template, resource, event_name))
        events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
        queues[name] = url

    def matched(event: dict) -> set[str]:
        resp = events.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                           "Detail": json.dumps(event["detail"]), "Resources": event["resources"]}])
        assert resp["FailedEntryCount"] == 0
        hits = set()
        for name, url in queues.items():
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            if msgs:
                hits.add(name)
        return hits

    return matched


def load(name):
    return json.loads((ROOT / "tests" / "fixtures" / name).read_text())


@pytest.mark.parametrize("fixture,expected", [
    ("alarm-math-alarm.json", {"start"}),
    ("alarm-single-alarm.json", {"start"}),
    ("alarm-math-ok.json", {"resume"}),
    ("alarm-single-ok.json", {"resume"}),
    ("alarm-math-insufficient-data.json", {"resume"}),
    ("alarm-foreign.json", set()),  # someone else's alarm on the same NAT
])
def test_alarm_states_reach_the_right_rule(bus, fixture, expected):
    assert bus(load(fixture)) == expected


def test_another_stacks_alarms_match_neither_rule(bus):
    for name in ("alarm-math-alarm.json", "alarm-math-ok.json"):
        ev = load(name)
        ev["detail"]["alarmName"] = "natrec-prod-natgw-nat-0123456789abcdef0"
        assert bus(ev) == set()


@pytest.mark.parametrize("status,expected", [("FAILED", {"ended"}), ("ABORTED", {"ended"}), ("TIMED_OUT", {"ended"}),
                                             ("SUCCEEDED", set())])
def test_the_sweeper_hears_of_every_abnormal_end_of_this_state_machine(bus, recorder, status, expected):
    """The state machine's name (natrec-<stack GUID>, issue 9 item 5) is what the sweeper's rule names."""
    arn = f"{recorder.state_machine_arn.replace(':stateMachine:', ':execution:')}:e1"
    ev = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "resources": [arn],
          "detail": {"executionArn": arn, "stateMachineArn": recorder.state_machine_arn, "status": status}}
    assert bus(ev) == expected
    ev["detail"]["stateMachineArn"] = recorder.state_machine_arn.replace("natrec-", "other-")
    assert bus(ev) == set()


def test_the_sweeper_tells_an_ended_execution_without_a_notice_once_and_no_other(recorder):
    """The sweeper reads the execution history (GetExecutionHistory) to know whether an execution sent
    its notice. A recording that notified and a duplicate that joined it (no notice of its own) are
    reported to the sweeper as having ended FAILED: only the one without a notice gets one."""
    nat = recorder.create_nat()
    first = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "told-1")
    recorder.wait_parked(nat["id"])
    joined = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "told-2")
    assert recorder.wait(joined)["status"] == "SUCCEEDED"
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert recorder.wait(first, timeout=90)["status"] == "SUCCEEDED"
    assert len(recorder.notices()) == 1
    for arn in (first, joined):
        ev = recorder.status_event(arn)
        ev["detail"].update(status="FAILED", error="States.Runtime", cause="as if it had failed")
        recorder.sweep(ev)
    [notice] = recorder.notices()
    assert notice["subject"] == f"NAT spike recording of {nat['id']} FAILED without its notice"
    assert joined in notice["message"] and "States.Runtime" in notice["message"]
