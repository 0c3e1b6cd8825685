"""Baseline of finish-recording: delete the execution's flow logs (found by tag), release the
lock, read the NAT's bytes, write the notice."""
from datetime import datetime, timedelta, timezone

from common import TABLE, client

ec2, ddb, cw = client("ec2"), client("dynamodb"), client("cloudwatch")


def handler(event, _ctx):
    execution, state = event["execution"], event["state"]
    ids = [f["FlowLogId"] for f in ec2.describe_flow_logs(
        Filters=[{"Name": "tag:natrec:execution", "Values": [execution]}])["FlowLogs"]]
    ids = sorted(set(ids) | set(state.get("flow_log_ids", [])))
    if ids:
        ec2.delete_flow_logs(FlowLogIds=ids)
    try:
        ddb.update_item(TableName=TABLE, Key={"pk": {"S": state["nat_id"]}},
                        UpdateExpression="SET released = :e REMOVE execution, #token, flow_log_ids, expires_at, alarm_at_ms",
                        ConditionExpression="execution = :e", ExpressionAttributeNames={"#token": "token"},
                        ExpressionAttributeValues={":e": {"S": execution}})
        released = True
    except ddb.exceptions.ConditionalCheckFailedException:
        released = False
    end = datetime.now(timezone.utc)
    q = [{"Id": i, "MetricStat": {"Metric": {"Namespace": "AWS/NATGateway", "MetricName": m,
                                             "Dimensions": [{"Name": "NatGatewayId", "Value": state["nat_id"]}]},
                                  "Period": 60, "Stat": "Sum"}, "ReturnData": True}
         for i, m in (("upload", "BytesInFromSource"), ("download", "BytesInFromDestination"))]
    res = cw.get_metric_data(MetricDataQueries=q, StartTime=end - timedelta(minutes=15), EndTime=end)
    total = sum(sum(r["Values"]) for r in res["MetricDataResults"])
    return {"ending": "alarm_ok", "ended_at": end.isoformat(), "deleted_flow_logs": ids, "lock_released": released,
            "subject": f"NAT spike recorded: {state['nat_id']}",
            "message": f"Flow logs were recorded on {state['nat_id']}. NAT traffic: {total:.0f} bytes."}
