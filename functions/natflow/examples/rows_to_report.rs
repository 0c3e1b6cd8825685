//! Benchmark of our side of the server-side report (issue 11): from Logs Insights answers
//! (rows of `queries/report-records.query`) to the finished report, text and JSON. Not a test;
//! run by `tests/bench/report_paths.py`, which builds it in release and reads each run's peak RSS.
//!
//!     rows_to_report generate ROWS HOSTS REMOTES SEED DIR   # untimed: the answers and inventory
//!     rows_to_report report DIR                             # timed: answers to report
//!
//! The rows are what the query returns for NAT traffic: the groups of `natflow::synth`'s
//! scenario (VPC hosts in two AZs, remotes a third of which are AWS services, a NAT interface in
//! each AZ), each flow as the NAT's interface logs it (four records, two translated), grouped by
//! the query's `by` fields with sums and counts, plus rejected, NODATA and SKIPDATA groups,
//! written as GetQueryResults pages (`results`: lists of `{field, value}`; 10,000 rows a page,
//! `nextToken` while the answer goes on), at most 100,000 rows an answer. `report` is timed from
//! reading the inventory (the scenario's hosts' ENIs and the NAT's) through decoding each page
//! and turning its rows into compact `Group`s as it arrives (as the recorder and the CLI do), one
//! answer's groups held at a time and counted (`Analyzer::feed_answer`), `Report::build`, the
//! text and the JSON; it prints one JSON line of timings (milliseconds) and sizes.

use std::collections::BTreeMap;
use std::time::Instant;

use natflow::insights::{Group, FIRST_START, LAST_END, MAX_ROWS, PAGE_ROWS, RECORDS, SUM_BYTES, SUM_PACKETS};
use natflow::report::ServerSide;
use natflow::synth::{Rng, Scenario, ZONAL_NAT};
use natflow::{Analyzer, Format, Inventory, Prices, Report, ReportOptions};

