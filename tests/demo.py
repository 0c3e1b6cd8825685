#!/usr/bin/env python3
"""Plays one whole recording offline: moto runs the real state machine, whose Lambda tasks are
the real Rust binaries. ALARM -> flow logs exist -> traffic is recorded -> OK -> flow logs gone ->
the notice says who caused the spike.

The emulator delivers no flow-log records, so the demo writes what AWS would deliver for the
traffic it stages: a VPC with a Lambda function, a build instance and an ECS task in another AZ
sending bytes through a NAT Gateway (its records are in the recorder's format, as the NAT's
interfaces log each flow: see `nat_flow`).

Run with `make demo` (installs the venv and builds the functions first). The emulator's HTTP log
and each function's output go to files in --logs (default target/demo), named at the end."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.stack import ACCOUNT, ROOT, Emulator, Recorder, load_template  # noqa: E402

T0 = time.time()
NAT_NAME = "prod-egress-a"
LAMBDA_FUNCTION = "thumbnailer"
# The Lambda service names its ENIs "AWS Lambda VPC ENI-<function>-<uuid>" (natflow's inventory
# reads the function name from it).
LAMBDA_DESC = f"AWS Lambda VPC ENI-{LAMBDA_FUNCTION}-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"
# ECS names a task's awsvpc ENI by its attachment ARN.
ECS_DESC = f"arn:aws:ecs:us-east-1:{ACCOUNT}:attachment/5e6f7a8b-1111-2222-3333-0123456789ab"
S3_IP, DYNAMODB_IP = "52.216.8.9", "3.218.182.10"  # in S3's and DynamoDB's us-east-1 ranges (ip-ranges.json)
REGISTRY_IP, PROBE_IP = "203.0.113.40", "198.51.100.77"  # documentation addresses: a package mirror, a scanner
GB, MB = 1_000_000_000, 1_000_000


def say(what: str):
    print(f"[{time.time() - T0:5.1f}s] {what}", flush=True)


def vpc_sources(ec2, nat: dict) -> dict:
    """What sends traffic through the NAT, as the start step's inventory snapshot will see it: a
    Lambda ENI and an instance in a private subnet of the NAT's AZ, an ECS task in another AZ."""
    nat_az = ec2.describe_subnets(SubnetIds=[nat["subnet"]])["Subnets"][0]["AvailabilityZone"]
    other_az = "us-east-1b" if nat_az != "us-east-1b" else "us-east-1c"
    private = ec2.create_subnet(VpcId=nat["vpc"], CidrBlock="10.0.1.0/24", AvailabilityZone=nat_az)["Subnet"]
    remote = ec2.create_subnet(VpcId=nat["vpc"], CidrBlock="10.0.2.0/24", AvailabilityZone=other_az)["Subnet"]
    lam = ec2.create_network_interface(SubnetId=private["SubnetId"], Description=LAMBDA_DESC)["NetworkInterface"]
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="c6i.large",
                             SubnetId=private["SubnetId"],
                             TagSpecifications=[{"ResourceType": "instance",
                                                 "Tags": [{"Key": "Name", "Value": "build-runner"}]}])["Instances"][0]
    runner = inst["NetworkInterfaces"][0]
    # RunInstances can tag the ENI too (TagSpecifications, ResourceType network-interface); moto
    # ignores that, so the ENI is tagged after.
    ec2.create_tags(Resources=[runner["NetworkInterfaceId"]], Tags=[{"Key": "Name", "Value": "build-runner"}])
    task = ec2.create_network_interface(
        SubnetId=remote["SubnetId"], Description=ECS_DESC,
        TagSpecifications=[{"ResourceType": "network-interface",
                            "Tags": [{"Key": "aws:ecs:serviceName", "Value": "ingest"},
                                     {"Key": "aws:ecs:clusterName", "Value": "prod"}]}])["NetworkInterface"]
    nat_ips = {n["NetworkInterfaceId"]: n["PrivateIpAddress"] for n in ec2.describe_network_interfaces(
        NetworkInterfaceIds=nat["interfaces"])["NetworkInterfaces"]}
    subnet = ec2.describe_subnets(SubnetIds=[nat["subnet"]])["Subnets"][0]
    return {"lambda": lam["PrivateIpAddress"], "runner": runner["PrivateIpAddress"],
            "runner_id": inst["InstanceId"], "task": task["PrivateIpAddress"], "task_id": task["NetworkInterfaceId"],
            "nat_ips": nat_ips, "nat_az": nat_az, "other_az": other_az,
            "az_id": subnet.get("AvailabilityZoneId") or "use1-az1"}


