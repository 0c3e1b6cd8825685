"""Deploys template.yaml's recorder into the emulator, the way CloudFormation would, closely
enough to run it: resources created from their template properties, functions' environments
and the state machine's DefinitionSubstitutions resolved from the template."""
from __future__ import annotations

import copy
import json
import logging
import os
import socket
import time
import urllib.request
from pathlib import Path

import boto3
from cfnlint.decode import cfn_yaml

from .lambda_host import FunctionHost
from .router import Router, serve

ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT, STACK = "us-east-1", "123456789012", "natrec-test"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/6c7d1f40-8a2b-11f1-9c3e-0a1b2c3d4e5f"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


def load_template(path: Path = ROOT / "template.yaml") -> dict:
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def logical_arn(logical_id: str, kind: str) -> str:
    name = f"{STACK}-{logical_id}"
    return {
        "function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
    }[kind]


class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Sub against known values."""

    def __init__(self, refs: dict[str, str], attrs: dict[str, str]):
        self.refs = {"AWS::StackName": STACK, "AWS::StackId": STACK_ID, "AWS::Region": REGION,
                     "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", **refs}
        self.attrs = attrs

    def __call__(self, v):
        if isinstance(v, dict) and len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.refs[arg]
            if k == "Fn::GetAtt":
                key = ".".join(arg) if isinstance(arg, list) else arg
                return self.attrs[key]
            if k == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if k == "Fn::Split":
                return self(arg[1]).split(arg[0])
            if k == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], {n: self(x) for n, x in arg[1].items()})
                out, i = "", 0
                while True:
                    j = text.find("${", i)
                    if j < 0:
                        return out + text[i:]
                    end = text.index("}", j)
                    name = text[j + 2:end]
                    out += text[i:j]
                    if name in extra:
                        out += str(extra[name])
                    elif "." in name:
                        out += self.attrs[name]
                    else:
                        out += str(self.refs[name])
                    i = end + 1
        if isinstance(v, dict):
            return {k: self(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self(x) for x in v]
        return v


def route_logs_to(log_file: Path) -> logging.Handler:
    """Sends the emulator's own logging to `log_file` instead of the terminal: moto's server is a
    werkzeug app, and werkzeug logs every request ("127.0.0.1 - - [...] "POST / HTTP/1.1" 200 -")
    to stderr through a handler of its own unless its logger already has one; the rest (moto,
    botocore, warnings) goes through the root logger."""
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler


class Emulator:
    """moto server + the invoke router, on free loopback ports."""

    def __init__(self, log_dir: Path, log_file: Path | None = None):
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        if log_file is not None:
            route_logs_to(log_file)
        self.moto_port, self.router_port = free_port(), free_port()
        # moto's Step Functions executor sends Lambda invokes to localhost:$MOTO_PORT: the router.
        os.environ["MOTO_PORT"] = str(self.router_port)
        from moto.server import ThreadedMotoServer
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.moto.start()
        self.router = Router(self.router_port, self.moto_port)
        serve(self.router)
        self.configure()
        self.endpoint = f"http://127.0.0.1:{self.router_port}"

    def _post(self, path: str, body: dict | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.moto_port}{path}", method="POST",
                                     data=json.dumps(body or {}).encode())
        urllib.request.urlopen(req, timeout=10).read()

    def configure(self):
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True},
                                        "lambda": {"use_docker": False}})

    def reset(self):
        self._post("/moto-api/reset")
        self.router.faults.clear()
        self.router.calls.clear()

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, **CREDS)

    def close(self):
        for host in self.router.functions.values():
            host.close()
        self.router.shutdown()
        self.router.server_close()
        self.moto.stop()


class Recorder:
    """The recorder stack of template.yaml, deployed into the emulator."""

    def __init__(self, emu: Emulator, template: dict, target_dir: Path, concurrency: int = 1):
        self.emu, self.template, self.target_dir = emu, template, target_dir
        self.resources = template["Resources"]
        self.log_group = f"/natrec/{STACK}/flow-logs"
        self.report_log_group = f"/natrec/{STACK}/reports"
        self.table = f"{STACK}-RecordingsTable"
        self.state_machine_name = Resolver({}, {})(self.resources["RecorderStateMachine"]["Properties"]["Name"])
        functions = [k for k, r in self.resources.items() if r["Type"] == "AWS::Serverless::Function"]
        self.function_names = {k: f"{STACK}-{k}" for k in functions}
        self.resolve = Resolver(
            refs={"RecordingsTable": self.table, "FlowLogGroup": self.log_group, "ReportLogGroup": self.report_log_group,
                  "NoticeTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-NoticeTopic",
                  "RecorderStateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.state_machine_name}",
                  **{p: str(v.get("Default", "")) for p, v in template["Parameters"].items()}},
            attrs={"FlowLogDeliveryRole.Arn": logical_arn("FlowLogDeliveryRole", "role"),
                   **{f"{k}.Arn": logical_arn(k, "function") for k in functions}})
        # The report waits ReportDelay (600 s) for flow-log delivery; the emulator delivers nothing
        # (tests write the records themselves), and its Wait state really sleeps.
        self.resolve.refs["ReportDelay"] = "1"
        self.hosts: dict[str, FunctionHost] = {}
        for logical_id in functions:
            binary = self.resources[logical_id]["Metadata"]["BuildProperties"]["Binary"]
            host = FunctionHost(self.function_names[logical_id], target_dir / binary, self.function_env(logical_id),
                                emu.log_dir, concurrency=concurrency)
            self.hosts[logical_id] = host
            emu.router.functions[host.name] = host

    def function_env(self, logical_id: str) -> dict[str, str]:
        env = dict(self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        env.update(self.resources[logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
        return {**{k: str(self.resolve(v)) for k, v in env.items()},
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.emu.endpoint,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "RUST_LOG": "info",
                "AWS_SDK_UA_APP_ID": logical_id}

    def definition(self) -> str:
        sm = self.resources["RecorderStateMachine"]["Properties"]
        text = (ROOT / sm["DefinitionUri"]).read_text()
        for name, value in sm["DefinitionSubstitutions"].items():
            text = text.replace("${" + name + "}", str(self.resolve(value)))
        return text

    def deploy(self):
        """(Re)creates the stack's resources in a freshly reset emulator."""
        ddb, logs, sns, sqs, sfn = (self.emu.client(s) for s in ("dynamodb", "logs", "sns", "sqs", "stepfunctions"))
        props = self.resources["RecordingsTable"]["Properties"]
        ddb.create_table(TableName=self.table, BillingMode=props["BillingMode"],
                         AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"])
        ttl = props["TimeToLiveSpecification"]
        ddb.update_time_to_live(TableName=self.table, TimeToLiveSpecification=ttl)
        logs.create_log_group(logGroupName=self.log_group)
        logs.create_log_group(logGroupName=self.report_log_group)
        self.topic_arn = sns.create_topic(Name=f"{STACK}-NoticeTopic")["TopicArn"]
        q = sqs.create_queue(QueueName="notices")["QueueUrl"]
        self.queue_url = q
        qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=qarn,
                      Attributes={"RawMessageDelivery": "false"})
        self.state_machine_arn = sfn.create_state_machine(
            name=self.state_machine_name, definition=self.definition(), type="STANDARD",
            roleArn=logical_arn("RecorderStateMachineRole", "role"))["stateMachineArn"]

    # --- helpers for tests -------------------------------------------------------------
    def create_nat(self, interfaces: int = 1, name: str | None = None) -> dict:
        """A VPC with a public NAT Gateway; `name`: its Name tag."""
        ec2 = self.emu.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        tags = {"TagSpecifications": [{"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": name}]}]} \
            if name else {}
        nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=alloc, **tags)["NatGateway"]
        enis = [a["NetworkInterfaceId"] for a in nat["NatGatewayAddresses"]]
        for _ in range(interfaces - 1):
            # A NAT with several addresses has one interface per address; moto has no
            # AssociateNatGatewayAddress, so the extra interface is added to its record.
            eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
            self._add_nat_interface(nat["NatGatewayId"], eni)
            enis.append(eni)
        return {"id": nat["NatGatewayId"], "vpc": vpc, "subnet": subnet, "interfaces": enis}

    def _add_nat_interface(self, nat_id: str, eni: str):
        from moto.backends import get_backend
        ec2 = get_backend("ec2")[ACCOUNT][REGION]
        nic = ec2.get_network_interface(eni)
        ec2.nat_gateways[nat_id].address_set.append(
            {"networkInterfaceId": eni, "privateIp": nic.private_ip_address, "isPrimary": False})

    def event(self, fixture: str, nat_id: str, **state) -> dict:
        text = (ROOT / "tests" / "fixtures" / fixture).read_text().replace("nat-0123456789abcdef0", nat_id)
        ev = json.loads(text)
        ev["detail"]["state"].update(state)
        return ev

    def start(self, event: dict, name: str) -> str:
        return self.emu.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(event))["executionArn"]

    def wait(self, execution_arn: str, timeout: float = 60) -> dict:
        sfn = self.emu.client("stepfunctions")
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = sfn.describe_execution(executionArn=execution_arn)
            if d["status"] != "RUNNING":
                return d
            time.sleep(0.2)
        raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")

    def wait_for(self, predicate, timeout: float = 30, what: str = "condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"timed out waiting for {what}")

    def wait_parked(self, nat_id: str, timeout: float = 30) -> str:
        """Waits until the recording of `nat_id` has parked its task token; returns it."""
        return self.wait_for(lambda: (self.lock_item(nat_id) or {}).get("token"), timeout, what="token parked")

    def active_flow_logs(self) -> list[dict]:
        return self.emu.client("ec2").describe_flow_logs()["FlowLogs"]

    def lock_item(self, nat_id: str) -> dict | None:
        return self.emu.client("dynamodb").get_item(TableName=self.table, Key={"pk": {"S": nat_id}},
                                                    ConsistentRead=True).get("Item")

    def notices(self) -> list[dict]:
        sqs = self.emu.client("sqs")
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                body = json.loads(m["Body"])
                out.append({"subject": body.get("Subject"), "message": body["Message"]})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def resume(self, event: dict) -> dict:
        """What the resume rule does: EventBridge invokes the resume function with the event."""
        lam = self.emu.client("lambda")
        resp = lam.invoke(FunctionName=self.function_names["ResumeRecordingFunction"], Payload=json.dumps(event))
        body = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError"):
            raise RuntimeError(f"resume failed: {body}")
        return body

    def sweep(self, event: dict | None = None) -> dict:
        """What the schedule does: invoke the sweeper (with `event`: what a rule delivers)."""
        lam = self.emu.client("lambda")
        resp = lam.invoke(FunctionName=self.function_names["SweepOrphansFunction"], Payload=json.dumps(event or {}))
        body = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError"):
            raise RuntimeError(f"sweep failed: {body}")
        return body

    def status_event(self, execution_arn: str) -> dict:
        """The "Step Functions Execution Status Change" event EventBridge sends when an execution ends
        (EventBridge events reference, aws.states): what the sweeper's RecordingEndedAbnormally rule delivers."""
        d = self.emu.client("stepfunctions").describe_execution(executionArn=execution_arn)
        detail = {"executionArn": execution_arn, "stateMachineArn": d["stateMachineArn"], "name": d["name"],
                  "status": d["status"], "startDate": int(d["startDate"].timestamp() * 1000),
                  "stopDate": int(d["stopDate"].timestamp() * 1000) if d.get("stopDate") else None,
                  "input": d.get("input"), "inputDetails": {"included": True}, "output": d.get("output"),
                  "error": d.get("error"), "cause": d.get("cause")}
        return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "source": "aws.states",
                "detail-type": "Step Functions Execution Status Change", "account": ACCOUNT, "region": REGION,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "resources": [execution_arn],
                "detail": detail}

    def history(self, execution_arn: str) -> list[dict]:
        return self.emu.client("stepfunctions").get_execution_history(executionArn=execution_arn,
                                                                      maxResults=1000)["events"]

    def close(self):
        for host in self.hosts.values():
            host.close()
            self.emu.router.functions.pop(host.name, None)
