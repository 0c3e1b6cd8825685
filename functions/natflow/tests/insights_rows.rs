//! The report from Logs Insights rows equals the report from reading every record.
//!
//! The rows come from an oracle of what `queries/report-records.query` asks Insights to do, written
//! from its documentation (CloudWatch Logs User Guide, "parse": a glob's `*` takes the text up to
//! the next literal, the last one the rest, and an event the pattern does not match gets no
//! fields; "stats": `sum`, `count(*)`, `min`, `max` grouped `by` fields): the emulator's
//! evaluator (tests/harness/insights.py) is checked against the same semantics end to end.

use std::collections::BTreeMap;

use natflow::analyze::Analyzer;
use natflow::insights::{GROUP_FIELDS, RECORDS_QUERY};
use natflow::synth::{Scenario, Writer, ZONAL_NAT};
use natflow::{Format, Inventory, Prices, Report, ReportOptions};

/// The query's `parse ... as` names, in order.
fn parsed_names() -> Vec<String> {
    let parse = RECORDS_QUERY
        .lines()
        .find(|l| l.starts_with("parse @message "))
        .unwrap();
    parse
        .split(" as ")
        .nth(1)
        .unwrap()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

/// `parse @message "* * ... *"`: the first n-1 globs end at the next space, the last takes the rest.
fn parse(line: &str, n: usize) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line;
    for _ in 0..n - 1 {
        let (head, tail) = rest.split_once(' ')?;
        out.push(head.to_string());
        rest = tail;
    }
    out.push(rest.to_string());
    Some(out)
}

#[derive(Default)]
struct Agg {
    bytes: Option<f64>,
    packets: Option<f64>,
    records: u64,
    first: Option<f64>,
    last: Option<f64>,
}

/// What Insights returns for the query over `text`: one row per group, and the number of events
/// the pattern did not match (they have no group fields).
fn insights_rows(text: &str) -> Vec<Vec<(String, String)>> {
    let names = parsed_names();
    let idx = |n: &str| names.iter().position(|x| x == n).unwrap();
    let mut groups: BTreeMap<Vec<Option<String>>, Agg> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields = parse(line, names.len());
        let key: Vec<Option<String>> = GROUP_FIELDS
            .iter()
            .map(|(_, q)| fields.as_ref().map(|f| f[idx(q)].clone()))
            .collect();
        let num = |name: &str| fields.as_ref().and_then(|f| f[idx(name)].parse::<f64>().ok());
        let g = groups.entry(key).or_default();
        g.records += 1;
        // sum/min/max skip values that are not numbers.
        if let Some(b) = num("bytes") {
            *g.bytes.get_or_insert(0.0) += b;
        }
        if let Some(p) = num("packets") {
            *g.packets.get_or_insert(0.0) += p;
        }
        if let Some(s) = num("start_time") {
            g.first = Some(g.first.map_or(s, |m: f64| m.min(s)));
        }
        if let Some(e) = num("end_time") {
            g.last = Some(g.last.map_or(e, |m: f64| m.max(e)));
        }
    }
    groups
        .into_iter()
        .map(|(key, g)| {
            let mut row: Vec<(String, String)> = GROUP_FIELDS
                .iter()
                .zip(key)
                .filter_map(|((_, q), v)| v.map(|v| (q.to_string(), v)))
                .collect();
            let mut put = |f: &str, v: Option<f64>| {
                if let Some(v) = v {
                    row.push((f.to_string(), v.to_string()));
                }
            };
            put("sum_bytes", g.bytes);
            put("sum_packets", g.packets);
            put("records", Some(g.records as f64));
            put("first_start", g.first);
            put("last_end", g.last);
            row
        })
        .collect()
}

fn report(a: &Analyzer, inv: &Inventory) -> Report {
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).unwrap());
    o.inventory = Some(inv);
    o.top = 25;
    Report::build(a, &o)
}

