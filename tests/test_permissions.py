"""Least privilege, checked against what the functions really call: every AWS call the real
binaries make in the emulator is recorded with its caller (the SDK's app id), then compared
with the IAM statements of template.yaml, both ways: nothing called is missing, nothing
granted goes unused."""
import time

import pytest

from tests.harness.router import Fault

# Permissions an API call needs beyond its own action.
IMPLIED = {"ec2:CreateFlowLogs": {"iam:PassRole", "ec2:CreateTags"}}


def granted(template) -> dict[str, set[str]]:
    out = {}
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function" or logical_id not in (
                "StartRecordingFunction", "ParkTokenFunction", "ResumeRecordingFunction", "FinishRecordingFunction",
                "SweepOrphansFunction", "BuildReportFunction"):
            continue
        actions = set()
        for policy in res["Properties"].get("Policies", []):
            assert isinstance(policy, dict) and "Statement" in policy, f"{logical_id}: inline statements only"
            for st in policy["Statement"]:
                acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                actions.update(acts)
        out[logical_id] = actions
    return out


def source_behind_a_transit_gateway(recorder, nat) -> str:
    """A flow from an address no inventory snapshot names, in a VPC behind a transit gateway: the
    report looks it up (DescribeNetworkInterfaces by address), then names it by the networks this
    account sees (DescribeVpcs, DescribeSubnets, DescribeVpcPeeringConnections,
    DescribeTransitGatewayAttachments, SearchTransitGatewayRoutes). Returns the spoke VPC."""
    from tests.test_report import deliver, flow
    ec2 = recorder.emu.client("ec2")
    tgw = ec2.create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
    spoke = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=spoke, CidrBlock="10.50.0.0/24")["Subnet"]["SubnetId"]
    att = ec2.create_transit_gateway_vpc_attachment(TransitGatewayId=tgw, VpcId=spoke, SubnetIds=[subnet])[
        "TransitGatewayVpcAttachment"]["TransitGatewayAttachmentId"]
    rt = ec2.create_transit_gateway_route_table(TransitGatewayId=tgw)["TransitGatewayRouteTable"][
        "TransitGatewayRouteTableId"]
    ec2.associate_transit_gateway_route_table(TransitGatewayRouteTableId=rt, TransitGatewayAttachmentId=att)
    ec2.create_transit_gateway_route(DestinationCidrBlock="10.50.0.0/16", TransitGatewayRouteTableId=rt,
                                     TransitGatewayAttachmentId=att)
    eni = nat["interfaces"][0]
    nat_ip = ec2.describe_nat_gateways(NatGatewayIds=[nat["id"]])["NatGateways"][0]["NatGatewayAddresses"][0][
        "PrivateIp"]
    deliver(recorder, f"{eni}-all", flow(eni, nat_ip, "10.50.0.77", "203.0.113.9", 1_000_000, 100_000))
    return spoke


def exercise(recorder):
    """Every path a function can take: OK, early OK, limit, missing NAT, a report whose query
    cannot be read, a source no snapshot names."""
    recorder.hosts["StartRecordingFunction"].restart(NUM_OF_RECORDINGS="2")
    # The first report cannot read its Logs Insights query: it stops the query and reads the
    # records one by one (StopQuery, FilterLogEvents); the later reports count with Insights.
    recorder.emu.router.faults.append(Fault("GetQueryResults", 403, "AccessDeniedException", times=1,
                                            caller="BuildReportFunction"))
    nat = recorder.create_nat()
    first = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "perm-ok")
    recorder.wait_parked(nat["id"])
    spoke = source_behind_a_transit_gateway(recorder, nat)
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    recorder.wait(first)
    # The EC2 adapter read moto's answers: the source is named by its VPC (its subnet's CIDR and
    # owner). The transit gateway's route is not shown: in moto the route table has lost its
    # routes by then (README "Emulator gaps"); the unit tests name it.
    notices = [n["message"] for n in recorder.notices()]
    talker = [line for m in notices for line in m.splitlines() if "(10.50.0.77) -> 203.0.113.9" in line]
    assert talker and f"address in VPC {spoke} 10.50.0.0/24, account 123456789012, subnet " in talker[0], notices
    park = recorder.function_names["ParkTokenFunction"]
    fault = Fault(f"Invoke:{park}", 3, "Slow")  # held back: the OK arrives before the token
    recorder.emu.router.faults.append(fault)
    second = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"], timestamp="2026-11-25T10:00:00.000+0000"),
                            "perm-early")
    recorder.wait_for(lambda: fault.injected, what="park throttled")
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"], timestamp="2026-11-25T10:00:05.000+0000"))
    recorder.wait(second)
    recorder.wait(recorder.start(recorder.event("alarm-math-alarm.json", nat["id"], timestamp="2026-11-25T11:00:00.000+0000"),
                                 "perm-limit"))
    recorder.wait(recorder.start(recorder.event("alarm-math-alarm.json", "nat-0fedcba9876543210"), "perm-missing"))
    recorder.hosts["StartRecordingFunction"].restart(NUM_OF_RECORDINGS="0")
    left = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"], timestamp="2026-11-25T12:00:00.000+0000"),
                          "perm-left-behind")
    recorder.wait_parked(nat["id"])
    finish = recorder.function_names["FinishRecordingFunction"]
    recorder.emu.router.faults.append(Fault(f"Invoke:{finish}", 403, "AccessDeniedException"))
    recorder.resume(recorder.event("alarm-math-ok.json", nat["id"], timestamp="2026-11-25T12:00:05.000+0000"))
    recorder.wait(left)
    # A report query `left` had in its ledger when it ended (what a report stopped by hand in its
    # WaitForQueries loop leaves: tests/test_recording.py runs that path whole): the sweeper stops
    # it and takes it out of the ledger (StopQuery, UpdateItem).
    query = recorder.emu.client("logs").start_query(
        logGroupName=recorder.log_group, startTime=0, endTime=60, queryString="fields @message")["queryId"]
    recorder.emu.client("dynamodb").put_item(TableName=recorder.table, Item={
        "pk": {"S": f"queries#{left}"}, "query_execution": {"S": left}, "query_ids": {"SS": [query]},
        "expires_at": {"N": str(int(time.time()) + 7200)}})
    recorder.sweep()
    # The execution status change rule: `left` ended FAILED (its cleanup was denied); the sweeper
    # reads its history to know whether it sent its notice.
    recorder.sweep(recorder.status_event(left))


def test_each_function_is_granted_exactly_what_it_calls(recorder, template):
    recorder.emu.router.callers.clear()
    exercise(recorder)
    called: dict[str, set[str]] = {}
    for caller, action in recorder.emu.router.callers:
        called.setdefault(caller, set()).add(action)
        called[caller] |= IMPLIED.get(action, set())
    grants = granted(template)
    assert set(called) == set(grants), "every function made calls"
    for fn, actions in grants.items():
        assert called[fn] - actions == set(), f"{fn} calls actions it is not granted"
        assert actions - called[fn] == set(), f"{fn} is granted actions it never calls"


NARROWABLE = {"ec2:CreateFlowLogs", "ec2:DeleteFlowLogs", "ec2:CreateTags", "iam:PassRole", "dynamodb:GetItem",
              "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "states:SendTaskSuccess",
              "logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"}


def test_no_wildcard_resource_where_the_api_allows_a_narrower_one(template):
    for fn, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy.get("Statement", []):
                acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                if "*" in resources:
                    assert not set(acts) & NARROWABLE, f"{fn}: {acts} on '*'"
