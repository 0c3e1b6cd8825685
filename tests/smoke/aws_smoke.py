#!/usr/bin/env python3
"""Real-AWS smoke test of the NAT Gateway spike recorder.

*** THIS CREATES BILLABLE RESOURCES IN YOUR AWS ACCOUNT. *** Never run by CI. Opt in with
`make smoke NAT=nat-... REGION=...` (or run this file); it asks for confirmation unless --yes.

What it does, in the account and region of your credentials, for the NAT Gateway you name:
 1. deploys the alarm macro (its own uniquely named macro, unless --existing-macro) and the recorder
    stack (`sam build` + `sam deploy`, unique stack names natrec-smoke-<run>[-macro]);
 2. subscribes a temporary SQS queue to the notice topic (queue policy: only that topic may send);
 3. plays a recording: `SetAlarmState` ALARM on the NAT's alarm (real CloudWatch emits the real event),
    waits for the flow logs (DescribeFlowLogs by the stack's tag), watches their DeliverLogsStatus;
    the alarm returns to its actual state by itself (OK unless --threshold makes it truly breach);
    if the recording still runs after --hold seconds it forces OK;
 4. waits for the execution to end and the notice to arrive in the queue;
 5. checks that no flow log is left and that delivery was SUCCESS while they existed;
 6. prints a pass/fail table with timings, and deletes everything it created (subscription, queue,
    both stacks, leftover tagged flow logs, its uploaded artifacts), also on failure and on Ctrl-C/SIGTERM.

Cost: a few cents (flow-log ingestion of a short recording, Lambda, Step Functions, one alarm for
the hour it exists). SAM's managed artifact bucket (stack aws-sam-cli-managed-default) is created by
`sam deploy --resolve-s3` if missing and kept, as for any SAM deploy; this run's objects in it are deleted.

Everything that needs no AWS (arguments, confirmation, teardown on failure and on signals, the table)
is tested offline against the emulator in tests/test_smoke.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

ROOT = Path(__file__).resolve().parents[2]
# Same rule as template.yaml's NatGatewayIds pattern and the macro: nat- + 8 or 17 lowercase hex digits.
NAT_ID = re.compile(r"^nat-([0-9a-f]{8}|[0-9a-f]{17})$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
DEFAULT_MACRO = "NatFlowRecorderAlarms"

WARNING = """\
This smoke test CREATES BILLABLE RESOURCES in AWS account {account}, region {region}:
  - CloudFormation stacks {macro_stack} (macro, unless --existing-macro) and {stack} (recorder:
    6 Lambda functions, a Step Functions state machine, a DynamoDB table, an SNS topic, log groups,
    a CloudWatch alarm on {nat}, EventBridge rules, a schedule, IAM roles)
  - an SQS queue {queue} subscribed to the notice topic
  - VPC flow logs on {nat} while the recording runs
It forces the alarm to ALARM (a real recording), then deletes everything it created.
Expected cost: a few cents.
"""


class UsageError(Exception):
    """Bad arguments or a refused confirmation: nothing was created."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM during the run: teardown still runs."""


class StepFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Arguments and confirmation


