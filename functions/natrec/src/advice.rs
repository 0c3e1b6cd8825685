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
/// failed flow-log delivery stays in the subject, whatever is cut to keep it under SNS's limit.
pub fn subject(report: &Report, nat_id: &NatGatewayId, nat_name: Option<&str>, undelivered: bool) -> String {
    let nat = cut(&nat_short_name(nat_id, nat_name), 40);
    let suffix = if undelivered { " (records NOT delivered)" } else { "" };
    let head = match report.talkers.first() {
        Some(_) => format!("NAT spike on {nat}: {}, ", human_bytes(report.bytes)),
        None => {
            let counted = report.coverage.as_ref().map_or(0, |c| c.nat_metric_bytes);
            return notice::subject(format!(
                "NAT spike on {nat}: {}, no talker in the flow logs{suffix}",
                human_bytes(counted)
            ));
        }
    };
    let t = &report.talkers[0];
    let share = format!("{:.0}% ", t.share * 100.0);
    let arrow = " -> ";
    let room = MAX_SUBJECT.saturating_sub(head.len() + share.len() + arrow.len() + suffix.len());
    let dst = cut(&short_name(&t.destination), room.min(24).max(8));
    let src = cut(&short_name(&t.source), room.saturating_sub(dst.chars().count()).max(8));
    notice::subject(format!("{head}{share}{src}{arrow}{dst}{suffix}"))
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
        // DescribeRouteTables (EC2 API reference): filter association.subnet-id; a subnet without
        // an explicit association uses the main route table, which that filter does not return
        // (association.main=true finds it).
        let lookup = if subnets.is_empty() {
            format!(
                "Find the route tables of the subnets that sent it:\n\
                 \x20      aws ec2 describe-route-tables --region {region} --filters Name=vpc-id,Values={vpc} \
                 --query 'RouteTables[].[RouteTableId,Associations[].SubnetId]' --output text\n"
            )
        } else {
            format!(
                "The route tables of the subnets that sent it:\n\
                 \x20      aws ec2 describe-route-tables --region {region} --filters Name=association.subnet-id,Values={} \
                 --query 'RouteTables[].RouteTableId' --output text\n\
                 \x20    (nothing printed: those subnets use the VPC's main route table: \
                 --filters Name=vpc-id,Values={vpc} Name=association.main,Values=true)\n",
                subnets.join(",")
            )
        };
        let creates: Vec<String> = gateway
            .iter()
            .map(|(_, n)| {
                format!(
                    "\x20      aws ec2 create-vpc-endpoint --region {region} --vpc-id {vpc} --service-name {n} \
                     --route-table-ids <route table IDs>"
                )
            })
            .collect();
        steps.push(format!(
            "Create {} for {}: gateway endpoints are free and their traffic pays no NAT processing ({}; an \
             endpoint serves its own region, {region}, only). {lookup}\
             \x20    Then, with those IDs (a VPC that has one already: aws ec2 modify-vpc-endpoint --add-route-table-ids):\n{}",
            if gateway.len() == 1 { "a gateway VPC endpoint" } else { "gateway VPC endpoints" },
            names.join(" and "),
            costs.join(", "),
            creates.join("\n")
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

    let (now, raised) = match f.threshold {
        Some(t) => (
            format!(
                " (now {} per {} s, Threshold={})",
                human_bytes(t.bytes),
                t.period_s,
                t.bytes
            ),
            t.bytes.saturating_mul(2).to_string(),
        ),
        None => (String::new(), "<bytes per SamplingPeriod>".to_string()),
    };
    steps.push(format!(
        "If this spike was expected, raise the alarm's threshold{now} above such traffic, e.g. double it, from the \
         recorder's source directory (parameters not named keep their values):\n\
         \x20      sam deploy --stack-name {stack} --parameter-overrides Threshold={raised}",
        stack = f.stack_name
    ));

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

    steps.push(
        "To stop these emails: the unsubscribe link at the end of this email (or remove the subscription from the \
         stack's topic, output NoticeTopicArn). To stop recording this NAT: deploy again without it in \
         NatGatewayIds, or cap its recordings with NumOfRecordings (README \"Recording limit\")."
            .to_string(),
    );

    let mut out = String::from("What to do next:\n");
    for (i, s) in steps.iter().enumerate() {
        out.push_str(&format!("  {}. {s}\n", i + 1));
    }
    out
}
