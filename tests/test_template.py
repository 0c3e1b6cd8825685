"""Template checks: cfn-lint, the ASL linted, sam validate --lint, the macro's expansion of the
real template (by the real macro binary) linted, saved queries in sync with queries/, and the
wiring between template, state machine and code."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.lambda_host import FunctionHost, invoke_json
from tests.harness.stack import ROOT, Resolver, load_template

BIN = Path(sys.executable).parent
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}


def run(*cmd, cwd=ROOT):
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)


def cfn_lint(path: Path):
    r = run(str(BIN / "cfn-lint"), str(path))
    assert r.returncode == 0, f"cfn-lint {path}:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("path", ["template.yaml", "macros/template.yaml"])
def test_cfn_lint(path):
    cfn_lint(ROOT / path)


@pytest.mark.parametrize("path", ["template.yaml", "macros/template.yaml"])
def test_sam_validate_lint(path):
    r = run(str(BIN / "sam"), "validate", "--lint", "-t", path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_state_machine_definition_lints(tmp_path, template):
    """cfn-lint checks ASL only inside a plain AWS::StepFunctions::StateMachine Definition."""
    subs = template["Resources"]["RecorderStateMachine"]["Properties"]["DefinitionSubstitutions"]
    text = (ROOT / "statemachine" / "recorder.asl.json").read_text()
    for name in subs:
        value = "arn:aws:sns:us-east-1:123456789012:topic" if name == "TopicArn" else \
            f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        text = text.replace("${" + name + "}", value)
    wrapped = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Recorder": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/recorder", "StateMachineType": "STANDARD",
                       "Definition": json.loads(text)}}}}
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(wrapped))
    cfn_lint(path)


def test_every_substitution_is_defined_and_used(template):
    subs = set(template["Resources"]["RecorderStateMachine"]["Properties"]["DefinitionSubstitutions"])
    used = set(re.findall(r"\$\{(\w+)\}", (ROOT / "statemachine" / "recorder.asl.json").read_text()))
    assert used == subs


@pytest.mark.parametrize("resource,query", [("NatFlowsQuery", "nat-flows.query"),
                                            ("TopTalkersQuery", "top-talkers.query")])
def test_saved_queries_are_the_files_in_queries(template, resource, query):
    props = template["Resources"][resource]["Properties"]
    assert props["QueryString"] == (ROOT / "queries" / query).read_text()
    assert props["LogGroupNames"] == [{"Ref": "FlowLogGroup"}]


def test_queries_parse_exactly_the_recorded_format():
    src = (ROOT / "functions" / "natflow" / "src" / "format.rs").read_text()
    block = src[src.index("RECORDER_FIELDS"):src.index("];", src.index("RECORDER_FIELDS"))]
    fields = re.findall(r'"([a-z-]+)"', block)
    for query in ("nat-flows.query", "top-talkers.query"):
        text = (ROOT / "queries" / query).read_text()
        m = re.search(r'parse @message "([* ]+)" as ([\w, ]+)', text)
        stars, names = m.group(1).split(), [n.strip() for n in m.group(2).split(",")]
        assert len(stars) == len(names) == len(fields), query
        # the same order: names are the fields with '-' as '_' (a few renamed to avoid keywords)
        renamed = {"protocol": "protocol_number", "start": "start_time", "end": "end_time",
                   "traffic-path": "traffic_path_code", "type": "traffic_type"}
        assert names == [renamed.get(f, f.replace("-", "_")) for f in fields], query


def test_function_environment_covers_what_the_code_reads(template):
    globals_env = set(template["Globals"]["Function"]["Environment"]["Variables"])
    lambda_provided = {"AWS_REGION"}
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        main = (ROOT / "functions" / binary / "src" / "main.rs").read_text()
        read = set(re.findall(r'env::(?:var|number)\("([A-Z_]+)"\)', main))
        defined = globals_env | set(res["Properties"].get("Environment", {}).get("Variables", {})) | lambda_provided
        assert read <= defined, f"{logical_id} reads {read - defined} which the template does not set"


@pytest.fixture(scope="module")
def macro(tmp_path_factory):
    host = FunctionHost("alarms-macro", ROOT / "target" / "debug" / "alarms-macro", {"RUST_LOG": "warn"},
                        tmp_path_factory.mktemp("macro-logs"))
    yield host
    host.close()


def macro_event(template: dict, nat_ids: str) -> dict:
    return {"region": "us-east-1", "accountId": "123456789012", "transformId": "123456789012::NatFlowRecorderAlarms",
            "requestId": "req-1", "params": {}, "fragment": template,
            "templateParameterValues": {"NatGatewayIds": nat_ids, "EmailAddress": "ops@example.com"}}


def test_macro_expands_the_real_template_into_one_alarm_per_nat_and_it_lints(macro, tmp_path):
    template = load_template()
    out = invoke_json(macro, macro_event(template, "nat-0123456789abcdef0 , nat-0a1b2c3d"))
    assert out["status"] == "success", out
    fragment = out["fragment"]
    alarms = {k: v for k, v in fragment["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(alarms) == ["NatTrafficAlarm0123456789abcdef0", "NatTrafficAlarm0a1b2c3d"]
    a = alarms["NatTrafficAlarm0a1b2c3d"]["Properties"]
    assert a["AlarmName"] == {"Fn::Sub": "${AWS::StackName}-natgw-nat-0a1b2c3d"}
    dims = [m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in a["Metrics"] if "MetricStat" in m]
    assert dims == ["nat-0a1b2c3d", "nat-0a1b2c3d"]
    assert "NAT_GATEWAY_ID" not in json.dumps(fragment)
    fragment["Transform"] = "AWS::Serverless-2016-10-31"  # the macro has run
    path = tmp_path / "expanded.json"
    path.write_text(json.dumps(fragment))
    cfn_lint(path)


def test_macro_rejects_malformed_ids_with_a_clear_message(macro):
    out = invoke_json(macro, macro_event(load_template(), "nat-0123456789abcdef0,nat-12345"))
    assert out["status"] == "failure"
    assert '"nat-12345" is not a NAT Gateway ID' in out["errorMessage"]


def test_alarm_names_match_the_rule_prefix(template):
    """The macro's alarm names must be what the EventBridge rules select."""
    name = template["Resources"]["NatTrafficAlarm"]["Properties"]["AlarmName"]["Fn::Sub"]
    for resource, event in (("RecorderStateMachine", "AlarmFired"), ("ResumeRecordingFunction", "AlarmLeftAlarm")):
        prefix = template["Resources"][resource]["Properties"]["Events"][event]["Properties"]["Pattern"]["detail"]["alarmName"][0]["prefix"]["Fn::Sub"]
        assert name.startswith(prefix)


def test_nat_id_parameter_pattern_matches_the_macro_rules(template):
    pattern = re.compile(template["Parameters"]["NatGatewayIds"]["AllowedPattern"])
    for good in ["nat-0123456789abcdef0", "nat-0a1b2c3d, nat-0123456789abcdef0", " nat-0a1b2c3d ,nat-0a1b2c3e"]:
        assert pattern.match(good), good
    for bad in ["", "nat-0a1b2c3", "nat-0a1b2c3d,", "nat-0A1B2C3D", "igw-0a1b2c3d", "nat-0a1b2c3d;nat-0a1b2c3e"]:
        assert not pattern.match(bad), bad
