"""The whole recording, in the emulator: moto runs the real ASL, its Lambda tasks reach the
real Rust binaries. Each test asserts the emulator's state afterwards."""
import json
from datetime import datetime, timezone

import pytest


def ended(rec, arn, timeout=60):
    d = rec.wait(arn, timeout)
    return d["status"], d


def test_ok_path_records_every_interface_then_cleans_up_and_notifies(recorder):
    nat = recorder.create_nat()
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "ok-path")
    logs = recorder.wait_for(lambda: recorder.active_flow_logs(), what="flow logs created")
    assert [f["ResourceId"] for f in logs] == nat["interfaces"]
    fl = logs[0]
    assert fl["LogGroupName"] == recorder.log_group
    assert fl["MaxAggregationInterval"] == 60
    assert "${pkt-dst-aws-service}" in fl["LogFormat"]
    tags = {t["Key"]: t["Value"] for t in fl["Tags"]}
    assert tags["natrec:execution"] == arn and tags["natrec:nat-gateway"] == nat["id"]
    recorder.wait_parked(nat["id"])

    out = recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert out == {"result": "stopped", "nat_id": nat["id"]}
    status, _ = ended(recorder, arn)
    assert status == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    item = recorder.lock_item(nat["id"])
    assert "execution" not in item and "token" not in item and "expires_at" not in item
    [notice] = recorder.notices()
    # The report step's subject; no record was delivered (the emulator writes none here).
    assert notice["subject"] == f"NAT spike on {nat['id']}: 0 B, no talker in the flow logs"
    assert "alarm returned to OK" in notice["message"]
    assert nat["interfaces"][0] in notice["message"]
    assert "region=us-east-1" in notice["message"]


def test_timeout_path_ends_the_recording_at_recording_time(recorder):
    recorder.hosts["StartRecordingFunction"].restart(RECORDING_TIME="3")
    nat = recorder.create_nat()
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "timeout-path")
    status, _ = ended(recorder, arn, timeout=60)
    assert status == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    assert "execution" not in recorder.lock_item(nat["id"])
    [notice] = recorder.notices()
    assert notice["subject"].endswith(", no talker in the flow logs (time limit)"), notice["subject"]
    assert "recording time limit of 3 s (RecordingTime) was reached. The alarm may still be in ALARM: no new " \
        "recording starts until it returns to OK" in notice["message"]
    # A late OK after the timeout is "already over", not an error (no EventBridge retries).
    out = recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert out["result"] in ("nothing_recording", "already_over")
    assert recorder.notices() == []


def test_nat_with_two_interfaces_gets_a_flow_log_on_each(recorder):
    nat = recorder.create_nat(interfaces=2)
    assert len(nat["interfaces"]) == 2
    arn = recorder.start(recorder.event("alarm-single-alarm.json", nat["id"]), "two-enis")
    logs = recorder.wait_for(lambda: len(recorder.active_flow_logs()) == 2 and recorder.active_flow_logs(),
                             what="two flow logs")
    assert sorted(f["ResourceId"] for f in logs) == sorted(nat["interfaces"])
    recorder.wait_parked(nat["id"])
    # What the NAT's own metrics counted in the window goes into the notice (read with the
    # awsQuery CloudWatch client the emulator understands).
    cw = recorder.emu.client("cloudwatch")
    now = datetime.now(timezone.utc)
    for metric, value in (("BytesInFromSource", 2_000_000_000), ("BytesInFromDestination", 500_000_000),
                          ("BytesOutToDestination", 7)):
        cw.put_metric_data(Namespace="AWS/NATGateway", MetricData=[{
            "MetricName": metric, "Dimensions": [{"Name": "NatGatewayId", "Value": nat["id"]}],
            "Timestamp": now, "Value": value, "Unit": "Bytes"}])
    recorder.resume(recorder.event("alarm-single-ok.json", nat["id"]))
    assert ended(recorder, arn)[0] == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    [notice] = recorder.notices()
    assert all(eni in notice["message"] for eni in nat["interfaces"])
    assert "2.5 GB total: 2.0 GB from the VPC (BytesInFromSource), 500.0 MB back" in notice["message"]


