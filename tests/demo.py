#!/usr/bin/env python3
"""Plays one whole recording offline: moto runs the real state machine, whose Lambda tasks are
the real Rust binaries. ALARM -> flow logs exist -> OK -> flow logs gone -> the notice.

Run with `make demo` (installs the venv and builds the functions first)."""
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.stack import ROOT, Emulator, Recorder, load_template  # noqa: E402

T0 = time.time()


def say(what: str):
    print(f"[{time.time() - T0:6.1f}s] {what}", flush=True)


def main() -> int:
    logs = Path(tempfile.mkdtemp(prefix="natrec-demo-"))
    emu = rec = None
    try:
        say("starting the emulator (moto) and the invoke router")
        emu = Emulator(logs)
        rec = Recorder(emu, load_template(), ROOT / "target" / "debug")
        rec.deploy()
        say(f"deployed the recorder from template.yaml: state machine {rec.state_machine_name}, "
            f"table {rec.table}, log group {rec.log_group}")
        nat = rec.create_nat(interfaces=2)
        say(f"created VPC {nat['vpc']} with NAT Gateway {nat['id']} (interfaces {', '.join(nat['interfaces'])})")

        alarm = rec.event("alarm-math-alarm.json", nat["id"])
        say(f"alarm {alarm['detail']['alarmName']} -> ALARM; EventBridge starts the state machine")
        arn = rec.start(alarm, f"demo-{int(T0)}")
        flow_logs = rec.wait_for(lambda: len(rec.active_flow_logs()) == 2 and rec.active_flow_logs(), what="flow logs")
        for fl in flow_logs:
            say(f"  flow log {fl['FlowLogId']} on {fl['ResourceId']} -> {fl['LogGroupName']} "
                f"(aggregation {fl['MaxAggregationInterval']} s)")
        rec.wait_parked(nat["id"])
        say("task token parked in DynamoDB; recording until the alarm returns to OK "
            "(or RecordingTime runs out)")
        time.sleep(2)

        ok = rec.event("alarm-math-ok.json", nat["id"])
        say("alarm -> OK; the resume rule invokes the resume function")
        say(f"  resume function: {json.dumps(rec.resume(ok))}")
        done = rec.wait(arn)
        say(f"execution {done['status']}; flow logs now active: {len(rec.active_flow_logs())}")
        for n in rec.notices():
            say("notice sent to the email subscription:")
            print(f"\n  Subject: {n['subject']}\n")
            print("\n".join("  " + line for line in n["message"].splitlines()))
            print()
        events = rec.history(arn)
        say(f"{len([e for e in events if e['type'].endswith('StateEntered')])} states entered; demo finished")
        return 0 if done["status"] == "SUCCEEDED" and not rec.active_flow_logs() else 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        if rec:
            rec.close()
        if emu:
            emu.close()
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
