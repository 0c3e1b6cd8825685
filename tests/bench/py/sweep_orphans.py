"""Baseline of sweep-orphans: this stack's flow logs and held locks; delete what no running
execution owns, release its lock, notify."""
import os

from common import TABLE, client

ec2, ddb, sfn, sns = client("ec2"), client("dynamodb"), client("stepfunctions"), client("sns")


def handler(event, _ctx):
    flow_logs = ec2.describe_flow_logs(
        Filters=[{"Name": "tag:natrec:stack", "Values": [os.environ["STACK_NAME"]]}])["FlowLogs"]
    locks = ddb.scan(TableName=TABLE, FilterExpression="attribute_exists(execution)")["Items"]
    swept = []
    for execution in {t["Value"] for f in flow_logs for t in f.get("Tags", []) if t["Key"] == "natrec:execution"}:
        try:
            running = sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        except sfn.exceptions.ExecutionDoesNotExist:
            running = False
        if not running:
            ids = [f["FlowLogId"] for f in flow_logs
                   if {"Key": "natrec:execution", "Value": execution} in f.get("Tags", [])]
            ec2.delete_flow_logs(FlowLogIds=ids)
            swept.append(execution)
            sns.publish(TopicArn=os.environ["TOPIC_ARN"], Subject="NAT spike recording ended by the sweeper",
                        Message=f"Deleted {ids}")
    return {"swept": swept, "stale_locks_released": [], "locks": len(locks)}
