//! The analysis against generated flow logs whose truth is known flow by flow: NAT double rows,
//! cross-AZ sources, AWS-service destinations, noise and garbage lines.

use std::net::IpAddr;

use natflow::analyze::Analyzer;
use natflow::synth::{Scenario, Truth, Writer, REGIONAL_NAT, ZONAL_NAT};
use natflow::{Format, Inventory, Prices, Report, ReportOptions};

fn generate(hosts: usize, remotes: usize, bytes: u64, seed: u64) -> (Scenario, Vec<u8>, natflow::synth::Truth) {
    let scenario = Scenario::new(hosts, remotes);
    let mut buf = Vec::new();
    let truth = {
        let mut w = Writer::new(&mut buf, &scenario, seed);
        w.noise().unwrap();
        w.fill(bytes).unwrap();
        w.truth
    };
    (scenario, buf, truth)
}

fn analyze(buf: &[u8]) -> Analyzer {
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.feed(buf);
    a
}

fn full_report(a: &Analyzer, inv: &Inventory) -> Report {
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).unwrap());
    o.inventory = Some(inv);
    o.top = usize::MAX;
    Report::build(a, &o)
}

#[test]
fn every_flow_is_counted_once_with_its_real_endpoints() {
    let (scenario, buf, truth) = generate(40, 30, 2_000_000, 7);
    let a = analyze(&buf);
    let inv = Inventory::new(scenario.inventory());
    let r = full_report(&a, &inv);
    assert_eq!(r.upload_bytes, truth.upload);
    assert_eq!(r.download_bytes, truth.download);
    assert_eq!(r.talkers.len(), truth.pairs.len());
    for t in &r.talkers {
        let key: (IpAddr, IpAddr) = (t.source.ip.parse().unwrap(), t.destination.ip.parse().unwrap());
        assert_eq!(truth.pairs[&key], (t.upload_bytes, t.download_bytes), "{key:?}");
    }
    // Sorted by bytes, shares add up.
    assert!(r.talkers.windows(2).all(|w| w[0].bytes >= w[1].bytes));
    let shares: f64 = r.talkers.iter().map(|t| t.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    // Counted: exactly two records per flow; the NAT's own halves skipped, not lost.
    let s = &r.input;
    assert_eq!(s.counted, 2 * truth.flows);
    assert_eq!(s.untranslated, 2 * truth.flows);
    assert_eq!(s.lines, truth.lines);
}

#[test]
fn noise_and_garbage_are_counted_never_fatal() {
    let (_, buf, truth) = generate(10, 10, 300_000, 3);
    let s = analyze(&buf).stats().clone();
    assert_eq!(s.nodata, truth.nodata);
    assert_eq!(s.skipdata, truth.skipdata);
    assert_eq!(s.rejected, truth.rejected);
    assert_eq!(s.malformed, truth.malformed);
    assert_eq!(s.malformed_examples.len(), 3);
    assert!(s.malformed_examples[0].contains("not a flow log record"));
    assert_eq!(
        s.counted + s.untranslated + s.nodata + s.skipdata + s.rejected + s.malformed,
        s.lines
    );
}

#[test]
fn cross_az_services_and_costs_match_the_truth() {
    let (scenario, buf, truth) = generate(20, 18, 1_000_000, 11);
    let a = analyze(&buf);
    let inv = Inventory::new(scenario.inventory());
    let r = full_report(&a, &inv);
    assert!(r.cross_az.known);
    assert!(truth.cross_az > 0);
    assert_eq!(r.cross_az.bytes, truth.cross_az);
    let by_az: u64 = r.cross_az.flows.iter().map(|f| f.bytes).sum();
    assert_eq!(by_az, truth.cross_az);
    for f in &r.cross_az.flows {
        assert_ne!(f.source_az, f.nat_az);
    }
    let services: std::collections::BTreeMap<String, u64> =
        r.services.iter().map(|s| (s.service.clone(), s.bytes)).collect();
    assert_eq!(services, truth.services);
    let gb = (1u64 << 30) as f64;
    for s in &r.services {
        let nat = s.bytes as f64 / gb * 0.045;
        assert!((s.nat_cost_usd - nat).abs() < 1e-5);
        match s.service.as_str() {
            "S3" | "DYNAMODB" => {
                assert_eq!(s.endpoint.as_deref(), Some("gateway"));
                assert!(
                    (s.saving_usd - nat).abs() < 1e-5,
                    "a gateway endpoint saves all NAT processing"
                );
            }
            _ => {
                // EC2's ranges are every public address in EC2 (anyone's instances and Elastic
                // IPs), not the EC2 API: no endpoint carries that traffic, so no advice.
                assert_eq!(s.service, "EC2");
                assert_eq!(s.endpoint, None, "no endpoint for {}", s.service);
                assert_eq!(s.saving_usd, 0.0);
            }
        }
    }
    let text = r.to_text();
    assert!(!text.contains("interface VPC endpoint"), "{text}");
    assert!(text.contains("EC2: ") && text.contains("not the EC2 API"), "{text}");
    let total = (truth.upload + truth.download) as f64 / gb;
    assert!((r.costs.nat_processing_usd - total * 0.045).abs() < 1e-5);
    assert!((r.costs.cross_az_usd - truth.cross_az as f64 / gb * 0.02).abs() < 1e-5);
    assert!((r.costs.flow_log_ingestion_usd - buf.len() as f64 / gb * 0.5).abs() < 1e-5);
}

#[test]
fn without_an_inventory_cross_az_is_unknown_not_zero() {
    let (_, buf, _) = generate(6, 6, 100_000, 5);
    let a = analyze(&buf);
    let r = Report::build(&a, &ReportOptions::new(Prices::for_region("us-east-1", None).unwrap()));
    assert!(!r.cross_az.known);
    assert!(r.to_text().contains("Cross-AZ: unknown"));
}

#[test]
fn endpoints_are_named_from_the_inventory_and_the_records() {
    let (scenario, buf, _) = generate(10, 6, 200_000, 9);
    let a = analyze(&buf);
    let inv = Inventory::new(scenario.inventory());
    let r = full_report(&a, &inv);
    let lambda = &scenario.hosts[4];
    let t = r
        .talkers
        .iter()
        .find(|t| t.source.ip == lambda.ip.to_string())
        .expect("the Lambda host talks");
    assert_eq!(t.source.label, format!("Lambda worker-4 {}", lambda.ip));
    assert_eq!(t.source.kind, "lambda");
    assert_eq!(t.source.az.as_deref(), Some("use1-az1"));
    let inst = r
        .talkers
        .iter()
        .find(|t| t.source.ip == scenario.hosts[1].ip.to_string())
        .unwrap();
    assert!(inst.source.label.starts_with("i-") && inst.source.label.contains("(host-1)"));
    let s3 = r
        .talkers
        .iter()
        .find(|t| t.destination.service.as_deref() == Some("S3"))
        .unwrap();
    assert!(s3.destination.label.starts_with("S3 52.216."));
    let text = r.to_text();
    assert!(text.contains("a gateway VPC endpoint for S3 is free"), "{text}");
    assert!(text.contains("Top talkers"));
}

#[test]
fn split_anywhere_and_merged_gives_the_same_answer() {
    let (_, buf, _) = generate(30, 20, 500_000, 13);
    let whole = analyze(&buf);
    // Split at line boundaries into three parts, analysed separately, merged.
    let cut1 = buf[..buf.len() / 3].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let cut2 = buf[..2 * buf.len() / 3].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let mut a = analyze(&buf[..cut1]);
    let b = analyze(&buf[cut1..cut2]);
    let c = analyze(&buf[cut2..]);
    a.merge(c);
    a.merge(b);
    let prices = Prices::for_region("us-east-1", None).unwrap();
    let mut o = ReportOptions::new(prices);
    o.top = usize::MAX;
    let (mut x, mut y) = (Report::build(&whole, &o), Report::build(&a, &o));
    // Ties in bytes may list in any order: compare as sets.
    x.talkers
        .sort_by(|p, q| (&p.source.ip, &p.destination.ip).cmp(&(&q.source.ip, &q.destination.ip)));
    y.talkers
        .sort_by(|p, q| (&p.source.ip, &p.destination.ip).cmp(&(&q.source.ip, &q.destination.ip)));
    assert_eq!(x.talkers, y.talkers);
    assert_eq!(x.input.counted, y.input.counted);
    assert_eq!(x.input.lines, y.input.lines);
    assert_eq!(x.services, y.services);
}

#[test]
fn default_format_uses_the_nat_addresses_and_says_what_it_cannot_pair() {
    // The same flows, written in AWS's default format: no packet addresses.
    let (scenario, buf, truth) = generate(8, 6, 150_000, 21);
    let v2: Vec<u8> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').take(14).collect::<Vec<_>>().join(" ") + "\n")
        .collect::<String>()
        .into_bytes();
    assert!(
        Analyzer::new(Format::default_v2(), &[]).is_err(),
        "needs the NAT's addresses"
    );
    let inv = Inventory::new(scenario.inventory());
    let mut a = Analyzer::new(Format::default_v2(), &inv.nat_ips()).unwrap();
    a.feed(&v2);
    let r = full_report(&a, &inv);
    // Per VPC source, upload and download are still exact.
    let mut per_source: std::collections::BTreeMap<IpAddr, (u64, u64)> = Default::default();
    for ((src, _), (u, d)) in &truth.pairs {
        let e = per_source.entry(*src).or_default();
        e.0 += u;
        e.1 += d;
    }
    assert_eq!(r.talkers.len(), per_source.len());
    for t in &r.talkers {
        assert_eq!(t.destination.kind, "unknown");
        let src: IpAddr = t.source.ip.parse().unwrap();
        assert_eq!(per_source[&src], (t.upload_bytes, t.download_bytes));
    }
    assert_eq!(r.bytes, truth.upload + truth.download);
    assert!(!r.destinations.is_empty());
    assert!(r.to_text().contains("cannot pair them with sources"));
}

#[test]
fn header_lines_switch_the_format_like_s3_files() {
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status pkt-srcaddr pkt-dstaddr\n";
    let rows = "2 1 eni-1 10.0.2.5 10.0.0.10 1 443 6 10 1000 1 60 ACCEPT OK 10.0.2.5 8.8.8.8\n\
                2 1 eni-1 10.0.0.10 8.8.8.8 1 443 6 10 1000 1 60 ACCEPT OK 10.0.0.10 8.8.8.8\n";
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.feed(format!("{header}{rows}").as_bytes());
    assert_eq!(a.stats().headers, 1);
    assert_eq!(a.stats().malformed, 0);
    assert_eq!(a.stats().counted, 1);
    let [(k, c)] = a.flows().collect::<Vec<_>>()[..] else {
        panic!()
    };
    assert_eq!(k.remote.to_string(), "8.8.8.8");
    assert_eq!(c.upload, 1000);
}

#[test]
fn only_the_given_interfaces_count_when_asked() {
    let (scenario, buf, truth) = generate(12, 8, 200_000, 17);
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.only_interfaces(&[scenario.nat[0].id.as_str()]);
    a.feed(&buf);
    let inv = Inventory::new(scenario.inventory());
    let r = full_report(&a, &inv);
    assert!(r.input.other_interfaces > 0);
    assert!(r.bytes < truth.upload + truth.download);
    assert_eq!(r.interfaces.len(), 1);
    assert_eq!(r.interfaces[0].interface_id, scenario.nat[0].id);
    // The two halves add up to the whole.
    let mut b = Analyzer::new(Format::recorder(), &[]).unwrap();
    b.only_interfaces(&[scenario.nat[1].id.as_str()]);
    b.feed(&buf);
    assert_eq!(r.bytes + full_report(&b, &inv).bytes, truth.upload + truth.download);
}

/// Generated flows of the regional NAT Gateway (as AWS documents its records).
fn generate_regional(scenario: &Scenario, bytes: u64, seed: u64) -> (Vec<u8>, Truth) {
    let mut buf = Vec::new();
    let truth = {
        let mut w = Writer::new(&mut buf, scenario, seed);
        w.regional = true;
        w.fill(bytes).unwrap();
        w.truth
    };
    (buf, truth)
}

fn assert_matches_truth(r: &Report, truth: &Truth) {
    assert_eq!((r.upload_bytes, r.download_bytes), (truth.upload, truth.download));
    assert_eq!(r.talkers.len(), truth.pairs.len());
    for t in &r.talkers {
        let key: (IpAddr, IpAddr) = (t.source.ip.parse().unwrap(), t.destination.ip.parse().unwrap());
        assert_eq!(
            truth.pairs.get(&key),
            Some(&(t.upload_bytes, t.download_bytes)),
            "{key:?}"
        );
    }
    let services: std::collections::BTreeMap<String, u64> =
        r.services.iter().map(|s| (s.service.clone(), s.bytes)).collect();
    assert_eq!(services, truth.services);
}

/// Lines of two buffers, alternating, as two NATs' records arrive in one log group.
fn interleave(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (mut x, mut y) = (a.split_inclusive(|&c| c == b'\n'), b.split_inclusive(|&c| c == b'\n'));
    let mut out = Vec::with_capacity(a.len() + b.len());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return out,
            (p, q) => {
                out.extend_from_slice(p.unwrap_or_default());
                out.extend_from_slice(q.unwrap_or_default());
            }
        }
    }
}

