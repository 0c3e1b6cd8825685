"""The test bed's Logs Insights evaluator (tests/harness/insights.py) and its wiring into the emulator
(StartQuery / GetQueryResults / StopQuery answered by the router over moto's log events).

The evaluator is what every server-side (Insights) test relies on, so it is itself tested: on the
ground-truth generator's records its results for queries/top-talkers.query equal the truth; its
parser refuses what it does not model; through the emulator a query is polled Running -> Complete
with its statistics; injected Failed / Timeout / Cancelled outcomes and a throttled StartQuery.
"""
import json
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.conftest import TARGET
from tests.harness import insights
from tests.harness.router import Fault
from tests.harness.stack import CREDS, ROOT

QUERIES = ROOT / "queries"
TOP_TALKERS = (QUERIES / "top-talkers.query").read_text()
T0 = 1_764_000_000  # the generator's first record's start time


def generate(tmp_path: Path, malformed: bool) -> tuple[list[dict], dict]:
    """A few MB of records from `natflow generate`, as Insights events, and the generator's truth."""
    out, truth = tmp_path / "flows.log", tmp_path / "truth.json"
    cmd = [str(TARGET / "natflow"), "generate", "--bytes", "3000000", "-o", str(out), "--truth-output", str(truth),
           "--inventory-output", str(tmp_path / "inv.jsonl")] + ([] if malformed else ["--no-malformed"])
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    events = [{"@timestamp": T0 * 1000, "@message": line} for line in out.read_text().splitlines()]
    return events, json.loads(truth.read_text())


