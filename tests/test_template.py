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


# --- Deploy-time limits AWS enforces (issue 9, item 5) -------------------------------------------

def rule_holds(expr, values: dict) -> bool:
    """Evaluates a CloudFormation Rules condition (the functions template.yaml uses) on parameter values."""
    (fn, arg), = expr.items()
    if fn == "Ref":
        return values[arg]
    if fn == "Fn::Equals":
        a, b = (str(rule_holds(x, values)) if isinstance(x, dict) else str(x) for x in arg)
        return a == b
    if fn == "Fn::Contains":
        return str(rule_holds(arg[1], values)) in [str(x) for x in arg[0]]
    if fn == "Fn::Not":
        return not rule_holds(arg[0], values)
    if fn == "Fn::And":
        return all(rule_holds(x, values) for x in arg)
    if fn == "Fn::Or":
        return any(rule_holds(x, values) for x in arg)
    raise AssertionError(f"rule function {fn} not evaluated by this test")


def test_rules_refuse_exactly_the_evaluation_windows_putmetricalarm_refuses(template):
    """PutMetricAlarm: Period x EvaluationPeriods <= 86,400 s for periods under an hour, <= 604,800 s
    otherwise. Every combination the parameters allow is either refused by the Rules (before any
    resource is created) or accepted by CloudWatch."""
    params, rules = template["Parameters"], template.get("Rules", {})
    assert rules, "template.yaml has no Rules"
    ep = params["EvaluationPeriods"]
    for period in params["SamplingPeriod"]["AllowedValues"]:
        for n in range(ep["MinValue"], ep["MaxValue"] + 1):
            values = {"SamplingPeriod": str(period), "EvaluationPeriods": str(n)}
            passes = all(rule_holds(a["Assert"], values) for r in rules.values()
                         if "RuleCondition" not in r or rule_holds(r["RuleCondition"], values)
                         for a in r["Assertions"])
            allowed = period * n <= (86_400 if period < 3600 else 604_800)
            assert passes == allowed, (period, n)
            for r in rules.values():
                for a in r["Assertions"]:
                    assert "SamplingPeriod" in a["AssertDescription"] and "EvaluationPeriods" in a["AssertDescription"]


@pytest.mark.parametrize("values,named", [
    ({"EvaluationPeriods": "2", "DatapointsToAlarm": "5"}, "DatapointsToAlarm (5) must be at most EvaluationPeriods (2)"),
    ({"SamplingPeriod": "1800", "EvaluationPeriods": "60"}, "SamplingPeriod (1800) s x EvaluationPeriods (60)"),
])
def test_macro_refuses_alarm_settings_cloudwatch_would_refuse_naming_the_parameters(macro, values, named):
    event = macro_event(load_template(), "nat-0a1b2c3d")
    event["templateParameterValues"].update(values)
    out = invoke_json(macro, event)
    assert out["status"] == "failure" and named in out["errorMessage"], out.get("errorMessage")


def test_no_serverless_repo_metadata_in_a_template_with_a_macro(template):
    transforms = template["Transform"] if isinstance(template["Transform"], list) else [template["Transform"]]
    assert any(not t.startswith("AWS::") for t in transforms)
    assert "AWS::ServerlessRepo::Application" not in template.get("Metadata", {}), \
        "the Serverless Application Repository refuses templates whose Transform list holds a macro"
    assert "Serverless Application Repository" in (ROOT / "README.md").read_text()


LONG_STACK = "s" + "-abcdefgh" * 14 + "x"  # 128 characters, CloudFormation's longest stack name


def long_stack_resolver():
    from tests.harness.stack import ACCOUNT, REGION
    assert len(LONG_STACK) == 128
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{LONG_STACK}/6c7d1f40-8a2b-11f1-9c3e-0a1b2c3d4e5f"
    return Resolver({"AWS::StackName": LONG_STACK, "AWS::StackId": stack_id}, {})