#[test]
fn regional_nat_flows_are_counted_once_as_documented() {
    let scenario = Scenario::new(20, 18);
    let (buf, truth) = generate_regional(&scenario, 400_000, 23);
    let a = analyze(&buf);
    let inv = Inventory::new(scenario.inventory());
    let r = full_report(&a, &inv);
    assert!(truth.flows > 10);
    assert_matches_truth(&r, &truth);
    // Two of the four documented rows per flow counted, the NAT's internet-side halves skipped.
    assert_eq!(r.input.counted, 2 * truth.flows);
    assert_eq!(r.input.regional, 2 * truth.flows);
    assert_eq!(r.input.untranslated, 2 * truth.flows);
    assert_eq!(r.input.malformed, 0);
    // The regional NAT spans AZs: no cross-AZ charge is claimed for it.
    assert_eq!(r.cross_az.bytes, 0);
    assert_eq!(r.interfaces.len(), 1);
    assert_eq!(r.interfaces[0].interface_id, REGIONAL_NAT);
    // Never the NAT's public IP as a talker.
    let public = natflow::synth::REGIONAL_NAT_PUBLIC_IP.to_string();
    assert!(r
        .talkers
        .iter()
        .all(|t| t.source.ip != public && t.destination.ip != public));
}

#[test]
fn mixed_log_group_each_nat_counts_only_its_own() {
    // A zonal NAT (two interfaces) and a regional NAT record into the same log group.
    let scenario = Scenario::new(16, 12);
    let mut zonal = Vec::new();
    let zonal_truth = {
        let mut w = Writer::new(&mut zonal, &scenario, 31);
        w.fill(300_000).unwrap();
        w.truth
    };
    let (regional, regional_truth) = generate_regional(&scenario, 300_000, 37);
    let group = interleave(&zonal, &regional);
    let inv = Inventory::new(scenario.inventory());
    let enis: Vec<&str> = scenario.nat.iter().map(|n| n.id.as_str()).collect();

    // The zonal NAT's report: its interfaces (what build-report passes: only_nat).
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.only_nat(ZONAL_NAT, &enis);
    a.feed(&group);
    let r = full_report(&a, &inv);
    assert_matches_truth(&r, &zonal_truth);
    assert_eq!(r.input.other_interfaces, 4 * regional_truth.flows);
    assert_eq!(r.input.regional, 0);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // The regional NAT's report: its ID as resource-id, no interfaces.
    let mut b = Analyzer::new(Format::recorder(), &[]).unwrap();
    b.only_nat(REGIONAL_NAT, &[] as &[&str]);
    b.feed(&group);
    let r = full_report(&b, &inv);
    assert_matches_truth(&r, &regional_truth);
    assert_eq!(r.input.other_interfaces, 4 * zonal_truth.flows);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // Another NAT's ID selects nothing of either.
    let mut c = Analyzer::new(Format::recorder(), &[]).unwrap();
    c.only_nat("nat-0aaaaaaaaaaaaaaaa", &[] as &[&str]);
    c.feed(&group);
    assert_eq!(c.stats().counted, 0);
    assert_eq!(
        c.stats().other_interfaces,
        4 * (zonal_truth.flows + regional_truth.flows)
    );
}

