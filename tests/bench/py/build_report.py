"""Baseline of build-report: read the records (FilterLogEvents), count each NAT flow once per
(source, destination), read the NAT's bytes, store the JSON report, return the notice."""
import json
import os
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from common import client

logs, cw = client("logs"), client("cloudwatch")


def handler(event, _ctx):
    state, execution = event["state"], event["execution"]
    name = execution.split(":")[-1]
    inv = state.get("inventory") or {}
    if inv.get("stream"):
        logs.get_log_events(logGroupName=os.environ["REPORT_LOG_GROUP"], logStreamName=inv["stream"], startFromHead=True)
    talkers = defaultdict(lambda: [0, 0])
    now_ms = int(time.time() * 1000)
    started = int(datetime.fromisoformat(state["started_at"].replace("Z", "+00:00")).timestamp())
    ended = int(datetime.fromisoformat(state["finished"]["ended_at"].replace("Z", "+00:00")).timestamp())
    # The whole group in the window, this NAT's interfaces only (as the Rust function does).
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=os.environ["FLOW_LOG_GROUP"], startTime=(started - 120) * 1000, endTime=(ended + 120) * 1000)
    mine = set(state["interfaces"])
    for page in pages:
        for e in page["events"]:
            f = e["message"].split(" ")
            if len(f) != 25 or f[2] not in mine or f[13] != "OK" or f[12] != "ACCEPT":
                continue
            src, dst, psrc, pdst = f[3], f[4], f[19], f[20]
            if dst != pdst:
                talkers[(psrc, pdst)][0] += int(f[9])
            elif src != psrc:
                talkers[(pdst, psrc)][1] += int(f[9])
    top = sorted(talkers.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:10]
    end = datetime.now(timezone.utc)
    q = [{"Id": i, "MetricStat": {"Metric": {"Namespace": "AWS/NATGateway", "MetricName": m,
                                             "Dimensions": [{"Name": "NatGatewayId", "Value": state["nat_id"]}]},
                                  "Period": 60, "Stat": "Sum"}, "ReturnData": True}
         for i, m in (("upload", "BytesInFromSource"), ("download", "BytesInFromDestination"))]
    cw.get_metric_data(MetricDataQueries=q, StartTime=end - timedelta(minutes=15), EndTime=end)
    report = {"talkers": [{"source": s, "destination": d, "upload": u, "download": dn} for (s, d), (u, dn) in top]}
    stream = f"{name}/report"
    try:
        logs.create_log_stream(logGroupName=os.environ["REPORT_LOG_GROUP"], logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=os.environ["REPORT_LOG_GROUP"], logStreamName=stream,
                        logEvents=[{"timestamp": now_ms, "message": json.dumps(report)}])
    text = "\n".join(f"{s} -> {d}: {u + dn} bytes" for (s, d), (u, dn) in top)
    return {"subject": state["finished"]["subject"], "message": text + "\n\n" + state["finished"]["message"],
            "report_stream": stream, "truncated": False}
