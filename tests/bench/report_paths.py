#!/usr/bin/env python3
"""Benchmark (issue 11): the report of a recording of 100 MiB, 1 GiB, 10 GiB and 100 GiB of records,
by the streaming path (FilterLogEvents, paced) and by the server-side path (Logs Insights groups the
records, natflow counts the groups).

Run from the repository root (not a test; results go to docs/benchmarks.md):
    .venv/bin/python tests/bench/report_paths.py [--runs 7] [--stream-mb 16]

Measured on this machine:
1. Our side of the server-side path: `functions/natflow/examples/rows_to_report.rs` in release, from
   Logs Insights answers (10,000 rows: one page; 100,000 rows: one answer of 10 GetQueryResults pages,
   the most one query returns) and an inventory of 3,002 ENIs to the finished report, text and JSON. `--runs` processes each; median
   time, median and largest peak RSS (/usr/bin/time).
2. Paging against the emulator (moto behind the test bed's router): `--stream-mb` of `natflow
   generate` records in a log group; a boto3 pass over FilterLogEvents records the page sizes; the
   release `natflow analyze --log-group` reads them (streaming) and, on the same records,
   `--server-side` (the test bed's Insights evaluator); each run's CPU time (the natflow process
   only, not the emulator's), wall time and peak RSS (/usr/bin/time).
Extrapolated (no AWS here): the streaming path's time from the quota (FilterLogEvents 5 requests/s
per account and region, at most 1 MB or 10,000 events a page; the recorder's default 2/s) and its
Lambda cost (BuildReportFunction's memory in template.yaml, arm64 price); the server-side path's
query cost from the documented price per GB scanned, with the split model described in the output.

Builds go to target/bench (CARGO_TARGET_DIR), never to the user's target/release.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_TARGET = ROOT / "target" / "bench"
NATFLOW = BENCH_TARGET / "release" / "natflow"
ROWS_TO_REPORT = BENCH_TARGET / "release" / "examples" / "rows_to_report"
DOC = ROOT / "docs" / "benchmarks.md"
sys.path.insert(0, str(ROOT))

MIB = 1 << 20
SIZES = [("100 MiB", 100 * MIB), ("1 GiB", 1 << 30), ("10 GiB", 10 << 30), ("100 GiB", 100 << 30)]
RATES = [2, 5]
# CloudWatch Logs API reference, FilterLogEvents: a page holds at most 1 MB of events or 10,000
# events; quotas page: 5 requests/s per account and region (shared). Best case: every page full.
PAGE = MIB
# The recorder's budget in one invocation (functions/natrec/src/report.rs, template.yaml): 900 s
# less 60 s kept to build and store the report, less the start; ReportMaxBytes default 1 GiB, max 1.5 GiB.
LAMBDA_TIMEOUT_S = 900
READ_BUDGET_S = 830
REPORT_MAX_BYTES = 1 << 30
# Lambda pricing page (https://aws.amazon.com/lambda/pricing/), us-east-1, Arm: $0.0000133334 per
# GB-s (first 7.5 billion GB-s a month), $0.20 per million requests.
ARM_GB_S = 0.0000133334
REQUEST = 0.20 / 1e6
# CloudWatch pricing page (https://aws.amazon.com/cloudwatch/pricing/), us-east-1: Logs Insights
# $0.005 per GB of data scanned; no charge per FilterLogEvents request (the page's API-request
# charges are for metric APIs).
INSIGHTS_PER_GB = 0.005
MAX_ROWS = 100_000  # StartQuery `limit` (Logs Insights QL), read in GetQueryResults pages of 10,000
PAGE_ROWS = 10_000


def report_memory_mb() -> int:
    """BuildReportFunction's MemorySize in template.yaml (the first after its name: Globals come before)."""
    text = (ROOT / "template.yaml").read_text()
    block = text[text.index("\n  BuildReportFunction:") + 1:]
    for line in block.splitlines()[1:]:
        if line.strip().startswith("MemorySize:"):
            return int(line.split(":")[1])
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":"):
            break  # the next resource
    raise SystemExit("BuildReportFunction has no MemorySize in template.yaml")


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, float, bytes]:
    """(wall s, CPU s, peak RSS MiB, stdout) of the command alone, as /usr/bin/time reports them. Not
    wait4 on a child of this process: a forked child's peak RSS counts the pages it shared with this
    Python process (the emulator's included) before it ran the command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", t.name, *cmd], capture_output=True, env=env)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {p.stderr.decode()[-2000:]}")
        user, sys_, rss_kb = t.read().split()[-3:]
    return wall, float(user) + float(sys_), int(rss_kb) / 1024, p.stdout


def build():
    for args in (["-p", "natflow-cli"], ["-p", "natflow", "--example", "rows_to_report"]):
        subprocess.run(["cargo", "build", "--release", "--locked", *args], cwd=ROOT, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(BENCH_TARGET)})


def our_side(runs: int, work: Path) -> list[dict]:
    """Answers to report, in release: median time, peak RSS."""
    out = []
    for rows in (10_000, 100_000):
        d = work / f"rows-{rows}"
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(ROWS_TO_REPORT), "generate", str(rows), "3000", "2000", "11", str(d)], check=True)
        results = []
        for _ in range(runs):
            wall, cpu, rss, stdout = run_measured([str(ROWS_TO_REPORT), "report", str(d)])
            r = json.loads(stdout)
            r.update(wall_ms=wall * 1e3, rss_mb=rss, load=os.getloadavg()[0])
            results.append(r)
        med = {k: statistics.median(r[k] for r in results)
               for k in ("total_ms", "wall_ms", "rss_mb", "inventory_ms", "decode_ms", "rows_ms", "build_ms",
                         "render_ms")}
        first = results[0]
        out.append({**{k: first[k] for k in ("rows", "answers", "pages", "records", "inventory_enis", "distinct_talkers",
                                              "answer_bytes", "text_bytes", "json_bytes")},
                    **med, "rss_max_mb": max(r["rss_mb"] for r in results), "runs": runs,
                    "load": max(r["load"] for r in results)})
        print(json.dumps(out[-1]), flush=True)
    return out


def put_records(logs, group: str, stream: str, lines: list[str], start_ms: int, span_ms: int):
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    step = max(1, span_ms // max(1, len(lines)))
    # PutLogEvents: at most 10,000 events and 1,048,576 bytes a batch (API reference).
    batch, size = [], 0
    for i, m in enumerate(lines):
        if len(batch) == 10_000 or size + len(m) + 26 > 1_000_000:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            batch, size = [], 0
        batch.append({"timestamp": start_ms + i * step, "message": m})
        size += len(m) + 26
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def paging(stream_mb: int, work: Path) -> dict:
    import logging

    from tests.harness.stack import Emulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    records, inventory = work / "flows.log", work / "inventory.jsonl"
    subprocess.run([str(NATFLOW), "generate", "--bytes", str(stream_mb * MIB), "--hosts", "3000", "--remotes", "2000",
                    "--seed", "4", "--no-malformed", "-o", str(records), "--inventory-output", str(inventory)],
                   check=True, capture_output=True)
    lines = records.read_text().splitlines()
    record_bytes = sum(len(l) for l in lines)
    emu = Emulator(work / "emulator-logs")
    try:
        logs = emu.client("logs")
        now = int(time.time())
        group = "/natrec/bench/flow-logs"
        t0 = time.perf_counter()
        put_records(logs, group, "eni-0aaaaaaaaaaaaaaa1-all", lines, (now - 1200) * 1000, 600_000)
        put_s = time.perf_counter() - t0
        # The pages as the emulator serves them (moto: 10,000 events a page, no 1 MB bound).
        pages, token = [], None
        t0 = time.perf_counter()
        while True:
            kw = {"nextToken": token} if token else {}
            page = logs.filter_log_events(logGroupName=group, startTime=(now - 1500) * 1000, endTime=now * 1000, **kw)
            ev = page["events"]
            msg = sum(len(e["message"]) for e in ev)
            envelope = len(json.dumps(ev, separators=(",", ":")))
            pages.append({"events": len(ev), "message_bytes": msg, "json_bytes": envelope})
            token = page.get("nextToken")
            if not token:
                break
        boto_s = time.perf_counter() - t0
        env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": emu.endpoint, "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        cmd = [str(NATFLOW), "analyze", "--log-group", group, "--start", str(now - 1500), "--end", str(now),
               "--inventory", str(inventory), "--no-progress", "--format", "json", "--top", "50"]
        s_wall, s_cpu, s_rss, s_out = run_measured(cmd, env)
        emu.router.insights.reset()
        q_wall, q_cpu, q_rss, q_out = run_measured(cmd + ["--server-side"], env)
        largest = max((len(q.result.rows) for q in emu.router.insights.queries.values() if q.result), default=0)
    finally:
        emu.close()
    streamed, server = json.loads(s_out), json.loads(q_out)
    equal = streamed["talkers"] == server["talkers"] and streamed["upload_bytes"] == server["upload_bytes"] \
        and streamed["download_bytes"] == server["download_bytes"]
    full = [p for p in pages if p["events"] == 10_000]
    mb = record_bytes / MIB
    r = {"records": len(lines), "record_mb": mb, "bytes_per_record": record_bytes / len(lines), "put_s": put_s,
         "pages": len(pages), "events_per_full_page": 10_000 if full else max(p["events"] for p in pages),
         "mb_per_full_page": statistics.mean(p["message_bytes"] for p in full) / MIB if full else None,
         "json_per_message": sum(p["json_bytes"] for p in pages) / sum(p["message_bytes"] for p in pages),
         "boto_pages_s": boto_s,
         "stream_wall_s": s_wall, "stream_cpu_s": s_cpu, "stream_rss_mb": s_rss, "stream_cpu_ms_per_mb": s_cpu * 1e3 / mb,
         "server_wall_s": q_wall, "server_cpu_s": q_cpu, "server_rss_mb": q_rss,
         "server_queries": server["server_side"]["queries"], "server_split": server["server_side"]["split"],
         "scanned_ratio": server["server_side"]["bytes_scanned"] / record_bytes,
         "talkers": streamed["distinct_talkers"], "equal": equal, "largest_answer_rows": largest}
    print(json.dumps(r), flush=True)
    return r


def streaming_rows(cpu_ms_per_mb: float, memory_mb: int) -> list[dict]:
    gb = memory_mb / 1024
    rows = []
    for name, size in SIZES:
        pages = math.ceil(size / PAGE)
        for rate in RATES:
            read_s = pages / rate
            cpu_s = size / MIB * cpu_ms_per_mb / 1e3
            # One invocation reads for at most READ_BUDGET_S and at most ReportMaxBytes (default).
            per_invocation = min(int(READ_BUDGET_S * rate) * PAGE, REPORT_MAX_BYTES)
            one = min(size, per_invocation)
            one_s = one / PAGE / rate
            invocations = math.ceil(size / per_invocation)
            rows.append({"size": name, "rate": rate, "pages": pages, "read_s": read_s, "cpu_s": cpu_s,
                         "fits": size <= per_invocation, "covered": one / size,
                         "one_usd": one_s * gb * ARM_GB_S + REQUEST,
                         "all_usd": read_s * gb * ARM_GB_S + invocations * REQUEST, "invocations": invocations})
    return rows


def server_rows(groups_split: int) -> list[dict]:
    """Query cost. Model: a window whose answer is full (100,000 rows) is asked again in two halves,
    each half scanning its half: a level of splitting rescans the recording once. Groups spread evenly
    over time and not repeated across halves (the best case for splitting): levels L =
    ceil(log2(groups / 100,000)), queries 2^(L+1) - 1, scanned (L + 1) x the recording."""
    out = []
    levels = math.ceil(math.log2(groups_split / MAX_ROWS)) if groups_split > MAX_ROWS else 0
    for name, size in SIZES:
        gb = size / 1e9
        out.append({"size": name, "scan_gb": gb, "one_usd": gb * INSIGHTS_PER_GB,
                    "levels": levels, "queries": 2 ** (levels + 1) - 1,
                    "split_gb": gb * (levels + 1), "split_usd": gb * (levels + 1) * INSIGHTS_PER_GB})
    return out


def section(ours, pg, stream, server, memory_mb, runs, stream_mb, groups_split) -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    cores = os.cpu_count()
    o10 = next(o for o in ours if o["rows"] == 10_000)
    lines = [
        "<!-- report-paths:start (written by tests/bench/report_paths.py) -->",
        "## Report paths (issue 11): streaming through FilterLogEvents vs Logs Insights grouping",
        "",
        f"Run {time.strftime('%Y-%m-%d')} on {cores} cores ({cpu}), {platform.system()} {platform.release()}, "
        "release builds for this machine (x86_64; the Lambdas run arm64). **Measured** here: our side of both "
        "paths (tables 1 and 2). **Extrapolated** (no AWS here): the streaming path's time from the quota, "
        "Lambda cost, and the query cost (tables 3 and 4). Logs Insights' own run time on AWS is not measured. "
        "The machine was shared with other builds: times are upper bounds.",
        "",
        f"**1. Our side of the server-side path, measured.** `rows_to_report report`: Logs Insights answers "
        "(GetQueryResults JSON, rows of `queries/report-records.query` for `natflow::synth` traffic, 3,000 hosts x "
        "2,000 remotes, two NAT interfaces, REJECT/NODATA/SKIPDATA groups) and an inventory of "
        f"{o10['inventory_enis']:,} ENIs to the finished report, text and JSON: inventory read, GetQueryResults "
        f"pages of {PAGE_ROWS:,} rows decoded one at a time and each row turned into a compact group as its page "
        "arrives (`Group::from_result`: the record line and its count, as the recorder and the CLI do), one answer's "
        "groups held and then counted (`Analyzer::feed_answer`), `Report::build`, `to_text`, JSON. Median of "
        f"{runs} processes; peak RSS from /usr/bin/time (median, largest). The 1-minute load average reached "
        f"{max(o['load'] for o in ours):.1f} on {cores} cores during these runs (other work on the machine): the times "
        "are upper bounds.",
        "",
        "| rows | answers | pages | records they stand for | distinct talkers | answer JSON MB | inventory ms | decode ms | rows (decode + feed) ms | build ms | text + JSON ms | total ms | process wall ms | peak RSS MB (largest) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in ours:
        lines.append(f"| {o['rows']:,} | {o['answers']} | {o['pages']} | {o['records']:,} | {o['distinct_talkers']:,} | "
                     f"{o['answer_bytes'] / 1e6:.1f} | {o['inventory_ms']:.1f} | {o['decode_ms']:.1f} | {o['rows_ms']:.1f} | "
                     f"{o['build_ms']:.1f} | {o['render_ms']:.2f} | {o['total_ms']:.1f} | {o['wall_ms']:.1f} | "
                     f"{o['rss_mb']:.1f} ({o['rss_max_mb']:.1f}) |")
    lines += [
        "",
        f"**2. Paging against the emulator, measured.** {pg['record_mb']:.1f} MiB of `natflow generate` records "
        f"({pg['records']:,} records, {pg['bytes_per_record']:.0f} bytes each) in one log group, read by the release "
        "`natflow analyze --log-group` (streaming), then by `--server-side` on the same records (the test bed's "
        "Insights evaluator). CPU and peak RSS are the natflow process's own (/usr/bin/time); wall time is dominated by "
        "the emulator (Python).",
        "",
        "| path | pages / queries | natflow CPU s | CPU ms per MiB of records | wall s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
        f"| streaming (FilterLogEvents) | {pg['pages']} pages | {pg['stream_cpu_s']:.2f} | {pg['stream_cpu_ms_per_mb']:.1f} | "
        f"{pg['stream_wall_s']:.1f} | {pg['stream_rss_mb']:.1f} |",
        f"| server-side (StartQuery, GetQueryResults) | {pg['server_queries']} queries ({pg['server_split']} split; "
        f"scanned {pg['scanned_ratio']:.1f}x the records) | "
        f"{pg['server_cpu_s']:.2f} | - | {pg['server_wall_s']:.1f} | {pg['server_rss_mb']:.1f} |",
        "",
        f"The server-side run's largest answer held {pg['largest_answer_rows']:,} rows (read "
        f"{math.ceil(pg['largest_answer_rows'] / PAGE_ROWS)} GetQueryResults pages of at most {PAGE_ROWS:,}); with "
        "answers of at most 10,000 rows (where a `limit` above 10,000 is refused, and in this "
        "table's previous run, 2026-11-29, 32 MiB of the same generator) the same records took 26 queries, 12 of them "
        "split, scanning 5.9x the records.",
        "",
        f"Pages: the emulator (moto) serves 10,000 events a page, {pg['mb_per_full_page'] or 0:.2f} MiB of records, and "
        "ignores the 1 MB bound; AWS returns at most 1 MB or 10,000 events (FilterLogEvents API reference), so at "
        f"{pg['bytes_per_record']:.0f} bytes a record the 1 MB bound is the one that holds: at best 1 MiB of records a "
        f"page, {MIB // round(pg['bytes_per_record']):,} records. The response's JSON (stream name, event ID, "
        f"timestamps per event) is {pg['json_per_message']:.2f}x the records' bytes; if AWS's 1 MB counted that "
        f"envelope, a page would hold {1 / pg['json_per_message']:.2f} MiB of records and every streaming time below "
        f"would be {pg['json_per_message']:.2f}x longer. Both paths reported the same talkers and totals: "
        f"{'yes' if pg['equal'] else 'NO'}.",
        "",
        f"**3. Streaming path, extrapolated** from the quota: full pages of 1 MiB, paced at 2 requests/s (the "
        "recorder's default ReportReadsPerSecond) or 5/s (the whole account's FilterLogEvents quota, leaving "
        f"nothing to anyone else; ReportReadsPerSecond allows at most 4). Our CPU ({pg['stream_cpu_ms_per_mb']:.1f} ms per MiB, table 2) overlaps the pacing "
        f"(500 or 200 ms per page) and adds nothing to the time. One invocation reads for at most {READ_BUDGET_S} s "
        f"(900 s less the reserve to build the report) and at most ReportMaxBytes (default 1 GiB, max 1.5 GiB). "
        f"Lambda: BuildReportFunction's {memory_mb} MB (template.yaml), arm64, ${ARM_GB_S:.10f} per GB-s and $0.20 per "
        "million requests (Lambda pricing page, us-east-1); FilterLogEvents has no per-request charge (CloudWatch "
        "pricing page). With ReportMaxBytes at its 1.5 GiB maximum, one invocation at 2/s reports 15% of 10 GiB. "
        "*All read* would need chained invocations, which the recorder does not do.",
        "",
        "| records | requests/s | pages | time to read all | fits one invocation | one invocation reports | Lambda $ (one invocation) | Lambda $ (all read, chained) | invocations needed |",
        "|---|---:|---:|---:|:--:|---:|---:|---:|---:|",
    ]
    for s in stream:
        lines.append(f"| {s['size']} | {s['rate']} | {s['pages']:,} | {fmt_s(s['read_s'])} | {'yes' if s['fits'] else 'no'} | "
                     f"{s['covered'] * 100:.{0 if s['covered'] >= 0.1 else 1}f}% | {s['one_usd']:.4f} | {s['all_usd']:.4f} | "
                     f"{s['invocations']:,} |")
    srv = server
    lines += [
        "",
        f"**4. Server-side path: query cost extrapolated** from the documented price, $0.005 per GB scanned "
        "(CloudWatch pricing page, https://aws.amazon.com/cloudwatch/pricing/, us-east-1; GB = 10^9 bytes; scanned "
        "bytes taken as the records' bytes). One query when the recording has at most 100,000 groups (the query's "
        "`by` fields: interface, addresses, packet addresses, action, status, AZ, services). Beyond, the model of "
        "`natflow analyze --server-side`: a full answer's window is asked again in two halves, each scanning its "
        "half, so each level of splitting scans the recording once more; with groups spread evenly over time and "
        f"not repeated across halves (best case), {groups_split:,} groups take "
        f"{srv[0]['levels']} levels: {srv[0]['queries']} queries, {srv[0]['levels'] + 1}x the scan. Talkers active "
        "all through the recording repeat in every half, so real splits can need more levels (down to one second, "
        f"where natflow stops with an error). In table 2 the evaluator's run ({pg['talkers']:,} talkers spread "
        f"over the whole window) scanned {pg['scanned_ratio']:.1f}x the records in {pg['server_queries']} queries "
        f"({pg['server_split']} split). Our side from table 1 "
        f"({ours[0]['rows']:,} rows: {ours[0]['total_ms']:.0f} ms, {ours[0]['rss_max_mb']:.0f} MB; "
        f"{ours[1]['rows']:,} rows: {ours[1]['total_ms']:.0f} ms, {ours[1]['rss_max_mb']:.0f} MB) does not depend on "
        "the recording's size, only on the rows of one answer (counted, then dropped, before the next is read); a "
        f"split run also decodes the full answers it asks again ({srv[0]['queries'] // 2} for {groups_split:,} groups, "
        f"about {ours[1]['decode_ms']:.0f} ms each) before dropping them. "
        f"Lambda for our side: {o10['total_ms'] / 1e3:.2f} s x {memory_mb / 1024:g} GB = "
        f"${o10['total_ms'] / 1e3 * memory_mb / 1024 * ARM_GB_S + REQUEST:.7f} an invocation.",
        "",
        f"| records | GB scanned once | query $, <= 100,000 groups (1 query) | query $, {groups_split:,} groups, best-case model "
        f"({srv[0]['queries']} queries, {srv[0]['levels'] + 1}x) | query $, split as measured in table 2 "
        f"({pg['scanned_ratio']:.1f}x) | our side, 10,000 rows | our side, {ours[1]['rows']:,} rows (one answer) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in srv:
        lines.append(f"| {s['size']} | {s['scan_gb']:.2f} | {s['one_usd']:.4f} | {s['split_usd']:.4f} | "
                     f"{s['scan_gb'] * pg['scanned_ratio'] * INSIGHTS_PER_GB:.4f} | {ours[0]['total_ms']:.0f} ms, "
                     f"{ours[0]['rss_max_mb']:.0f} MB | {ours[1]['total_ms']:.0f} ms, {ours[1]['rss_max_mb']:.0f} MB |")
    ten = next(s for s in srv if s["size"] == "10 GiB")
    st10 = [s for s in stream if s["size"] == "10 GiB"]
    lines += [
        "",
        f"**Against the target** (a 10 GB recording fully reported, our side under 30 s and 256 MB, under $0.06 of "
        f"queries): streaming cannot (10 GiB needs {fmt_s(st10[0]['read_s'])} at 2/s, {fmt_s(st10[1]['read_s'])} at "
        f"5/s; one invocation reports {st10[0]['covered'] * 100:.0f}%). Server-side, our side is "
        f"{ours[0]['total_ms'] / 1e3:.2f} s and {ours[0]['rss_max_mb']:.0f} MB for 10,000 rows "
        f"({ours[1]['total_ms'] / 1e3:.2f} s, {ours[1]['rss_max_mb']:.0f} MB for {ours[1]['rows']:,}, one full answer): "
        f"within target. Queries: ${ten['one_usd']:.4f} with at most 100,000 groups (10 GiB = {ten['scan_gb']:.2f} GB; "
        f"the target's 10 GB = $0.05): within target, and the dense run of table 2 ({pg['talkers']:,} talkers through "
        f"the window) now needs no split (${ten['scan_gb'] * pg['scanned_ratio'] * INSIGHTS_PER_GB:.4f} at its "
        f"{pg['scanned_ratio']:.1f}x). Beyond 100,000 groups splits come back: ${ten['split_usd']:.2f} for "
        f"{groups_split:,} groups in the best case; each level adds a full scan, so any split passes $0.06 at 10 GB. "
        "(Lambda's 1,024 MB gives about 0.6 vCPU; our side's times there may be about twice these.)",
        "",
        f"Reproduce: `make venv && .venv/bin/python tests/bench/report_paths.py --runs {runs} --stream-mb {stream_mb}`. "
        "It builds `natflow` (with `aws`) and the example into its own target directory, `target/bench/release` "
        "(`CARGO_TARGET_DIR=target/bench`), never into your `target/release`.",
        "<!-- report-paths:end -->",
    ]
    return "\n".join(lines) + "\n"


def fmt_s(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--stream-mb", type=int, default=16, help="MiB of records put in the emulator's log group")
    ap.add_argument("--groups-split", type=int, default=1_000_000,
                    help="groups of a recording for the split model of the server-side cost")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        build()
    work = Path(tempfile.mkdtemp(prefix="report-paths-"))
    ours = our_side(args.runs, work)
    pg = paging(args.stream_mb, work)
    memory_mb = report_memory_mb()
    text = section(ours, pg, streaming_rows(pg["stream_cpu_ms_per_mb"], memory_mb), server_rows(args.groups_split),
                   memory_mb, args.runs, args.stream_mb, args.groups_split)
    doc = DOC.read_text()
    start, end = "<!-- report-paths:start", "<!-- report-paths:end -->"
    if start in doc:
        a = doc.index(start)
        b = doc.index(end) + len(end) + 1
        doc = doc[:a] + text + doc[b:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc)
    print(text)


if __name__ == "__main__":
    main()
