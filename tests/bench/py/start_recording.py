"""Baseline of start-recording: describe the NAT, take the lock (GetItem + transaction), find or
create the flow logs, record them, snapshot the VPC's interfaces into the reports log group."""
import hashlib
import json
import os
import time

from common import TABLE, client

ec2, ddb, logs = client("ec2"), client("dynamodb"), client("logs")
FIELDS = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
          "log-status vpc-id subnet-id az-id flow-direction traffic-path pkt-srcaddr pkt-dstaddr pkt-src-aws-service "
          "pkt-dst-aws-service tcp-flags type").split()


def nat_of(event):
    for m in event["detail"]["configuration"]["metrics"]:
        dims = m.get("metricStat", {}).get("metric", {}).get("dimensions", {})
        if "NatGatewayId" in dims:
            return dims["NatGatewayId"]
    raise ValueError("no NAT Gateway in the alarm")


def handler(payload, _ctx):
    event, execution = payload["event"], payload["execution"]
    nat_id = nat_of(event)
    nat = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]
    enis = [a["NetworkInterfaceId"] for a in nat["NatGatewayAddresses"]]
    now = int(time.time())
    ddb.get_item(TableName=TABLE, Key={"pk": {"S": nat_id}}, ConsistentRead=True)
    ddb.transact_write_items(TransactItems=[{"Update": {
        "TableName": TABLE, "Key": {"pk": {"S": nat_id}},
        "UpdateExpression": "SET execution = :e, alarm_at_ms = :a, expires_at = :x REMOVE #token, flow_log_ids",
        "ConditionExpression": "(attribute_not_exists(execution) OR execution = :e OR expires_at < :now)",
        "ExpressionAttributeNames": {"#token": "token"},
        "ExpressionAttributeValues": {":e": {"S": execution}, ":a": {"N": str(now * 1000)},
                                      ":x": {"N": str(now + 4500)}, ":now": {"N": str(now)}}}}])
    tags = [{"Key": "natrec:stack", "Value": os.environ["STACK_NAME"]}, {"Key": "natrec:nat-gateway", "Value": nat_id},
            {"Key": "natrec:execution", "Value": execution}]
    found = ec2.describe_flow_logs(Filters=[{"Name": "tag:natrec:execution", "Values": [execution]}])["FlowLogs"]
    ids = [f["FlowLogId"] for f in found]
    if not ids:
        out = ec2.create_flow_logs(
            ResourceIds=enis, ResourceType="NetworkInterface", TrafficType="ALL",
            LogDestinationType="cloud-watch-logs", LogGroupName=os.environ["FLOW_LOG_GROUP"],
            DeliverLogsPermissionArn=os.environ["FLOW_LOG_ROLE_ARN"], MaxAggregationInterval=60,
            LogFormat=" ".join("${%s}" % f for f in FIELDS),
            ClientToken=hashlib.sha256(execution.encode()).hexdigest()[:32],
            TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": tags}])
        if out.get("Unsuccessful"):
            raise RuntimeError(f"CreateFlowLogs: {out['Unsuccessful']}")
        ids = out["FlowLogIds"]
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": nat_id}}, "UpdateExpression": "SET flow_log_ids = :ids",
                    "ConditionExpression": "execution = :e AND attribute_not_exists(flow_log_ids)",
                    "ExpressionAttributeValues": {":ids": {"L": [{"S": i} for i in ids]}, ":e": {"S": execution}}}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": f"count#{nat_id}"}}, "UpdateExpression": "ADD started :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    interfaces = []
    for page in ec2.get_paginator("describe_network_interfaces").paginate(
            Filters=[{"Name": "vpc-id", "Values": [nat["VpcId"]]}]):
        for n in page["NetworkInterfaces"]:
            interfaces.append(json.dumps({"interface_id": n["NetworkInterfaceId"],
                                          "private_ips": [p["PrivateIpAddress"] for p in n.get("PrivateIpAddresses", [])],
                                          "subnet_id": n.get("SubnetId"), "availability_zone": n.get("AvailabilityZone"),
                                          "interface_type": n.get("InterfaceType"), "description": n.get("Description"),
                                          "tags": {t["Key"]: t["Value"] for t in n.get("TagSet", [])}}))
    stream = execution.split(":")[-1] + "/inventory"
    try:
        logs.create_log_stream(logGroupName=os.environ["REPORT_LOG_GROUP"], logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=os.environ["REPORT_LOG_GROUP"], logStreamName=stream,
                        logEvents=[{"timestamp": now * 1000, "message": m} for m in interfaces])
    return {"status": "recording", "nat_id": nat_id, "execution": execution, "vpc_id": nat["VpcId"],
            "interfaces": enis, "flow_log_ids": ids, "recording_time": int(os.environ["RECORDING_TIME"]),
            "report_delay": int(os.environ["REPORT_DELAY"])}