def record(nat: dict, src: dict, eni: str, srcaddr, dstaddr, sport, dport, nbytes, pkt_src, pkt_dst, direction,
           path="-", src_svc="-", dst_svc="-", action="ACCEPT", status="OK", flags=19, window=(0, 0)) -> str:
    """One flow-log record in the recorder's format (natflow format.rs RECORDER_FIELDS, version 9)."""
    start, end = window
    packets = max(1, nbytes // 1400)
    return (f"9 {ACCOUNT} {eni} {srcaddr} {dstaddr} {sport} {dport} 6 {packets} {nbytes} {start} {end} {action} "
            f"{status} {nat['vpc']} {nat['subnet']} {src['az_id']} {direction} {path} {pkt_src} {pkt_dst} {src_svc} "
            f"{dst_svc} {flags} IPv4 -")


def nat_flow(nat, src, eni, local, remote, up, down, service="-", sport=40000, dport=443, window=(0, 0)) -> list[str]:
    """One TCP flow through a NAT Gateway as its interface logs it (VPC user guide, "Flow log record
    examples", NAT gateway traffic; https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html):
    the inside row (srcaddr the source, dstaddr the NAT's private IP, pkt-dstaddr the remote host),
    the outside row (NAT IP -> remote, packet addresses the same), and the same two for the reply
    (remote -> NAT IP; NAT IP -> source with pkt-srcaddr the remote host). natflow counts each
    direction once, from the row whose packet address differs from the interface address."""
    nat_ip = src["nat_ips"][eni]
    r = lambda *a, **k: record(nat, src, eni, *a, window=window, **k)  # noqa: E731
    return [r(local, nat_ip, sport, dport, up, local, remote, "ingress", dst_svc=service),
            r(nat_ip, remote, sport, dport, up, nat_ip, remote, "egress", path=8, dst_svc=service),
            r(remote, nat_ip, dport, sport, down, remote, nat_ip, "ingress", src_svc=service),
            r(nat_ip, local, dport, sport, down, remote, local, "egress", path=1, src_svc=service)]


def staged_traffic(nat: dict, src: dict, start: int, end: int) -> dict[str, list[str]]:
    """About 4.5 GB (minutes of a real spike, played within the recording's seconds), per NAT
    interface: the thumbnailer writing to S3 (no gateway endpoint in this VPC) dominates; the build
    runner pulls packages; the ECS task in another AZ talks to DynamoDB through the NAT's second
    interface; a rejected probe and an interval without traffic."""
    a, b = nat["interfaces"][0], nat["interfaces"][-1]
    w = (start, end)
    rows_a: list[str] = []
    for i in range(6):  # six connections of the thumbnailer
        rows_a += nat_flow(nat, src, a, src["lambda"], S3_IP, 500 * MB, 25 * MB, "S3", sport=41000 + i, window=w)
    rows_a += nat_flow(nat, src, a, src["runner"], REGISTRY_IP, 18 * MB, 660 * MB, sport=52000, window=w)
    rows_a += nat_flow(nat, src, a, src["runner"], REGISTRY_IP, 2 * MB, 40 * MB, sport=52001, window=w)
    rows_a.append(record(nat, src, a, PROBE_IP, src["nat_ips"][a], 51515, 22, 60, PROBE_IP, src["nat_ips"][a],
                         "ingress", action="REJECT", flags=2, window=w))
    rows_b = nat_flow(nat, src, b, src["task"], DYNAMODB_IP, 210 * MB, 180 * MB, "DYNAMODB", sport=33000, window=w)
    rows_b += nat_flow(nat, src, b, src["task"], DYNAMODB_IP, 60 * MB, 50 * MB, "DYNAMODB", sport=33001, window=w)
    rows_b.append(f"9 {ACCOUNT} {b} - - - - - - - {start} {end} - NODATA {nat['vpc']} {nat['subnet']} "
                  f"{src['az_id']} - - - - - - - - -")
    return {a: rows_a, b: rows_b}


def bytes_of(rows: dict[str, list[str]]) -> tuple[int, int]:
    """Upload and download bytes of the staged records (what the NAT's CloudWatch metrics count)."""
    up = down = 0
    for lines in rows.values():
        for line in lines:
            f = line.split()
            if f[13] != "OK" or f[12] != "ACCEPT":
                continue
            if f[4] != f[20]:
                up += int(f[9])
            elif f[3] != f[19]:
                down += int(f[9])
    return up, down


def deliver(rec: Recorder, rows: dict[str, list[str]]):
    """What the flow-log service does: one stream per interface, "<eni>-all", in the flow-log group."""
    logs = rec.emu.client("logs")
    now = int(time.time() * 1000)
    for eni, lines in rows.items():
        stream = f"{eni}-all"
        logs.create_log_stream(logGroupName=rec.log_group, logStreamName=stream)
        logs.put_log_events(logGroupName=rec.log_group, logStreamName=stream,
                            logEvents=[{"timestamp": now, "message": m} for m in lines])


def nat_metrics(rec: Recorder, nat_id: str, upload: int, download: int):
    """The NAT's CloudWatch metrics for the same minutes (a little more than the flow logs hold:
    flows outside the capture window)."""
    cw = rec.emu.client("cloudwatch")
    now = datetime.now(timezone.utc)
    for metric, value in (("BytesInFromSource", upload), ("BytesInFromDestination", download)):
        cw.put_metric_data(Namespace="AWS/NATGateway", MetricData=[{
            "MetricName": metric, "Dimensions": [{"Name": "NatGatewayId", "Value": nat_id}],
            "Timestamp": now, "Value": value, "Unit": "Bytes"}])


def top_talker(rec: Recorder, execution_arn: str) -> str | None:
    """The label of the top talker in the JSON report stored next to the recording."""
    stream = execution_arn.split(":")[-1] + "/report"
    try:
        events = rec.emu.client("logs").get_log_events(logGroupName=rec.report_log_group, logStreamName=stream,
                                                        startFromHead=True)["events"]
        talkers = json.loads(events[-1]["message"]).get("talkers") or [{}]
        return talkers[0].get("source", {}).get("label")
    except Exception as e:  # noqa: BLE001 (reported as the failure it is)
        say(f"no JSON report: {e}")
        return None


def human(n: int) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.0f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logs", type=Path, default=ROOT / "target" / "demo",
                    help="directory for the emulator's log and the functions' output (emptied first)")
    ap.add_argument("--bin-dir", type=Path,
                    default=Path(os.environ.get("NATREC_BIN_DIR", ROOT / "target" / "debug")),
                    help="the functions' binaries (cargo build --workspace)")
    args = ap.parse_args()
    logs = args.logs.resolve()
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    emulator_log = logs / "emulator.log"
    emu = rec = None
    ok = False
    try:
        say("starting the emulator (moto) and the invoke router")
        emu = Emulator(logs, log_file=emulator_log)
        rec = Recorder(emu, load_template(), args.bin_dir)
        rec.deploy()
        say(f"deployed the recorder from template.yaml (state machine {rec.state_machine_name})")
        nat = rec.create_nat(interfaces=2, name=NAT_NAME)
        ec2 = emu.client("ec2")
        src = vpc_sources(ec2, nat)
        say(f"VPC {nat['vpc']}: NAT Gateway {nat['id']} ({NAT_NAME}, {src['nat_az']}, 2 interfaces); "
            f"Lambda {LAMBDA_FUNCTION} and EC2 build-runner in {src['nat_az']}, ECS task ingest in {src['other_az']}")

        alarm = rec.event("alarm-math-alarm.json", nat["id"])
        say(f"alarm {alarm['detail']['alarmName']} -> ALARM; EventBridge starts the state machine")
        arn = rec.start(alarm, f"demo-{int(T0)}")
        started = int(time.time())
        flow_logs = rec.wait_for(lambda: len(rec.active_flow_logs()) == 2 and rec.active_flow_logs(), what="flow logs")
        say(f"  flow logs {', '.join(fl['FlowLogId'] for fl in flow_logs)} on the NAT's interfaces "
            f"-> {rec.log_group}")
        rec.wait_parked(nat["id"])
        say("  inventory snapshot taken; task token parked; recording until the alarm returns to OK")

        time.sleep(1)
        rows = staged_traffic(nat, src, started, int(time.time()))
        deliver(rec, rows)
        up, down = bytes_of(rows)
        nat_metrics(rec, nat["id"], int(up * 1.03), int(down * 1.03))
        say(f"  the flow logs deliver {sum(map(len, rows.values()))} records ({human(up + down)} through the NAT) "
            f"to streams {', '.join(f'{e}-all' for e in rows)}")

        say("alarm -> OK; the resume rule invokes the resume function")
        rec.resume(rec.event("alarm-math-ok.json", nat["id"]))
        done = rec.wait(arn)
        say(f"execution {done['status']}; flow logs still active: {len(rec.active_flow_logs())}")
        notices = rec.notices()
        for n in notices:
            say("notice sent to the email subscription:")
            print(f"\n  Subject: {n['subject']}\n")
            print("\n".join("  " + line for line in n["message"].splitlines()))
            print()
        # The check that makes the demo fail: the notice names the report's top talker, and that is
        # the staged dominant source.
        top = top_talker(rec, arn)
        named = (top or "").startswith(f"Lambda {LAMBDA_FUNCTION}") and len(notices) == 1 and top in notices[0]["message"]
        ok = done["status"] == "SUCCEEDED" and not rec.active_flow_logs() and named
        if not named:
            say(f"FAILED: the notice does not name the top talker Lambda {LAMBDA_FUNCTION} "
                f"(report's top talker: {top}; {len(notices)} notices)")
        return 0 if ok else 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        if rec:
            rec.close()
        if emu:
            emu.close()
        say(f"{'demo finished' if ok else 'demo FAILED'}; emulator log: {emulator_log}; "
            f"functions' output: {logs}/*.log")


if __name__ == "__main__":
    sys.exit(main())