def by_pair(rows: list[dict]) -> dict[tuple[str, str], int]:
    """total_bytes per (pkt_srcaddr, pkt_dstaddr), whatever the service columns."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        out[(r["pkt_srcaddr"], r["pkt_dstaddr"])] += int(r["total_bytes"])
    return dict(out)


def expected_pairs(truth: dict) -> dict[tuple[str, str], int]:
    """Upload rows carry (host, remote), download rows (remote, host): one group each."""
    out = {}
    for p in truth["pairs"]:
        out[(p["source"], p["destination"])] = p["upload_bytes"]
        out[(p["destination"], p["source"])] = p["download_bytes"]
    return out


# --- (a) ground truth ------------------------------------------------------------------------

def test_top_talkers_equal_the_generators_truth(tmp_path):
    events, truth = generate(tmp_path, malformed=False)
    everything = TOP_TALKERS.replace("| limit 25", "| limit 10000")
    assert everything != TOP_TALKERS
    r = insights.run(everything, events)
    rows = r.dicts()
    expected = expected_pairs(truth)
    assert len(expected) < insights.MAX_RESULT_ROWS  # every group fits in one result
    assert by_pair(rows) == expected
    assert sum(int(x["total_bytes"]) for x in rows) == truth["upload_bytes"] + truth["download_bytes"]
    # Each group once (one service pair per remote), sorted by total_bytes descending.
    assert len(rows) == len(expected)
    totals = [int(x["total_bytes"]) for x in rows]
    assert totals == sorted(totals, reverse=True)
    # Two translated records per flow reach stats; every line is scanned.
    assert r.records_matched == 2 * truth["flows"]
    assert r.records_scanned == len(events)
    assert r.bytes_scanned == sum(len(e["@message"].encode()) for e in events)

    # The query as saved: the 25 biggest groups, as stats rows (no @ptr).
    top = insights.run(TOP_TALKERS, events).dicts()
    assert [int(x["total_bytes"]) for x in top] == sorted(expected.values(), reverse=True)[:25]
    assert set(top[0]) == {"pkt_srcaddr", "pkt_dstaddr", "pkt_src_aws_service", "pkt_dst_aws_service",
                           "total_bytes", "total_packets"}


def test_malformed_records_that_top_talkers_admits_and_natflow_does_not(tmp_path):
    """The generator's malformed lines that still split into 26 fields pass the query's filter (an
    invalid address 999.1.1.1; bytes "notanumber", which sum ignores): the only difference from
    the truth. A server-side report must account for these (natflow counts them as malformed)."""
    events, truth = generate(tmp_path, malformed=True)
    assert truth["malformed"] > 0
    rows = insights.run(TOP_TALKERS.replace("| limit 25", "| limit 10000"), events).dicts()
    extra = {k: v for k, v in by_pair([r for r in rows if "total_bytes" in r]).items()
             if k not in expected_pairs(truth)}
    assert extra == {("999.1.1.1", "1.2.3.4"): 10 * (truth["malformed"] // 3)}
    no_sum = [r for r in rows if "total_bytes" not in r]
    assert [(r["pkt_dstaddr"], r["total_packets"]) for r in no_sum] == [("1.2.3.4", str(truth["malformed"] // 3))]
    assert by_pair([r for r in rows if "total_bytes" in r and r["pkt_srcaddr"] != "999.1.1.1"]) == expected_pairs(truth)


# --- (b) the parser refuses what it does not model -------------------------------------------

@pytest.mark.parametrize("query, names", [
    ("fields @message | dedup @message", "dedup"),
    ("pattern @message", "pattern"),
    ("fields @message | anomaly", "anomaly"),
    ("stats avg(bytes) by srcaddr", "avg"),
    ("stats count_distinct(srcaddr)", "count_distinct"),
    ("stats count(*) by bin(5m)", "bin"),
    ("parse @message /(?<x>\\S+)/", "regular expression"),
    ("filter @message =~ /x/", "=~"),
    ("fields @message | sort @timestamp", "asc or desc"),
    ("fields @message | limit 100001", "limit 100001"),
    ("fields @message | limit any 5", "limit any"),
    ("filter isValidIp(srcaddr)", "isValidIp"),
    ("fields abs(bytes) as b", "abs"),
    ("stats sum(bytes) | stats count(*)", "more than one stats"),
    ("frobnicate @message", "frobnicate"),
])
def test_the_parser_refuses_what_it_does_not_model(query, names):
    with pytest.raises(insights.Unsupported) as e:
        insights.compile_query(query)
    assert names in str(e.value)


@pytest.mark.parametrize("query", [
    'parse @message "* *" as a',  # 2 wildcards, 1 name
    "filter (a = 1",
    "filter a = ",
    "stats sum(bytes) as",
    "filter a like 5",
    "| filter a = 1",
])
def test_malformed_queries_are_errors(query):
    with pytest.raises(insights.QueryError):
        insights.compile_query(query)


def test_every_saved_query_is_within_the_modelled_subset():
    files = sorted(QUERIES.glob("*.query"))
    assert files
    for f in files:
        insights.compile_query(f.read_text())  # raises if a query uses something not modelled


# --- the evaluator's semantics on small inputs -----------------------------------------------

def ev(*messages: str, ts: int = T0 * 1000) -> list[dict]:
    return [{"@timestamp": ts + k, "@message": m} for k, m in enumerate(messages)]


def shown(query: str, events: list[dict]) -> list[dict]:
    """The result rows without @ptr (every non-stats row carries one)."""
    rows = insights.run(query, events).dicts()
    assert all("@ptr" in r for r in rows)
    return [{k: v for k, v in r.items() if k != "@ptr"} for r in rows]


def test_parse_keeps_a_line_that_does_not_match_without_its_fields():
    events = ev("a 1", "no-space-here", "b 2")
    rows = insights.run('parse @message "* *" as k, v | stats count(*), count(k) as with_k', events).dicts()
    assert rows == [{"count(*)": "3", "with_k": "2"}]
    rows = shown('parse @message "* *" as k, v | filter v != "9" | display k, v', events)
    assert rows == [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]  # a null never compares true
    rows = shown('parse "url=*" as url | display url', ev("GET url=/a b c"))
    assert rows == [{"url": "/a b c"}]  # unanchored; a trailing * takes the rest


def test_the_split_fast_path_matches_as_the_glob_does():
    for pattern in ("* *", "* * *", "*, *", "*=*=*"):
        split, rx = insights.glob_splitter(pattern), insights.glob_regex(pattern)
        assert split is not None
        for v in ("a b c d", "a  b", " a b", "a b ", "ab", "", "x, y, z", "k=v=w=z", "a=b", "=="):
            m = rx.search(v)
            assert split(v) == (list(m.groups()) if m else None), (pattern, v)
    assert insights.glob_splitter("user=*, method:*") is None  # not of that shape: the regex


def test_numbers_compare_as_numbers_strings_as_strings():
    events = ev("x 1000", "x 900", "x abc")
    q = 'parse @message "* *" as k, n | filter n > 950 | display n'
    assert shown(q, events) == [{"n": "1000"}]  # as strings "900" > "950" would be false too
    q = 'parse @message "* *" as k, n | filter n < 950 | display n'
    assert shown(q, events) == [{"n": "900"}]  # "1000" < "950" as strings; "abc" is no number
    q = 'parse @message "* *" as k, n | filter n = "1000.0" or n = 900.0 | display n'
    assert shown(q, events) == [{"n": "1000"}, {"n": "900"}]


def test_filter_operators():
    events = ev("10.1.2.3 nat-0abc OK", "192.168.0.9 eni-1 OK", "8.8.8.8 nat-9 NODATA", "fd00::1 nat-1 OK")
    base = 'parse @message "* * *" as ip, res, st | filter {} | display ip'

    def ips(cond):
        return [r["ip"] for r in insights.run(base.format(cond), events).dicts()]

    assert ips('isIpInSubnet(ip, "10.0.0.0/8") or isIpInSubnet(ip, "192.168.0.0/16")') == ["10.1.2.3", "192.168.0.9"]
    assert ips('isIpInSubnet(ip, "fd00::/8")') == ["fd00::1"]
    assert ips("res like /^nat-/ and not st = \"NODATA\"") == ["10.1.2.3", "fd00::1"]
    assert ips('res like "abc"') == ["10.1.2.3"]
    assert ips('res not like /^nat-/') == ["192.168.0.9"]
    assert ips('st in ["NODATA", "SKIPDATA"]') == ["8.8.8.8"]
    assert ips('st not in ["NODATA", "SKIPDATA"]') == ["10.1.2.3", "192.168.0.9", "fd00::1"]
    assert ips('not (res like /^nat-/ and st = "OK")') == ["192.168.0.9", "8.8.8.8"]


def test_stats_sort_limit_and_the_result_cap():
    events = ev(*[f"h{k % 3} {k}" for k in range(10)])
    q = 'parse @message "* *" as h, b | stats sum(b), count(*) as n by h | sort sum(b) desc'
    with pytest.raises(insights.QueryError):
        insights.compile_query(q)  # a sort key is a field name: name the sum with `as`
    q = 'parse @message "* *" as h, b | stats sum(b), count(*) as n, min(b), max(b) as top by h | sort n asc, h desc'
    assert insights.run(q, events).dicts() == [
        {"h": "h2", "sum(b)": "15", "n": "3", "min(b)": "2", "top": "8"},
        {"h": "h1", "sum(b)": "12", "n": "3", "min(b)": "1", "top": "7"},
        {"h": "h0", "sum(b)": "18", "n": "4", "min(b)": "0", "top": "9"}]
    # More than 10,000 groups: 10,000 result rows unless a limit (up to 100,000) asks for more
    # (limit page, StartQuery reference).
    many = ev(*[f"h{k} 1" for k in range(10_005)])
    q = 'parse @message "* *" as h, b | stats count(*) by h'
    assert len(insights.run(q, many).rows) == insights.DEFAULT_RESULT_ROWS == 10_000
    assert len(insights.run(q + " | limit 100000", many).rows) == 10_005
    assert len(insights.run(q, many, limit=100_000).rows) == 10_005
    assert len(insights.run(q + " | limit 100000", many, limit=10_001).rows) == 10_001
    assert len(insights.run(q + " | limit 7", many).rows) == 7
    assert len(insights.run(q, many, limit=3).rows) == 3
    # A non-stats row: the default columns and @ptr.
    row = insights.run("limit 1", ev("hello")).dicts()[0]
    assert row["@message"] == "hello" and row["@timestamp"] == "2025-11-24 16:00:00.000" and "@ptr" in row


def test_sort_follows_the_documented_natural_order():
    """The sort page's own example, ascending: non-numbers in natural order, then numbers."""
    documented = ["!:", "#", "*%04", "0#", "5A", "111A", "2345_", "@", "@_", "A", "A9876fghj", "a12345hfh",
                  "0", "01", "1", "2", "3"]
    shuffled = documented[7:] + documented[:7]
    q = "display @message | sort @message {}"
    assert [r["@message"] for r in shown(q.format("asc"), ev(*shuffled))] == documented
    assert [r["@message"] for r in shown(q.format("desc"), ev(*shuffled))] == documented[::-1]


