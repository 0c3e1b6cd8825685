//! What the notice's reader does with the report: its subject (the answer in one line) and the
//! "What to do next" that closes the report, built from the report's figures only (an action
//! is proposed only where the report shows the traffic it acts on).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use natflow::report::{human_bytes, service_label, usd, Endpoint, Report};

use crate::nat::{nat_short_name, NatGatewayId};
use crate::notice::{self, MAX_SUBJECT};
use crate::recording::Recording;

/// The alarm's threshold as deployed (`Threshold` bytes per `SamplingPeriod` seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub bytes: u64,
    pub period_s: u32,
}

/// What the advice needs besides the report.
pub struct NextSteps<'a> {
    pub region: &'a str,
    pub stack_name: &'a str,
    pub recording: &'a Recording,
    pub ended_at: DateTime<Utc>,
    /// Margin read around the recording's window (records are stamped with their capture
    /// window's start).
    pub margin_s: i64,
    pub threshold: Option<Threshold>,
}

/// `s` cut to at most `max` characters, ending with "..." when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", keep.trim_end())
}

/// A talker's end in a few words: its Name tag, else its label without the address, else the
/// address; an AWS service by its name.
fn short_name(e: &Endpoint) -> String {
    if let Some(s) = &e.service {
        if e.interface_id.is_none() {
            return service_label(s);
        }
    }
    if let Some(n) = e.tags.get("Name").map(|n| n.trim()).filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let label = e.label.strip_suffix(&format!(" {}", e.ip)).unwrap_or(&e.label).trim();
    if label.is_empty() {
        e.ip.clone()
    } else {
        label.to_string()
    }
}

