"""The report in the notice, end to end in the emulator: inventory snapshot at the start,
records written into the flow-log group (the emulator delivers none), the report step after
the delivery wait, the JSON report stored next to the recording."""
import json
import shlex
import time
from datetime import datetime, timezone

import jmespath

from tests.harness.router import Fault
from tests.test_cli_schema import validate_report

S3_IP, WEB_IP = "52.216.8.9", "203.0.113.9"
LAMBDA_DESC = "AWS Lambda VPC ENI-thumbnailer-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"


def vpc_talkers(rec, nat):
    """A Lambda ENI in the NAT's AZ and a tagged interface in another AZ."""
    ec2 = rec.emu.client("ec2")
    nat_subnet = ec2.describe_subnets(SubnetIds=[nat["subnet"]])["Subnets"][0]
    other_az = "us-east-1b" if nat_subnet["AvailabilityZone"] != "us-east-1b" else "us-east-1c"
    other = ec2.create_subnet(VpcId=nat["vpc"], CidrBlock="10.0.5.0/24", AvailabilityZone=other_az)["Subnet"]
    lam = ec2.create_network_interface(SubnetId=nat["subnet"], Description=LAMBDA_DESC)["NetworkInterface"]
    batch = ec2.create_network_interface(
        SubnetId=other["SubnetId"], Description="batch",
        TagSpecifications=[{"ResourceType": "network-interface",
                            "Tags": [{"Key": "Name", "Value": "batch-worker"}]}])["NetworkInterface"]
    nat_ip = ec2.describe_nat_gateways(NatGatewayIds=[nat["id"]])["NatGateways"][0]["NatGatewayAddresses"][0]["PrivateIp"]
    return lam, batch, nat_ip, nat_subnet["AvailabilityZone"], other_az


def row(eni, src, dst, psrc, pdst, nbytes, src_svc="-", dst_svc="-", action="ACCEPT", status="OK"):
    now = int(time.time())
    return (f"5 123456789012 {eni} {src} {dst} 40000 443 6 100 {nbytes} {now - 30} {now} {action} {status} "
            f"vpc-x subnet-x use1-az1 ingress 8 {psrc} {pdst} {src_svc} {dst_svc} 19 IPv4")


def flow(eni, nat_ip, local, remote, up, down, svc="-"):
    """A flow through the NAT as its interface logs it: two translated rows, two NAT halves."""
    return [row(eni, local, nat_ip, local, remote, up, dst_svc=svc),
            row(eni, nat_ip, remote, nat_ip, remote, up, dst_svc=svc),
            row(eni, remote, nat_ip, remote, nat_ip, down, src_svc=svc),
            row(eni, nat_ip, local, remote, local, down, src_svc=svc)]