def test_missing_nat_fails_cleanly_and_the_user_is_told(recorder):
    arn = recorder.start(recorder.event("alarm-math-alarm.json", "nat-0fedcba9876543210"), "missing-nat")
    status, d = ended(recorder, arn)
    assert status == "FAILED"
    assert d.get("error") == "RecordingFailed"
    assert recorder.active_flow_logs() == []
    assert recorder.lock_item("nat-0fedcba9876543210") is None
    [notice] = recorder.notices()
    assert "FAILED" in notice["subject"]
    assert "NatNotFound: NAT Gateway nat-0fedcba9876543210 does not exist" in notice["message"]
    assert "no flow log of this recording was active" in notice["message"]


def test_unknown_event_shape_fails_with_a_clear_error_and_a_notice(recorder):
    arn = recorder.start({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
                          "detail": {"instance-id": "i-0123"}}, "odd-event")
    status, _ = ended(recorder, arn)
    assert status == "FAILED"
    assert recorder.active_flow_logs() == []
    [notice] = recorder.notices()
    assert "UnexpectedEvent" in notice["subject"]
    assert "expected source aws.cloudwatch" in notice["message"]


def test_recording_limit_is_enforced_and_said(recorder):
    recorder.hosts["StartRecordingFunction"].restart(NUM_OF_RECORDINGS="1")
    nat = recorder.create_nat()
    first = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "limit-1")
    recorder.wait_parked(nat["id"])
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert ended(recorder, first)[0] == "SUCCEEDED"
    assert recorder.notices()[0]["subject"].startswith(f"NAT spike on {nat['id']}: ")

    second = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"],
                                           timestamp="2026-11-25T10:00:00.000+0000"), "limit-2")
    assert ended(recorder, second)[0] == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    [notice] = recorder.notices()
    assert "reached its recording limit" in notice["subject"]
    counter = recorder.emu.client("dynamodb").get_item(TableName=recorder.table, Key={"pk": {"S": f"count#{nat['id']}"}})
    assert counter["Item"]["started"]["N"] == "1"


def test_duplicate_alarm_delivery_records_once(recorder):
    nat = recorder.create_nat()
    event = recorder.event("alarm-math-alarm.json", nat["id"])
    first = recorder.start(event, "dup-1")
    recorder.wait_parked(nat["id"])
    second = recorder.start(event, "dup-2")
    assert ended(recorder, second)[0] == "SUCCEEDED"
    assert len(recorder.active_flow_logs()) == 1, "the duplicate created no flow log"
    assert recorder.lock_item(nat["id"])["execution"]["S"] == first, "the running recording keeps its lock"
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert ended(recorder, first)[0] == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    assert len(recorder.notices()) == 1, "one notice per recording"


def test_insufficient_data_stops_the_recording(recorder):
    nat = recorder.create_nat()
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "isd")
    recorder.wait_parked(nat["id"])
    assert recorder.resume(recorder.event("alarm-math-insufficient-data.json", nat["id"]))["result"] == "stopped"
    assert ended(recorder, arn)[0] == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    [notice] = recorder.notices()
    assert "INSUFFICIENT_DATA" in notice["message"]


def test_ok_before_the_token_is_parked_still_stops_promptly(recorder):
    from tests.harness.router import Fault
    nat = recorder.create_nat()
    park = recorder.function_names["ParkTokenFunction"]
    # Hold the park step back for 3 s and deliver the OK in that window.
    fault = Fault(f"Invoke:{park}", 3, "Slow", times=1)
    recorder.emu.router.faults.append(fault)
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "early-ok")
    recorder.wait_for(lambda: fault.injected == 1, what="park step throttled")
    assert "token" not in recorder.lock_item(nat["id"])
    assert recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))["result"] == "nothing_recording"
    status, _ = ended(recorder, arn, timeout=30)  # RecordingTime is 900 s: this is the early stop
    assert status == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    [notice] = recorder.notices()
    assert "alarm returned to OK" in notice["message"]