def test_the_nat_flows_query_names_protocols_and_paths():
    line = ("9 123456789012 eni-0aaaaaaaaaaaaaaa1 10.0.16.4 10.0.0.10 40000 443 17 10 1000 1764000000 1764000060 "
            "ACCEPT OK vpc-1 subnet-1 use1-az1 ingress 2 10.0.16.4 203.0.113.9 - - 19 IPv4 -")
    rows = insights.run((QUERIES / "nat-flows.query").read_text(), ev(line, "not a record")).dicts()
    assert len(rows) == 1
    assert rows[0]["protocol"] == "UDP" and rows[0]["traffic_path"] == "internet gateway or gateway endpoint"
    assert rows[0]["flow_start"] == "2025-11-24 16:00:00.000"


# --- (c), (d) through the emulator ------------------------------------------------------------

GROUP = "/natrec/insights-test/flow-logs"


@pytest.fixture
def logs(emulator):
    emulator.reset()
    emulator.router.insights.reset()
    # One attempt a call: the test sees each error the emulator answers, not the SDK's retries.
    client = boto3.client("logs", endpoint_url=emulator.endpoint, config=Config(retries={"total_max_attempts": 1}),
                          **CREDS)
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName="eni-0aaaaaaaaaaaaaaa1-all")
    yield client
    emulator.router.insights.reset()


