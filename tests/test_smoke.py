"""Offline tests of the real-AWS smoke test (tests/smoke/aws_smoke.py): everything but AWS itself.

The run talks to a moto server on loopback through boto3 clients with an endpoint override. The real
deployer calls `sam`; here a fake deployer creates directly in the emulator the pieces a run touches
(notice topic, the NAT's alarm, a flow log tagged with the stack as a started recording would leave),
with no state machine, so a run fails midway: what must hold then is the teardown.

The harness's Emulator (tests/conftest.py) needs the built Rust binaries and an invoke router; these
tests need neither, so they start a bare in-process moto server. moto's backends are process-wide:
each test here resets them, as the harness's `recorder` fixture does before each of its tests.
"""
from __future__ import annotations

import io
import os
import re
import signal
import urllib.request
from pathlib import Path

import boto3
import pytest

from tests.harness.stack import free_port
from tests.smoke import aws_smoke
from tests.smoke.aws_smoke import (FlowLogWatch, Options, Row, SamDeployer, Smoke, StepFailed, UsageError,
                                   parse_args, render_table, use_macro)

REGION = "us-east-1"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def clients(moto_endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"{}"),
                           timeout=10).read()
    cache = {}

    def make(service: str):
        if service not in cache:
            cache[service] = boto3.client(service, endpoint_url=moto_endpoint, **CREDS)
        return cache[service]
    return make