@dataclass
class Options:
    nat: str
    region: str
    yes: bool = False
    profile: str | None = None
    email: str = "natrec-smoke@example.com"
    existing_macro: bool = False
    threshold: int = 10**15
    recording_time: int = 300
    report_delay: int = 60
    hold: int = 120
    poll: float = 2.0  # a forced ALARM may return to OK within seconds: the flow logs may live briefly
    run_id: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%m%d%H%M") + secrets.token_hex(2))

    @property
    def stack(self) -> str:
        # Unique per run (names the alarm, the queue, the log groups); short, well under 128 characters.
        return f"natrec-smoke-{self.run_id}"

    @property
    def macro_stack(self) -> str:
        return f"{self.stack}-macro"

    @property
    def macro_name(self) -> str:
        return DEFAULT_MACRO if self.existing_macro else f"{DEFAULT_MACRO}-{self.run_id}"

    @property
    def queue(self) -> str:
        return f"{self.stack}-notices"

    @property
    def alarm(self) -> str:
        return f"{self.stack}-natgw-{self.nat}"


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(
        prog="aws_smoke.py", description="Real-AWS smoke test: CREATES BILLABLE RESOURCES (see the module docstring).")
    p.add_argument("--nat", required=True, help="the NAT Gateway to record, e.g. nat-0123456789abcdef0")
    p.add_argument("--region", help="AWS region of the NAT Gateway (required)")
    p.add_argument("--profile", help="AWS CLI profile (default: the usual credential chain)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--email", default=Options.email, help="EmailAddress parameter (notices are read from SQS)")
    p.add_argument("--existing-macro", action="store_true",
                   help=f"use the {DEFAULT_MACRO} macro already deployed in the region instead of a temporary one")
    p.add_argument("--threshold", type=int, default=Options.threshold,
                   help="alarm threshold (bytes per minute); the default never breaches, so the forced ALARM "
                        "returns to OK at the alarm's next evaluation; 1 keeps a NAT with traffic in ALARM "
                        "until RecordingTime ends the recording")
    p.add_argument("--recording-time", type=int, default=Options.recording_time, help="RecordingTime, s (60..86400)")
    p.add_argument("--report-delay", type=int, default=Options.report_delay, help="ReportDelay, s (0..3600)")
    p.add_argument("--hold", type=int, default=Options.hold,
                   help="seconds to let the recording run before forcing OK if it has not ended")
    a = p.parse_args(argv)
    if not NAT_ID.match(a.nat):
        raise UsageError(f"--nat {a.nat!r} is not a NAT Gateway ID: nat- followed by 8 or 17 lowercase hex digits")
    region = a.region
    if not region:
        raise UsageError("--region is required (the NAT Gateway's region): the smoke test never guesses where "
                         "to create billable resources")
    if not REGION.match(region):
        raise UsageError(f"--region {region!r} is not an AWS region name such as eu-west-1")
    if not 60 <= a.recording_time <= 86400:
        raise UsageError("--recording-time must be 60..86400 (the template's RecordingTime)")
    if not 0 <= a.report_delay <= 3600:
        raise UsageError("--report-delay must be 0..3600 (the template's ReportDelay)")
    if a.threshold < 1 or a.hold < 0:
        raise UsageError("--threshold must be at least 1 and --hold not negative")
    return Options(nat=a.nat, region=region, yes=a.yes, profile=a.profile, email=a.email,
                   existing_macro=a.existing_macro, threshold=a.threshold, recording_time=a.recording_time,
                   report_delay=a.report_delay, hold=a.hold)


def confirm(opts: Options, account: str, stdin=sys.stdin, out=sys.stdout) -> None:
    """Raises UsageError unless --yes or the user types `yes` on a terminal."""
    out.write(WARNING.format(account=account, region=opts.region, stack=opts.stack, nat=opts.nat, queue=opts.queue,
                             macro_stack=opts.macro_stack if not opts.existing_macro else "(none)"))
    if opts.yes:
        return
    if not stdin.isatty():
        raise UsageError("refusing to create billable resources without confirmation: no terminal to ask on; "
                         "pass --yes to confirm")
    out.write("Type yes to go on: ")
    out.flush()
    if stdin.readline().strip() != "yes":
        raise UsageError("not confirmed: nothing was created")


# ---------------------------------------------------------------------------------------------
# The table


@dataclass
class Row:
    step: str
    result: str      # PASS | FAIL | SKIP
    at: float        # seconds since the run started
    took: float
    detail: str = ""


