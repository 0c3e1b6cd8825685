//! Destinations by name against generated Route 53 Resolver query logs whose truth is known query
//! by query (`natflow::synth::write_dns`): the report's names equal the truth flow by flow.

use std::net::IpAddr;

use natflow::analyze::Analyzer;
use natflow::dns::DnsIndex;
use natflow::synth::{write_dns, DnsTruth, Scenario, Truth, Writer};
use natflow::{Format, Inventory, Prices, Report, ReportOptions};

const T0: u64 = 1_764_000_000;

fn generate(seed: u64) -> (Scenario, Vec<u8>, Truth, Vec<u8>, DnsTruth) {
    let scenario = Scenario::new(30, 40);
    let mut flows = Vec::new();
    let truth = {
        let mut w = Writer::new(&mut flows, &scenario, seed);
        w.noise().unwrap();
        w.fill(1_500_000).unwrap();
        w.truth
    };
    let mut dns = Vec::new();
    let dns_truth = write_dns(&scenario, &truth, &mut dns, T0).unwrap();
    (scenario, flows, truth, dns, dns_truth)
}

fn report(scenario: &Scenario, flows: &[u8], dns: Option<&DnsIndex>) -> Report {
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.feed(flows);
    let inv = Inventory::new(scenario.inventory());
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).unwrap());
    o.inventory = Some(&inv);
    o.top = usize::MAX;
    o.dns = dns;
    Report::build(&a, &o)
}

#[test]
fn every_flows_destination_is_named_as_the_queries_say() {
    let (scenario, flows, truth, dns, dt) = generate(7);
    // The scenario holds every case it is meant to.
    assert!(
        dt.cname_chains > 0 && dt.several_names > 0 && dt.ipv6_answers > 0,
        "{dt:?}"
    );
    assert!(dt.named_by_other_hosts > 0 && dt.resolved_before_window > 0, "{dt:?}");
    assert!(dt.failed > 0 && dt.without_address > 1 && dt.malformed == 2, "{dt:?}");
    let mut index = DnsIndex::new();
    index.feed(&dns);
    let r = report(&scenario, &flows, Some(&index));
    assert_eq!(r.talkers.len(), truth.pairs.len());
    let (mut named, mut unnamed, mut by_others) = (0, 0, 0);
    for t in &r.talkers {
        let (src, dst): (IpAddr, IpAddr) = (t.source.ip.parse().unwrap(), t.destination.ip.parse().unwrap());
        let d = &t.destination;
        match dt.expected(src, dst) {
            Some((names, own)) => {
                assert_eq!(d.hostnames, names, "{src} -> {dst}");
                let from = if own { "source" } else { "other-hosts" };
                assert_eq!(d.hostnames_from.as_deref(), Some(from), "{src} -> {dst}");
                assert!(
                    d.label.starts_with(&names[0]) && d.label.contains(&t.destination.ip),
                    "{}",
                    d.label
                );
                assert_eq!(d.label.contains("another host's query"), !own, "{}", d.label);
                named += 1;
                by_others += usize::from(!own);
            }
            None => {
                assert!(
                    d.hostnames.is_empty() && d.hostnames_from.is_none(),
                    "{src} -> {dst}: {d:?}"
                );
                assert!(!d.label.contains('('), "{}", d.label);
                unnamed += 1;
            }
        }
    }
    assert!(
        named > 0 && unnamed > 0 && by_others > 0,
        "{named} {unnamed} {by_others}"
    );
    // The IPv6 answers too: every AAAA address names what its host asked.
    for (ip, host, _) in dt.answers.keys().filter(|(a, _, _)| a.is_ipv6()) {
        let n = index.names(Some(*host), *ip).unwrap();
        assert_eq!(
            Some((n.names, n.asked_by_source)),
            dt.expected(*host, *ip),
            "{host} -> {ip}"
        );
    }
    // What the logs held, counted as written.
    let s = index.stats();
    assert_eq!(
        (s.lines, s.queries, s.answered, s.failed, s.without_address, s.malformed),
        (
            dt.lines,
            dt.queries,
            dt.answered,
            dt.failed,
            dt.without_address,
            dt.malformed
        )
    );
}

