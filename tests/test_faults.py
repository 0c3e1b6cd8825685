"""The fault matrix and the races, against the emulator with the real ASL and binaries.

Faults are injected by the invoke router into AWS calls of one function (or into the Lambda
invoke of a step): throttling (absorbed by the SDK's retries), server errors beyond the SDK's
retries (retried by the state machine) and access denied (not retryable: the cleanup path).
After every scenario: no recorder flow log active, no lock held, the execution ended, exactly
one state-machine notice (recorded or failed) for the recording attempt."""
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness.router import TERMINAL_STATUSES, Fault

# A recording's notice: the report step's subject ("NAT spike on <nat>: ..."), or the finish
# step's ("NAT spike recorded: <nat> (...)") when the report could not be built.
RECORDED = ("NAT spike on ", "NAT spike recorded: ")

SUMMARY = {"scenarios": 0, "faults": 0, "swept": 0, "orphans": 0, "orphaned_queries": 0, "lost_notices": 0}


def pytest_summary_line() -> str:
    return (f"fault matrix: {SUMMARY['scenarios']} scenarios, {SUMMARY['faults']} faults injected, "
            f"{SUMMARY['swept']} finished by the sweeper, {SUMMARY['orphans']} orphaned flow logs, "
            f"{SUMMARY['orphaned_queries']} Logs Insights queries left running, "
            f"{SUMMARY['lost_notices']} lost notices")


# (caller, action): every AWS call of a normal recording, by the function that makes it.
CALLS = [
    ("StartRecordingFunction", "GetItem"),
    ("StartRecordingFunction", "DescribeNatGateways"),
    ("StartRecordingFunction", "TransactWriteItems"),
    ("StartRecordingFunction", "CreateFlowLogs"),
    ("StartRecordingFunction", "DescribeNetworkInterfaces"),
    ("ParkTokenFunction", "UpdateItem"),
    ("ResumeRecordingFunction", "UpdateItem"),
    ("ResumeRecordingFunction", "SendTaskSuccess"),
    ("FinishRecordingFunction", "DescribeFlowLogs"),
    ("FinishRecordingFunction", "DeleteFlowLogs"),
    ("FinishRecordingFunction", "UpdateItem"),
    ("FinishRecordingFunction", "GetMetricData"),
    ("BuildReportFunction", "StartQuery"),
    ("BuildReportFunction", "GetQueryResults"),
    ("BuildReportFunction", "UpdateItem"),  # the query ledger (natrec::ledger)
    ("BuildReportFunction", "FilterLogEvents"),  # with ReportAggregation streaming, or after a failed query
    ("BuildReportFunction", "PutLogEvents"),
    (None, "Publish"),  # the state machine's sns:publish
]
INVOKES = ["StartRecordingFunction", "ParkTokenFunction", "FinishRecordingFunction", "BuildReportFunction"]
# Failures that cost only names or the report, never the recording or its notice.
REPORT_ONLY = {"DescribeNetworkInterfaces", "StartQuery", "GetQueryResults", "FilterLogEvents", "PutLogEvents",
               "BuildReportFunction"}
DENIED = {"DescribeNatGateways": "UnauthorizedOperation", "CreateFlowLogs": "UnauthorizedOperation",
          "DescribeNetworkInterfaces": "UnauthorizedOperation",
          "DescribeFlowLogs": "UnauthorizedOperation", "DeleteFlowLogs": "UnauthorizedOperation"}
KINDS = {
    "throttled": lambda action: (400, "ThrottlingException" if action not in DENIED else "RequestLimitExceeded", 2),
    "server-error": lambda action: (500, "InternalFailure" if action not in DENIED else "InternalError", 4),
    "denied": lambda action: (400 if action in DENIED else 403, DENIED.get(action, "AccessDeniedException"), 1),
    # the call hangs 6 s (beyond the SDK's 4 s attempt timeout), then still reaches the service
    "timed-out": lambda action: (6, "Slow", 1),
}
INVOKE_KINDS = {"throttled": (429, "TooManyRequestsException", 1), "server-error": (500, "ServiceException", 1),
                "denied": (403, "AccessDeniedException", 1),
                # the function ran (side effects and all) but Lambda reports a timeout: the retry
                # must be idempotent (same lock, same ClientToken, counted once)
                "timed-out": (200, "Sandbox.Timedout", 1)}