def test_names_fit_aws_limits_with_a_128_character_stack_name(template):
    """Step Functions quotas: state machine names 1-80 characters; CloudWatch alarm names <= 255;
    log group names <= 512; query definition names <= 255; SNS subjects < 100 characters."""
    resolve, res = long_stack_resolver(), template["Resources"]
    name = resolve(res["RecorderStateMachine"]["Properties"]["Name"])
    assert 1 <= len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name), name
    # unique per stack: another stack (another StackId) gets another name
    other = Resolver({"AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/x/00000000-0000-0000-0000-000000000000"}, {})
    assert other(res["RecorderStateMachine"]["Properties"]["Name"]) != name
    # everything that names the state machine or its executions names this one
    refs = []

    def walk(v):
        if isinstance(v, dict):
            if "Fn::Sub" in v and (":stateMachine:" in json.dumps(v) or ":execution:" in json.dumps(v)):
                refs.append(resolve(v))
                return
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(res)
    assert len(refs) >= 4, refs  # park-token, resume, the sweeper's rule and its grant
    for arn in refs:
        # (the report's query-ledger grant names its keys: queries#<execution ARN>)
        assert re.fullmatch(rf"(queries#)?arn:aws:states:us-east-1:123456789012:(stateMachine:{name}|execution:{name}:\*)",
                            arn), arn
    alarm = resolve(res["NatTrafficAlarm"]["Properties"]["AlarmName"]).replace("NAT_GATEWAY_ID", "nat-0123456789abcdef0")
    assert len(alarm) <= 255, len(alarm)
    for logical_id, r in res.items():
        if r["Type"] == "AWS::Logs::LogGroup":
            assert len(resolve(r["Properties"]["LogGroupName"])) <= 512
        if r["Type"] == "AWS::Logs::QueryDefinition":
            assert len(resolve(r["Properties"]["Name"])) <= 255


def test_sns_subjects_in_the_state_machine_stay_under_100_characters():
    """SNS Publish: Subject must be shorter than 100 characters. The ASL builds none from the stack
    name or an execution ARN: literals are checked here, the others come from the functions."""
    asl = json.loads((ROOT / "statemachine" / "recorder.asl.json").read_text())
    publishes = [s for s in asl["States"].values() if s.get("Resource") == "arn:aws:states:::sns:publish"]
    assert publishes
    for state in publishes:
        p = state["Parameters"]
        if "Subject" in p:
            assert len(p["Subject"]) < 100 and "\n" not in p["Subject"], p["Subject"]
        else:
            assert re.fullmatch(r"\$(\.\w+)+", p["Subject.$"]), f"a subject built in the ASL: {p['Subject.$']}"
    # The last-resort notice's subject is built by the Pass states before it, from the NAT ID only
    # (nat- and at most 17 hex digits: the start step parses it, the macro names alarms with it).
    id_max = len("nat-") + 17
    alarm_hex = ("States.ArrayGetItem(States.StringSplit($.detail.alarmName, '-'), "
                 "States.MathAdd(States.ArrayLength(States.StringSplit($.detail.alarmName, '-')), -1))")
    assert asl["States"]["NotifyCleanupFailed"]["Parameters"]["Subject.$"] == "$.cleanup_nat.subject"
    builders = [s for s in asl["States"].values() if s.get("ResultPath") == "$.cleanup_nat"]
    assert len(builders) == 4
    for state in builders:
        p = state["Parameters"]
        if "subject" in p:
            assert len(p["subject"]) < 100, p["subject"]
            continue
        m = re.fullmatch(r"States\.Format\('([^'{}]*)\{\}([^'{}]*)', (.*)\)", p["subject.$"])
        assert m and m.group(3) in ("$.nat_id", alarm_hex), p["subject.$"]
        fixed = m.group(1) + m.group(2)
        assert fixed.isascii() and len(fixed) + id_max < 100, p["subject.$"]


