//! The analysis against generated flow logs whose truth is known flow by flow: NAT double rows,
//! cross-AZ sources, AWS-service destinations, noise and garbage lines.

use std::net::IpAddr;

use natflow::analyze::Analyzer;
use natflow::synth::{Scenario, Writer};
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
                assert_eq!(s.endpoint.as_deref(), Some("interface"));
                assert!((s.saving_usd - s.bytes as f64 / gb * 0.035).abs() < 1e-5);
            }
        }
    }
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