/// One GetQueryResults page, as far as the report reads it.
#[derive(serde::Deserialize)]
struct Answer {
    results: Vec<Vec<ResultField>>,
    #[serde(default, rename = "nextToken")]
    next_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ResultField {
    field: String,
    value: String,
}

/// The grouped fields of one row, in the query's `by` order.
type Key = [String; 11];

#[derive(Default)]
struct Sums {
    bytes: u64,
    packets: u64,
    records: u64,
}

#[allow(clippy::too_many_arguments)]
fn key(
    iface: &str,
    src: &str,
    dst: &str,
    action: &str,
    status: &str,
    az: &str,
    psrc: &str,
    pdst: &str,
    ssvc: &str,
    dsvc: &str,
) -> Key {
    [iface, src, dst, action, status, az, psrc, pdst, ssvc, dsvc, "-"].map(str::to_string)
}

/// The groups Logs Insights would return for the scenario's traffic, until there are `rows`.
fn groups(s: &Scenario, rows: usize, seed: u64) -> BTreeMap<Key, Sums> {
    let mut rng = Rng::new(seed);
    let mut g: BTreeMap<Key, Sums> = BTreeMap::new();
    fn add(g: &mut BTreeMap<Key, Sums>, k: Key, bytes: u64, records: u64) {
        let e = g.entry(k).or_default();
        e.bytes += bytes;
        e.packets += bytes / 1200 + records;
        e.records += records;
    }
    let mut n = 0u64;
    loop {
        n += 1;
        let h = rng.below(s.hosts.len() as u64) as usize;
        let r = rng.below(s.remotes.len() as u64) as usize;
        let (host, remote) = (&s.hosts[h], &s.remotes[r]);
        // Mostly the NAT in the host's own AZ; one flow in eight crosses AZs.
        let same = s.nat.iter().position(|n| n.az_id == host.az_id).unwrap_or(0);
        let nat = &s.nat[if rng.below(8) == 0 { 1 - same } else { same }];
        let (hip, rip, nip) = (host.ip.to_string(), remote.ip.to_string(), nat.ip.to_string());
        let svc = remote.service.unwrap_or("-");
        // Heavy-tailed sizes: a few talkers carry most bytes.
        let (up_scale, down_scale) = (rng.below(20), rng.below(22));
        let up = 1000 + rng.below(1 << (10 + up_scale));
        let down = 1000 + rng.below(1 << (10 + down_scale));
        let recs = 1 + rng.below(30);
        let az = nat.az_id.as_str();
        match n % 50 {
            0 => add(
                &mut g,
                key(&nat.id, &rip, &nip, "REJECT", "OK", az, &rip, &nip, svc, "-"),
                60 * recs,
                recs,
            ),
            1 => add(
                &mut g,
                key(&nat.id, "-", "-", "-", "NODATA", az, "-", "-", "-", "-"),
                0,
                recs,
            ),
            2 => add(
                &mut g,
                key(&nat.id, "-", "-", "-", "SKIPDATA", az, "-", "-", "-", "-"),
                0,
                1,
            ),
            _ => {
                add(
                    &mut g,
                    key(&nat.id, &hip, &nip, "ACCEPT", "OK", az, &hip, &rip, "-", svc),
                    up,
                    recs,
                );
                add(
                    &mut g,
                    key(&nat.id, &nip, &rip, "ACCEPT", "OK", az, &nip, &rip, "-", svc),
                    up,
                    recs,
                );
                add(
                    &mut g,
                    key(&nat.id, &rip, &nip, "ACCEPT", "OK", az, &rip, &nip, svc, "-"),
                    down,
                    recs,
                );
                add(
                    &mut g,
                    key(&nat.id, &nip, &hip, "ACCEPT", "OK", az, &rip, &hip, svc, "-"),
                    down,
                    recs,
                );
            }
        }
        if g.len() >= rows {
            while g.len() > rows {
                g.pop_last();
            }
            return g;
        }
    }
}

/// The groups as the GetQueryResults JSON carries them: every value a string, large sums the
/// way Insights may print them (float notation).
fn answer(g: &BTreeMap<Key, Sums>) -> String {
    const BY: [&str; 11] = [
        "interface_id",
        "srcaddr",
        "dstaddr",
        "action",
        "log_status",
        "az_id",
        "pkt_srcaddr",
        "pkt_dstaddr",
        "pkt_src_aws_service",
        "pkt_dst_aws_service",
        "resource_id",
    ];
    let t0 = 1_764_000_000u64;
    let results: Vec<serde_json::Value> = g
        .iter()
        .map(|(k, s)| {
            let mut row: Vec<serde_json::Value> = BY
                .iter()
                .zip(k.iter())
                .map(|(f, v)| serde_json::json!({"field": f, "value": v}))
                .collect();
            let bytes = if s.bytes >= 1_000_000 {
                format!("{:e}", s.bytes as f64)
            } else {
                s.bytes.to_string()
            };
            for (f, v) in [
                (SUM_BYTES, bytes),
                (SUM_PACKETS, s.packets.to_string()),
                (RECORDS, s.records.to_string()),
                (FIRST_START, t0.to_string()),
                (LAST_END, (t0 + 900).to_string()),
            ] {
                row.push(serde_json::json!({"field": f, "value": v}));
            }
            serde_json::Value::Array(row)
        })
        .collect();
    serde_json::json!({"status": "Complete", "results": results}).to_string()
}

/// A page of an answer that goes on: with a `nextToken`.
fn page_going_on(page: String, token: usize) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&page).expect("a page");
    v["nextToken"] = serde_json::json!(token.to_string());
    v.to_string()
}

fn usage() -> ! {
    eprintln!("usage: rows_to_report generate ROWS HOSTS REMOTES SEED DIR | rows_to_report report DIR");
    std::process::exit(2)
}

/// Writes DIR/answers.jsonl (one GetQueryResults page per line, 10,000 rows each, answers of at
/// most 100,000 rows: a page with a `nextToken` is followed by the rest of its answer) and
/// DIR/inventory.jsonl (the recorder's inventory).
fn generate(args: &[String]) {
    let [rows, hosts, remotes, seed, dir] = args else {
        usage()
    };
    let n = |s: &String| s.parse::<u64>().unwrap_or_else(|_| usage());
    let scenario = Scenario::new(n(hosts) as usize, n(remotes) as usize);
    let all = groups(&scenario, n(rows) as usize, n(seed));
    let dir = std::path::Path::new(dir);
    let mut answers = String::new();
    let mut chunk = BTreeMap::new();
    let total = all.len();
    let mut done = 0usize;
    for (k, v) in all {
        chunk.insert(k, v);
        done += 1;
        if chunk.len() == PAGE_ROWS || done == total {
            let page = answer(&std::mem::take(&mut chunk));
            // The answer goes on unless it holds MAX_ROWS rows or the rows are all written.
            let goes_on = !done.is_multiple_of(MAX_ROWS) && done < total;
            answers += &if goes_on {
                page_going_on(page, done % MAX_ROWS)
            } else {
                page
            };
            answers.push('\n');
        }
    }
    std::fs::write(dir.join("answers.jsonl"), answers).expect("answers written");
    let inventory: Vec<String> = scenario
        .inventory()
        .iter()
        .map(|e| serde_json::to_string(e).expect("an ENI serializes"))
        .collect();
    std::fs::write(dir.join("inventory.jsonl"), inventory.join("\n") + "\n").expect("inventory written");
}