@pytest.fixture
def nat(clients):
    """A NAT Gateway in the emulator: (nat id, its interface id)."""
    ec2 = clients("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    gw = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]
    gw = ec2.describe_nat_gateways(NatGatewayIds=[gw["NatGatewayId"]])["NatGateways"][0]
    return gw["NatGatewayId"], gw["NatGatewayAddresses"][0]["NetworkInterfaceId"]


class FakeDeployer:
    """Stands in for `sam deploy`: creates in the emulator what the run touches, no state machine."""

    def __init__(self, clients, nat, eni, hooks=None, log_group_exists=True):
        self.clients, self.nat, self.eni = clients, nat, eni
        self.hooks = hooks or {}
        self.log_group_exists = log_group_exists
        self.calls: list[tuple[str, str]] = []
        self.created: dict[str, dict] = {}

    def _hook(self, name):
        if name in self.hooks:
            self.hooks[name]()

    def deploy_macro(self, stack, macro_name):
        self.calls.append(("deploy", stack))
        self.created[stack] = {}
        self._hook("deploy_macro")

    def deploy_recorder(self, stack, macro_name, params):
        self.calls.append(("deploy", stack))
        assert params["NatGatewayIds"] == self.nat
        topic = self.clients("sns").create_topic(Name=f"{stack}-NoticeTopic")["TopicArn"]
        alarm = f"{stack}-natgw-{self.nat}"
        self.clients("cloudwatch").put_metric_alarm(
            AlarmName=alarm, ComparisonOperator="GreaterThanThreshold", Threshold=1.0, EvaluationPeriods=1,
            MetricName="BytesInFromSource", Namespace="AWS/NATGateway", Statistic="Sum", Period=60)
        group = f"/natrec/{stack}/flow-logs"
        if self.log_group_exists:
            self.clients("logs").create_log_group(logGroupName=group)
        self.created[stack] = {"topic": topic, "alarm": alarm, "group": group}
        # A recording under way: a flow log on the NAT's interface, tagged as the start step tags it.
        self.clients("ec2").create_flow_logs(
            ResourceIds=[self.eni], ResourceType="NetworkInterface", TrafficType="ALL", LogGroupName=group,
            DeliverLogsPermissionArn=f"arn:aws:iam::123456789012:role/{stack}-FlowLogDeliveryRole",
            TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": [{"Key": "natrec:stack", "Value": stack}]}])
        self._hook("deploy_recorder")
        return {"NoticeTopicArn": topic, "FlowLogGroupName": group,
                "StateMachineArn": f"arn:aws:states:{REGION}:123456789012:stateMachine:{stack}-recorder"}

    def delete_stack(self, stack):
        self.calls.append(("delete", stack))
        self._hook(f"delete {stack}")
        made = self.created.pop(stack, {})
        if "topic" in made:
            self.clients("sns").delete_topic(TopicArn=made["topic"])
            self.clients("cloudwatch").delete_alarms(AlarmNames=[made["alarm"]])
            if self.log_group_exists:
                self.clients("logs").delete_log_group(logGroupName=made["group"])

    def delete_artifacts(self):
        self.calls.append(("delete", "artifacts"))


def options(nat_id: str, **kw) -> Options:
    opts = parse_args(["--nat", nat_id, "--region", REGION, "--yes"])
    opts.poll = 0.01
    for k, v in kw.items():
        setattr(opts, k, v)
    return opts


def run(opts, deployer, clients, **timeouts) -> tuple[int, str, Smoke]:
    out = io.StringIO()
    smoke = Smoke(opts, deployer, clients, out=out, timeouts={"started": 0.2, "flow_logs": 0.2, **timeouts})
    return smoke.run(), out.getvalue(), smoke


def emulator_is_clean(clients, stack) -> None:
    assert clients("sqs").list_queues().get("QueueUrls", []) == []
    assert clients("sns").list_subscriptions()["Subscriptions"] == []
    assert clients("sns").list_topics()["Topics"] == []
    assert clients("cloudwatch").describe_alarms()["MetricAlarms"] == []
    tagged = clients("ec2").describe_flow_logs(Filters=[{"Name": "tag:natrec:stack", "Values": [stack]}])
    assert tagged["FlowLogs"] == []


def rows_by_step(smoke: Smoke) -> dict[str, Row]:
    return {r.step: r for r in smoke.rows}


# -- arguments and confirmation


@pytest.mark.parametrize("bad", ["nat-123", "NAT-0123456789abcdef0", "nat-0123456789ABCDEF0", "nat-0123456789abcdef",
                                 "0123456789abcdef0", "nat-0123456789abcdef0,nat-0fedcba9876543210", ""])
def test_nat_id_must_be_one_nat_gateway_id(bad):
    with pytest.raises(UsageError, match="not a NAT Gateway ID"):
        parse_args(["--nat", bad, "--region", REGION])


@pytest.mark.parametrize("good", ["nat-0123456789abcdef0", "nat-01234567"])
def test_nat_ids_of_both_lengths_are_accepted(good):
    opts = parse_args(["--nat", good, "--region", "eu-west-1"])
    assert opts.nat == good and opts.region == "eu-west-1" and not opts.yes
    assert re.fullmatch(r"natrec-smoke-\d{8}[0-9a-f]{4}", opts.stack)  # time + random: unique per run
    assert opts.macro_name.startswith("NatFlowRecorderAlarms-") and opts.stack in opts.alarm


def test_region_is_required_even_when_the_environment_has_one(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(UsageError, match="--region is required"):
        parse_args(["--nat", "nat-0123456789abcdef0"])
    with pytest.raises(UsageError, match="not an AWS region"):
        parse_args(["--nat", "nat-0123456789abcdef0", "--region", "US East"])


@pytest.mark.parametrize("args,match", [(["--recording-time", "59"], "recording-time"),
                                        (["--report-delay", "3601"], "report-delay"),
                                        (["--threshold", "0"], "threshold")])
def test_template_bounds_are_checked_before_anything(args, match):
    with pytest.raises(UsageError, match=match):
        parse_args(["--nat", "nat-0123456789abcdef0", "--region", REGION, *args])


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_refuses_without_confirmation_and_creates_nothing(clients, nat):
    nat_id, eni = nat
    deployer = FakeDeployer(clients, nat_id, eni)
    out = io.StringIO()
    rc = aws_smoke.main(["--nat", nat_id, "--region", REGION], stdin=io.StringIO("yes\n"), out=out,
                        clients=clients, deployer=deployer)
    assert rc == 2
    assert "CREATES BILLABLE RESOURCES" in out.getvalue() and "123456789012" in out.getvalue()
    assert "without confirmation" in out.getvalue() and "--yes" in out.getvalue()
    out = io.StringIO()
    rc = aws_smoke.main(["--nat", nat_id, "--region", REGION], stdin=Tty("no\n"), out=out,
                        clients=clients, deployer=deployer)
    assert rc == 2 and "not confirmed" in out.getvalue()
    assert deployer.calls == []
    assert clients("sqs").list_queues().get("QueueUrls", []) == []


def test_a_nat_that_is_not_there_is_refused_before_asking(clients, nat):
    deployer = FakeDeployer(clients, "nat-0000000000000000f", "eni-x")
    out = io.StringIO()
    rc = aws_smoke.main(["--nat", "nat-0000000000000000f", "--region", REGION, "--yes"], out=out,
                        clients=clients, deployer=deployer)
    assert rc == 2 and "nat-0000000000000000f" in out.getvalue() and deployer.calls == []


def test_typed_yes_on_a_terminal_goes_on(clients, nat):
    nat_id, eni = nat
    deployer = FakeDeployer(clients, nat_id, eni)
    out = io.StringIO()
    rc = aws_smoke.main(["--nat", nat_id, "--region", REGION], stdin=Tty("yes\n"), out=out, clients=clients,
                        deployer=deployer, smoke_kwargs={"timeouts": {"started": 0.2}})
    assert deployer.calls[0][0] == "deploy" and deployer.calls[0][1].endswith("-macro")
    assert rc == 1  # the fake has no state machine: the run fails after deploying, and tears down
    assert "RESULT: FAIL" in out.getvalue()


# -- teardown


def test_a_failure_mid_run_tears_down_everything_it_created(clients, nat):
    nat_id, eni = nat
    opts = options(nat_id)
    deployer = FakeDeployer(clients, nat_id, eni)
    rc, out, smoke = run(opts, deployer, clients)
    assert rc == 1
    rows = rows_by_step(smoke)
    for passed in ("deploy macro stack", "deploy recorder stack", "subscribe SQS queue to notices",
                   "force alarm to ALARM"):
        assert rows[passed].result == "PASS", rows[passed]
    assert rows["recording started"].result == "FAIL"
    assert "flow logs created" not in rows  # nothing after the failure ran
    teardown = [r for r in smoke.rows if r.step.startswith("teardown:")]
    assert [r.step for r in teardown] == [
        "teardown: unsubscribe the queue", f"teardown: delete queue {opts.queue}",
        f"teardown: delete stack {opts.stack}", "teardown: delete flow logs tagged with the stack",
        f"teardown: delete stack {opts.macro_stack}", "teardown: delete this run's uploaded artifacts"]
    assert all(r.result == "PASS" for r in teardown), teardown
    assert deployer.calls == [("deploy", opts.macro_stack), ("deploy", opts.stack), ("delete", opts.stack),
                              ("delete", opts.macro_stack), ("delete", "artifacts")]
    emulator_is_clean(clients, opts.stack)
    assert "RESULT: FAIL (1 of 11 steps failed)" in out


def test_a_failing_deploy_still_deletes_the_half_created_stack(clients, nat):
    nat_id, eni = nat
    opts = options(nat_id)

    def boom():
        raise RuntimeError("CREATE_FAILED: injected")
    deployer = FakeDeployer(clients, nat_id, eni, hooks={"deploy_recorder": boom})
    rc, out, smoke = run(opts, deployer, clients)
    assert rc == 1 and "CREATE_FAILED: injected" in rows_by_step(smoke)["deploy recorder stack"].detail
    assert ("delete", opts.stack) in deployer.calls and ("delete", opts.macro_stack) in deployer.calls
    emulator_is_clean(clients, opts.stack)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_tears_down_and_restores_the_handlers(clients, nat, sig):
    nat_id, eni = nat
    opts = options(nat_id)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    deployer = FakeDeployer(clients, nat_id, eni, hooks={"deploy_recorder": lambda: os.kill(os.getpid(), sig)})
    rc, out, smoke = run(opts, deployer, clients)
    assert rc == 130
    assert "interrupted" in rows_by_step(smoke)["deploy recorder stack"].detail
    assert ("delete", opts.stack) in deployer.calls and ("delete", opts.macro_stack) in deployer.calls
    emulator_is_clean(clients, opts.stack)
    assert {s: signal.getsignal(s) for s in before} == before


def test_ctrl_c_during_teardown_does_not_stop_it(clients, nat):
    nat_id, eni = nat
    opts = options(nat_id)
    deployer = FakeDeployer(clients, nat_id, eni)
    deployer.hooks[f"delete {opts.stack}"] = lambda: os.kill(os.getpid(), signal.SIGINT)
    rc, out, smoke = run(opts, deployer, clients)
    assert rc == 1 and "during teardown" in out
    assert deployer.calls[-2:] == [("delete", opts.macro_stack), ("delete", "artifacts")]
    emulator_is_clean(clients, opts.stack)


def test_a_failed_teardown_step_is_reported_and_the_rest_still_runs(clients, nat):
    nat_id, eni = nat
    opts = options(nat_id)

    def stuck():
        raise StepFailed("DELETE_FAILED: injected")
    deployer = FakeDeployer(clients, nat_id, eni, hooks={f"delete {opts.macro_stack}": stuck})
    rc, out, smoke = run(opts, deployer, clients)
    assert rc == 1
    row = rows_by_step(smoke)[f"teardown: delete stack {opts.macro_stack}"]
    assert row.result == "FAIL" and "DELETE_FAILED" in row.detail
    assert f"LEFT BEHIND, delete by hand: delete stack {opts.macro_stack}" in out
    assert deployer.calls[-1] == ("delete", "artifacts")


# -- the checks that read AWS


def test_delivery_failure_of_a_flow_log_fails_the_delivery_check(clients, nat):
    nat_id, eni = nat
    opts = options(nat_id)
    # moto answers a flow log whose log group does not exist with DeliverLogsStatus FAILED, "Access error",
    # as AWS documents for a delivery that fails after the flow log was created.
    deployer = FakeDeployer(clients, nat_id, eni, log_group_exists=False)
    smoke = Smoke(opts, deployer, clients, out=io.StringIO())
    smoke.outputs = deployer.deploy_recorder(opts.stack, opts.macro_name, {"NatGatewayIds": nat_id})
    assert smoke.flow_logs_created().endswith(f"on {eni}")
    with pytest.raises(StepFailed, match="FAILED Access error"):
        smoke.delivery_succeeded()
    with pytest.raises(StepFailed, match="flow logs left"):
        smoke.no_flow_log_left()
    smoke.sweep_flow_logs()
    assert smoke.no_flow_log_left() == "1 created, 0 left"


def test_delivery_check_needs_success_in_every_observation():
    watch = FlowLogWatch()
    watch.observe([{"FlowLogId": "fl-1", "ResourceId": "eni-1", "DeliverLogsStatus": "SUCCESS"}])
    assert watch.delivery_problems() == []
    watch.observe([{"FlowLogId": "fl-1", "ResourceId": "eni-1", "DeliverLogsStatus": "FAILED",
                    "DeliverLogsErrorMessage": "Rate limited"}])
    assert watch.delivery_problems() == ["fl-1 on eni-1: FAILED/SUCCESS Rate limited"]
    watch.observe([])
    assert watch.current == [] and "fl-1" in watch.seen


def test_the_notice_is_read_from_the_queue(clients, nat):
    nat_id, eni = nat
    opts = options(nat_id)
    deployer = FakeDeployer(clients, nat_id, eni)
    smoke = Smoke(opts, deployer, clients, out=io.StringIO(), timeouts={"notice": 2})
    smoke.outputs = deployer.deploy_recorder(opts.stack, opts.macro_name, {"NatGatewayIds": nat_id})
    smoke.subscribe_queue()
    policy = clients("sqs").get_queue_attributes(QueueUrl=smoke.queue_url, AttributeNames=["Policy"])
    assert smoke.outputs["NoticeTopicArn"] in policy["Attributes"]["Policy"]
    clients("sns").publish(TopicArn=smoke.outputs["NoticeTopicArn"], Subject="other", Message="not ours")
    clients("sns").publish(TopicArn=smoke.outputs["NoticeTopicArn"], Subject=f"NAT recording ended: {nat_id}",
                           Message=f"Who caused the spike on {nat_id}: ...")
    assert smoke.notice_arrived().startswith(f"\"NAT recording ended: {nat_id}\"")
    with pytest.raises(StepFailed, match="no notice"):
        smoke.timeouts["notice"] = 0.05
        smoke.notice_arrived()
    smoke.teardown()
    assert clients("sqs").list_queues().get("QueueUrls", []) == []


# -- the real deployer's commands, and the table


def test_sam_deployer_builds_and_deploys_with_unique_names_and_the_temporary_macro(tmp_path):
    opts = options("nat-0123456789abcdef0")
    commands = []

    class Proc:
        returncode = 0

    def fake_run(cmd, cwd, env):
        commands.append((cmd, Path(cwd)))
        if cmd[1] == "build":
            build = Path(cmd[cmd.index("--build-dir") + 1])
            build.mkdir(parents=True, exist_ok=True)
            (build / "template.yaml").write_text(
                "Transform:\n  - NatFlowRecorderAlarms\n  - AWS::Serverless-2016-10-31\nResources: {}\n")
        return Proc()

    class Cfn:
        def describe_stacks(self, StackName):
            return {"Stacks": [{"Outputs": [{"OutputKey": "NoticeTopicArn", "OutputValue": "arn:t"}]}]}

    deployer = SamDeployer(opts, lambda s: Cfn(), run=fake_run, sam="sam", build_root=tmp_path)
    deployer.deploy_macro(opts.macro_stack, opts.macro_name)
    outputs = deployer.deploy_recorder(opts.stack, opts.macro_name, {"NatGatewayIds": opts.nat, "Threshold": "5"})
    assert outputs == {"NoticeTopicArn": "arn:t"}
    (b1, cwd1), (d1, _), (b2, cwd2), (d2, _) = commands
    assert b1[1] == b2[1] == "build" and cwd1.name == "macros" and cwd2 == aws_smoke.ROOT
    assert d1[d1.index("--stack-name") + 1] == opts.macro_stack and f"MacroName={opts.macro_name}" in d1
    assert d2[d2.index("--stack-name") + 1] == opts.stack and "CAPABILITY_AUTO_EXPAND" in d2
    assert f"NatGatewayIds={opts.nat}" in d2 and "Threshold=5" in d2 and "--no-confirm-changeset" in d2
    for d in (d1, d2):
        assert d[d.index("--region") + 1] == REGION and d[d.index("--s3-prefix") + 1] == opts.stack
    built = (tmp_path / "smoke" / "template.yaml").read_text()
    assert f"  - {opts.macro_name}\n" in built and "  - NatFlowRecorderAlarms\n" not in built


def test_use_macro_rewrites_exactly_the_transform_entry():
    text = "Transform:\n  - NatFlowRecorderAlarms\n  - AWS::Serverless-2016-10-31\n"
    assert use_macro(text, "NatFlowRecorderAlarms-x") == text.replace("- NatFlowRecorderAlarms\n",
                                                                      "- NatFlowRecorderAlarms-x\n")
    assert use_macro(text, "NatFlowRecorderAlarms") == text
    with pytest.raises(StepFailed, match="found 0"):
        use_macro("Transform: AWS::Serverless-2016-10-31\n", "M-1")


def test_the_table_shows_each_step_with_timings_and_the_verdict():
    rows = [Row("deploy recorder stack", "PASS", 0.0, 312.46, "natrec-smoke-x"),
            Row("delivery status SUCCESS", "FAIL", 400.0, 0.0, "delivery not SUCCESS: fl-1 on eni-1: FAILED Access error"),
            Row("teardown: delete queue q", "PASS", 401.2, 0.3)]
    table = render_table(rows, "Smoke test natrec-smoke-x on nat-0123456789abcdef0 in us-east-1", 420.4)
    lines = table.splitlines()
    assert lines[0].startswith("Smoke test natrec-smoke-x")
    assert lines[1].split() == ["#", "step", "result", "at", "(s)", "took", "(s)", "detail"]
    assert "deploy recorder stack" in lines[3] and "PASS" in lines[3] and "312.5" in lines[3]
    assert lines[4].index("FAIL") == lines[3].index("PASS")  # aligned columns
    assert lines[-1] == "RESULT: FAIL (1 of 3 steps failed) in 420 s"
    ok = render_table([rows[0]], "t", 1.0)
    assert ok.splitlines()[-1] == "RESULT: PASS in 1 s"


def test_no_credentials_is_a_clear_refusal():
    from botocore.exceptions import NoCredentialsError

    class Sts:
        def get_caller_identity(self):
            raise NoCredentialsError()
    out = io.StringIO()
    rc = aws_smoke.main(["--nat", "nat-0123456789abcdef0", "--region", REGION, "--yes"], out=out,
                        clients=lambda service: Sts(), deployer=object())
    assert rc == 2 and "cannot call AWS with these credentials: Unable to locate credentials" in out.getvalue()
