//! The CLI on files: generated flow logs with a known truth, in every layout it reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::write::GzEncoder;
use serde_json::Value;

fn natflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_natflow"))
        .args(args)
        .env_remove("AWS_REGION")
        .output()
        .expect("natflow runs")
}

fn ok_json(args: &[&str]) -> Value {
    let out = natflow(args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

struct Fixture {
    dir: tempfile::TempDir,
    records: PathBuf,
    inventory: PathBuf,
    truth: Value,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.log");
    let inventory = dir.path().join("inventory.jsonl");
    let truth = dir.path().join("truth.json");
    let out = natflow(&[
        "generate",
        "--bytes",
        "3000000",
        "--hosts",
        "60",
        "--remotes",
        "40",
        "--seed",
        "5",
        "-o",
        records.to_str().unwrap(),
        "--inventory-output",
        inventory.to_str().unwrap(),
        "--truth-output",
        truth.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
    Fixture {
        dir,
        records,
        inventory,
        truth,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn gzip(text: &[u8], path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut e = GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap();
}

/// (upload, download, talkers) of a JSON report.
fn totals(r: &Value) -> (u64, u64, u64) {
    (
        r["upload_bytes"].as_u64().unwrap(),
        r["download_bytes"].as_u64().unwrap(),
        r["distinct_talkers"].as_u64().unwrap(),
    )
}

#[test]
fn json_report_matches_the_generated_truth_pair_by_pair() {
    let f = fixture();
    let r = ok_json(&[
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--format",
        "json",
        "--top",
        "100000",
        "--no-progress",
    ]);
    let pairs = f.truth["pairs"].as_array().unwrap();
    assert_eq!(
        totals(&r),
        (
            f.truth["upload"].as_u64().unwrap(),
            f.truth["download"].as_u64().unwrap(),
            pairs.len() as u64
        )
    );
    let talkers = r["talkers"].as_array().unwrap();
    for p in pairs {
        let t = talkers
            .iter()
            .find(|t| t["source"]["ip"] == p["source"] && t["destination"]["ip"] == p["destination"])
            .unwrap_or_else(|| panic!("missing {p}"));
        assert_eq!(t["upload_bytes"], p["upload"]);
        assert_eq!(t["download_bytes"], p["download"]);
    }
    assert_eq!(r["cross_az"]["bytes"], f.truth["cross_az"]);
    assert_eq!(r["input"]["malformed"], f.truth["malformed"]);
}

#[test]
fn one_thread_or_many_gives_the_same_report() {
    let f = fixture();
    let base = [
        "analyze",
        s(&f.records),
        "--format",
        "json",
        "--top",
        "50",
        "--no-progress",
    ];
    let one = ok_json(&[&base[..], &["--threads", "1"]].concat());
    let four = ok_json(&[&base[..], &["--threads", "4"]].concat());
    assert_eq!(totals(&one), totals(&four));
    assert_eq!(one["input"], four["input"]);
    assert_eq!(one["services"], four["services"]);
    let ips = |r: &Value| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = r["talkers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    format!("{}>{}", t["source"]["ip"], t["destination"]["ip"]),
                    t["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ips(&one), ips(&four));
}

#[test]
fn gzip_s3_and_cloudwatch_export_layouts_give_the_same_totals() {
    let f = fixture();
    let plain = ok_json(&["analyze", s(&f.records), "--format", "json", "--no-progress"]);
    let text = std::fs::read(&f.records).unwrap();

    // Plain gzip.
    let gz = f.dir.path().join("records.log.gz");
    gzip(&text, &gz);
    assert_eq!(
        totals(&ok_json(&["analyze", s(&gz), "--format", "json", "--no-progress"])),
        totals(&plain)
    );

    // S3 flow-log layout: a header line first, split over two hourly files.
    let s3 = f.dir.path().join("s3");
    let header = natflow::format::RECORDER_FIELDS.join(" ") + "\n";
    let mid = text[..text.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let day = s3.join("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/28");
    gzip(
        &[header.as_bytes(), &text[..mid]].concat(),
        &day.join("a_vpcflowlogs_us-east-1_fl-1_20261128T1000Z_x.log.gz"),
    );
    gzip(
        &[header.as_bytes(), &text[mid..]].concat(),
        &day.join("a_vpcflowlogs_us-east-1_fl-1_20261128T1100Z_y.log.gz"),
    );
    let r = ok_json(&["analyze", s(&s3), "--format", "json", "--no-progress"]);
    assert_eq!(totals(&r), totals(&plain));
    assert_eq!(r["input"]["headers"], 2);
    assert_eq!(r["input"]["malformed"], plain["input"]["malformed"]);

    // CloudWatch Logs export: timestamp before each record, a permission probe beside the data.
    let export = f.dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(export.join("aws-logs-write-test"), "Permission Check Successful").unwrap();
    let stamped: String = String::from_utf8(text.clone())
        .unwrap()
        .lines()
        .map(|l| format!("2026-11-28T10:00:00.000Z {l}\n"))
        .collect();
    gzip(
        stamped.as_bytes(),
        &export.join("0f2a/eni-0aaaaaaaaaaaaaaa1-all/000000.gz"),
    );
    let r = ok_json(&["analyze", s(&export), "--format", "json", "--no-progress"]);
    assert_eq!(totals(&r), totals(&plain));
    assert_eq!(r["input"]["lines"], plain["input"]["lines"]);
}

#[test]
fn custom_field_order_is_read_with_fields() {
    let f = fixture();
    let plain = ok_json(&["analyze", s(&f.records), "--format", "json", "--no-progress"]);
    // The same records with the columns reversed.
    let reversed: String = std::fs::read_to_string(&f.records)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').rev().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let path = f.dir.path().join("reversed.log");
    std::fs::write(&path, reversed).unwrap();
    let fields: Vec<&str> = natflow::format::RECORDER_FIELDS.iter().rev().copied().collect();
    let spec = fields.iter().map(|f| format!("${{{f}}}")).collect::<Vec<_>>().join(" ");
    let r = ok_json(&[
        "analyze",
        s(&path),
        "--fields",
        &spec,
        "--format",
        "json",
        "--no-progress",
    ]);
    assert_eq!(totals(&r), totals(&plain));
}

#[test]
fn text_report_names_talkers_services_and_cross_az() {
    let f = fixture();
    let out = natflow(&[
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--no-progress",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Top talkers"), "{text}");
    assert!(text.contains("(host-"), "inventory names: {text}");
    assert!(text.contains("gateway VPC endpoint for S3 is free"), "{text}");
    assert!(text.contains("Cross-AZ: ") && text.contains("use1-az"), "{text}");
    assert!(text.contains("prices us-east-1"), "{text}");
}

#[test]
fn unreadable_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["analyze".into(), dir.path().join("nope.log").display().to_string()],
            "cannot read",
        ),
        (vec!["analyze".into()], "nothing to read"),
        (
            vec![
                "analyze".into(),
                "-".into(),
                "--fields".into(),
                "version srcadr dstaddr bytes".into(),
            ],
            "unknown field \"srcadr\"",
        ),
        (
            vec![
                "analyze".into(),
                "-".into(),
                "--fields".into(),
                "version srcaddr dstaddr bytes".into(),
            ],
            "NAT's own addresses are needed",
        ),
        (
            vec!["analyze".into(), "--log-group".into(), "g".into()],
            "--log-group needs --start and --end",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = natflow(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // A corrupt .gz: right magic, broken stream.
    let bad = dir.path().join("broken.log.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    let out = natflow(&["analyze", s(&bad), "--no-progress"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid gzip"));
    // An inventory that is not one.
    let inv = dir.path().join("inv.json");
    std::fs::write(&inv, "{\"interface_id\": 1}\n").unwrap();
    let out = natflow(&["analyze", "-", "--inventory", s(&inv)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inventory: line 1"));
}