def render_table(rows: list[Row], title: str, total: float) -> str:
    headers = ("#", "step", "result", "at (s)", "took (s)", "detail")
    cells = [(str(i), r.step, r.result, f"{r.at:.1f}", f"{r.took:.1f}", r.detail) for i, r in enumerate(rows, 1)]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    right = {0, 3, 4}

    def line(values) -> str:
        return "  ".join((v.rjust(w) if i in right else v.ljust(w)) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    failed = sum(r.result == "FAIL" for r in rows)
    verdict = "PASS" if not failed and rows else f"FAIL ({failed} of {len(rows)} steps failed)"
    return "\n".join([title, line(headers), line(["-" * w for w in widths]), *map(line, cells),
                      f"RESULT: {verdict} in {total:.0f} s"])


# ---------------------------------------------------------------------------------------------
# Deployers


class Deployer(Protocol):
    def deploy_macro(self, stack: str, macro_name: str) -> None: ...
    def deploy_recorder(self, stack: str, macro_name: str, params: dict[str, str]) -> dict[str, str]: ...
    def delete_stack(self, stack: str) -> None: ...
    def delete_artifacts(self) -> None: ...


def use_macro(template_text: str, macro_name: str) -> str:
    """The built recorder template with its Transform naming `macro_name` instead of the default macro."""
    if macro_name == DEFAULT_MACRO:
        return template_text
    new, n = re.subn(rf"^(\s*-\s*){DEFAULT_MACRO}\s*$", rf"\g<1>{macro_name}", template_text, flags=re.M)
    if n != 1:
        raise StepFailed(f"expected one `- {DEFAULT_MACRO}` line in the built template's Transform list, found {n}")
    return new


class SamDeployer:
    """`sam build` + `sam deploy` of both templates; stacks deleted through CloudFormation."""

    def __init__(self, opts: Options, clients: Callable[[str], object], run=subprocess.run,
                 sam: str | None = None, build_root: Path = ROOT / ".aws-sam"):
        self.opts, self.clients, self.run, self.build_root = opts, clients, run, build_root
        self.prefix = opts.stack
        self.sam = sam or shutil.which("sam")
        if not self.sam:
            raise UsageError("SAM CLI not found: run `make venv` (installs it into .venv/) or install it")

    def _sam(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        if self.opts.profile:
            args = [*args, "--profile", self.opts.profile]
        proc = self.run([self.sam, *args], cwd=cwd, env=env)
        if proc.returncode != 0:
            raise StepFailed(f"sam {args[0]} failed (exit {proc.returncode}); its output is above")

    def _deploy_args(self, stack: str, template: Path, capabilities: list[str], params: dict[str, str]) -> list[str]:
        return ["deploy", "--template-file", str(template), "--stack-name", stack, "--region", self.opts.region,
                "--resolve-s3", "--s3-prefix", self.prefix, "--no-confirm-changeset", "--no-fail-on-empty-changeset",
                "--on-failure", "DELETE", "--capabilities", *capabilities,
                "--tags", f"natrec:smoke={self.opts.run_id}",
                *(["--parameter-overrides", *[f"{k}={v}" for k, v in params.items()]] if params else [])]

    def deploy_macro(self, stack: str, macro_name: str) -> None:
        build = self.build_root / "smoke-macro"
        self._sam(["build", "--beta-features", "--build-dir", str(build)], cwd=ROOT / "macros")
        self._sam(self._deploy_args(stack, build / "template.yaml", ["CAPABILITY_IAM"], {"MacroName": macro_name}),
                  cwd=ROOT / "macros")

    def deploy_recorder(self, stack: str, macro_name: str, params: dict[str, str]) -> dict[str, str]:
        build = self.build_root / "smoke"
        self._sam(["build", "--beta-features", "--build-dir", str(build)], cwd=ROOT)
        template = build / "template.yaml"
        template.write_text(use_macro(template.read_text(), macro_name))
        self._sam(self._deploy_args(stack, template, ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], params), cwd=ROOT)
        # DescribeStacks: Outputs of a stack in CREATE_COMPLETE / UPDATE_COMPLETE.
        stacks = self.clients("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def delete_stack(self, stack: str) -> None:
        delete_stack(self.clients("cloudformation"), stack)

    def delete_artifacts(self) -> None:
        """This run's uploads in SAM's managed bucket (prefix natrec-smoke-<run>/)."""
        cfn, s3 = self.clients("cloudformation"), self.clients("s3")
        try:
            outputs = cfn.describe_stacks(StackName="aws-sam-cli-managed-default")["Stacks"][0].get("Outputs", [])
        except Exception as e:  # no managed stack: nothing was uploaded
            if "does not exist" in str(e):
                return
            raise
        bucket = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "SourceBucket"), None)
        if not bucket:
            return
        # ListObjectsV2 returns at most 1,000 keys a page; DeleteObjects takes at most 1,000 keys.
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{self.prefix}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def delete_stack(cfn, stack: str) -> None:
    """DeleteStack and wait. A stack already gone counts as deleted: botocore's stack_delete_complete waiter
    treats DescribeStacks' ValidationError ("does not exist") as success; DELETE_FAILED raises (CloudFormation
    API reference: DeleteStack, DescribeStacks)."""
    cfn.delete_stack(StackName=stack)
    try:
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 10, "MaxAttempts": 120})
    except Exception as e:
        if "does not exist" in str(e):
            return
        raise StepFailed(f"stack {stack} not deleted: {e}") from e