def deliver(rec, stream, lines):
    logs = rec.emu.client("logs")
    logs.create_log_stream(logGroupName=rec.log_group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=rec.log_group, logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": m} for m in lines])


def nat_metrics(rec, nat_id, upload, download):
    cw = rec.emu.client("cloudwatch")
    now = datetime.now(timezone.utc)
    for metric, value in (("BytesInFromSource", upload), ("BytesInFromDestination", download)):
        cw.put_metric_data(Namespace="AWS/NATGateway", MetricData=[{
            "MetricName": metric, "Dimensions": [{"Name": "NatGatewayId", "Value": nat_id}],
            "Timestamp": now, "Value": value, "Unit": "Bytes"}])


def record_spike(rec, name):
    nat = rec.create_nat(name="prod-egress-a")
    lam, batch, nat_ip, nat_az, other_az = vpc_talkers(rec, nat)
    arn = rec.start(rec.event("alarm-math-alarm.json", nat["id"]), name)
    rec.wait_parked(nat["id"])
    eni = nat["interfaces"][0]
    lines = (flow(eni, nat_ip, lam["PrivateIpAddress"], S3_IP, 3_000_000, 200_000, svc="S3")
             + flow(eni, nat_ip, batch["PrivateIpAddress"], WEB_IP, 1_000_000, 300_000)
             + [row(eni, "-", "-", "-", "-", "-", status="NODATA").replace(" - - ", " - - ", 1),
                "garbage that is not a record"])
    # Streams as the service names them, and another NAT's recording in the same group.
    deliver(rec, f"{eni}-all", lines)
    deliver(rec, "eni-0ddddddddddddddd4-all",
            flow("eni-0ddddddddddddddd4", "10.9.0.10", "10.9.1.5", WEB_IP, 9_000_000, 9_000_000))
    nat_metrics(rec, nat["id"], 4_400_000, 600_000)
    rec.resume(rec.event("alarm-math-ok.json", nat["id"]))
    return nat, arn, lam, batch, nat_az, other_az


def report_json(rec, arn):
    stream = arn.split(":")[-1] + "/report"
    events = rec.emu.client("logs").get_log_events(logGroupName=rec.report_log_group, logStreamName=stream,
                                                    startFromHead=True)["events"]
    return json.loads(events[-1]["message"])


def test_notice_says_who_caused_the_spike_and_the_json_report_is_stored(recorder):
    nat, arn, lam, batch, nat_az, other_az = record_spike(recorder, "report-path")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    [notice] = recorder.notices()
    m = notice["message"]
    # The answer in the subject: the NAT by its Name tag (DescribeNatGateways' Tags), the bytes,
    # the top talker with its share.
    assert notice["subject"] == "NAT spike on prod-egress-a: 4.5 MB, 71% Lambda thumbnailer -> S3"
    assert m.startswith(f"Who caused the spike on prod-egress-a ({nat['id']}):")
    # "What to do next" closes the report, with the deployed threshold (template env vars).
    next_steps = m[m.index("What to do next:"):m.index("-" * 70)]
    assert (f"--vpc-id {nat['vpc']} --service-name com.amazonaws.us-east-1.s3 --route-table-ids <route table IDs>"
            in next_steps)
    # The route-table lookup, run as the AWS CLI would (its --filters, its JMESPath --query): the
    # Lambda's subnet has no explicit association, so its table is the VPC's main one, which a
    # filter on association.subnet-id never returns; another subnet's explicit table is not listed.
    ec2 = recorder.emu.client("ec2")
    other = ec2.describe_network_interfaces(NetworkInterfaceIds=[batch["NetworkInterfaceId"]])[
        "NetworkInterfaces"][0]["SubnetId"]
    explicit = ec2.create_route_table(VpcId=nat["vpc"])["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=explicit, SubnetId=other)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [nat["vpc"]]},
                                              {"Name": "association.main", "Values": ["true"]}])
    [main_id] = [t["RouteTableId"] for t in main["RouteTables"]]
    [lookup] = [shlex.split(l) for l in next_steps.splitlines() if "aws ec2 describe-route-tables" in l]
    assert lookup[lookup.index("--filters") + 1] == f"Name=vpc-id,Values={nat['vpc']}"
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [nat["vpc"]]}])
    rows = jmespath.search(lookup[lookup.index("--query") + 1], tables)
    assert rows == [["main", main_id]], rows
    assert f"The route tables of the subnets that sent it ({nat['subnet']}):" in next_steps
    assert "aws ec2 modify-vpc-endpoint --region us-east-1 --vpc-endpoint-id <endpoint ID> " in next_steps
    assert "Keep traffic in its Availability Zone: 1.3 MB" in next_steps
    assert "--parameter-overrides Threshold=" in next_steps and "<bytes per SamplingPeriod>" not in next_steps
    assert (f"natflow analyze --region us-east-1 --log-group {recorder.log_group} --start " in next_steps
            and f"--streams {nat['interfaces'][0]}\n" in next_steps)
    assert f"NAT Gateway:  prod-egress-a ({nat['id']})" in m
    # Top talker first, named from the inventory snapshot, with its share and cost.
    lines = m.splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith("Top talkers"))
    assert lines[first + 1].startswith(f"  1. Lambda thumbnailer {lam['PrivateIpAddress']} -> S3 {S3_IP}: 3.2 MB")
    assert ", 71.1%, < $0.01" in lines[first + 1]  # 3.2 of 4.5 MB; 3.2 MB x $0.045/GiB
    assert lines[first + 2].startswith(f"  2. {batch['NetworkInterfaceId']} (batch-worker) {batch['PrivateIpAddress']}"
                                       f" -> {WEB_IP}: 1.3 MB (1.0 MB up / 300.0 KB down)")
    assert lines[first + 2].endswith("cross-AZ")
    assert "a gateway VPC endpoint for S3 is free" in m
    assert f"{other_az} -> NAT in {nat_az}: 1.3 MB" in m
    assert "Coverage: the flow logs account for 4.5 MB of the 5.0 MB the NAT's CloudWatch metrics counted (90.0%)" in m
    assert "1 malformed" in m and "1 NODATA/SKIPDATA" in m
    assert "Skipped 4 records of other interfaces or NAT Gateways" in m
    # The recording's own facts follow.
    assert "alarm returned to OK" in m and nat["interfaces"][0] in m
    # The full report, as JSON, next to the recording.
    r = report_json(recorder, arn)
    validate_report(r)  # the recorder's JSON has the CLI's documented shape (docs/report.schema.json)
    assert r["bytes"] == 4_500_000 and r["upload_bytes"] == 4_000_000
    assert [t["bytes"] for t in r["talkers"]] == [3_200_000, 1_300_000]
    assert r["talkers"][0]["source"]["kind"] == "lambda"
    assert r["cross_az"]["bytes"] == 1_300_000
    # The inventory snapshot taken at the start holds the VPC's interfaces.
    inv_stream = arn.split(":")[-1] + "/inventory"
    inv = [json.loads(e["message"]) for e in recorder.emu.client("logs").get_log_events(
        logGroupName=recorder.report_log_group, logStreamName=inv_stream, startFromHead=True)["events"]]
    assert {lam["NetworkInterfaceId"], batch["NetworkInterfaceId"], nat["interfaces"][0]} <= {i["interface_id"] for i in inv}
    # A normal recording enters 9 states (the Step Functions cost the report states).
    entered = [e for e in recorder.history(arn) if e["type"].endswith("StateEntered")]
    assert len(entered) == 9, [e["stateEnteredEventDetails"]["name"] for e in entered]


