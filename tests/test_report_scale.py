"""Issue 11 at scale, through the real Lambda path (moto runs the state machine, the Rust report
function counts with the test bed's Logs Insights, tests/harness/insights.py):

- a recording of tens of MB of `natflow::synth` records with more than 10,000 talkers is counted
  server-side, and its stored JSON report equals the streaming report of the same records;
- a StartQuery refused for the account's concurrent-query quota (LimitExceededException) only
  delays the report: it still comes out complete and server-side;
- 20 recordings reporting at once under a low quota: 20 notices, each report server-side and
  complete, no query left running, no flow log left.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.conftest import TARGET
from tests.harness.router import TERMINAL_STATUSES
from tests.test_report import report_json

# What natflow::synth writes (functions/natflow/src/synth.rs, Scenario::new): its NAT's two
# interfaces and their private IPs, its VPC hosts from 10.0.16.4 on.
SYNTH_NAT = (("eni-0aaaaaaaaaaaaaaa1", "10.0.0.10"), ("eni-0bbbbbbbbbbbbbbb2", "10.0.1.10"))
HEAVY_HOSTS = [f"10.0.16.{4 + h}" for h in range(5)]  # fill(): the few heavy talkers
GARBAGE = "this is not a flow log record"

# PutLogEvents (CloudWatch Logs API reference): "The maximum batch size is 1,048,576 bytes. This
# size is calculated as the sum of all event messages in UTF-8, plus 26 bytes for each log
# event"; "The maximum number of log events in a batch is 10,000"; events of a batch in
# chronological order; none more than 2 hours in the future.
MAX_BATCH_BYTES, MAX_BATCH_EVENTS, EVENT_OVERHEAD = 1_048_576, 10_000, 26


def put_events(logs, group: str, stream: str, events: list[tuple[int, str]]) -> int:
    """Writes (timestamp ms, message) events, in order, with as few PutLogEvents calls as the
    limits allow; returns the number of calls."""
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    calls, batch, size = 0, [], 0
    for ts, message in events:
        n = len(message.encode()) + EVENT_OVERHEAD
        if batch and (len(batch) == MAX_BATCH_EVENTS or size + n > MAX_BATCH_BYTES):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            calls, batch, size = calls + 1, [], 0
        batch.append({"timestamp": ts, "message": message})
        size += n
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        calls += 1
    return calls


def add_nat_interface(rec, nat: dict) -> dict:
    """A second interface of the NAT (one per address). Both are described as AWS describes a NAT's
    interfaces ("Interface for NAT Gateway nat-..."; moto leaves its NAT's interface without a
    description), so that the inventory, and `natflow --nat-gateway` with it, know they are the NAT's."""
    ec2 = rec.emu.client("ec2")
    ec2.modify_network_interface_attribute(NetworkInterfaceId=nat["interfaces"][0],
                                           Description={"Value": f"Interface for NAT Gateway {nat['id']}"})
    eni = ec2.create_network_interface(SubnetId=nat["subnet"], Description=f"Interface for NAT Gateway {nat['id']}")[
        "NetworkInterface"]["NetworkInterfaceId"]
    rec._add_nat_interface(nat["id"], eni)
    return {**nat, "interfaces": nat["interfaces"] + [eni]}


def nat_ips(rec, nat: dict) -> list[str]:
    enis = rec.emu.client("ec2").describe_network_interfaces(NetworkInterfaceIds=nat["interfaces"])["NetworkInterfaces"]
    by_id = {e["NetworkInterfaceId"]: e["PrivateIpAddress"] for e in enis}
    return [by_id[i] for i in nat["interfaces"]]


def inventory_file(rec, arn: str, path) -> str:
    """The recording's inventory snapshot (reports log group), as a file for natflow --inventory."""
    events = rec.emu.client("logs").get_log_events(logGroupName=rec.report_log_group,
                                                   logStreamName=arn.split(":")[-1] + "/inventory",
                                                   startFromHead=True)["events"]
    path.write_text("".join(e["message"] + "\n" for e in events))
    return str(path)


def queries_left(rec) -> tuple[list[str], list[dict]]:
    """Logs Insights queries not ended, and query-ledger items still naming queries (natrec::ledger,
    `queries#<execution>` items of the recordings table), as test_faults checks them."""
    running = [q.query_id for q in rec.emu.router.insights.queries.values() if q.status not in TERMINAL_STATUSES]
    ledgers = [i for i in rec.emu.client("dynamodb").scan(TableName=rec.table, ConsistentRead=True)["Items"]
               if i["pk"]["S"].startswith("queries#") and i.get("query_ids")]
    return running, ledgers