def record_once(rec, name: str, settle: float = 0) -> dict:
    """One recording attempt: ALARM, OK once the token is parked (or time runs out), then the
    sweeper, as its schedule (and the FAILED/ABORTED rule) would run it."""
    nat = rec.create_nat()
    arn = rec.start(rec.event("alarm-math-alarm.json", nat["id"]), name)
    deadline = time.time() + 60
    while time.time() < deadline:
        if rec.emu.client("stepfunctions").describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
        if (rec.lock_item(nat["id"]) or {}).get("token"):
            try:
                rec.resume(rec.event("alarm-math-ok.json", nat["id"]))
            except RuntimeError:
                pass  # the resume function failed: the recording ends by its time limit
            break
        time.sleep(0.2)
    status = rec.wait(arn, timeout=180)["status"]
    time.sleep(settle)  # let a request delayed by a "timed-out" fault land first
    report = rec.sweep()
    if report["swept"] or report["stale_locks_released"]:
        SUMMARY["swept"] += 1
    return {"nat": nat, "arn": arn, "status": status}


def check_clean(rec, outcome) -> list[dict]:
    """The invariants; counts orphans and lost notices for the summary."""
    SUMMARY["scenarios"] += 1
    flow_logs = rec.active_flow_logs()
    SUMMARY["orphans"] += len(flow_logs)
    # The report's Logs Insights queries: none still running, none left in the query ledger.
    queries = [q.query_id for q in rec.emu.router.insights.queries.values() if q.status not in TERMINAL_STATUSES]
    SUMMARY["orphaned_queries"] += len(queries)
    ledgers = [i for i in rec.emu.client("dynamodb").scan(TableName=rec.table, ConsistentRead=True)["Items"]
               if i["pk"]["S"].startswith("queries#") and i.get("query_ids")]
    notices = rec.notices()
    state_machine_notices = [n for n in notices if "by the sweeper" not in n["subject"]]
    if not state_machine_notices:
        SUMMARY["lost_notices"] += 1
    assert flow_logs == [], "flow logs left running"
    assert queries == [] and ledgers == [], f"Logs Insights queries left running: {queries}, ledgers: {ledgers}"
    item = rec.lock_item(outcome["nat"]["id"]) or {}
    assert "execution" not in item and "token" not in item, f"lock or token left: {item}"
    assert outcome["status"] in ("SUCCEEDED", "FAILED"), outcome
    assert len(state_machine_notices) == 1, [n["subject"] for n in notices]
    return state_machine_notices


def app_id(caller):
    return caller


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("caller,action", CALLS)
def test_fault_in_aws_call(recorder, caller, action, kind):
    recorder.hosts["StartRecordingFunction"].restart(RECORDING_TIME="8")
    if action == "FilterLogEvents":
        recorder.hosts["BuildReportFunction"].restart(REPORT_AGGREGATION="streaming")
    status, code, times = KINDS[kind](action)
    fault = Fault(action, status, code, times=times, caller=caller)
    recorder.emu.router.faults.append(fault)
    outcome = record_once(recorder, f"fault-{kind}-{caller}-{action}"[:80], settle=status + 0.5 if kind == "timed-out" else 0)
    SUMMARY["faults"] += fault.injected
    assert fault.injected, "the fault was injected"
    [notice] = check_clean(recorder, outcome)
    if kind != "denied" or action in ("GetMetricData", "Publish") or action in REPORT_ONLY \
            or caller in ("ResumeRecordingFunction", "BuildReportFunction"):
        # retried, tolerated, or (resume) the time limit ends the recording instead
        assert outcome["status"] == "SUCCEEDED", notice
        assert notice["subject"].startswith(RECORDED)
    else:
        assert outcome["status"] == "FAILED"
        assert "FAILED" in notice["subject"]