def put(logs, lines: list[str], ts_ms: int):
    logs.put_log_events(logGroupName=GROUP, logStreamName="eni-0aaaaaaaaaaaaaaa1-all",
                        logEvents=[{"timestamp": ts_ms, "message": m} for m in lines])


def row(src, dst, psrc, pdst, nbytes, status="OK"):
    return (f"9 123456789012 eni-0aaaaaaaaaaaaaaa1 {src} {dst} 40000 443 6 10 {nbytes} 1764000000 1764000060 ACCEPT "
            f"{status} vpc-x subnet-x use1-az1 ingress 8 {psrc} {pdst} - - 19 IPv4 -")


def poll(logs, query_id: str, emulator=None) -> list[dict]:
    """GetQueryResults until the query ends; with `emulator`, once its evaluation is done (so
    that the statuses seen are the configured steps, not the evaluation's time)."""
    if emulator is not None:
        assert emulator.router.insights.queries[query_id].done.wait(30)
    seen = []
    for _ in range(200):
        r = logs.get_query_results(queryId=query_id)
        seen.append(r)
        if r["status"] not in ("Scheduled", "Running"):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"query {query_id} never ended: {[s['status'] for s in seen]}")


def test_start_query_is_polled_running_then_complete_with_rows_and_statistics(logs, emulator):
    now = int(time.time())
    inside = [row("10.0.2.5", "10.0.0.10", "10.0.2.5", "203.0.113.9", 1000),  # upload
              row("203.0.113.9", "10.0.0.10", "203.0.113.9", "10.0.2.5", 7000),  # download
              row("10.0.0.10", "203.0.113.9", "10.0.0.10", "203.0.113.9", 1000),  # the NAT's own half
              row("10.0.2.5", "10.0.0.10", "10.0.2.5", "203.0.113.9", 500, status="SKIPDATA"),
              "garbage"]
    put(logs, [row("10.0.2.6", "10.0.0.10", "10.0.2.6", "203.0.113.9", 99)], (now - 7200) * 1000)  # outside
    put(logs, inside, now * 1000)
    q = logs.start_query(logGroupName=GROUP, startTime=now - 600, endTime=now, queryString=TOP_TALKERS)
    seen = poll(logs, q["queryId"], emulator)
    assert [s["status"] for s in seen] == ["Running", "Complete"]
    assert seen[0]["results"] == []
    done = seen[-1]
    rows = [{c["field"]: c["value"] for c in r} for r in done["results"]]
    assert [(r["pkt_srcaddr"], r["pkt_dstaddr"], r["total_bytes"]) for r in rows] == [
        ("203.0.113.9", "10.0.2.5", "7000"), ("10.0.2.5", "203.0.113.9", "1000")]
    assert done["statistics"]["recordsScanned"] == len(inside)
    assert done["statistics"]["recordsMatched"] == 2
    assert done["statistics"]["bytesScanned"] == sum(len(m) for m in inside)
    assert logs.get_query_results(queryId=q["queryId"])["status"] == "Complete"  # stays complete
    assert emulator.router.calls.count("StartQuery") == 1

    # The same group by ARN (logGroupIdentifiers), more polls before completion, the API's limit.
    emulator.router.insights.steps = ["Scheduled", "Running", "Running"]
    arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}:*"
    q = logs.start_query(logGroupIdentifiers=[arn], startTime=now - 600, endTime=now, queryString=TOP_TALKERS,
                         limit=1)
    seen = poll(logs, q["queryId"], emulator)
    assert [s["status"] for s in seen] == ["Scheduled", "Running", "Running", "Complete"]
    assert len(seen[-1]["results"]) == 1