@pytest.fixture(scope="module")
def synth_lines(tmp_path_factory) -> list[str]:
    """~20 MB of natflow::synth records (generated once for the module): 2,000 hosts x 30 remotes,
    so that most of the ~16,000 light flows are distinct talkers (> 10,000) while the far ends, and
    so the NAT's own halves of each flow, stay few."""
    out = tmp_path_factory.mktemp("scale") / "flows.log"
    subprocess.run([str(TARGET / "natflow"), "generate", "--bytes", "20000000", "--hosts", "2000", "--remotes", "30",
                    "--seed", "7", "--no-malformed", "-o", str(out)], check=True, capture_output=True, timeout=120)
    return out.read_text().splitlines()


def as_recorded(lines: list[str], nat: dict, ips: list[str]) -> list[str]:
    """The synthetic records as this NAT's flow logs would write them: its interface IDs and
    private IPs in place of the scenario's (field by field, never inside another value)."""
    eni = {old: new for (old, _), new in zip(SYNTH_NAT, nat["interfaces"])}
    ip = {old: new for (_, old), new in zip(SYNTH_NAT, ips)}
    out = []
    for line in lines:
        f = line.split(" ")
        if len(f) > 20:
            f[2] = eni.get(f[2], f[2])
            for i in (3, 4, 19, 20):
                f[i] = ip.get(f[i], f[i])
        out.append(" ".join(f))
    return out


def comparable(report: dict) -> dict:
    """The report without what only one path can know: how the records were counted (queries or
    bytes read), the NAT's metrics (coverage) and the recording's own costs (the CLI reads a file)."""
    r = json.loads(json.dumps(report))
    r.pop("server_side", None)
    r.pop("coverage", None)
    r["input"].pop("bytes_read")
    r["input"].pop("malformed_examples", None)
    r["costs"].pop("flow_log_ingestion_usd")
    r["costs"].pop("step_functions_usd", None)
    return r