def test_failed_cleanup_is_told_and_the_sweeper_removes_what_it_left(recorder):
    """FinishRecording cannot run (its invoke is denied): the state machine's last resort tells
    the user, and the sweeper (run on schedule and on FAILED/ABORTED executions) cleans up.
    The same sweep covers executions stopped by hand: their execution is no longer running.
    (moto keeps a stopped execution RUNNING while its callback waits, so that case is unit-tested.)"""
    from tests.harness.router import Fault
    nat = recorder.create_nat(name="prod-egress-a")
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "cleanup-denied")
    recorder.wait_parked(nat["id"])
    running = recorder.sweep()
    assert running["checked"] == 1 and running["swept"] == [], "a running recording is left alone"
    finish = recorder.function_names["FinishRecordingFunction"]
    recorder.emu.router.faults.append(Fault(f"Invoke:{finish}", 403, "AccessDeniedException", times=1))
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    status, d = ended(recorder, arn)
    assert status == "FAILED" and d.get("error") == "CleanupFailed"
    [notice] = recorder.notices()
    # The NAT is named: its ID in the subject (bounded, ASCII), its Name tag and ID in the message.
    assert notice["subject"] == f"NAT spike recorder: CLEANUP FAILED for {nat['id']}, flow logs may still be running"
    assert notice["message"].startswith(f"Cleaning up the recording of NAT Gateway prod-egress-a ({nat['id']}) failed")
    assert (f"aws ec2 describe-flow-logs --region us-east-1 --filter Name=tag:natrec:execution,Values={arn} "
            in notice["message"]), "the notice says how to find the flow logs"
    assert "aws ec2 delete-flow-logs --region us-east-1 --flow-log-ids <ids>" in notice["message"]
    assert len(recorder.active_flow_logs()) == 1

    report = recorder.sweep()
    assert [s["execution"] for s in report["swept"]] == [arn]
    assert report["swept"][0]["reason"] == "execution_ended" and report["swept"][0]["lock_released"]
    assert recorder.active_flow_logs() == []
    assert "execution" not in recorder.lock_item(nat["id"])
    [notice] = recorder.notices()
    assert "ended by the sweeper" in notice["subject"]
    assert recorder.sweep()["swept"] == [] and recorder.notices() == [], "swept once, told once"
    # The NAT can be recorded again at once.
    again = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"], timestamp="2026-11-25T10:00:00.000+0000"),
                           "after-sweep")
    recorder.wait_for(lambda: (recorder.lock_item(nat["id"]) or {}).get("execution", {}).get("S") == again,
                      what="new recording holds the lock")