/// Both reports, with what only reading can know (bytes read, malformed examples) made equal.
fn both(text: &str, inv: &Inventory, select: impl Fn(&mut Analyzer)) -> (Report, Report) {
    let mut streamed = Analyzer::new(Format::recorder(), &inv.nat_ips()).unwrap();
    select(&mut streamed);
    streamed.feed(text.as_bytes());
    let mut grouped = Analyzer::new(Format::recorder(), &inv.nat_ips()).unwrap();
    select(&mut grouped);
    let rows = insights_rows(text);
    assert!(rows.len() < natflow::insights::MAX_ROWS);
    for row in &rows {
        grouped.feed_group(row);
    }
    grouped.add_bytes_read(text.len() as u64);
    let (mut a, mut b) = (report(&streamed, inv), report(&grouped, inv));
    a.input.malformed_examples.clear();
    b.input.malformed_examples.clear();
    // The rows are fewer than the records: that is the point.
    assert!(
        rows.len() * 2 < a.input.lines as usize,
        "{} rows for {} lines",
        rows.len(),
        a.input.lines
    );
    (a, b)
}

fn generated(scenario: &Scenario, bytes: u64, seed: u64, regional: bool) -> String {
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf, scenario, seed);
    w.malformed = false;
    w.regional = regional;
    w.noise().unwrap();
    w.fill(bytes).unwrap();
    String::from_utf8(buf).unwrap()
}

#[test]
fn a_zonal_nats_report_from_rows_equals_the_report_from_records() {
    let scenario = Scenario::new(60, 40);
    let mut text = generated(&scenario, 1_500_000, 5, false);
    // Lines the pattern does not match are malformed either way.
    text.push_str("this is not a flow log record\n\nnor this one\n");
    let inv = Inventory::new(scenario.inventory());
    let (a, b) = both(&text, &inv, |_| {});
    assert!(a.input.malformed == 2 && a.input.counted > 1000, "{:?}", a.input);
    assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
    assert_eq!(a.to_text(), b.to_text());
}

#[test]
fn a_shared_log_group_selected_by_nat_gives_the_same_report_either_way() {
    let scenario = Scenario::new(30, 20);
    let zonal = generated(&scenario, 600_000, 8, false);
    let regional = generated(&scenario, 400_000, 9, true);
    let text = format!("{zonal}{regional}");
    let inv = Inventory::new(scenario.inventory());
    let enis: Vec<String> = scenario.nat.iter().map(|n| n.id.clone()).collect();
    for (nat, enis) in [(ZONAL_NAT, enis), (natflow::synth::REGIONAL_NAT, vec![])] {
        let (a, b) = both(&text, &inv, |an| an.only_nat(nat, &enis));
        assert!(
            a.input.other_interfaces > 0 && a.input.counted > 0,
            "{nat}: {:?}",
            a.input
        );
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap(),
            "{nat}"
        );
    }
}

/// Where the two paths cannot agree, by construction: a record with the pattern's field count
/// whose bytes are not a number is malformed when read, but Insights' `sum` skips the value, so
/// the group reads as a record without bytes (incomplete). Either way it is not counted as
/// traffic and the report says so in its input line.
#[test]
fn a_record_with_a_non_numeric_byte_count_is_not_traffic_either_way() {
    let line = "5 123456789012 eni-0aaa 10.0.1.5 10.0.0.10 1 2 6 1 notanumber 1 2 ACCEPT OK vpc-1 s a ingress 8 10.0.1.5 1.2.3.4 - - 0 IPv4 -";
    let inv = Inventory::new(vec![]);
    let mut streamed = Analyzer::new(Format::recorder(), &[]).unwrap();
    streamed.feed(line.as_bytes());
    let mut grouped = Analyzer::new(Format::recorder(), &[]).unwrap();
    for row in insights_rows(line) {
        grouped.feed_group(&row);
    }
    assert_eq!(streamed.stats().malformed, 1);
    assert_eq!(grouped.stats().incomplete, 1);
    assert_eq!(report(&streamed, &inv).bytes, 0);
    assert_eq!(report(&grouped, &inv).bytes, 0);
}

/// Records of the recorder's earlier format (25 fields, no resource-id, still in the group from
/// older recordings) match the same query: its last glob takes "type" alone.
#[test]
fn records_from_before_resource_id_give_the_same_report_either_way() {
    let scenario = Scenario::new(30, 20);
    let text: String = generated(&scenario, 400_000, 12, false)
        .lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((head, "-")) if l.split(' ').count() == 26 => format!("{head}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(text.lines().filter(|l| l.split(' ').count() == 25).count() > 1000);
    let inv = Inventory::new(scenario.inventory());
    let (a, b) = both(&text, &inv, |_| {});
    assert!(a.input.counted > 500 && a.input.malformed == 0, "{:?}", a.input);
    assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
}