def test_a_recording_of_20_mb_with_over_10000_talkers_is_counted_server_side_as_streaming_counts_it(
        recorder, synth_lines, tmp_path):
    """More than 10,000 talkers in 20 MB of records, several answers of Logs Insights merged
    into one report: the JSON report the recorder stores equals, field for field, the report
    natflow builds by reading the same records one by one (what only one path can know aside)."""
    rec = recorder
    nat = add_nat_interface(rec, rec.create_nat(name="prod-egress-big"))
    ips = nat_ips(rec, nat)
    # The heavy talkers as instances of the VPC, in another AZ than the NAT: named and cross-AZ.
    ec2 = rec.emu.client("ec2")
    nat_az = ec2.describe_subnets(SubnetIds=[nat["subnet"]])["Subnets"][0]["AvailabilityZone"]
    other = ec2.create_subnet(VpcId=nat["vpc"], CidrBlock="10.0.16.0/28",
                              AvailabilityZone="us-east-1b" if nat_az != "us-east-1b" else "us-east-1c")["Subnet"]
    for h, ip in enumerate(HEAVY_HOSTS):
        ec2.create_network_interface(SubnetId=other["SubnetId"], PrivateIpAddress=ip, TagSpecifications=[
            {"ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": f"heavy-{h}"}]}])
    lines = as_recorded(synth_lines, nat, ips)

    t0 = int(time.time())
    arn = rec.start(rec.event("alarm-math-alarm.json", nat["id"]), "report-scale")
    rec.wait_parked(nat["id"])
    # Delivered while it records, each interface's records in its stream `<eni>-all`, stamped
    # evenly over the window the report reads (from 2 minutes before the recording's start to
    # 2 minutes after its end; here up to 100 s ahead, as the recording ends within seconds):
    # the report's first query reads the window's first minute and sizes the next ones from what
    # it finds, so each answer fits (records stamped only from the recording's start on are
    # probed through their first minute: test_the_reports_first_query_reads_the_recordings_first_minute).
    first_ms, span_ms = (t0 - 118) * 1000, 218_000
    streams: dict[str, list[tuple[int, str]]] = {eni: [] for eni in nat["interfaces"]}
    for i, line in enumerate(lines):
        streams[line.split(" ", 3)[2]].append((first_ms + i * span_ms // len(lines), line))
    streams[nat["interfaces"][0]].append((first_ms + span_ms, GARBAGE))
    logs = rec.emu.client("logs")
    written = sum(len(m.encode()) + EVENT_OVERHEAD for s in streams.values() for _, m in s)
    calls = sum(put_events(logs, rec.log_group, f"{eni}-all", events) for eni, events in streams.items())
    assert written > 20_000_000 and calls <= len(streams) + written // MAX_BATCH_BYTES, calls
    rec.resume(rec.event("alarm-math-ok.json", nat["id"]))
    assert rec.wait(arn, timeout=240)["status"] == "SUCCEEDED"
    [notice] = rec.notices()
    server = report_json(rec, arn)

    # The streaming report of the same records: natflow reads them one by one, from a file, with
    # the recording's inventory snapshot and its NAT.
    records = tmp_path / "flows.log"
    records.write_text("\n".join(line for s in streams.values() for _, line in s) + "\n")
    out = subprocess.run([str(TARGET / "natflow"), "analyze", str(records), "--inventory",
                          inventory_file(rec, arn, tmp_path / "inventory.jsonl"), "--nat-gateway", nat["id"],
                          "--region", "us-east-1", "--format", "json", "--top", "10", "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    streamed = json.loads(out.stdout)

    m = notice["message"]
    assert "Counted by CloudWatch Logs Insights" in m and "could not count" not in m, m[:3000]
    q = server["server_side"]
    assert q["queries"] >= 2 and q["records_scanned"] == len(lines) + 1, q  # every record, once
    assert server["distinct_talkers"] > 10_000, server["distinct_talkers"]
    assert server["input"]["counted"] > 40_000 and server["input"]["malformed"] == 1, server["input"]
    assert "(heavy-" in server["talkers"][0]["source"]["label"], server["talkers"][0]
    assert server["cross_az"]["bytes"] > 0
    assert comparable(server) == comparable(streamed)
    assert queries_left(rec) == ([], []) and rec.active_flow_logs() == []


class QueryRefusals:
    """Every StartQuery the test bed's Logs Insights refused, by error code (a spy on
    router.insights.start_query; the calls themselves are unchanged)."""

    def __init__(self, insights, monkeypatch):
        from tests.harness.router import InsightsError
        self.codes: list[str] = []
        real = insights.start_query

        def spy(*args, **kwargs):
            try:
                return real(*args, **kwargs)
            except InsightsError as e:
                self.codes.append(e.code)
                raise
        monkeypatch.setattr(insights, "start_query", spy)


def fresh_recorder(recorder_host, emulator):
    """What conftest's `recorder` fixture does, for a module-scoped fixture: a reset emulator, the
    functions' default settings, the stack deployed."""
    emulator.reset()
    emulator.router.insights.reset()
    for logical_id, host in recorder_host.hosts.items():
        wanted = recorder_host.function_env(logical_id)
        if host.env != wanted:
            host.env = {}
            host.restart(**wanted)
    recorder_host.deploy()
    return recorder_host


@pytest.fixture(scope="module")
def quota_held(recorder_host, emulator):
    """A recording (test_report's spike, its records stamped as it records) whose report starts
    while the account's concurrent Logs Insights queries are at their quota: the only slot is held
    by another user's query until the report's StartQuery was refused (LimitExceededException) three
    times, then freed. Run once; two tests read it."""
    from tests.test_report import record_spike
    rec = fresh_recorder(recorder_host, emulator)
    insights = rec.emu.router.insights
    with pytest.MonkeyPatch.context() as mp:
        refusals = QueryRefusals(insights, mp)
        insights.max_concurrent = 1
        logs = rec.emu.client("logs")
        now = int(time.time())
        other = logs.start_query(logGroupName=rec.log_group, startTime=now - 60, endTime=now,
                                 queryString="fields @message | limit 1")["queryId"]
        t_start = int(time.time())
        nat, arn, lam, *_ = record_spike(rec, "report-query-quota")
        throttled = lambda: refusals.codes.count("LimitExceededException")  # noqa: E731
        rec.wait_for(lambda: throttled() >= 3, timeout=60, what="the report's StartQuery refused 3 times")
        running_while_refused = rec.emu.client("stepfunctions").describe_execution(executionArn=arn)["status"]
        stopped = logs.stop_query(queryId=other)["success"]
        status = rec.wait(arn, timeout=120)["status"]
    queries = [q for q in insights.queries.values() if q.query_id != other]
    return {"lam": lam, "arn": arn, "status": status, "running_while_refused": running_while_refused,
            "stopped": stopped, "throttled": throttled(), "notices": rec.notices(), "report": report_json(rec, arn),
            "left": queries_left(rec), "t_start": t_start,
            "queries": [(q.start, q.end, q.result.records_scanned if q.result else 0) for q in queries]}


def test_a_start_query_refused_for_the_concurrent_query_quota_waits_and_the_report_is_still_counted_server_side(
        quota_held):
    """Refused for the quota, the report waits and asks again (it neither fails nor falls back to
    reading the records), and once the slot is free it counts the records server-side: the figures
    of test_report's spike, complete, and no query left running."""
    from tests.test_report import S3_IP
    run = quota_held
    assert run["running_while_refused"] == "RUNNING" and run["stopped"] and run["throttled"] >= 3
    assert run["status"] == "SUCCEEDED"
    [notice] = run["notices"]
    m = notice["message"]
    assert "Counted by CloudWatch Logs Insights" in m and "could not count" not in m, m
    assert f"  1. Lambda thumbnailer {run['lam']['PrivateIpAddress']} -> S3 {S3_IP}: 3.2 MB" in m
    r = run["report"]
    assert r["server_side"]["queries"] >= 1 and r["bytes"] == 4_500_000 and not r.get("truncated"), r
    assert run["left"] == ([], []), "no query running, none in the query ledger"


def test_the_reports_first_query_reads_the_recordings_first_minute(quota_held):
    """Records exist from the recording's start on (its flow logs are created then, and stamp
    each record with its capture window's start): the report's first query must see them."""
    (start, end, scanned), *rest = quota_held["queries"]
    assert scanned > 0, (f"the first query read {start - quota_held['t_start']}..{end - quota_held['t_start']} s "
                         f"from the recording's start and scanned no record; then: {rest}")


@pytest.fixture
def reports_at_once(recorder):
    """Report functions as Lambda runs them when 20 recordings end together: 20 at once (the
    test bed's default is 2 processes a function, which would queue them past their deadline)."""
    host = recorder.hosts["BuildReportFunction"]
    before = host.concurrency
    host.concurrency = 20
    host.restart()
    yield recorder
    host.concurrency = before
    host.restart()


def test_twenty_recordings_reporting_at_once_under_a_low_query_quota_are_all_counted_server_side(
        reports_at_once, monkeypatch):
    """20 NATs alarm at once, each records its own traffic into the shared flow-log group, and
    their 20 reports run together against a concurrent-query quota of 4: refused starts wait (never
    fail), every notice arrives with its own NAT's figures counted by Logs Insights, no query is
    left running and no flow log is left."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_report import deliver, flow
    rec = reports_at_once
    insights = rec.emu.router.insights
    refusals = QueryRefusals(insights, monkeypatch)
    insights.max_concurrent = 4
    ec2 = rec.emu.client("ec2")
    nats = [rec.create_nat(name=f"egress-{i:02d}") for i in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        arns = list(pool.map(lambda i: rec.start(rec.event("alarm-math-alarm.json", nats[i]["id"]), f"quota-{i:02d}"),
                             range(20)))
    rec.wait_for(lambda: all((rec.lock_item(n["id"]) or {}).get("token") for n in nats), timeout=120,
                 what="20 tokens parked")
    for i, nat in enumerate(nats):
        eni = nat["interfaces"][0]
        nat_ip = ec2.describe_nat_gateways(NatGatewayIds=[nat["id"]])["NatGateways"][0]["NatGatewayAddresses"][0][
            "PrivateIp"]
        # Bytes that tell the NATs apart: NAT i uploads (i + 1) MB.
        deliver(rec, f"{eni}-all", flow(eni, nat_ip, "10.0.0.77", "203.0.113.9", (i + 1) * 1_000_000, 1_000))
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda n: rec.resume(rec.event("alarm-math-ok.json", n["id"])), nats))
    statuses = [rec.wait(a, timeout=240)["status"] for a in arns]
    notices = rec.notices()
    assert statuses == ["SUCCEEDED"] * 20, [n["message"][:500] for n in notices]
    assert len(notices) == 20
    for i, (nat, arn) in enumerate(zip(nats, arns)):
        [n] = [n for n in notices if f"egress-{i:02d}:" in n["subject"]]
        assert "Counted by CloudWatch Logs Insights" in n["message"] and "could not count" not in n["message"], \
            n["message"]
        r = report_json(rec, arn)
        assert r["server_side"]["queries"] >= 1 and not r.get("truncated"), r
        assert (r["upload_bytes"], r["download_bytes"]) == ((i + 1) * 1_000_000, 1_000), (i, r["input"])
    assert refusals.codes.count("LimitExceededException") > 0, "the quota was reached"
    assert queries_left(rec) == ([], []), "no query running, none in the query ledger"
    assert rec.active_flow_logs() == []
    for nat in nats:
        item = rec.lock_item(nat["id"]) or {}
        assert "execution" not in item and "token" not in item, item