#[test]
fn domains_add_up_to_the_named_bytes_and_follow_the_first_name() {
    let (scenario, flows, truth, dns, dt) = generate(11);
    let mut index = DnsIndex::new();
    index.feed(&dns);
    let r = report(&scenario, &flows, Some(&index));
    let d = r.dns.as_ref().expect("a dns section");
    assert_eq!(d.named_bytes + d.unnamed_bytes, r.bytes);
    // By the truth: each pair's bytes under its first expected name's domain.
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    let mut unnamed = 0;
    for (&(h, ip), &(up, down)) in &truth.pairs {
        match dt.expected(h, ip) {
            Some((names, _)) => *want.entry(natflow::dns::domain(&names[0])).or_default() += up + down,
            None => unnamed += up + down,
        }
    }
    assert_eq!(d.unnamed_bytes, unnamed);
    let got: std::collections::BTreeMap<String, u64> = d.domains.iter().map(|u| (u.domain.clone(), u.bytes)).collect();
    assert_eq!(got, want);
    assert!(
        got.contains_key("docker.io")
            && got.contains_key("example.co.uk")
            && got.contains_key("s3.us-east-1.amazonaws.com"),
        "{got:?}"
    );
    assert!(d.domains.windows(2).all(|w| w[0].bytes >= w[1].bytes));
    let text = r.to_text();
    assert!(
        text.contains("By destination domain (names from the VPC's DNS queries):"),
        "{text}"
    );
    assert!(text.contains("     docker.io: "), "{text}");
    assert!(text.contains("DNS (Route 53 Resolver query logs): "), "{text}");
}

#[test]
fn without_dns_input_the_report_is_unchanged() {
    let (scenario, flows, _, dns, _) = generate(3);
    let plain = report(&scenario, &flows, None);
    assert!(plain.dns.is_none());
    assert!(plain.talkers.iter().all(|t| t.destination.hostnames.is_empty()));
    let v = serde_json::to_value(&plain).unwrap();
    assert!(v.get("dns").is_none());
    assert!(!v.to_string().contains("hostnames"));
    // The same flows with DNS differ only by the names.
    let mut index = DnsIndex::new();
    index.feed(&dns);
    let mut named = report(&scenario, &flows, Some(&index));
    named.dns = None;
    for t in named.talkers.iter_mut() {
        t.destination.hostnames.clear();
        t.destination.hostnames_from = None;
    }
    for (a, b) in named.talkers.iter().zip(&plain.talkers) {
        assert_eq!(
            (&a.source, a.bytes, &a.destination.ip),
            (&b.source, b.bytes, &b.destination.ip)
        );
    }
}

/// AWS's default format has no packet addresses: destinations are listed apart, without a source,
/// so they are named by any host's queries and `hostnames_from` is not said.
#[test]
fn destinations_without_a_source_are_named_by_any_hosts_queries() {
    let (scenario, flows, _, dns, dt) = generate(5);
    let v2: String = String::from_utf8(flows)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').take(14).collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let format = Format::parse(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
    )
    .unwrap();
    let inv = Inventory::new(scenario.inventory());
    let mut a = Analyzer::new(format, &inv.nat_ips()).unwrap();
    a.feed(v2.as_bytes());
    let mut index = DnsIndex::new();
    index.feed(&dns);
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).unwrap());
    o.inventory = Some(&inv);
    o.top = usize::MAX;
    o.dns = Some(&index);
    let r = Report::build(&a, &o);
    assert!(!r.destinations.is_empty());
    let mut named = 0;
    for t in &r.destinations {
        let ip: IpAddr = t.destination.ip.parse().unwrap();
        // Any host's names: the truth seen from a host that asked for nothing.
        let want = dt.expected("10.255.255.255".parse().unwrap(), ip).map(|(n, _)| n);
        assert_eq!(
            Some(t.destination.hostnames.clone()).filter(|n| !n.is_empty()),
            want,
            "{ip}"
        );
        assert!(t.destination.hostnames_from.is_none());
        assert!(!t.destination.label.contains("another host"), "{}", t.destination.label);
        named += usize::from(!t.destination.hostnames.is_empty());
    }
    assert!(named > 0);
}