#[test]
fn vpc_wide_flow_logs_count_only_the_nat_when_its_interfaces_are_known() {
    // Pods on an EKS node (secondary IPs) talk through the NAT; the node's own interface logs
    // the same flows with pkt-srcaddr = pod IP and srcaddr = the node's primary IP.
    let scenario = Scenario::new(8, 6);
    let mut buf = Vec::new();
    let truth = {
        let mut w = Writer::new(&mut buf, &scenario, 41);
        let node = &scenario.hosts[1];
        for k in 0..40u64 {
            let pod = std::net::Ipv4Addr::new(10, 0, 200, 10 + (k % 7) as u8);
            let remote = (k % 6) as usize;
            let (up, down) = (50_000 + k * 1000, 900_000 + k * 10);
            w.flow_from(pod, &node.az_id, remote, (k % 2) as usize, up, down)
                .unwrap();
            w.node_rows(1, pod, remote, up, down).unwrap();
        }
        w.truth
    };
    let inv = Inventory::new(scenario.inventory());
    let nat_enis: Vec<&str> = scenario.nat.iter().map(|n| n.id.as_str()).collect();

    // Known interfaces: exactly the truth, the node's records skipped and counted as such.
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.only_interfaces(&nat_enis);
    a.feed(&buf);
    let r = full_report(&a, &inv);
    assert_matches_truth(&r, &truth);
    assert_eq!(r.input.other_interfaces, truth.other_records);
    assert!(r
        .to_text()
        .contains(&format!("Skipped {} records", truth.other_records)));

    // Known NAT private IPs select the same records.
    let mut b = Analyzer::new(Format::recorder(), &[]).unwrap();
    b.only_addresses(&inv.nat_ips());
    b.feed(&buf);
    assert_matches_truth(&full_report(&b, &inv), &truth);

    // Nothing known: the node's rows inflate the figures, and the report says it cannot tell.
    let c = analyze(&buf);
    let r = full_report(&c, &inv);
    assert!(r.bytes > truth.upload + truth.download);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let text = r.to_text();
    assert!(
        text.contains("WARNING: The records come from 3 network interfaces"),
        "{text}"
    );
    assert!(
        text.contains("cannot tell NAT traffic from other translated traffic"),
        "{text}"
    );
}

#[test]
fn records_of_the_recorders_earlier_format_are_still_read() {
    // Recordings made before resource-id was added stay in the log group for its retention.
    let (scenario, buf, truth) = generate(10, 8, 150_000, 43);
    let v5: Vec<u8> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(' ').collect();
            if f.len() == natflow::format::RECORDER_FIELDS.len() {
                f.pop();
            }
            f.join(" ") + "\n"
        })
        .collect::<String>()
        .into_bytes();
    let a = analyze(&v5);
    let r = full_report(&a, &Inventory::new(scenario.inventory()));
    assert_matches_truth(&r, &truth);
    assert_eq!(r.input.malformed, truth.malformed);
}

#[test]
fn text_report_shows_a_few_malformed_lines() {
    let (_, buf, _) = generate(6, 6, 60_000, 47);
    let r = full_report(&analyze(&buf), &Inventory::default());
    let text = r.to_text();
    assert!(text.contains("Malformed lines (first 3):"), "{text}");
    assert!(text.contains("     this is not a flow log record"), "{text}");
}
