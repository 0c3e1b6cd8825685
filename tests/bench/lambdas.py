#!/usr/bin/env python3
"""Benchmark: the recorder's Lambdas against a Python/boto3 baseline, on this machine, in one run.

Run from the repository root (not a test; results go to docs/benchmarks.md):
    .venv/bin/python tests/bench/lambdas.py [--cold-starts 20] [--artifacts .aws-sam/build]

1. Builds every function in release mode for this machine (`cargo build --release`) and runs each
   under a Runtime API server of this script's own, against the emulator (moto behind the test
   bed's router), `--cold-starts` times: a new process each time, two events each. Measured: time
   from process start to its first poll of the Runtime API (init, SDK clients built), to its first
   event handled (cold invocation), the second event's duration (warm), and peak RSS (wait4).
2. The same for a Python/boto3 handler per function (tests/bench/py/: same clients, same calls,
   written for this benchmark only) under a minimal Python runtime loop.
3. Zip size of each function's arm64 `bootstrap` as `sam build` leaves it (`--artifacts`).
4. State transitions of a normal recording, a timeout and a failure, from the emulator's
   execution history, and their Step Functions cost.
Each function's events take the same path in both languages (prepared before each start).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The release build of the Lambdas goes to its own target directory, never to the user's target/release.
BENCH_TARGET = ROOT / "target" / "bench"
sys.path.insert(0, str(ROOT))

from tests.harness.stack import ACCOUNT, REGION, STACK, Emulator, Recorder, load_template  # noqa: E402
from tests.test_report import deliver, flow  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
PY = ROOT / "tests" / "bench" / "py"
SFN_PRICE = 0.000025  # USD per state transition, Standard workflows
FUNCTIONS = {  # logical id -> Python baseline module
    "StartRecordingFunction": "start_recording",
    "ParkTokenFunction": "park_token",
    "ResumeRecordingFunction": "resume_recording",
    "FinishRecordingFunction": "finish_recording",
    "BuildReportFunction": "build_report",
    "SweepOrphansFunction": "sweep_orphans",
}


class Api(ThreadingHTTPServer):
    """A Runtime API serving a fixed list of events, timing every poll and answer."""
    daemon_threads = True

    def __init__(self, events: list[dict]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.events, self.polls, self.answers, self.bodies = list(events), [], [], []
        self.done = threading.Event()
        self.closed = False


class Handler(BaseHTTPRequestHandler):
    server: Api

    def log_message(self, *args):
        pass

    def _reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        s = self.server
        s.polls.append(time.perf_counter())
        if not s.events:
            while not s.closed:
                time.sleep(0.05)
            return
        n = len(s.polls)
        event = s.events.pop(0)
        self._reply(200, json.dumps(event).encode(), {
            "Lambda-Runtime-Aws-Request-Id": f"req-{n}", "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60000),
            "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000", "Content-Type": "application/json"})

    def do_POST(self):
        s = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(202, b"{}")
        if self.path.endswith("/response") or self.path.endswith("/error"):
            s.answers.append(time.perf_counter())
            s.bodies.append((self.path.endswith("/error"), body))
            if len(s.answers) == 2:
                s.done.set()


def measure(cmd: list[str], env: dict, events: list[dict]) -> dict:
    api = Api(events)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}"}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = api.done.wait(60)
    # Peak RSS while it still runs (its high-water mark), then stop it.
    try:
        status = Path(f"/proc/{p.pid}/status").read_text()
        rss_kb = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:")))
    except (OSError, StopIteration):
        rss_kb = 0
    p.terminate()
    p.wait(10)
    err = p.stderr.read().decode(errors="replace")
    api.closed = True
    api.shutdown()
    api.server_close()
    if not ok:
        raise RuntimeError(f"{cmd}: no two answers in 60 s: {err[-1500:]}")
    for is_error, body in api.bodies:
        if is_error:
            raise RuntimeError(f"{cmd}: function error {body[:500]!r}")
    return {"init_ms": (api.polls[0] - t0) * 1000, "cold_ms": (api.answers[0] - t0) * 1000,
            "warm_ms": (api.answers[1] - api.polls[1]) * 1000, "rss_mb": rss_kb / 1024}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class Events:
    """Two events per start, each taking the same path in both languages."""

    def __init__(self, rec: Recorder):
        self.rec, self.n = rec, 0

    def _nat_id(self) -> str:
        self.n += 1
        return f"nat-{self.n:017x}"

    def execution(self) -> str:
        self.n += 1
        return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}-recorder:bench-{self.n}"

    def recording(self, nat: dict, execution: str, flow_log_ids: list[str]) -> dict:
        return {"status": "recording", "nat_id": nat["id"], "alarm_name": f"{STACK}-natgw-{nat['id']}",
                "execution": execution, "vpc_id": nat["vpc"], "interfaces": nat["interfaces"],
                "flow_log_ids": flow_log_ids, "started_at": iso(datetime.now(timezone.utc)), "recording_time": 900,
                "log_group": self.rec.log_group, "report_delay": 0}

    def StartRecordingFunction(self):
        return [{"event": self.rec.event("alarm-math-alarm.json", self.rec.create_nat()["id"]),
                 "execution": self.execution()} for _ in range(2)]

    def ParkTokenFunction(self):
        out = []
        ddb = self.rec.emu.client("dynamodb")
        for _ in range(2):
            nat, execution = self._nat_id(), self.execution()
            ddb.put_item(TableName=self.rec.table, Item={"pk": {"S": nat}, "execution": {"S": execution},
                                                          "alarm_at_ms": {"N": str(int(time.time() * 1000))}})
            out.append({"token": f"token-{self.n}", "nat_id": nat, "execution": execution})
        return out

    def ResumeRecordingFunction(self):
        return [self.rec.event("alarm-math-ok.json", self._nat_id()) for _ in range(2)]

    def FinishRecordingFunction(self):
        out = []
        ec2, ddb = self.rec.emu.client("ec2"), self.rec.emu.client("dynamodb")
        for _ in range(2):
            nat, execution = self.rec.create_nat(), self.execution()
            fl = ec2.create_flow_logs(
                ResourceIds=nat["interfaces"], ResourceType="NetworkInterface", TrafficType="ALL",
                LogDestinationType="cloud-watch-logs", LogGroupName=self.rec.log_group,
                DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-FlowLogDeliveryRole",
                TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": [
                    {"Key": "natrec:execution", "Value": execution}, {"Key": "natrec:stack", "Value": STACK}]}])
            ddb.put_item(TableName=self.rec.table, Item={"pk": {"S": nat["id"]}, "execution": {"S": execution}})
            state = {**self.recording(nat, execution, fl["FlowLogIds"]), "stop": {"reason": "alarm_ok"}}
            out.append({"execution": execution, "state": state})
        return out

    def BuildReportFunction(self):
        out = []
        for _ in range(2):
            nat, execution = self.rec.create_nat(), self.execution()
            eni = nat["interfaces"][0]
            lines = []
            for h in range(125):  # 500 records: 125 flows through the NAT
                lines += flow(eni, "10.0.0.10", f"10.0.1.{h + 2}", f"203.0.113.{h % 50 + 1}", 1000 * (h + 1), 500)
            deliver(self.rec, eni, lines)
            state = {**self.recording(nat, execution, []), "stop": {"reason": "alarm_ok"},
                     "finished": {"ending": "alarm_ok", "ended_at": iso(datetime.now(timezone.utc)),
                                  "subject": "NAT spike recorded", "message": "facts"}}
            out.append({"execution": execution, "state": state})
        return out

    def SweepOrphansFunction(self):
        return [{}, {}]


def summarize(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | \
           {f"{k}_p90": sorted(r[k] for r in runs)[int(len(runs) * 0.9) - 1] for k in ("init_ms", "cold_ms")} | \
           {"rss_max": max(r["rss_mb"] for r in runs)}


def transitions(rec: Recorder) -> dict:
    """States entered by a normal recording, a timeout and a failure (release binaries)."""
    out = {}
    nat = rec.create_nat()
    arn = rec.start(rec.event("alarm-math-alarm.json", nat["id"]), "bench-normal")
    rec.wait_parked(nat["id"])
    rec.resume(rec.event("alarm-math-ok.json", nat["id"]))
    rec.wait(arn, 90)
    out["normal (alarm OK)"] = arn
    rec.hosts["StartRecordingFunction"].restart(RECORDING_TIME="2")
    nat = rec.create_nat()
    out["timeout (RecordingTime)"] = rec.start(rec.event("alarm-math-alarm.json", nat["id"]), "bench-timeout")
    rec.wait(out["timeout (RecordingTime)"], 90)
    out["failure (NAT not found)"] = rec.start(rec.event("alarm-math-alarm.json", "nat-0fedcba9876543210"),
                                              "bench-failure")
    rec.wait(out["failure (NAT not found)"], 90)
    counted = {}
    for kind, arn in out.items():
        h = rec.history(arn)
        entered = [e["stateEnteredEventDetails"]["name"] for e in h if e["type"].endswith("StateEntered")]
        counted[kind] = entered
    return counted


def zip_sizes(artifacts: Path) -> dict:
    sizes = {}
    for logical_id in FUNCTIONS:
        boot = artifacts / logical_id / "bootstrap"
        if not boot.exists():
            continue
        with tempfile.NamedTemporaryFile(suffix=".zip") as f:
            with zipfile.ZipFile(f.name, "w", zipfile.ZIP_DEFLATED) as z:
                z.write(boot, "bootstrap")
            sizes[logical_id] = (Path(f.name).stat().st_size / 2**20, boot.stat().st_size / 2**20)
    return sizes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold-starts", type=int, default=20)
    ap.add_argument("--artifacts", default=str(ROOT / ".aws-sam" / "build"))
    ap.add_argument("--binaries", default=None, help="use these binaries instead of building release ones "
                    "(a smoke run; the results are then not written)")
    args = ap.parse_args()
    if args.binaries:
        target = Path(args.binaries)
    else:
        # Its own target directory (as natflow_vs_duckdb.py): never rebuild the user's target/release.
        subprocess.run(["cargo", "build", "--release", "--locked", "--workspace", "--exclude", "natflow-cli"],
                       cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(BENCH_TARGET)})
        target = BENCH_TARGET / "release"
    template = load_template()
    emu = Emulator(Path(tempfile.mkdtemp(prefix="natrec-bench-")))
    rec = Recorder(emu, template, target)
    results = {}
    try:
        for logical_id, module in FUNCTIONS.items():
            binary = template["Resources"][logical_id]["Metadata"]["BuildProperties"]["Binary"]
            env = {"PATH": os.environ["PATH"], **rec.function_env(logical_id),
                   "AWS_LAMBDA_FUNCTION_NAME": f"{STACK}-{logical_id}", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{logical_id}",
                   "AWS_LAMBDA_LOG_STREAM_NAME": "bench"}
            env.pop("AWS_SDK_UA_APP_ID", None)
            for lang, cmd in (("rust", [str(target / binary)]),
                              ("python", [sys.executable, str(PY / "bootstrap.py"), module])):
                runs = []
                for i in range(args.cold_starts):
                    if i % 10 == 0:  # keep the emulator's state small and alike for both
                        emu.reset()
                        rec.deploy()
                    runs.append(measure(cmd, env, getattr(Events(rec), logical_id)()))
                results[(logical_id, lang)] = summarize(runs)
                print(logical_id, lang, json.dumps(results[(logical_id, lang)]), flush=True)
        emu.reset()
        rec.deploy()
        states = transitions(rec)
    finally:
        rec.close()
        emu.close()
    sizes = zip_sizes(Path(args.artifacts))
    if args.binaries:
        print(json.dumps({"states": states, "sizes": sizes}))
        return
    write(results, states, sizes, args)


def write(results, states, sizes, args):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "<!-- lambdas:start (written by tests/bench/lambdas.py) -->",
        "## The Lambdas: cold start, warm duration, memory, zip size, state transitions",
        "",
        f"Run {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({cpu}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; {args.cold_starts} cold starts per function and "
        "language, each a new process handling two events (the second is the warm one), against the emulator "
        "(moto behind the test bed's router, on loopback). Rust: release build for this machine (x86_64; Lambda "
        "runs the same code for arm64). Python: a boto3 handler per function making the same calls "
        "(`tests/bench/py/`) under a minimal runtime loop. Medians; p90 in parentheses. *Init* = process start "
        "to its first poll of the Runtime API (SDK clients built); *cold* = process start to the first event "
        "answered (its AWS calls included); *warm* = the second event.",
        "",
        "| function | Rust init ms | Python init ms | init ratio | Rust cold ms | Python cold ms | Rust warm ms | Python warm ms | Rust peak RSS MB | Python peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for logical_id in FUNCTIONS:
        r, p = results[(logical_id, "rust")], results[(logical_id, "python")]
        lines.append(
            f"| {logical_id} | {r['init_ms']:.1f} ({r['init_ms_p90']:.1f}) | {p['init_ms']:.0f} ({p['init_ms_p90']:.0f}) | "
            f"{p['init_ms'] / r['init_ms']:.0f}x | {r['cold_ms']:.0f} ({r['cold_ms_p90']:.0f}) | "
            f"{p['cold_ms']:.0f} ({p['cold_ms_p90']:.0f}) | {r['warm_ms']:.1f} | {p['warm_ms']:.1f} | "
            f"{r['rss_max']:.1f} | {p['rss_max']:.1f} |")
    lines += ["", "Peak RSS is the largest of the runs. Warm and cold durations are dominated by the emulator's "
              "own response time (a Python server), the same for both languages.", ""]
    if sizes:
        lines += ["| function | arm64 zip MB | bootstrap MB |", "|---|---:|---:|"]
        for logical_id, (z, b) in sizes.items():
            lines.append(f"| {logical_id} | {z:.2f} | {b:.2f} |")
        lines += ["", f"From `sam build` (`{Path(args.artifacts).name}`), each `bootstrap` zipped with deflate as "
                  "the deployment package.", ""]
    else:
        lines += ["Zip sizes: no `sam build` artifacts were found at the given path.", ""]
    lines += ["| recording | states entered | Step Functions cost | states |", "|---|---:|---:|---|"]
    for kind, entered in states.items():
        lines.append(f"| {kind} | {len(entered)} | ${len(entered) * SFN_PRICE:.6f} | {' > '.join(entered)} |")
    lines += ["", "Reproduce: `make venv && .venv/bin/python tests/bench/lambdas.py` (after `sam build` for the zip "
              "sizes). It builds the Lambdas' release binaries into its own target directory, "
              "`target/bench/release` (`CARGO_TARGET_DIR=target/bench`), never into your `target/release`.",
              "<!-- lambdas:end -->"]
    section = "\n".join(lines) + "\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    start, end = "<!-- lambdas:start", "<!-- lambdas:end -->"
    if start in text:
        a, b = text.index(start), text.index(end) + len(end) + 1
        text = text[:a] + section + text[b:]
    else:
        text += "\n" + section
    DOC.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