def test_report_is_marked_truncated_beyond_its_byte_budget(recorder):
    # Read one by one (ReportAggregation streaming): the byte budget bounds that path only.
    recorder.hosts["BuildReportFunction"].restart(REPORT_MAX_BYTES="500", REPORT_AGGREGATION="streaming")
    nat, arn, *_ = record_spike(recorder, "report-truncated")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    [notice] = recorder.notices()
    assert "TRUNCATED: only the first" in notice["message"]
    r = report_json(recorder, arn)
    validate_report(r)
    assert r["truncated"]


def test_a_refused_query_falls_back_to_reading_the_records_and_says_so(recorder):
    """Logs Insights refused (here: access denied): the report reads the records one by one and
    its notice says why; the figures are the same."""
    fault = Fault("StartQuery", 403, "AccessDeniedException", times=10, caller="BuildReportFunction")
    recorder.emu.router.faults.append(fault)
    nat, arn, lam, *_ = record_spike(recorder, "report-query-denied")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    assert fault.injected == 1
    [notice] = recorder.notices()
    m = notice["message"]
    assert "CloudWatch Logs Insights could not count the records (StartQuery was refused" in m, m
    assert "they were read one by one instead" in m
    assert "Counted by CloudWatch Logs Insights" not in m
    assert f"  1. Lambda thumbnailer {lam['PrivateIpAddress']} -> S3 {S3_IP}: 3.2 MB" in m
    assert report_json(recorder, arn)["bytes"] == 4_500_000


def test_the_report_is_counted_by_logs_insights_and_equals_the_streamed_one(recorder):
    """The default path: one Logs Insights query (the test bed's evaluator) counts the records; the
    notice says so, and its figures equal those of the same records read one by one (natflow's
    FilterLogEvents path on the same group and window, selected by the NAT's interface)."""
    import subprocess
    from tests.conftest import TARGET
    nat, arn, lam, *_ = record_spike(recorder, "report-insights")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    server = report_json(recorder, arn)
    [notice] = recorder.notices()
    assert "Counted by CloudWatch Logs Insights, not read record by record: 2 queries" in notice["message"]
    # The window's first minute (the probe), then the rest in one window: each record scanned once.
    assert server["server_side"]["queries"] == 2 and server["server_side"]["split"] == 0
    now = int(time.time())
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": recorder.emu.endpoint, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    out = subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", recorder.log_group, "--start",
                          str(now - 900), "--end", str(now + 60), "--streams", nat["interfaces"][0], "--format",
                          "json", "--no-progress"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    streamed = json.loads(out.stdout)
    for key in ("bytes", "upload_bytes", "download_bytes", "distinct_talkers", "services"):
        assert server[key] == streamed[key], key
    assert [(t["source"]["ip"], t["destination"]["ip"], t["bytes"]) for t in server["talkers"]] == \
        [(t["source"]["ip"], t["destination"]["ip"], t["bytes"]) for t in streamed["talkers"]]
    for key in ("counted", "untranslated", "nodata", "malformed"):
        assert server["input"][key] == streamed["input"][key], key


