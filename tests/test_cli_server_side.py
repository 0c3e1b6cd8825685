"""`natflow analyze --log-group ... --server-side` in the emulator: Logs Insights (the test bed's
evaluator, tests/harness/insights.py) groups the records with queries/report-records.query, natflow
counts the groups, and the report equals the one natflow builds by reading every record through
FilterLogEvents: talkers, services, cross-AZ, interfaces, input counts, costs of the NAT. Only what
only reading can know differs: the bytes read and examples of malformed lines. The records hold
more than 10,000 groups: one answer of up to 100,000 rows, read 10,000 a GetQueryResults page with
nextToken (an answer cut at 10,000 rows would make the reports differ).
"""
import json
import subprocess
import time

from tests.conftest import TARGET


def put_records(logs, group: str, stream: str, lines: list[str], start_ms: int, span_ms: int):
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    step = max(1, span_ms // max(1, len(lines)))
    events = [{"timestamp": start_ms + i * step, "message": m} for i, m in enumerate(lines)]
    # PutLogEvents: at most 10,000 events and 1,048,576 bytes a batch (API reference).
    batch, size = [], 0
    for e in events:
        if len(batch) == 10_000 or size + len(e["message"]) + 26 > 1_000_000:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            batch, size = [], 0
        batch.append(e)
        size += len(e["message"]) + 26
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def comparable(report: dict) -> dict:
    r = json.loads(json.dumps(report))
    r.pop("server_side", None)
    r["input"].pop("bytes_read")
    r["input"].pop("malformed_examples", None)
    r["costs"].pop("flow_log_ingestion_usd")
    return r


def test_server_side_report_equals_the_streamed_report(emulator, tmp_path):
    emulator.reset()
    emulator.router.insights.reset()
    records, inventory = tmp_path / "flows.log", tmp_path / "inventory.jsonl"
    subprocess.run([str(TARGET / "natflow"), "generate", "--bytes", "8000000", "--hosts", "3000", "--remotes",
                    "2000", "--seed", "4", "--no-malformed", "-o", str(records), "--inventory-output",
                    str(inventory)], check=True, capture_output=True, timeout=60)
    lines = records.read_text().splitlines() + ["this is not a flow log record"]
    now = int(time.time())
    group = "/natrec/server-side/flow-logs"
    put_records(emulator.client("logs"), group, "eni-0aaaaaaaaaaaaaaa1-all", lines, (now - 1200) * 1000,
                600_000)
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": emulator.endpoint, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def natflow(*args):
        out = subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", group, "--start", str(now - 1500),
                              "--end", str(now), "--inventory", str(inventory), "--no-progress", *args],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout

    streamed = json.loads(natflow("--format", "json", "--top", "50"))
    server = json.loads(natflow("--format", "json", "--top", "50", "--server-side"))
    assert streamed["input"]["counted"] > 5000 and streamed["distinct_talkers"] > 2000, streamed["input"]
    q = server["server_side"]
    # The probe (the window's first minute, before the records) and the rest: more than 10,000
    # groups in one answer, read in pages, no split.
    assert (q["queries"], q["split"]) == (2, 0), q
    rows = max(len(qq.result.rows) for qq in emulator.router.insights.queries.values() if qq.result)
    assert 10_000 < rows < 100_000, rows
    assert q["records_scanned"] == len(lines)
    assert comparable(server) == comparable(streamed)
    assert server["input"]["malformed"] == 1

    # The text differs only in its cost lines and the malformed line shown as an example.
    def text(*extra):
        out = natflow("--top", "50", *extra).split("Malformed lines (first")[0]
        return [line for line in out.splitlines()
                if not line.startswith(("Cost of these records", "Counted by CloudWatch Logs Insights"))]
    assert text("--server-side") == text()