def test_a_query_stays_running_until_evaluated(logs, emulator, monkeypatch):
    """No GetQueryResults call waits on an evaluation: the query shows Running meanwhile."""
    gate, run = threading.Event(), insights.Query.run
    monkeypatch.setattr(insights.Query, "run",
                        lambda self, events, limit=None: (gate.wait(30), run(self, events, limit))[1])
    emulator.router.insights.steps = []
    now = int(time.time())
    put(logs, [row("10.0.2.5", "10.0.0.10", "10.0.2.5", "203.0.113.9", 1000)], now * 1000)
    q = logs.start_query(logGroupName=GROUP, startTime=now - 600, endTime=now, queryString=TOP_TALKERS)["queryId"]
    assert [logs.get_query_results(queryId=q)["status"] for _ in range(3)] == ["Running"] * 3
    gate.set()
    done = poll(logs, q, emulator)[-1]
    assert done["status"] == "Complete" and len(done["results"]) == 1


def test_the_time_range_includes_both_ends(logs, emulator):
    """startTime and endTime (epoch seconds) are both inclusive (StartQuery API reference); the end
    second is taken whole (not documented)."""
    start, end = int(time.time()) - 300, int(time.time()) - 200
    for ts, name in ((start * 1000 - 1, "before"), (start * 1000, "first"), (end * 1000 + 999, "last"),
                     ((end + 1) * 1000, "after")):
        put(logs, [name], ts)
    q = logs.start_query(logGroupName=GROUP, startTime=start, endTime=end,
                         queryString="display @message | sort @message asc")["queryId"]
    done = poll(logs, q, emulator)[-1]
    assert [r[0]["value"] for r in done["results"]] == ["first", "last"]
    assert done["statistics"]["recordsScanned"] == 2