# ---------------------------------------------------------------------------------------------
# The run


class FlowLogWatch:
    """Every flow log of the stack seen while polling, with the delivery statuses it had.

    DescribeFlowLogs reports DeliverLogsStatus SUCCESS | FAILED and DeliverLogsErrorMessage
    ("Rate limited", "Access error", "Unknown error") per flow log: a flow log can be created and
    still deliver nothing (API reference: EC2 DescribeFlowLogs, FlowLog data type)."""

    def __init__(self):
        self.seen: dict[str, dict] = {}
        self.current: list[str] = []

    def observe(self, flow_logs: list[dict]) -> None:
        self.current = [f["FlowLogId"] for f in flow_logs]
        for f in flow_logs:
            entry = self.seen.setdefault(f["FlowLogId"], {"resource": f.get("ResourceId"), "statuses": set(),
                                                          "errors": set()})
            entry["statuses"].add(f.get("DeliverLogsStatus", "-"))
            if f.get("DeliverLogsErrorMessage"):
                entry["errors"].add(f["DeliverLogsErrorMessage"])

    def delivery_problems(self) -> list[str]:
        return [f"{fid} on {e['resource']}: {'/'.join(sorted(e['statuses']))} {'; '.join(sorted(e['errors']))}".strip()
                for fid, e in sorted(self.seen.items()) if e["statuses"] != {"SUCCESS"}]


