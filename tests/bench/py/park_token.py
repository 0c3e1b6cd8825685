"""Baseline of park-token: store the task token if this execution holds the lock."""
from common import TABLE, client

ddb, sfn = client("dynamodb"), client("stepfunctions")


def handler(event, _ctx):
    out = ddb.update_item(
        TableName=TABLE, Key={"pk": {"S": event["nat_id"]}}, UpdateExpression="SET #token = :t",
        ConditionExpression="execution = :e", ExpressionAttributeNames={"#token": "token"},
        ExpressionAttributeValues={":t": {"S": event["token"]}, ":e": {"S": event["execution"]}}, ReturnValues="ALL_NEW")
    item = out["Attributes"]
    if "last_stop_at_ms" in item and int(item["last_stop_at_ms"]["N"]) > int(item.get("alarm_at_ms", {"N": "0"})["N"]):
        sfn.send_task_success(taskToken=event["token"], output='{"reason":"alarm_ok"}')
        return {"parked": "stop_already_requested"}
    return {"parked": "waiting"}
