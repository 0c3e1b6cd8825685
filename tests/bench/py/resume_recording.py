"""Baseline of resume-recording: record the stop signal; deliver it to a parked token."""
from datetime import datetime

from common import TABLE, client

ddb, sfn = client("dynamodb"), client("stepfunctions")


def handler(event, _ctx):
    nat_id = next(m["metricStat"]["metric"]["dimensions"]["NatGatewayId"]
                  for m in event["detail"]["configuration"]["metrics"] if "metricStat" in m)
    ts = event["detail"]["state"]["timestamp"]
    at_ms = int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)
    reason = "alarm_ok" if event["detail"]["state"]["value"] == "OK" else "alarm_insufficient_data"
    try:
        out = ddb.update_item(
            TableName=TABLE, Key={"pk": {"S": nat_id}},
            UpdateExpression="SET last_stop_at_ms = :t, last_stop_reason = :r",
            ConditionExpression="attribute_not_exists(last_stop_at_ms) OR last_stop_at_ms < :t",
            ExpressionAttributeValues={":t": {"N": str(at_ms)}, ":r": {"S": reason}}, ReturnValues="ALL_NEW")
    except ddb.exceptions.ConditionalCheckFailedException:
        return {"result": "nothing_recording", "nat_id": nat_id}
    token = out["Attributes"].get("token", {}).get("S")
    if not token:
        return {"result": "nothing_recording", "nat_id": nat_id}
    sfn.send_task_success(taskToken=token, output='{"reason":"%s"}' % reason)
    return {"result": "stopped", "nat_id": nat_id}
