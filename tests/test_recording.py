"""The whole recording, in the emulator: moto runs the real ASL, its Lambda tasks reach the
real Rust binaries. Each test asserts the emulator's state afterwards."""
import json

import pytest


def ended(rec, arn, timeout=60):
    d = rec.wait(arn, timeout)
    return d["status"], d


def test_ok_path_records_every_interface_then_cleans_up_and_notifies(recorder):
    nat = recorder.create_nat()
    arn = recorder.start(recorder.event("alarm-math-alarm.json", nat["id"]), "ok-path")
    logs = recorder.wait_for(lambda: recorder.active_flow_logs(), what="flow logs created")
    assert [f["ResourceId"] for f in logs] == nat["interfaces"]
    fl = logs[0]
    assert fl["LogGroupName"] == recorder.log_group
    assert fl["MaxAggregationInterval"] == 60
    assert "${pkt-dst-aws-service}" in fl["LogFormat"]
    tags = {t["Key"]: t["Value"] for t in fl["Tags"]}
    assert tags["natrec:execution"] == arn and tags["natrec:nat-gateway"] == nat["id"]
    recorder.wait_for(lambda: (recorder.lock_item(nat["id"]) or {}).get("token"), what="token parked")

    out = recorder.resume(recorder.event("alarm-math-ok.json", nat["id"]))
    assert out == {"result": "stopped", "nat_id": nat["id"]}
    status, _ = ended(recorder, arn)
    assert status == "SUCCEEDED"
    assert recorder.active_flow_logs() == []
    item = recorder.lock_item(nat["id"])
    assert "execution" not in item and "token" not in item and "expires_at" not in item
    [notice] = recorder.notices()
    assert notice["subject"].startswith(f"NAT spike recorded: {nat['id']}")
    assert "alarm returned to OK" in notice["message"]
    assert nat["interfaces"][0] in notice["message"]
    assert "region=us-east-1" in notice["message"]