def test_results_are_paged_with_max_items_and_next_token(logs, emulator):
    """GetQueryResults API reference: at most 10,000 rows a request (`maxItems`), the rest through
    `nextToken`, up to 100,000 a query (StartQuery `limit` up to 100,000)."""
    now = int(time.time())
    put(logs, [f"m{k:02d}" for k in range(25)], now * 1000)
    q = logs.start_query(logGroupName=GROUP, startTime=now - 600, endTime=now, limit=100_000,
                         queryString="display @message | sort @message asc | limit 100000")["queryId"]
    first = logs.get_query_results(queryId=q, maxItems=10)
    assert first["status"] == "Running" and first["results"] == [] and "nextToken" not in first
    done = poll(logs, q, emulator)[-1]
    assert len(done["results"]) == 25 and "nextToken" not in done  # without maxItems: up to 10,000
    got, token, pages = [], None, 0
    while True:
        page = logs.get_query_results(queryId=q, maxItems=10, **({"nextToken": token} if token else {}))
        got += [r[0]["value"] for r in page["results"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert (pages, got) == (3, [f"m{k:02d}" for k in range(25)])
    with pytest.raises(logs.exceptions.InvalidParameterException, match="maxItems"):
        logs.get_query_results(queryId=q, maxItems=10_001)
    with pytest.raises(logs.exceptions.InvalidParameterException, match="nextToken"):
        logs.get_query_results(queryId=q, nextToken="not-a-token")
    with pytest.raises(logs.exceptions.InvalidParameterException, match="limit"):
        logs.start_query(logGroupName=GROUP, startTime=now - 60, endTime=now, queryString="limit 1", limit=100_001)


def test_start_query_errors(logs):
    now = int(time.time())
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.start_query(logGroupName="/no/such/group", startTime=now - 60, endTime=now, queryString="limit 1")
    with pytest.raises(logs.exceptions.MalformedQueryException, match="dedup"):
        logs.start_query(logGroupName=GROUP, startTime=now - 60, endTime=now, queryString="dedup @message")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.start_query(logGroupName=GROUP, logGroupNames=[GROUP], startTime=now - 60, endTime=now,
                         queryString="limit 1")


@pytest.mark.parametrize("outcome", ["Failed", "Timeout", "Cancelled"])
def test_an_injected_outcome_ends_the_query_without_results(logs, emulator, outcome):
    now = int(time.time())
    put(logs, [row("10.0.2.5", "10.0.0.10", "10.0.2.5", "203.0.113.9", 1000)], now * 1000)
    emulator.router.faults.append(Fault("StartQuery", 200, outcome))
    q = logs.start_query(logGroupName=GROUP, startTime=now - 600, endTime=now, queryString=TOP_TALKERS)
    seen = poll(logs, q["queryId"], emulator)
    assert [s["status"] for s in seen] == ["Running", outcome]
    assert seen[-1]["results"] == []
    # The next query is not affected.
    q = logs.start_query(logGroupName=GROUP, startTime=now - 600, endTime=now, queryString=TOP_TALKERS)
    assert poll(logs, q["queryId"])[-1]["status"] == "Complete"


def test_throttled_start_query_and_the_concurrent_query_quota(logs, emulator):
    now = int(time.time())
    args = dict(logGroupName=GROUP, startTime=now - 600, endTime=now, queryString="limit 1")
    emulator.router.faults.append(Fault("StartQuery", 400, "LimitExceededException"))
    with pytest.raises(logs.exceptions.LimitExceededException):
        logs.start_query(**args)
    first = logs.start_query(**args)["queryId"]  # the fault was for one call

    emulator.router.insights.max_concurrent = 2
    second = logs.start_query(**args)["queryId"]
    with pytest.raises(logs.exceptions.LimitExceededException, match="concurrency"):
        logs.start_query(**args)
    assert logs.stop_query(queryId=first)["success"] is True
    assert logs.get_query_results(queryId=first)["status"] == "Cancelled"
    third = logs.start_query(**args)["queryId"]  # a place was freed
    poll(logs, second)  # ends: another place
    logs.start_query(**args)
    assert logs.stop_query(queryId=second)["success"] is False  # already complete
    assert third