def test_an_execution_stopped_by_hand_while_its_report_waits_on_queries_has_them_stopped(recorder):
    """The report's Logs Insights queries outlast its invocation (WaitForQueries), and the
    execution is stopped by hand meanwhile: the status change rule's sweep stops them (StopQuery)
    from the query ledger, instead of leaving them to run, scan and bill for up to 60 minutes."""
    insights = recorder.emu.router.insights
    insights.steps = ["Running"] * 100_000  # the queries never finish by themselves
    report_fn = recorder.hosts["BuildReportFunction"]
    report_fn.timeout_s = 6  # a short invocation: it hands its running queries to WaitForQueries
    try:
        nat = recorder.create_nat()
        arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "stopped-while-querying")
        recorder.wait_parked(nat["id"])
        recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
        try:
            recorder.wait_for(lambda: any((e.get("stateEnteredEventDetails") or {}).get("name") == "WaitForQueries"
                                          for e in recorder.history(arn)), timeout=60, what="report waiting on queries")
        except TimeoutError:
            pytest.fail(f"never reached WaitForQueries: {recorder.history(arn)[-3:]}")
        ledger = recorder.emu.client("dynamodb").get_item(
            TableName=recorder.table, Key={"pk": {"S": f"queries#{arn}"}}, ConsistentRead=True)["Item"]
        ids = sorted(ledger["query_ids"]["SS"])
        assert ids and all(insights.queries[i].status == "Running" for i in ids), ids
        recorder.emu.client("stepfunctions").stop_execution(executionArn=arn, error="ByHand")
        assert recorder.wait(arn)["status"] == "ABORTED"
        report = recorder.sweep(recorder.status_event(arn))
        assert sorted(report["queries"]["stopped"]) == ids, report
        assert all(insights.queries[i].status == "Cancelled" for i in ids)
        assert ("SweepOrphansFunction", "logs:StopQuery") in recorder.emu.router.callers
        left = recorder.emu.client("dynamodb").get_item(
            TableName=recorder.table, Key={"pk": {"S": f"queries#{arn}"}}, ConsistentRead=True)["Item"]
        assert "query_ids" not in left, "taken out of the ledger"
        assert insights.running() == 0
    finally:
        report_fn.timeout_s = 30.0


def test_a_failed_start_whose_cleanup_fails_too_names_the_nat_of_its_alarm(recorder):
    """The start and then the finish are denied: the state is the alarm event, so the last-resort
    notice takes the NAT ID from the alarm's name (<stack>-natgw-<NAT ID>)."""
    from tests.harness.router import Fault
    nat = recorder.create_nat()
    for fn in ("StartRecordingFunction", "FinishRecordingFunction"):
        recorder.emu.router.faults.append(
            Fault(f"Invoke:{recorder.function_names[fn]}", 403, "AccessDeniedException", times=1))
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "start-and-cleanup-denied")
    status, d = ended(recorder, arn)
    assert status == "FAILED" and d.get("error") == "CleanupFailed"
    # (an execution the previous test left running may still tell its end here)
    [notice] = [n for n in recorder.notices() if arn in n["message"]]
    assert notice["subject"] == f"NAT spike recorder: CLEANUP FAILED for {nat['id']}, flow logs may still be running"
    assert notice["message"].startswith(
        f"Cleaning up the recording of the NAT Gateway of alarm natrec-test-natgw-{nat['id']} failed"), notice