@pytest.mark.parametrize("status", ["Failed", "Timeout", "Cancelled"])
def test_a_query_that_ends_without_an_answer(recorder, status):
    """A Logs Insights query of the report ends Failed, Timeout or Cancelled: the report reads the
    records one by one instead, the notice says why, and nothing is left running."""
    recorder.hosts["StartRecordingFunction"].restart(RECORDING_TIME="8")
    fault = Fault("StartQuery", 200, status, times=1, caller="BuildReportFunction")
    recorder.emu.router.faults.append(fault)
    outcome = record_once(recorder, f"query-{status}")
    SUMMARY["faults"] += fault.injected
    assert fault.injected
    [notice] = check_clean(recorder, outcome)
    assert outcome["status"] == "SUCCEEDED" and notice["subject"].startswith(RECORDED), notice
    assert f"ended {status}): they were read one by one instead" in notice["message"], notice["message"]


@pytest.mark.parametrize("kind", list(INVOKE_KINDS))
@pytest.mark.parametrize("function", INVOKES)
def test_fault_in_lambda_invoke(recorder, function, kind):
    recorder.hosts["StartRecordingFunction"].restart(RECORDING_TIME="8")
    status, code, times = INVOKE_KINDS[kind]
    fault = Fault(f"Invoke:{recorder.function_names[function]}", status, code, times=times)
    recorder.emu.router.faults.append(fault)
    outcome = record_once(recorder, f"invoke-{kind}-{function}")
    SUMMARY["faults"] += fault.injected
    assert fault.injected
    [notice] = check_clean(recorder, outcome)
    if kind == "denied" and function not in REPORT_ONLY:
        assert outcome["status"] == "FAILED"
    else:
        assert outcome["status"] == "SUCCEEDED", notice
    if function == "StartRecordingFunction" and kind != "denied":
        counter = recorder.emu.client("dynamodb").get_item(
            TableName=recorder.table, Key={"pk": {"S": f"count#{outcome['nat']['id']}"}})["Item"]
        assert counter["started"]["N"] == "1", "a retried start counts the recording once"


def test_twenty_nats_alarming_at_once_each_event_delivered_three_times(recorder):
    nats = [recorder.create_nat() for _ in range(20)]
    events = [recorder.event("alarm-math-alarm.json", n["id"]) for n in nats]
    with ThreadPoolExecutor(max_workers=12) as pool:
        arns = list(pool.map(lambda a: recorder.start(events[a[0]], f"burst-{a[0]}-{a[1]}"),
                             [(i, d) for i in range(20) for d in range(3)]))
    try:
        recorder.wait_for(lambda: all((recorder.lock_item(n["id"]) or {}).get("token") for n in nats),
                          timeout=120, what="20 tokens parked")
    except TimeoutError:
        pytest.fail("\n".join(n["message"] for n in recorder.notices()))
    flow_logs = recorder.active_flow_logs()
    assert sorted(f["ResourceId"] for f in flow_logs) == sorted(n["interfaces"][0] for n in nats), \
        "exactly one flow log per NAT"
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda n: recorder.resume(recorder.event("alarm-math-ok.json", n["id"])), nats))
    statuses = [recorder.wait(a, timeout=180)["status"] for a in arns]
    notices = recorder.notices()
    failures = [n["message"] for n in notices if "FAILED" in n["subject"]]
    assert statuses.count("SUCCEEDED") == 60, failures
    assert recorder.active_flow_logs() == []
    assert len(notices) == 20 and all(n["subject"].startswith(RECORDED) for n in notices)
    assert sorted(re.search(r"nat-[0-9a-f]+", n["subject"]).group(0) for n in notices) == sorted(n["id"] for n in nats)
    SUMMARY["scenarios"] += 1