/// The report step's subject: the NAT (Name tag, else ID), the bytes, and the top talker with
/// its share, e.g. `NAT spike on prod-egress-a: 4.5 GB, 71% Lambda thumbnailer -> S3`. A
/// recording ended by its time limit (the alarm may still be in ALARM) and a failed flow-log
/// delivery stay in the subject, whatever is cut to keep it under SNS's limit.
pub fn subject(
    report: &Report,
    nat_id: &NatGatewayId,
    nat_name: Option<&str>,
    time_limit: bool,
    undelivered: bool,
) -> String {
    let nat = nat_short_name(nat_id, nat_name);
    let suffix = match (time_limit, undelivered) {
        (false, false) => "",
        (true, false) => " (time limit)",
        (false, true) => " (records NOT delivered)",
        (true, true) => " (time limit, records NOT delivered)",
    };
    debug_assert!(suffix.is_empty() || !undelivered || suffix.contains(notice::UNDELIVERED));
    let Some(t) = report.talkers.first() else {
        let counted = report.coverage.as_ref().map_or(0, |c| c.nat_metric_bytes);
        let rest = format!(": {}, no talker in the flow logs{suffix}", human_bytes(counted));
        let room = MAX_SUBJECT.saturating_sub("NAT spike on ".len() + rest.len());
        return notice::subject(format!("NAT spike on {}{rest}", cut(&nat, room.max(16))));
    };
    let (src, dst) = (short_name(&t.source), short_name(&t.destination));
    let fixed = format!(
        "NAT spike on : {}, {:.0}%  -> {suffix}",
        human_bytes(report.bytes),
        t.share * 100.0
    );
    let room = MAX_SUBJECT.saturating_sub(fixed.len());
    // Each name at most 40, 32, 24 characters; while they do not fit, the longest gives way.
    let mut n = [
        nat.chars().count().min(40),
        src.chars().count().min(32),
        dst.chars().count().min(24),
    ];
    while n.iter().sum::<usize>() > room {
        let i = (0..3).max_by_key(|&i| (n[i], 3 - i)).unwrap();
        if n[i] <= 8 {
            break;
        }
        n[i] -= 1;
    }
    notice::subject(format!(
        "NAT spike on {}: {}, {:.0}% {} -> {}{suffix}",
        cut(&nat, n[0]),
        human_bytes(report.bytes),
        t.share * 100.0,
        cut(&src, n[1]),
        cut(&dst, n[2]),
    ))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The gateway endpoint's service name (AWS PrivateLink guide, "Gateway endpoints": S3 and
/// DynamoDB, `com.amazonaws.<region>.s3` / `.dynamodb`).
fn gateway_service_name(code: &str, region: &str) -> Option<String> {
    match code {
        "S3" => Some(format!("com.amazonaws.{region}.s3")),
        "DYNAMODB" => Some(format!("com.amazonaws.{region}.dynamodb")),
        _ => None,
    }
}

/// The smallest "readable" amount above `v`: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power
/// of ten (at least 10).
pub fn readable_above(v: u64) -> u64 {
    const STEPS: [u64; 10] = [10, 12, 15, 20, 25, 30, 40, 50, 60, 80];
    let mut scale: u64 = 1;
    loop {
        for s in STEPS {
            match s.checked_mul(scale) {
                Some(c) if c > v => return c,
                Some(_) => {}
                None => return u64::MAX,
            }
        }
        scale = match scale.checked_mul(10) {
            Some(x) => x,
            None => return u64::MAX,
        };
    }
}

/// The threshold to raise if the spike was expected: above the traffic the recording saw (the
/// NAT's CloudWatch bytes over the recording, as an average per SamplingPeriod: the alarm's
/// periods at the peak were higher), never below the threshold deployed.
fn threshold_step(report: &Report, f: &NextSteps<'_>) -> String {
    let r = f.recording;
    let seconds = (f.ended_at - r.started_at).num_seconds().max(0);
    let counted = report.coverage.as_ref().map(|c| c.nat_metric_bytes);
    let (now, basis, proposed) = match (f.threshold, counted) {
        (Some(t), Some(total)) => {
            // A recording shorter than one period still counts one period's worth.
            let periods = (seconds as f64 / f64::from(t.period_s.max(1))).max(1.0);
            let average = (total as f64 / periods).ceil() as u64;
            let proposed = readable_above(average.max(t.bytes));
            let (versus, step) = if average > t.bytes {
                ("its busiest periods may have been higher", "")
            } else {
                (
                    "less than the threshold: the alarm fired on periods above it",
                    ", a step above the threshold",
                )
            };
            (
                format!(
                    " (now {} per {} s, Threshold={})",
                    human_bytes(t.bytes),
                    t.period_s,
                    t.bytes
                ),
                format!(
                    ": the NAT's CloudWatch metrics counted {} in the recording's {:.1} min, on average {} per {} s \
                     ({versus}), so e.g. {}{step}",
                    human_bytes(total),
                    seconds as f64 / 60.0,
                    human_bytes(average),
                    t.period_s,
                    human_bytes(proposed),
                ),
                proposed.to_string(),
            )
        }
        (Some(t), None) => (
            format!(
                " (now {} per {} s, Threshold={})",
                human_bytes(t.bytes),
                t.period_s,
                t.bytes
            ),
            " (the NAT's CloudWatch metrics could not be read for this recording), e.g. double it".to_string(),
            t.bytes.saturating_mul(2).to_string(),
        ),
        (None, Some(total)) => (
            String::new(),
            format!(
                " (the NAT's CloudWatch metrics counted {} in the recording's {:.1} min)",
                human_bytes(total),
                seconds as f64 / 60.0
            ),
            "<bytes per SamplingPeriod>".to_string(),
        ),
        (None, None) => (String::new(), String::new(), "<bytes per SamplingPeriod>".to_string()),
    };
    // SAM CLI's deploy builds the change set with `UsePreviousValue: true` for every template
    // parameter not in --parameter-overrides (samcli deploy_context/deployer `merge_parameters`;
    // CloudFormation CreateChangeSet, Parameter.UsePreviousValue), so only Threshold changes.
    format!(
        "If this spike was expected, raise the alarm's threshold{now} above such traffic{basis}. From the \
         recorder's source directory (parameters not named keep their values):\n\
         \x20      sam deploy --region {region} --stack-name {stack} --parameter-overrides Threshold={proposed}",
        region = f.region,
        stack = f.stack_name
    )
}

/// "What to do next": numbered actions, each one the report supports, with commands to paste.
pub fn what_to_do_next(report: &Report, f: &NextSteps<'_>) -> String {
    let r = f.recording;
    let region = f.region;
    let vpc = r.vpc_id.as_deref().unwrap_or("<vpc-id>");
    let mut steps: Vec<String> = Vec::new();

    // Gateway endpoints (S3, DynamoDB): one lookup of the sources' route tables, one command each.
    let gateway: Vec<_> = report
        .services
        .iter()
        .filter(|s| s.bytes > 0 && s.endpoint.as_deref() == Some("gateway"))
        .filter_map(|s| gateway_service_name(&s.service, region).map(|n| (s, n)))
        .collect();
    if !gateway.is_empty() {
        let names: Vec<String> = gateway.iter().map(|(s, _)| service_label(&s.service)).collect();
        let costs: Vec<String> = gateway
            .iter()
            .map(|(s, _)| {
                format!(
                    "{} to {} cost {} of NAT processing",
                    human_bytes(s.bytes),
                    service_label(&s.service),
                    usd(s.nat_cost_usd)
                )
            })
            .collect();
        let mut subnets: Vec<&str> = report
            .talkers
            .iter()
            .filter(|t| {
                gateway
                    .iter()
                    .any(|(s, _)| t.destination.service.as_deref() == Some(s.service.as_str()))
            })
            .filter_map(|t| t.source.subnet_id.as_deref())
            .collect();
        subnets.sort();
        subnets.dedup();
        // DescribeRouteTables (EC2 API reference): "If a subnet is not explicitly associated with
        // any route table, it is implicitly associated with the main route table. This command does
        // not return the subnet ID for implicit associations." So a filter on association.subnet-id
        // misses the main table of the subnets that use it: the query lists the VPC's explicit
        // subnet associations and the main table's (Main true, no SubnetId) and the text states the
        // rule. Gateway associations (GatewayId, no SubnetId, Main false) are left out.
        let (whose, only) = if subnets.is_empty() {
            ("the subnets that sent it".to_string(), "SubnetId || ".to_string())
        } else {
            let list: Vec<String> = subnets.iter().map(|s| format!("\"{s}\"")).collect();
            (
                format!("the subnets that sent it ({})", subnets.join(", ")),
                format!("contains(`[{}]`, SubnetId) || ", list.join(",")),
            )
        };
        let lookup = format!(
            "The route tables of {whose}: a subnet listed uses the route table next to it, a subnet not listed \
             uses the VPC's main route table (the row marked main):\n\
             \x20      aws ec2 describe-route-tables --region {region} --filters Name=vpc-id,Values={vpc} \
             --query 'RouteTables[].Associations[] | [?{only}Main].[SubnetId || `\"main\"`, RouteTableId]' --output text\n"
        );
        let creates: Vec<String> = gateway
            .iter()
            .map(|(_, n)| {
                format!(
                    "\x20      aws ec2 create-vpc-endpoint --region {region} --vpc-id {vpc} --service-name {n} \
                     --route-table-ids <route table IDs>"
                )
            })
            .collect();
        // DescribeVpcEndpoints filters vpc-id, service-name, vpc-endpoint-type; ModifyVpcEndpoint
        // requires VpcEndpointId (EC2 API reference): an existing gateway endpoint of the VPC gets
        // the route tables added instead of a second endpoint.
        let existing: Vec<String> = gateway
            .iter()
            .map(|(_, n)| {
                format!(
                    "\x20      aws ec2 describe-vpc-endpoints --region {region} --filters Name=vpc-id,Values={vpc} \
                     Name=service-name,Values={n} Name=vpc-endpoint-type,Values=Gateway \
                     --query 'VpcEndpoints[].VpcEndpointId' --output text"
                )
            })
            .collect();
        steps.push(format!(
            "Create {} for {}: gateway endpoints are free and their traffic pays no NAT processing ({}; an \
             endpoint serves its own region, {region}, only). {lookup}\
             \x20    Then, with those route table IDs:\n{}\n\
             \x20    If the VPC has such an endpoint already (this prints its ID), add the route tables to it instead:\n{}\n\
             \x20      aws ec2 modify-vpc-endpoint --region {region} --vpc-endpoint-id <endpoint ID> \
             --add-route-table-ids <route table IDs>",
            if gateway.len() == 1 { "a gateway VPC endpoint" } else { "gateway VPC endpoints" },
            names.join(" and "),
            costs.join(", "),
            creates.join("\n"),
            existing.join("\n"),
        ));
    }
    for svc in report
        .services
        .iter()
        .filter(|s| s.endpoint.as_deref() == Some("interface") && s.saving_usd > 0.0)
    {
        steps.push(format!(
            "An interface VPC endpoint for {} would have saved about {} on this traffic (minus its hourly charge).",
            service_label(&svc.service),
            usd(svc.saving_usd)
        ));
    }

    // The destinations the VPC's DNS queries named and the catalogue knows (registries, AWS
    // endpoints by hostname): the report's advice and its commands, the VPC filled in.
    for d in &report.destination_advice {
        let commands: Vec<String> = d
            .commands
            .iter()
            .map(|c| {
                format!(
                    "\x20      {}",
                    c.replace("--vpc-id <vpc-id>", &format!("--vpc-id {vpc}"))
                )
            })
            .collect();
        steps.push(format!(
            "{} ({}): {} from {} talker{} cost {} of NAT processing. {}{}{}",
            d.name,
            d.hosts.join(", "),
            human_bytes(d.bytes),
            d.talkers,
            if d.talkers == 1 { "" } else { "s" },
            usd(d.nat_cost_usd),
            d.text,
            if commands.is_empty() { "" } else { "\n" },
            commands.join("\n")
        ));
    }

    if report.cross_az.bytes > 0 {
        let mut zones: Vec<String> = report
            .cross_az
            .flows
            .iter()
            .map(|c| format!("{} -> NAT in {}", c.source_az, c.nat_az))
            .collect();
        zones.dedup();
        steps.push(format!(
            "Keep traffic in its Availability Zone: {} ({}) crossed zones to reach the NAT ({}). Route each zone's \
             private subnets to a NAT Gateway in the same zone; a NAT Gateway is billed by the hour too, so this pays \
             when such traffic is regular.",
            human_bytes(report.cross_az.bytes),
            usd(report.cross_az.cost_usd),
            zones.join(", ")
        ));
    }

    steps.push(threshold_step(report, f));

    let start = r.started_at - Duration::seconds(f.margin_s);
    let end = f.ended_at + Duration::seconds(f.margin_s);
    let enis: Vec<&str> = r
        .interfaces
        .iter()
        .filter(|i| i.starts_with("eni-"))
        .map(String::as_str)
        .collect();
    let select = if enis.is_empty() {
        format!("--nat-gateway {}", r.nat_id)
    } else {
        format!("--streams {}", enis.join(","))
    };
    let listed = if report.distinct_talkers > report.talkers.len() {
        format!(
            "all {} talkers, not only the top {}",
            report.distinct_talkers,
            report.talkers.len()
        )
    } else {
        "also as JSON with --format json".to_string()
    };
    steps.push(format!(
        "The whole recording from your shell with natflow ({listed}; README \"Offline: the natflow CLI\"):\n\
         \x20      natflow analyze --region {region} --log-group {group} --start {} --end {} {select}",
        rfc3339(start),
        rfc3339(end),
        group = r.log_group,
    ));

    steps.push(format!(
        "To stop these emails: the unsubscribe link at the end of this email (or remove the subscription from the \
         stack's topic, output NoticeTopicArn). To stop recording this NAT: sam deploy --region {region} --stack-name {stack} \
         --parameter-overrides NatGatewayIds=<the other NAT Gateway IDs> (if it is the only one: sam delete \
         --region {region} --stack-name {stack}), or cap its recordings with NumOfRecordings (README \"Recording limit\").",
        stack = f.stack_name
    ));

    let mut out = String::from("What to do next:\n");
    for (i, s) in steps.iter().enumerate() {
        out.push_str(&format!("  {}. {s}\n", i + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::StartStatus;
    use std::net::IpAddr;

    const NAT: &str = "nat-0a1b2c3d4e5f60718";
    const ENI: &str = "eni-0aaaaaaaaaaaaaaa1";
    const NAT_IP: &str = "10.0.0.10";

    fn row(src: &str, dst: &str, psrc: &str, pdst: &str, bytes: u64, ssvc: &str, dsvc: &str) -> String {
        format!(
            "9 123456789012 {ENI} {src} {dst} 40000 443 6 10 {bytes} 1795860060 1795860120 ACCEPT OK vpc-0example \
             subnet-0public1 use1-az1 ingress 8 {psrc} {pdst} {ssvc} {dsvc} 19 IPv4 -\n"
        )
    }

    /// A flow through the NAT as its interface logs it (each direction on both sides).
    fn flow(local: &str, remote: &str, up: u64, down: u64, svc: &str) -> String {
        [
            row(local, NAT_IP, local, remote, up, "-", svc),
            row(NAT_IP, remote, NAT_IP, remote, up, "-", svc),
            row(remote, NAT_IP, remote, NAT_IP, down, svc, "-"),
            row(NAT_IP, local, remote, local, down, svc, "-"),
        ]
        .concat()
    }

    fn report(records: &str, inventory: Option<&str>, nat_metrics: Option<(u64, u64)>) -> Report {
        let inv = inventory.map(|i| natflow::Inventory::from_json(i).unwrap());
        let ips: Vec<IpAddr> = vec![NAT_IP.parse().unwrap()];
        let mut a = natflow::Analyzer::new(natflow::Format::recorder(), &ips).unwrap();
        a.feed(records.as_bytes());
        let mut o = natflow::ReportOptions::new(natflow::Prices::for_region("us-east-1", None).unwrap());
        o.inventory = inv.as_ref();
        o.nat_metrics = nat_metrics;
        natflow::Report::build(&a, &o)
    }

    fn nat() -> NatGatewayId {
        NatGatewayId::parse(NAT).unwrap()
    }

    const INVENTORY: &str = r#"{"interface_id":"eni-0aaaaaaaaaaaaaaa1","private_ips":["10.0.0.10"],"subnet_id":"subnet-0public1","availability_zone_id":"use1-az1","interface_type":"nat_gateway","description":"Interface for NAT Gateway nat-0a1b2c3d4e5f60718"}
{"interface_id":"eni-0bbbbbbbbbbbbbbb2","private_ips":["10.0.1.87"],"subnet_id":"subnet-0private1","availability_zone_id":"use1-az1","interface_type":"lambda","description":"AWS Lambda VPC ENI-thumbnailer-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"}
{"interface_id":"eni-0ccccccccccccccc3","private_ips":["10.0.5.12"],"subnet_id":"subnet-0private2","availability_zone_id":"use1-az2","instance_id":"i-0123456789abcdef0","tags":{"Name":"batch-worker-with-a-name-much-longer-than-any-subject-can-hold"}}"#;

    #[test]
    fn the_subject_names_the_nat_the_bytes_and_the_top_talker() {
        let r = report(
            &(flow("10.0.1.87", "52.216.8.9", 3_100_000_000, 150_000_000, "S3")
                + &flow("10.0.5.12", "203.0.113.9", 1_000_000_000, 300_000_000, "-")),
            Some(INVENTORY),
            None,
        );
        assert_eq!(
            subject(&r, &nat(), Some("prod-egress-a"), false, false),
            "NAT spike on prod-egress-a: 4.5 GB, 71% Lambda thumbnailer -> S3"
        );
        // No Name tag: the ID.
        assert_eq!(
            subject(&r, &nat(), None, false, false),
            "NAT spike on nat-0a1b2c3d4e5f60718: 4.5 GB, 71% Lambda thumbnailer -> S3"
        );
        // Undelivered records stay said, whatever is cut.
        assert_eq!(
            subject(&r, &nat(), Some("prod-egress-a"), false, true),
            "NAT spike on prod-egress-a: 4.5 GB, 71% Lambda thumbnailer -> S3 (records NOT delivered)"
        );
    }

    #[test]
    fn long_names_are_cut_and_the_subject_stays_within_sns_limit() {
        let r = report(
            &flow("10.0.5.12", "203.0.113.9", 1_000_000_000, 300_000_000, "-"),
            Some(INVENTORY),
            None,
        );
        let long_nat = "egress-".repeat(20);
        let s = subject(&r, &nat(), Some(&long_nat), false, true);
        assert_eq!(
            s,
            "NAT spike on egress-egress...: 1.3 GB, 100% batch-worker-... -> 203.0.113.9 (records NOT delivered)"
        );
        assert!(s.len() < 100 && s.is_ascii());
        // A talker without inventory goes by its address.
        let bare = report(&flow("10.0.5.12", "203.0.113.9", 1_000, 0, "-"), None, None);
        assert_eq!(
            subject(&bare, &nat(), None, false, false),
            "NAT spike on nat-0a1b2c3d4e5f60718: 1.0 KB, 100% 10.0.5.12 -> 203.0.113.9"
        );
    }

    #[test]
    fn a_spike_without_records_says_so_with_the_nat_metrics_bytes() {
        let r = report("", None, Some((4_400_000, 600_000)));
        assert_eq!(
            subject(&r, &nat(), Some("prod-egress-a"), false, false),
            "NAT spike on prod-egress-a: 5.0 MB, no talker in the flow logs"
        );
        assert_eq!(
            subject(&r, &nat(), Some("prod-egress-a"), true, true),
            "NAT spike on prod-egress-a: 5.0 MB, no talker in the flow logs (time limit, records NOT delivered)"
        );
        let r = report("", None, None);
        assert_eq!(
            subject(&r, &nat(), None, false, true),
            "NAT spike on nat-0a1b2c3d4e5f60718: 0 B, no talker in the flow logs (records NOT delivered)"
        );
    }

    fn recording(interfaces: &[&str]) -> Recording {
        Recording {
            status: StartStatus::Recording,
            nat_id: nat(),
            nat_name: None,
            alarm_name: "a".into(),
            execution: "arn:x:execution:m:e".into(),
            vpc_id: Some("vpc-0example".into()),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            flow_log_ids: vec![],
            started_at: DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().into(),
            recording_time: 900,
            log_group: "/natrec/s/flow-logs".into(),
            notice: None,
            report_delay: 0,
            inventory: None,
        }
    }

    fn steps<'a>(rec: &'a Recording, threshold: Option<Threshold>) -> NextSteps<'a> {
        NextSteps {
            region: "eu-west-3",
            stack_name: "s",
            recording: rec,
            ended_at: DateTime::parse_from_rfc3339("2026-11-28T10:10:00Z").unwrap().into(),
            margin_s: 120,
            threshold,
        }
    }

    /// Without an inventory the sources' subnets are unknown: the lookup lists the VPC's route
    /// tables; no cross-AZ advice without cross-AZ bytes; a regional NAT is selected by its ID;
    /// an unknown threshold is a placeholder.
    #[test]
    fn next_steps_for_s3_traffic_of_a_regional_nat_without_inventory() {
        let rec = recording(&["nat-0a1b2c3d4e5f60718 (regional)"]);
        let r = report(&flow("10.0.1.87", "52.216.8.9", 2_000_000_000, 0, "S3"), None, None);
        assert_eq!(
            what_to_do_next(&r, &steps(&rec, None)),
            "What to do next:
  1. Create a gateway VPC endpoint for S3: gateway endpoints are free and their traffic pays no NAT processing (2.0 GB to S3 cost $0.08 of NAT processing; an endpoint serves its own region, eu-west-3, only). The route tables of the subnets that sent it: a subnet listed uses the route table next to it, a subnet not listed uses the VPC's main route table (the row marked main):
       aws ec2 describe-route-tables --region eu-west-3 --filters Name=vpc-id,Values=vpc-0example --query 'RouteTables[].Associations[] | [?SubnetId || Main].[SubnetId || `\"main\"`, RouteTableId]' --output text
     Then, with those route table IDs:
       aws ec2 create-vpc-endpoint --region eu-west-3 --vpc-id vpc-0example --service-name com.amazonaws.eu-west-3.s3 --route-table-ids <route table IDs>
     If the VPC has such an endpoint already (this prints its ID), add the route tables to it instead:
       aws ec2 describe-vpc-endpoints --region eu-west-3 --filters Name=vpc-id,Values=vpc-0example Name=service-name,Values=com.amazonaws.eu-west-3.s3 Name=vpc-endpoint-type,Values=Gateway --query 'VpcEndpoints[].VpcEndpointId' --output text
       aws ec2 modify-vpc-endpoint --region eu-west-3 --vpc-endpoint-id <endpoint ID> --add-route-table-ids <route table IDs>
  2. If this spike was expected, raise the alarm's threshold above such traffic. From the recorder's source directory (parameters not named keep their values):
       sam deploy --region eu-west-3 --stack-name s --parameter-overrides Threshold=<bytes per SamplingPeriod>
  3. The whole recording from your shell with natflow (also as JSON with --format json; README \"Offline: the natflow CLI\"):
       natflow analyze --region eu-west-3 --log-group /natrec/s/flow-logs --start 2026-11-28T09:58:00Z --end 2026-11-28T10:12:00Z --nat-gateway nat-0a1b2c3d4e5f60718
  4. To stop these emails: the unsubscribe link at the end of this email (or remove the subscription from the stack's topic, output NoticeTopicArn). To stop recording this NAT: sam deploy --region eu-west-3 --stack-name s --parameter-overrides NatGatewayIds=<the other NAT Gateway IDs> (if it is the only one: sam delete --region eu-west-3 --stack-name s), or cap its recordings with NumOfRecordings (README \"Recording limit\").
"
        );
    }

    /// Internet traffic only, across zones, more talkers than listed: no endpoint advice, the
    /// cross-AZ advice, a threshold above the NAT's average per period during the recording
    /// (rounded up to a readable amount), every talker by natflow on the NAT's interfaces.
    #[test]
    fn next_steps_for_cross_az_internet_traffic() {
        let rec = recording(&[ENI, "eni-0ddddddddddddddd4"]);
        let records = flow("10.0.5.12", "203.0.113.9", 1_000_000_000, 300_000_000, "-")
            + &flow("10.0.1.87", "198.51.100.7", 1_000, 0, "-");
        let inv = natflow::Inventory::from_json(INVENTORY).unwrap();
        let ips: Vec<IpAddr> = vec![NAT_IP.parse().unwrap()];
        let mut a = natflow::Analyzer::new(natflow::Format::recorder(), &ips).unwrap();
        a.feed(records.as_bytes());
        let mut o = natflow::ReportOptions::new(natflow::Prices::for_region("us-east-1", None).unwrap());
        o.inventory = Some(&inv);
        o.top = 1;
        // The NAT's metrics over the 10-minute recording: 4.5 GB, 2.25 GB per 300 s on average.
        o.nat_metrics = Some((4_000_000_000, 500_000_000));
        let r = natflow::Report::build(&a, &o);
        let threshold = Threshold {
            bytes: 500_000_000,
            period_s: 300,
        };
        assert_eq!(
            what_to_do_next(&r, &steps(&rec, Some(threshold))),
            "What to do next:
  1. Keep traffic in its Availability Zone: 1.3 GB ($0.02) crossed zones to reach the NAT (use1-az2 -> NAT in use1-az1). Route each zone's private subnets to a NAT Gateway in the same zone; a NAT Gateway is billed by the hour too, so this pays when such traffic is regular.
  2. If this spike was expected, raise the alarm's threshold (now 500.0 MB per 300 s, Threshold=500000000) above such traffic: the NAT's CloudWatch metrics counted 4.5 GB in the recording's 10.0 min, on average 2.2 GB per 300 s (its busiest periods may have been higher), so e.g. 2.5 GB. From the recorder's source directory (parameters not named keep their values):
       sam deploy --region eu-west-3 --stack-name s --parameter-overrides Threshold=2500000000
  3. The whole recording from your shell with natflow (all 2 talkers, not only the top 1; README \"Offline: the natflow CLI\"):
       natflow analyze --region eu-west-3 --log-group /natrec/s/flow-logs --start 2026-11-28T09:58:00Z --end 2026-11-28T10:12:00Z --streams eni-0aaaaaaaaaaaaaaa1,eni-0ddddddddddddddd4
  4. To stop these emails: the unsubscribe link at the end of this email (or remove the subscription from the stack's topic, output NoticeTopicArn). To stop recording this NAT: sam deploy --region eu-west-3 --stack-name s --parameter-overrides NatGatewayIds=<the other NAT Gateway IDs> (if it is the only one: sam delete --region eu-west-3 --stack-name s), or cap its recordings with NumOfRecordings (README \"Recording limit\").
"
        );
    }

    fn threshold_line(r: &Report, rec: &Recording, t: Option<Threshold>) -> String {
        let text = what_to_do_next(r, &steps(rec, t));
        let i = text.find("If this spike was expected").unwrap();
        text[i..text[i..].find("\n  2. ").map_or(text.len(), |e| i + e)].to_string()
    }

    /// The threshold proposed is above the traffic the recording saw (the NAT's metrics, as an
    /// average per period), never below the threshold deployed; without metrics it is doubled.
    #[test]
    fn the_threshold_proposed_is_above_the_recorded_traffic_and_never_below_the_current_one() {
        let rec = recording(&[ENI]);
        let t = Threshold {
            bytes: 100_000_000,
            period_s: 60,
        };
        // The reviewer's case: 4.5 GB over the 10-minute recording with 100 MB per 60 s deployed
        // (doubling would have proposed 200 MB).
        let spike = report("", None, Some((4_000_000_000, 500_000_000)));
        assert_eq!(
            threshold_line(&spike, &rec, Some(t)),
            "If this spike was expected, raise the alarm's threshold (now 100.0 MB per 60 s, Threshold=100000000) above such traffic: the NAT's CloudWatch metrics counted 4.5 GB in the recording's 10.0 min, on average 450.0 MB per 60 s (its busiest periods may have been higher), so e.g. 500.0 MB. From the recorder's source directory (parameters not named keep their values):
       sam deploy --region eu-west-3 --stack-name s --parameter-overrides Threshold=500000000"
        );
        // An average below the threshold (the alarm fired on a few high periods): a step above
        // the threshold, not below it.
        let low = report("", None, Some((200_000_000, 100_000_000)));
        assert_eq!(
            threshold_line(&low, &rec, Some(t)),
            "If this spike was expected, raise the alarm's threshold (now 100.0 MB per 60 s, Threshold=100000000) above such traffic: the NAT's CloudWatch metrics counted 300.0 MB in the recording's 10.0 min, on average 30.0 MB per 60 s (less than the threshold: the alarm fired on periods above it), so e.g. 120.0 MB, a step above the threshold. From the recorder's source directory (parameters not named keep their values):
       sam deploy --region eu-west-3 --stack-name s --parameter-overrides Threshold=120000000"
        );
        // No metrics: nothing to base it on but the threshold.
        let none = report("", None, None);
        assert_eq!(
            threshold_line(&none, &rec, Some(t)),
            "If this spike was expected, raise the alarm's threshold (now 100.0 MB per 60 s, Threshold=100000000) above such traffic (the NAT's CloudWatch metrics could not be read for this recording), e.g. double it. From the recorder's source directory (parameters not named keep their values):
       sam deploy --region eu-west-3 --stack-name s --parameter-overrides Threshold=200000000"
        );
    }

    #[test]
    fn readable_amounts_are_the_next_step_strictly_above() {
        assert_eq!(readable_above(0), 10);
        assert_eq!(readable_above(450_000_000), 500_000_000);
        assert_eq!(readable_above(500_000_000), 600_000_000);
        assert_eq!(readable_above(100_000_001), 120_000_000);
        assert_eq!(readable_above(2_250_000_000), 2_500_000_000);
        assert_eq!(readable_above(u64::MAX - 1), u64::MAX);
    }

    /// A Route 53 Resolver query-log line: `src` asked `name`, answered `ip`.
    fn query(src: &str, name: &str, ip: &str) -> String {
        format!(
            r#"{{"query_name":"{name}.","query_type":"A","rcode":"NOERROR","answers":[{{"Rdata":"{ip}","Type":"A","Class":"IN"}}],"srcaddr":"{src}"}}"#
        ) + "\n"
    }

    /// With DNS input (the recorder does not record DNS yet: the report is built here with its
    /// query logs), the destinations the catalogue knows get their advice among the steps, the
    /// VPC filled in: Docker Hub, an SQS endpoint by hostname; S3, whose gateway endpoint the
    /// first step advises, once; the unknown host nothing.
    #[test]
    fn next_steps_include_the_advice_for_destinations_named_by_dns() {
        let rec = recording(&[ENI]);
        let records = flow("10.0.1.87", "104.16.1.1", 20_000_000, 3_180_000_000, "-")
            + &flow("10.0.1.87", "52.46.128.5", 400_000_000, 100_000_000, "-")
            + &flow("10.0.5.12", "203.0.113.9", 100_000_000, 300_000_000, "-")
            + &flow("10.0.1.87", "52.216.8.9", 1_000_000, 249_000_000, "S3");
        let mut dns = natflow::dns::DnsIndex::new();
        dns.feed(
            (query("10.0.1.87", "registry-1.docker.io", "104.16.1.1")
                + &query("10.0.1.87", "sqs.eu-west-3.amazonaws.com", "52.46.128.5")
                + &query("10.0.5.12", "api.example.com", "203.0.113.9")
                + &query("10.0.1.87", "my-bucket.s3.eu-west-3.amazonaws.com", "52.216.8.9"))
                .as_bytes(),
        );
        let ips: Vec<IpAddr> = vec![NAT_IP.parse().unwrap()];
        let mut a = natflow::Analyzer::new(natflow::Format::recorder(), &ips).unwrap();
        a.feed(records.as_bytes());
        let mut o = natflow::ReportOptions::new(natflow::Prices::for_region("eu-west-3", None).unwrap());
        o.dns = Some(&dns);
        let r = natflow::Report::build(&a, &o);
        let text = what_to_do_next(&r, &steps(&rec, None));
        assert!(
            text.starts_with("What to do next:\n  1. Create a gateway VPC endpoint for S3: "),
            "{text}"
        );
        let i = text.find("\n  2. ").unwrap() + 1;
        let j = text.find("\n  4. If this spike was expected").unwrap() + 1;
        // eu-west-3: NAT $0.045/GB, interface endpoint $0.01/h per zone and $0.01/GB.
        assert_eq!(
            &text[i..j],
            r#"  2. Docker Hub (registry-1.docker.io): 3.2 GB from 1 talker cost $0.13 of NAT processing. Pull Docker Hub images through an Amazon ECR pull through cache in eu-west-3: the first pull of an image still comes from Docker Hub, later pulls come from ECR, whose layers come from S3 through the free gateway endpoint. Docker Hub requires a Secrets Manager secret whose name starts with ecr-pullthroughcache/. Then pull <account-id>.dkr.ecr.eu-west-3.amazonaws.com/docker-hub/<repository>:<tag> (official images: docker-hub/library/<name>). For the S3 gateway endpoint, see "AWS services reached through the NAT". The ecr.api and ecr.dkr interface endpoints cost $14.60 a month in 1 Availability Zone.
       aws secretsmanager create-secret --region eu-west-3 --name ecr-pullthroughcache/docker-hub --secret-string '{"username":"<Docker Hub user>","accessToken":"<Docker Hub access token>"}'
       aws ecr create-pull-through-cache-rule --region eu-west-3 --ecr-repository-prefix docker-hub --upstream-registry-url registry-1.docker.io --credential-arn <ARN of the secret above>
       aws ec2 describe-vpc-endpoint-services --region eu-west-3 --service-names com.amazonaws.eu-west-3.ecr.api --query 'ServiceDetails[].AvailabilityZones' --output text
       aws ec2 create-vpc-endpoint --region eu-west-3 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.eu-west-3.ecr.api --subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled
       aws ec2 describe-vpc-endpoint-services --region eu-west-3 --service-names com.amazonaws.eu-west-3.ecr.dkr --query 'ServiceDetails[].AvailabilityZones' --output text
       aws ec2 create-vpc-endpoint --region eu-west-3 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.eu-west-3.ecr.dkr --subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled
  3. SQS (sqs.eu-west-3.amazonaws.com): 500.0 MB from 1 talker cost $0.02 of NAT processing. An interface VPC endpoint (com.amazonaws.eu-west-3.sqs) with private DNS would carry this traffic instead of the NAT. On these 500.0 MB: NAT processing $0.02, through the endpoint < $0.01, saved $0.02. The endpoint costs $0.01 an hour in each Availability Zone it is in (1 zone: $7.30 a month), so it pays for itself above 209 GB a month through it. Private DNS needs the VPC's enableDnsSupport and enableDnsHostnames attributes on.
       aws ec2 describe-vpc-endpoint-services --region eu-west-3 --service-names com.amazonaws.eu-west-3.sqs --query 'ServiceDetails[].AvailabilityZones' --output text
       aws ec2 create-vpc-endpoint --region eu-west-3 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.eu-west-3.sqs --subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled
"#
        );
        // S3 advised once: only the first step creates its endpoint.
        assert_eq!(
            text.matches("--service-name com.amazonaws.eu-west-3.s3 ").count(),
            1,
            "{text}"
        );
        assert!(!text.contains("example.com"), "{text}");
        // The notice's report text leaves the advice to these steps: said once in the email.
        let shown = crate::report::notice_text(&r);
        assert!(shown.contains("registry-1.docker.io (Docker Hub)"), "{shown}");
        assert!(
            !shown.contains("ecr-pullthroughcache") && !shown.contains("What to do about"),
            "{shown}"
        );
        assert!(r.to_text().contains("What to do about the destinations known by name"));
        // Without DNS input: the steps as before, no destination advice.
        o.dns = None;
        let plain = what_to_do_next(&natflow::Report::build(&a, &o), &steps(&rec, None));
        assert!(!plain.contains("Docker Hub") && !plain.contains("sqs"), "{plain}");
    }

    /// With the sources' subnets known, the lookup lists those subnets' explicit route tables
    /// and the VPC's main one (a subnet without an explicit association uses it; DescribeRouteTables
    /// returns no subnet ID for it); an existing endpoint is modified by its ID.
    #[test]
    fn the_route_table_lookup_names_the_sources_subnets_and_the_main_table() {
        let rec = recording(&[ENI]);
        let r = report(
            &(flow("10.0.1.87", "52.216.8.9", 2_000_000_000, 0, "S3")
                + &flow("10.0.5.12", "52.94.0.10", 1_000_000_000, 0, "DYNAMODB")),
            Some(INVENTORY),
            None,
        );
        let text = what_to_do_next(&r, &steps(&rec, None));
        let first = &text[..text.find("\n  2. ").unwrap()];
        assert!(
            first.contains(
                "The route tables of the subnets that sent it (subnet-0private1, subnet-0private2): a subnet listed uses the route table next to it, a subnet not listed uses the VPC's main route table (the row marked main):
       aws ec2 describe-route-tables --region eu-west-3 --filters Name=vpc-id,Values=vpc-0example --query 'RouteTables[].Associations[] | [?contains(`[\"subnet-0private1\",\"subnet-0private2\"]`, SubnetId) || Main].[SubnetId || `\"main\"`, RouteTableId]' --output text
"
            ),
            "{first}"
        );
        assert!(first.contains("--service-name com.amazonaws.eu-west-3.dynamodb --route-table-ids <route table IDs>"));
        assert!(first.ends_with(
            "aws ec2 modify-vpc-endpoint --region eu-west-3 --vpc-endpoint-id <endpoint ID> --add-route-table-ids <route table IDs>"
        ));
    }
}