/// Timed: reading the inventory, decoding every answer and feeding its rows, building the
/// report, its text and its JSON. Answers are taken one at a time, as the CLI does.
fn report(dir: &str) {
    let dir = std::path::Path::new(dir);
    let t = Instant::now();
    let inventory = Inventory::from_json(&std::fs::read_to_string(dir.join("inventory.jsonl")).expect("inventory"))
        .expect("a valid inventory");
    let nat_ifaces: Vec<String> = inventory
        .enis()
        .iter()
        .filter(|e| e.kind() == natflow::inventory::ResourceKind::NatGateway)
        .map(|e| e.interface_id.clone())
        .collect();
    let mut a = Analyzer::new(Format::recorder(), &inventory.nat_ips()).expect("the recorder's format");
    // The recorder's selection: the NAT's interfaces, or its ID as resource-id.
    a.only_nat(ZONAL_NAT, &nat_ifaces);
    let inventory_ms = t.elapsed().as_secs_f64() * 1e3;

    let t1 = Instant::now();
    let (mut rows, mut records, mut answer_bytes, mut decode_ms) = (0usize, 0u64, 0usize, 0.0);
    let (mut pages, mut answers_n) = (0usize, 0usize);
    let mut groups: Vec<Group> = Vec::new();
    let answers = std::io::BufReader::new(std::fs::File::open(dir.join("answers.jsonl")).expect("answers"));
    for line in std::io::BufRead::lines(answers) {
        let line = line.expect("a page");
        answer_bytes += line.len();
        pages += 1;
        let td = Instant::now();
        // Decoded into typed fields, as the SDK does (GetQueryResults: `results`, lists of
        // ResultField `{field, value}`), then each row into a compact group, page by page.
        let page: Answer = serde_json::from_str(&line).expect("a GetQueryResults page");
        groups.extend(
            page.results
                .iter()
                .map(|row| Group::from_result(row.iter().map(|f| (Some(f.field.as_str()), Some(f.value.as_str()))))),
        );
        decode_ms += td.elapsed().as_secs_f64() * 1e3;
        if page.next_token.is_none() {
            // The answer is complete: counted, then dropped.
            let answer_records: u64 = groups.iter().map(Group::records).sum();
            records += answer_records;
            rows += groups.len();
            answers_n += 1;
            a.feed_answer(&groups, answer_records, answer_records * 140);
            groups = Vec::new();
        }
    }
    assert!(groups.is_empty(), "the last page ends its answer");
    let rows_ms = t1.elapsed().as_secs_f64() * 1e3;

    let t2 = Instant::now();
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).expect("built-in prices"));
    o.inventory = Some(&inventory);
    o.top = 10;
    o.server_side = Some(ServerSide {
        queries: 1,
        split: 0,
        records_scanned: records,
        bytes_scanned: records * 140,
        cost_usd: 0.0,
    });
    let report = Report::build(&a, &o);
    let build_ms = t2.elapsed().as_secs_f64() * 1e3;
    let t3 = Instant::now();
    let text = report.to_text();
    let out = serde_json::to_string_pretty(&report).expect("a report serializes");
    let render_ms = t3.elapsed().as_secs_f64() * 1e3;
    let total_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "pages": pages,
            "answers": answers_n,
            "records": records,
            "inventory_enis": inventory.len(),
            "distinct_talkers": report.distinct_talkers,
            "counted": a.stats().counted,
            "answer_bytes": answer_bytes,
            "text_bytes": text.len(),
            "json_bytes": out.len(),
            "inventory_ms": inventory_ms,
            "decode_ms": decode_ms,
            "rows_ms": rows_ms,
            "build_ms": build_ms,
            "render_ms": render_ms,
            "total_ms": total_ms,
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => generate(&args[1..]),
        Some("report") if args.len() == 2 => report(&args[1]),
        _ => usage(),
    }
}