def test_alarm_sum_counts_a_missing_point_as_zero(macro):
    """Metric math `a + b` has no point where either series has none: a spike in one direction
    while the other reports nothing would not be seen. FILL(x, 0) makes a missing point 0."""
    out = invoke_json(macro, macro_event(load_template(), "nat-0a1b2c3d"))
    alarms = [r for r in out["fragment"]["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    for alarm in alarms:
        metrics = alarm["Properties"]["Metrics"]
        ids = [m["Id"] for m in metrics if "MetricStat" in m]
        (expr,) = [m["Expression"] for m in metrics if m.get("ReturnData")]
        for i in ids:
            assert re.search(rf"\bFILL\(\s*{i}\s*,\s*0\s*\)", expr), expr
            assert len(re.findall(rf"\b{i}\b", expr)) == 1, f"{i} used outside FILL: {expr}"


# --- Stack deletion while a spike is alarming (issue 9, item 8) ---------------------------------

def sam_translate(t: dict) -> dict:
    """The template as CloudFormation deploys it after SAM's transform."""
    import copy as _copy
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator
    t = _copy.deepcopy(t)
    t["Transform"] = "AWS::Serverless-2016-10-31"
    t["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::StateMachine":
            r["Properties"]["DefinitionUri"] = {"Bucket": "bucket", "Key": "definition.json"}
    values = {p: str(v.get("Default", "x")) for p, v in t["Parameters"].items()}
    old = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        return Translator(managed_policy_map={}, sam_parser=parser.Parser()).translate(sam_template=t, parameter_values=values)
    finally:
        if old is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = old


def dependencies(resources: dict) -> dict[str, set[str]]:
    """What each resource depends on, as CloudFormation orders it: DependsOn, Ref, Fn::GetAtt, Fn::Sub."""
    def refs(v, out):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "Ref" and isinstance(x, str):
                    out.add(x)
                elif k == "Fn::GetAtt":
                    out.add((x if isinstance(x, list) else x.split("."))[0])
                elif k == "Fn::Sub":
                    text = x if isinstance(x, str) else x[0]
                    out.update(n.split(".")[0] for n in re.findall(r"\$\{([^!}][^}]*)\}", text))
                    if not isinstance(x, str):
                        refs(x[1], out)
                else:
                    refs(x, out)
        elif isinstance(v, list):
            for x in v:
                refs(x, out)
        return out
    deps = {}
    for logical_id, r in resources.items():
        d = refs(r.get("Properties", {}), set())
        on = r.get("DependsOn", [])
        d.update([on] if isinstance(on, str) else on)
        deps[logical_id] = {x for x in d if x in resources}
    return deps


def depends_on(deps, a, b) -> bool:
    seen, todo = set(), [a]
    while todo:
        x = todo.pop()
        if x == b:
            return True
        if x not in seen:
            seen.add(x)
            todo.extend(deps.get(x, ()))
    return False


def test_what_can_start_a_recording_is_deleted_before_the_final_sweep(macro):
    """CloudFormation deletes in reverse dependency order. For the cleanup custom resource to sweep
    after the last recording could start, every alarm (as the macro expands them) and every rule
    that can start an execution must depend on it, directly or transitively; and it must depend on
    what the sweeper uses, so those are still there when it runs."""
    out = invoke_json(macro, macro_event(load_template(), "nat-0123456789abcdef0,nat-0a1b2c3d"))
    assert out["status"] == "success", out
    cfn = sam_translate(out["fragment"])["Resources"]
    deps = dependencies(cfn)
    cleanup = "FlowLogCleanupOnDelete"
    machines = {k for k, r in cfn.items() if r["Type"] == "AWS::StepFunctions::StateMachine"}
    alarms = [k for k, r in cfn.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    starters = [k for k, r in cfn.items() if r["Type"] in ("AWS::Events::Rule", "AWS::Scheduler::Schedule")
                and dependencies({k: r, **{m: {} for m in machines}})[k] & machines]
    assert len(alarms) == 2 and starters, (alarms, starters)
    for k in alarms + starters + sorted(machines):
        assert depends_on(deps, k, cleanup), f"{k} would outlive {cleanup} on stack deletion"
    # FlowLogGroup too: deleted before the sweep, flow logs still running could have their delivery
    # recreate it (the delivery role may logs:CreateLogGroup, as the VPC user guide lists).
    for needed in ("SweepOrphansFunction", "SweepOrphansFunctionRole", "NoticeTopic", "RecordingsTable",
                   "FlowLogGroup"):
        assert depends_on(deps, cleanup, needed), needed
    assert not any(depends_on(deps, cleanup, k) for k in alarms + starters), "dependency cycle"


# --- No failure skips the notice (issue 9, item 7) -----------------------------------------------

def test_an_error_cause_is_read_only_where_it_is_known_to_exist():
    """States.ALL catches neither States.Runtime nor States.DataLimitExceeded (Step Functions developer
    guide, error handling), and a path that does not resolve in States.Format or a Parameters path
    raises States.Runtime. The ASL spec says an error output SHOULD (not MUST) have Cause: where a
    caught error's Cause is read, the Catch leads first to a Choice that checks it is present."""
    asl = json.loads((ROOT / "statemachine" / "recorder.asl.json").read_text())
    states = asl["States"]
    catches = [(name, c) for name, s in states.items() for c in s.get("Catch", [])]
    assert catches
    for name, c in catches:
        cause = f"{c['ResultPath']}.Cause"
        if cause not in json.dumps(states):
            continue
        target = states[c["Next"]]
        assert cause not in json.dumps(target.get("Parameters", {})), f"{name} -> {c['Next']} reads {cause}"
        assert target["Type"] == "Choice" and any(
            ch.get("Variable") == cause and ch.get("IsPresent") is True for ch in target["Choices"]), \
            f"{name}'s Catch leads to {c['Next']}, which does not check that {cause} exists"


def test_every_path_that_ends_the_execution_sends_a_notice_first():
    """Every way out of the state machine other than the quiet join passes a Notify state; an end
    that still skips one (an uncatchable error) is told by the sweeper (functions/natrec/tests/sweep.rs)."""
    asl = json.loads((ROOT / "statemachine" / "recorder.asl.json").read_text())
    states = asl["States"]

    def nexts(s):
        out = [s["Next"]] if "Next" in s else []
        out += [c["Next"] for c in s.get("Choices", [])] + ([s["Default"]] if "Default" in s else [])
        out += [c["Next"] for c in s.get("Catch", [])]
        return out

    def ends_without_notice(name, notified, seen):
        s = states[name]
        notified = notified or s.get("Resource") == "arn:aws:states:::sns:publish"
        if s["Type"] in ("Succeed", "Fail") or s.get("End"):
            return [] if notified or name == "JoinedRunningRecording" else [name]
        if (name, notified) in seen:
            return []
        seen.add((name, notified))
        return [x for n in nexts(s) for x in ends_without_notice(n, notified, seen)]
    assert ends_without_notice(asl["StartAt"], False, set()) == []


# --- The report step never runs past its Lambda and starts over (issue 9, item 1) ---------------

def test_build_report_is_not_retried_after_a_timeout_and_reads_what_one_run_can():
    """A BuildReport that timed out would time out again, reading from the start each time (6
    retries of a 900 s Lambda). Step Functions reports a Lambda timeout as `Sandbox.Timedout`, or as
    `Lambda.Unknown` ("Unhandled errors in Lambda are reported as Lambda.Unknown ... These include
    out-of-memory errors and function timeouts": Step Functions developer guide, "Handle Lambda
    service exceptions"); a task timeout is `States.Timeout`. None may be retried; they are caught
    and the notice goes out without the report. Reading stops in time by itself
    (functions/natrec/src/report.rs, tests/report_reading.rs). The other steps keep their retries."""
    asl = json.loads((ROOT / "statemachine" / "recorder.asl.json").read_text())
    timeouts = {"Sandbox.Timedout", "Lambda.Unknown", "States.Timeout", "States.ALL", "States.TaskFailed"}
    retried = {e for r in asl["States"]["BuildReport"].get("Retry", []) for e in r["ErrorEquals"]}
    assert "Transient" in retried and not retried & timeouts, retried
    others = {e for s in asl["States"].values() for r in s.get("Retry", []) for e in r["ErrorEquals"]}
    assert "Sandbox.Timedout" in others, "other steps (idempotent, short) still retry a timeout"

    template = load_template(ROOT / "template.yaml")
    params, fn = template["Parameters"], template["Resources"]["BuildReportFunction"]["Properties"]
    assert fn["Environment"]["Variables"]["REPORT_READS_PER_SECOND"] == {"Ref": "ReportReadsPerSecond"}
    rate = params["ReportReadsPerSecond"]
    assert float(rate["Default"]) == 2 and 0 < float(rate["MinValue"]) and float(rate["MaxValue"]) < 5, \
        "a bounded share of FilterLogEvents' 5 requests per second per account"
    # What one run reads at the default pace, at most: 1 MiB pages (FilterLogEvents API reference),
    # over the Lambda's timeout less the 60 s kept back to build the report (report::TIME_RESERVE).
    readable = float(rate["Default"]) * (int(fn["Timeout"]) - 60) * 1_048_576
    max_bytes = params["ReportMaxBytes"]
    assert int(max_bytes["Default"]) <= int(max_bytes["MaxValue"]) <= 0.95 * readable, (max_bytes, readable)