def test_deleting_the_stack_deletes_every_recorder_flow_log(recorder):
    """The custom resource: CloudFormation sends Delete to the sweeper, which deletes all of the
    stack's flow logs (even of a running recording) and answers on the presigned URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    answers = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self):
            answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/presigned"
    try:
        def request(kind):
            return {"RequestType": kind, "ResponseURL": url, "StackId": "arn:aws:cloudformation:stack/natrec-test/1",
                    "RequestId": f"req-{kind}", "LogicalResourceId": "FlowLogCleanupOnDelete",
                    "ResourceType": "Custom::RecorderFlowLogCleanup", "ResourceProperties": {}}
        nat = recorder.create_nat(interfaces=2)
        recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "before-delete")
        recorder.wait_parked(nat["id"])
        lam = recorder.emu.client("lambda")
        fn = recorder.function_names["SweepOrphansFunction"]
        lam.invoke(FunctionName=fn, Payload=json.dumps(request("Create")))
        assert answers[-1]["Status"] == "SUCCESS" and len(recorder.active_flow_logs()) == 2, "create touches nothing"
        lam.invoke(FunctionName=fn, Payload=json.dumps(request("Delete")))
        assert answers[-1]["Status"] == "SUCCESS", answers[-1]
        assert answers[-1]["RequestId"] == "req-Delete"
        assert recorder.active_flow_logs() == []
    finally:
        server.shutdown()


def test_the_delivery_role_has_every_permission_the_vpc_user_guide_lists(template):
    """VPC user guide, "IAM role for publishing flow logs to CloudWatch Logs": the role's policy
    must include at least logs:CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups
    and DescribeLogStreams. Without one, the flow log is created but its delivery can fail
    (DeliverLogsStatus FAILED, "Access error"), which moto, with no IAM, never shows."""
    role = template["Resources"]["FlowLogDeliveryRole"]["Properties"]
    granted = set()
    for policy in role["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            assert st["Effect"] == "Allow"
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            granted.update(actions)
    required = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                "logs:DescribeLogStreams"}
    assert required <= granted, f"missing: {sorted(required - granted)}"
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}


def test_a_flow_log_that_delivers_nothing_is_deleted_and_the_notice_says_why(recorder):
    """moto reports DeliverLogsStatus FAILED, "Access error" for a flow log created while its log
    group does not exist (as AWS does when delivery fails). The recording still ends cleanly and
    the notice says, in its subject and at the top, that the records were not delivered."""
    logs = recorder.emu.client("logs")
    logs.delete_log_group(logGroupName=recorder.log_group)
    nat = recorder.create_nat()
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "undelivered")
    [fl] = recorder.wait_for(lambda: recorder.active_flow_logs(), what="flow log created")
    logs.create_log_group(logGroupName=recorder.log_group)  # the report reads the (empty) group
    assert fl["DeliverLogsStatus"] == "FAILED" and fl["DeliverLogsErrorMessage"] == "Access error"
    recorder.wait_parked(nat["id"])
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    status, _ = ended(recorder, arn)
    assert status == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    [notice] = recorder.notices()
    assert notice["subject"] == f"NAT spike on {nat['id']}: 0 B, no talker in the flow logs (records NOT delivered)"
    assert "FLOW-LOG RECORDS WERE NOT DELIVERED" in notice["message"]
    assert f"Delivery:     FAILED for {fl['FlowLogId']} (Access error)" in notice["message"]


def test_a_vpc_with_more_interfaces_than_a_page_is_snapshotted_whole(recorder):
    """1,200 interfaces besides the NAT's: more than one 1,000-item page of
    DescribeNetworkInterfaces. The router pages moto's answer as the EC2 API reference says
    (moto itself ignores MaxResults), so the inventory is whole only if the start step asks in
    pages and follows NextToken."""
    import time as _time
    nat = recorder.create_nat()
    ec2 = recorder.emu.client("ec2")
    subnet = ec2.create_subnet(VpcId=nat["vpc"], CidrBlock="10.0.16.0/20")["Subnet"]["SubnetId"]
    t0 = _time.time()
    # Straight into moto's EC2 model: 1,200 API calls would take a minute of CI time.
    from moto.backends import get_backend
    from tests.harness.stack import ACCOUNT, REGION
    backend = get_backend("ec2")[ACCOUNT][REGION]
    subnet_model = backend.get_subnet(subnet)
    for _ in range(1200):
        backend.create_network_interface(subnet_model, None)
    created = _time.time() - t0
    before = len(recorder.emu.router.calls)
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "big-vpc")
    recorder.wait_parked(nat["id"])
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert ended(recorder, arn)[0] == "SUCCEEDED"
    # The start snapshot and the end one (the finish step's): two pages each.
    pages = recorder.emu.router.calls[before:].count("DescribeNetworkInterfaces")
    assert pages == 4, f"{pages} DescribeNetworkInterfaces requests"
    for stream in (arn.split(":")[-1] + "/inventory", arn.split(":")[-1] + "/inventory-end"):
        events = recorder.emu.client("logs").get_log_events(logGroupName=recorder.report_log_group,
                                                            logStreamName=stream, startFromHead=True)["events"]
        ids = {json.loads(e["message"])["interface_id"] for e in events}
        assert len(ids) == 1201 and nat["interfaces"][0] in ids, (stream, len(ids), created)