class Smoke:
    def __init__(self, opts: Options, deployer: Deployer, clients: Callable[[str], object],
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 out=sys.stdout, timeouts: dict[str, float] | None = None):
        self.opts, self.deployer, self.clients = opts, deployer, clients
        self.clock, self.sleep, self.out = clock, sleep, out
        self.rows: list[Row] = []
        self.cleanup: list[tuple[str, Callable[[], object]]] = []
        self.watch = FlowLogWatch()
        self.outputs: dict[str, str] = {}
        self.queue_url: str | None = None
        self.t0 = clock()
        self.timeouts = {"started": 180, "flow_logs": 180,
                         "ended": opts.recording_time + opts.hold + 180,
                         "execution": opts.report_delay + 900, "notice": 300, **(timeouts or {})}

    # -- bookkeeping

    def log(self, msg: str) -> None:
        self.out.write(f"[{self.clock() - self.t0:7.1f}s] {msg}\n")
        self.out.flush()

    def step(self, name: str, fn: Callable[[], str | None]) -> None:
        start = self.clock()
        self.log(f"{name} ...")
        try:
            detail = fn() or ""
        except Interrupted as e:
            self.rows.append(Row(name, "FAIL", start - self.t0, self.clock() - start, f"interrupted ({e})"))
            raise
        except Exception as e:
            self.rows.append(Row(name, "FAIL", start - self.t0, self.clock() - start, f"{type(e).__name__}: {e}"))
            raise
        self.rows.append(Row(name, "PASS", start - self.t0, self.clock() - start, detail))

    def on_teardown(self, what: str, fn: Callable[[], object]) -> None:
        self.cleanup.append((what, fn))

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float):
        deadline = self.clock() + timeout
        while True:
            self.observe_flow_logs()
            value = predicate()
            if value:
                return value
            if self.clock() >= deadline:
                raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            self.sleep(self.opts.poll)

    # -- AWS reads

    def flow_logs(self) -> list[dict]:
        # DescribeFlowLogs is paginated (NextToken); filter tag:<key> selects by tag.
        ec2 = self.clients("ec2")
        found = []
        for page in ec2.get_paginator("describe_flow_logs").paginate(
                Filters=[{"Name": "tag:natrec:stack", "Values": [self.opts.stack]}]):
            found += page.get("FlowLogs", [])
        return found

    def observe_flow_logs(self) -> None:
        if self.outputs:
            self.watch.observe(self.flow_logs())

    def executions(self) -> list[dict]:
        sfn = self.clients("stepfunctions")
        found = []
        # ListExecutions is paginated (nextToken, at most 1,000 a page).
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.outputs["StateMachineArn"]):
            found += page["executions"]
        return found

    def alarm_state(self) -> str:
        alarms = self.clients("cloudwatch").describe_alarms(AlarmNames=[self.opts.alarm])["MetricAlarms"]
        if not alarms:
            raise StepFailed(f"alarm {self.opts.alarm} not found: did the macro expand the recorder's alarm?")
        return alarms[0]["StateValue"]

    # -- steps

    def deploy_macro(self) -> str:
        if self.opts.existing_macro:
            return f"using the deployed {DEFAULT_MACRO} macro"
        self.on_teardown(f"delete stack {self.opts.macro_stack}", lambda: self.deployer.delete_stack(self.opts.macro_stack))
        self.deployer.deploy_macro(self.opts.macro_stack, self.opts.macro_name)
        return f"{self.opts.macro_stack} (macro {self.opts.macro_name})"

    def deploy_recorder(self) -> str:
        # LIFO teardown: stack first (its custom resource deletes the stack's flow logs), then any tagged
        # flow log still there, then the macro stack.
        self.on_teardown("delete flow logs tagged with the stack", self.sweep_flow_logs)
        self.on_teardown(f"delete stack {self.opts.stack}", lambda: self.deployer.delete_stack(self.opts.stack))
        params = {"NatGatewayIds": self.opts.nat, "EmailAddress": self.opts.email,
                  "Threshold": str(self.opts.threshold), "RecordingTime": str(self.opts.recording_time),
                  "ReportDelay": str(self.opts.report_delay)}
        self.outputs = self.deployer.deploy_recorder(self.opts.stack, self.opts.macro_name, params)
        missing = {"StateMachineArn", "NoticeTopicArn"} - set(self.outputs)
        if missing:
            raise StepFailed(f"recorder stack outputs lack {sorted(missing)}")
        return self.opts.stack

    def subscribe_queue(self) -> str:
        sqs, sns = self.clients("sqs"), self.clients("sns")
        topic = self.outputs["NoticeTopicArn"]
        # Unique name: after DeleteQueue, a queue of the same name cannot be created for 60 s.
        self.queue_url = sqs.create_queue(QueueName=self.opts.queue)["QueueUrl"]
        url = self.queue_url
        self.on_teardown(f"delete queue {self.opts.queue}", lambda: sqs.delete_queue(QueueUrl=url))
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "NoticeTopicOnly", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]}
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        # Same-account SQS subscriptions need no confirmation; ReturnSubscriptionArn gives the ARN at once.
        sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)["SubscriptionArn"]
        self.on_teardown("unsubscribe the queue", lambda: sns.unsubscribe(SubscriptionArn=sub))
        return f"{self.opts.queue} <- {topic.rsplit(':', 1)[-1]}"

    def force_alarm(self) -> str:
        # SetAlarmState: temporary; the alarm returns to its actual state at its next evaluation, and
        # each change emits the real "CloudWatch Alarm State Change" event (CloudWatch API reference).
        self.clients("cloudwatch").set_alarm_state(AlarmName=self.opts.alarm, StateValue="ALARM",
                                                   StateReason=f"natrec smoke test {self.opts.run_id}")
        return self.opts.alarm

    def recording_started(self) -> str:
        ex = self.wait_for("the recorder's execution to start", self.executions, self.timeouts["started"])
        return ", ".join(f"{e['name']} {e['status']}" for e in ex)

    def flow_logs_created(self) -> str:
        self.wait_for("flow logs tagged natrec:stack", lambda: self.watch.seen, self.timeouts["flow_logs"])
        return ", ".join(f"{fid} on {e['resource']}" for fid, e in self.watch.seen.items())

    def recording_ended(self) -> str:
        start, forced = self.clock(), None
        while True:
            self.observe_flow_logs()
            elapsed = self.clock() - start
            if not self.watch.current:
                break
            if forced is None and elapsed >= self.opts.hold and self.alarm_state() == "ALARM":
                self.clients("cloudwatch").set_alarm_state(
                    AlarmName=self.opts.alarm, StateValue="OK", StateReason=f"natrec smoke test {self.opts.run_id}")
                forced = elapsed
            if elapsed > self.timeouts["ended"]:
                raise StepFailed(f"flow logs still there after {self.timeouts['ended']:.0f} s: {self.watch.current}")
            self.sleep(self.opts.poll)
        how = f"OK forced after {forced:.0f} s" if forced is not None else \
            "OK not forced (the alarm's own evaluation or RecordingTime ended it)"
        return f"{how}; flow logs gone {elapsed:.0f} s after they were seen"

    def execution_ended(self) -> str:
        done = self.wait_for("the execution to end",
                             lambda: (ex := self.executions()) and all(e["status"] != "RUNNING" for e in ex) and ex,
                             self.timeouts["execution"])
        bad = [f"{e['name']} {e['status']}" for e in done if e["status"] != "SUCCEEDED"]
        if bad:
            raise StepFailed(f"execution did not succeed: {bad}")
        return ", ".join(f"{e['name']} SUCCEEDED" for e in done)

    def notice_arrived(self) -> str:
        sqs = self.clients("sqs")
        deadline = self.clock() + self.timeouts["notice"]
        while self.clock() < deadline:
            # Long polling (WaitTimeSeconds up to 20) to read the SNS envelope the topic delivered.
            msgs = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=20 if self.opts.poll >= 1 else 0).get("Messages", [])
            for m in msgs:
                body = json.loads(m["Body"])
                if self.opts.nat in body.get("Message", "") or self.opts.nat in (body.get("Subject") or ""):
                    return f"\"{body.get('Subject', '')}\" ({len(body.get('Message', ''))} characters)"
            if not msgs:
                self.sleep(self.opts.poll)
        raise StepFailed(f"no notice naming {self.opts.nat} in {self.timeouts['notice']:.0f} s")

    def no_flow_log_left(self) -> str:
        self.observe_flow_logs()
        if self.watch.current:
            raise StepFailed(f"flow logs left: {self.watch.current}")
        return f"{len(self.watch.seen)} created, 0 left"

    def delivery_succeeded(self) -> str:
        problems = self.watch.delivery_problems()
        if problems:
            raise StepFailed("delivery not SUCCESS: " + "; ".join(problems))
        return f"SUCCESS on all {len(self.watch.seen)} flow logs while they existed"

    def sweep_flow_logs(self) -> None:
        ids = [f["FlowLogId"] for f in self.flow_logs()]
        ec2 = self.clients("ec2")
        for i in range(0, len(ids), 1000):  # DeleteFlowLogs: at most 1,000 IDs a request
            failed = ec2.delete_flow_logs(FlowLogIds=ids[i:i + 1000]).get("Unsuccessful", [])
            if failed:
                raise StepFailed(f"flow logs not deleted: {failed}")

    STEPS = [("deploy macro stack", "deploy_macro"), ("deploy recorder stack", "deploy_recorder"),
             ("subscribe SQS queue to notices", "subscribe_queue"), ("force alarm to ALARM", "force_alarm"),
             ("recording started", "recording_started"), ("flow logs created", "flow_logs_created"),
             ("recording ended, flow logs deleted", "recording_ended"), ("execution ended", "execution_ended"),
             ("notice arrived in SQS", "notice_arrived"), ("no flow log left", "no_flow_log_left"),
             ("delivery status SUCCESS", "delivery_succeeded")]

    # -- the whole run

    def run(self) -> int:
        code = 0
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def interrupt(signum, _frame):
            raise Interrupted(signal.Signals(signum).name)

        for s in previous:
            signal.signal(s, interrupt)
        try:
            # Runs last: this run's uploads (sam deploy) in SAM's artifact bucket.
            self.on_teardown("delete this run's uploaded artifacts", self.deployer.delete_artifacts)
            for name, method in self.STEPS:
                self.step(name, getattr(self, method))
        except Interrupted as e:
            self.log(f"interrupted ({e}): tearing down")
            code = 130
        except Exception as e:
            self.log(f"failed: {e}: tearing down")
            code = 1
        finally:
            def hold_on(signum, _frame):
                self.log(f"{signal.Signals(signum).name} during teardown: still deleting what the run created")
            for s in previous:
                signal.signal(s, hold_on)
            try:
                if not self.teardown() and code == 0:
                    code = 1
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)
        title = f"Smoke test {self.opts.stack} on {self.opts.nat} in {self.opts.region}"
        self.out.write("\n" + render_table(self.rows, title, self.clock() - self.t0) + "\n")
        if any(r.result == "FAIL" for r in self.rows) and code == 0:
            code = 1
        return code

    def teardown(self) -> bool:
        ok = True
        left = []
        while self.cleanup:
            what, fn = self.cleanup.pop()
            start = self.clock()
            self.log(f"teardown: {what} ...")
            try:
                fn()
                self.rows.append(Row(f"teardown: {what}", "PASS", start - self.t0, self.clock() - start))
            except Exception as e:
                ok = False
                left.append(what)
                self.rows.append(Row(f"teardown: {what}", "FAIL", start - self.t0, self.clock() - start,
                                     f"{type(e).__name__}: {e}"))
        if left:
            self.out.write("\nLEFT BEHIND, delete by hand: " + "; ".join(left) + "\n")
        return ok


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, stdin=sys.stdin, out=sys.stdout, clients=None, deployer=None,
         smoke_kwargs: dict | None = None) -> int:
    """`clients(service)` makes boto3 clients (tests pass one with an endpoint override)."""
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
        if clients is None:
            import boto3
            session = boto3.Session(profile_name=opts.profile, region_name=opts.region)

            def clients(service: str):
                return session.client(service, region_name=opts.region)

        try:
            account = clients("sts").get_caller_identity()["Account"]
        except Exception as e:  # no credentials, expired token, no network
            raise UsageError(f"cannot call AWS with these credentials: {e}") from e
        # Fail before creating anything when the NAT is not there (DescribeNatGateways by ID).
        try:
            nats = clients("ec2").describe_nat_gateways(NatGatewayIds=[opts.nat])["NatGateways"]
        except Exception as e:
            raise UsageError(f"{opts.nat} not found in {opts.region}: {e}") from e
        if not nats or nats[0].get("State") != "available":
            raise UsageError(f"{opts.nat} is not an available NAT Gateway in {opts.region}")
        confirm(opts, account, stdin=stdin, out=out)
        deployer = deployer or SamDeployer(opts, clients)
    except UsageError as e:
        out.write(f"aws_smoke: {e}\n")
        return 2
    return Smoke(opts, deployer, clients, out=out, **(smoke_kwargs or {})).run()


if __name__ == "__main__":
    sys.exit(main())
