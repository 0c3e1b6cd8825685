"""natflow CLI against the emulator's CloudWatch Logs: --streams takes interface IDs.

CloudWatch Logs delivery names a flow log's streams `<interface-id>-all` (TrafficType ALL); the
CLI looks the given IDs up with DescribeLogStreams, counts only those interfaces' records, and a
name that selects no stream is an error listing the streams the group holds (never a 0 B report).
"""
import json
import subprocess
import time

from tests.conftest import TARGET

NAT_A, NAT_B = "eni-0aaaaaaaaaaaaaaa1", "eni-0bbbbbbbbbbbbbbb2"


def row(eni, src, dst, psrc, pdst, nbytes):
    now = int(time.time())
    return (f"9 123456789012 {eni} {src} {dst} 40000 443 6 10 {nbytes} {now - 30} {now} ACCEPT OK "
            f"vpc-x subnet-x use1-az1 ingress 8 {psrc} {pdst} - - 19 IPv4 -")


def test_interface_ids_select_their_streams_and_a_miss_lists_the_streams(emulator):
    emulator.reset()
    logs = emulator.client("logs")
    group = "/natrec/cli-test/flow-logs"
    logs.create_log_group(logGroupName=group)
    now_ms = int(time.time() * 1000)
    for eni, nat_ip, nbytes in ((NAT_A, "10.0.0.10", 1000), (NAT_B, "10.0.1.10", 7000)):
        stream = f"{eni}-all"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        lines = [row(eni, "10.0.2.5", nat_ip, "10.0.2.5", "203.0.113.9", nbytes),
                 row(eni, nat_ip, "203.0.113.9", nat_ip, "203.0.113.9", nbytes)]
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now_ms, "message": m} for m in lines])
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": emulator.endpoint, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    now = int(time.time())

    def natflow(*args):
        return subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", group, "--start",
                               str(now - 600), "--end", str(now + 60), "--no-progress", *args],
                              env=env, capture_output=True, text=True, timeout=60)

    out = natflow("--streams", NAT_A, "--format", "json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["upload_bytes"] == 1000, r
    assert [i["interface_id"] for i in r["interfaces"]] == [NAT_A]

    miss = natflow("--streams", "eni-0ccccccccccccccc3")
    assert miss.returncode == 2, miss.stdout  # a usage error: the option names no stream
    assert "--streams eni-0ccccccccccccccc3 selects no log stream" in miss.stderr
    assert f"{NAT_A}-all, {NAT_B}-all" in miss.stderr

    # Exit statuses against the emulator's CloudWatch Logs: an empty window is nothing to report
    # (1, saying how many events and why there may be none yet); a group that does not exist is an
    # AWS error (3, one line naming the call, the group, the region and what to check).
    empty = subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", group, "--start", str(now - 7200),
                            "--end", str(now - 3600), "--no-progress"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert empty.returncode == 1, empty.stderr
    assert f"no flow-log record in log group {group} (us-east-1): 0 events" in empty.stderr
    gone = subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", "/no/such/group", "--start",
                           str(now - 600), "--end", str(now), "--no-progress"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert gone.returncode == 3, gone.stderr
    assert gone.stderr.startswith("natflow: FilterLogEvents on /no/such/group in us-east-1: the log group does not "
                                  "exist"), gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1, gone.stderr