def test_alarm_ok_alarm_within_a_second_records_both_spikes(recorder):
    nat = recorder.create_nat()
    first = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"], timestamp="2026-11-25T09:01:10.000+0000"),
                           "flap-1")
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"], timestamp="2026-11-25T09:01:10.400+0000"))
    second = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"], timestamp="2026-11-25T09:01:10.800+0000"),
                            "flap-2")
    assert recorder.wait(first)["status"] == "SUCCEEDED"
    recorder.wait_for(lambda: (recorder.lock_item(nat["id"]) or {}).get("execution", {}).get("S") == second
                      and (recorder.lock_item(nat["id"]) or {}).get("token"), timeout=60, what="second spike recording")
    assert len(recorder.active_flow_logs()) == 1
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"], timestamp="2026-11-25T09:05:00.000+0000"))
    assert recorder.wait(second)["status"] == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    notices = recorder.notices()
    assert len(notices) == 2 and all(n["subject"].startswith(RECORDED) for n in notices)
    SUMMARY["scenarios"] += 1


def test_nat_deleted_mid_recording_still_ends_cleanly(recorder):
    nat = recorder.create_nat()
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "nat-deleted")
    recorder.wait_parked(nat["id"])
    recorder.emu.client("ec2").delete_nat_gateway(NatGatewayId=nat["id"])
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    outcome = {"nat": nat, "arn": arn, "status": recorder.wait(arn)["status"]}
    [notice] = check_clean(recorder, outcome)
    assert outcome["status"] == "SUCCEEDED" and notice["subject"].startswith(RECORDED)


# Flow logs whose delivery fails (DescribeFlowLogs: DeliverLogsStatus FAILED, "Access error"; moto
# reports it for a flow log created while its log group is missing), alone and with faults in the
# cleanup: they are deleted all the same and the notice says the records were not delivered.
DELIVERY_FAULTS = {
    "none": lambda rec: None,
    "finish-timed-out": lambda rec: Fault(f"Invoke:{rec.function_names['FinishRecordingFunction']}", 200,
                                          "Sandbox.Timedout"),
    "delete-unavailable": lambda rec: Fault("DeleteFlowLogs", 500, "InternalError", times=4,
                                            caller="FinishRecordingFunction"),
    "delete-denied": lambda rec: Fault("DeleteFlowLogs", 400, "UnauthorizedOperation",
                                       caller="FinishRecordingFunction"),
}


@pytest.mark.parametrize("fault_kind", list(DELIVERY_FAULTS))
def test_delivery_failure(recorder, fault_kind):
    import threading
    recorder.hosts["StartRecordingFunction"].restart(RECORDING_TIME="8")
    logs = recorder.emu.client("logs")
    logs.delete_log_group(logGroupName=recorder.log_group)
    statuses = []

    def recreate_once_created():
        deadline = time.time() + 30
        while time.time() < deadline and not statuses:
            statuses.extend(f["DeliverLogsStatus"] for f in recorder.active_flow_logs())
            time.sleep(0.05)
        logs.create_log_group(logGroupName=recorder.log_group)

    watcher = threading.Thread(target=recreate_once_created)
    watcher.start()
    fault = DELIVERY_FAULTS[fault_kind](recorder)
    if fault:
        recorder.emu.router.faults.append(fault)
    outcome = record_once(recorder, f"undelivered-{fault_kind}")
    watcher.join()
    assert statuses == ["FAILED"], statuses
    if fault:
        SUMMARY["faults"] += fault.injected
        assert fault.injected
    [notice] = check_clean(recorder, outcome)
    # Said first, before any figure of the report it makes wrong (README "Flow logs that deliver nothing").
    assert notice["message"].startswith("FLOW-LOG RECORDS WERE NOT DELIVERED") or fault_kind == "delete-denied", notice
    if fault_kind == "delete-denied":
        # cleanup is denied: the failure notice goes out and the sweeper deletes the flow log
        assert outcome["status"] == "FAILED"
    else:
        assert outcome["status"] == "SUCCEEDED" and "records NOT delivered" in notice["subject"], notice