def test_a_failed_report_still_sends_the_notice_saying_so(recorder):
    # Logs Insights refused, and reading the records too.
    faults = [Fault(op, 403, "AccessDeniedException", times=10, caller="BuildReportFunction")
              for op in ("StartQuery", "FilterLogEvents")]
    recorder.emu.router.faults.extend(faults)
    nat, arn, *_ = record_spike(recorder, "report-denied")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    assert all(f.injected for f in faults)
    [notice] = recorder.notices()
    # Without a report the finish step's subject goes out.
    assert notice["subject"].startswith("NAT spike recorded: prod-egress-a (")
    assert notice["message"].startswith("The traffic report could not be built (AwsRefused")
    assert "alarm returned to OK" in notice["message"]
    assert recorder.active_flow_logs() == []


def test_without_an_inventory_the_recording_goes_on_and_the_notice_says_why(recorder):
    fault = Fault("DescribeNetworkInterfaces", 403, "UnauthorizedOperation", times=10,
                  caller="StartRecordingFunction")
    recorder.emu.router.faults.append(fault)
    # The end snapshot too (best effort: the finish step goes on without it).
    recorder.emu.router.faults.append(Fault("DescribeNetworkInterfaces", 403, "UnauthorizedOperation", times=10,
                                            caller="FinishRecordingFunction"))
    nat, arn, lam, *_ = record_spike(recorder, "report-no-inventory")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    [notice] = recorder.notices()
    m = notice["message"]
    assert "no inventory snapshot was taken" in m
    assert f"S3 {S3_IP}" in m and f"  1. {lam['PrivateIpAddress']} -> S3" in m
    assert "Cross-AZ: unknown" in m


def test_natflow_cli_reads_the_recording_from_the_log_group(recorder, tmp_path):
    """The offline analyzer's API path: the same records, read back through FilterLogEvents."""
    import subprocess
    from tests.conftest import TARGET
    nat = recorder.create_nat()
    lam, batch, nat_ip, *_ = vpc_talkers(recorder, nat)
    eni = nat["interfaces"][0]
    deliver(recorder, eni, flow(eni, nat_ip, lam["PrivateIpAddress"], S3_IP, 3_000_000, 200_000, svc="S3")
            + flow(eni, nat_ip, batch["PrivateIpAddress"], WEB_IP, 1_000_000, 300_000))
    now = int(time.time())
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": recorder.emu.endpoint, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    out = subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", recorder.log_group, "--start",
                          str(now - 600), "--end", str(now + 60), "--streams", eni, "--format", "json",
                          "--no-progress"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert (r["upload_bytes"], r["download_bytes"]) == (4_000_000, 500_000)
    assert [(t["source"]["ip"], t["destination"]["ip"]) for t in r["talkers"]] == [
        (lam["PrivateIpAddress"], S3_IP), (batch["PrivateIpAddress"], WEB_IP)]
    bad = subprocess.run([str(TARGET / "natflow"), "analyze", "--log-group", "/no/such/group", "--start",
                          str(now - 600), "--end", str(now)], env=env, capture_output=True, text=True, timeout=60)
    # An AWS error: exit 3, one line naming the call, the group and what to check.
    assert bad.returncode == 3 and "FilterLogEvents on /no/such/group in us-east-1: the log group does not exist" \
        in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_throttling_beyond_the_sdk_retries_is_absorbed_by_the_paced_reader(recorder):
    """FilterLogEvents is limited to 5 requests per second per account (shared): throttled more
    often than the SDK's 3 attempts would absorb, the report still reads every page in one run
    (its reader backs off and retries from the same nextToken) instead of failing the step."""
    fault = Fault("FilterLogEvents", 400, "ThrottlingException", times=4, caller="BuildReportFunction")
    recorder.emu.router.faults.append(fault)
    host = recorder.hosts["BuildReportFunction"]
    host.restart(REPORT_AGGREGATION="streaming")
    before = len(host.invocations)
    nat, arn, lam, *_ = record_spike(recorder, "report-throttled")
    assert recorder.wait(arn, timeout=90)["status"] == "SUCCEEDED"
    assert fault.injected == 4
    assert len(host.invocations) - before == 1, "the report step ran once"
    [notice] = recorder.notices()
    m = notice["message"]
    assert "TRUNCATED" not in m and f"  1. Lambda thumbnailer {lam['PrivateIpAddress']} -> S3 {S3_IP}: 3.2 MB" in m
    assert report_json(recorder, arn)["bytes"] == 4_500_000
