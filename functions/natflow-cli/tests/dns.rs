//! `natflow analyze --dns` / `--dns-log-group`: destinations named from Route 53 Resolver query
//! logs (`natflow generate --dns-output` writes those that go with its flows, and their truth), in
//! the layouts AWS delivers them: S3 (`AWSLogs/<account>/vpcdnsquerylogs/<vpc-id>/yyyy/mm/dd/
//! *.log.gz`), a CloudWatch Logs export (a timestamp before each event), and a log group read
//! with FilterLogEvents from an endpoint on loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use flate2::write::GzEncoder;
use serde_json::{json, Value};

fn bare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_natflow"));
    c.env_clear()
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/nonexistent/natflow-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/natflow-test/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

fn natflow(args: &[&str]) -> Output {
    bare().args(args).output().expect("natflow runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    records: PathBuf,
    inventory: PathBuf,
    dns: PathBuf,
    truth: Value,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (records, inventory, dns, truth) = (
        dir.path().join("records.log"),
        dir.path().join("inv.jsonl"),
        dir.path().join("dns.log"),
        dir.path().join("truth.json"),
    );
    let out = natflow(&[
        "generate",
        "--bytes",
        "600000",
        "--hosts",
        "20",
        "--remotes",
        "30",
        "--seed",
        "9",
        "-o",
        s(&records),
        "--inventory-output",
        s(&inventory),
        "--truth-output",
        s(&truth),
        "--dns-output",
        s(&dns),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
    Fixture {
        dir,
        records,
        inventory,
        dns,
        truth,
    }
}

fn gzip(text: &[u8], path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut e = GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap();
}

fn report(f: &Fixture, extra: &[&str]) -> (Value, String) {
    let mut args = vec![
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--top",
        "100000",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--format", "json", "--no-progress"]);
    let out = natflow(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// (source, destination) -> (hostnames, hostnames_from) of the report's talkers, of the truth.
type Named = BTreeMap<(String, String), (Value, Value)>;

fn named_in_report(r: &Value) -> Named {
    r["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let d = &t["destination"];
            (
                (
                    t["source"]["ip"].as_str().unwrap().into(),
                    d["ip"].as_str().unwrap().into(),
                ),
                (
                    d.get("hostnames").cloned().unwrap_or(Value::Null),
                    d.get("hostnames_from").cloned().unwrap_or(Value::Null),
                ),
            )
        })
        .collect()
}

fn named_in_truth(t: &Value) -> Named {
    t["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (
                    p["source"].as_str().unwrap().into(),
                    p["destination"].as_str().unwrap().into(),
                ),
                (
                    p.get("hostnames").cloned().unwrap_or(Value::Null),
                    p.get("hostnames_from").cloned().unwrap_or(Value::Null),
                ),
            )
        })
        .collect()
}

#[test]
fn s3_and_export_layouts_name_every_flow_as_the_truth_says() {
    let f = fixture();
    let want = named_in_truth(&f.truth);
    assert!(want.values().any(|(n, _)| n.is_null()) && want.values().any(|(_, from)| from == "other-hosts"));
    let text = std::fs::read_to_string(&f.dns).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    // S3 layout: two gzip files of a day, the permission probe beside them.
    let s3 = f
        .dir
        .path()
        .join("AWSLogs/123456789012/vpcdnsquerylogs/vpc-0a1b2c3d4e5f60718/2026/11/24");
    gzip(
        (lines[..half].join("\n") + "\n").as_bytes(),
        &s3.join("a_vpcdnsquerylogs_1.log.gz"),
    );
    gzip(
        (lines[half..].join("\n") + "\n").as_bytes(),
        &s3.join("a_vpcdnsquerylogs_2.log.gz"),
    );
    std::fs::write(
        f.dir.path().join("AWSLogs/aws-logs-write-test"),
        "Permission Check Successful",
    )
    .unwrap();
    let (r, _) = report(&f, &["--dns", s(&f.dir.path().join("AWSLogs"))]);
    assert_eq!(named_in_report(&r), want);
    assert_eq!(r["dns"]["input"]["malformed"], 2, "{}", r["dns"]["input"]);
    assert!(r["dns"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["domain"] == "docker.io"));
    // A CloudWatch Logs export (timestamp before each event), plain, and the S3 files: the same
    // names (every query counted twice keeps the order).
    let export: String = lines
        .iter()
        .map(|l| format!("2025-11-24T16:00:00.000Z {l}\n"))
        .collect();
    let exp = f
        .dir
        .path()
        .join("export/1a2b/vpc-0a1b2c3d4e5f60718_vpcdnsquerylogs/000000");
    std::fs::create_dir_all(exp.parent().unwrap()).unwrap();
    std::fs::write(&exp, export).unwrap();
    let (r2, _) = report(&f, &["--dns", s(&exp)]);
    assert_eq!(named_in_report(&r2), want);
    assert_eq!(r2["dns"]["input"]["queries"], r["dns"]["input"]["queries"]);
}

#[test]
fn text_names_destinations_and_groups_by_domain_and_without_dns_nothing_changes() {
    let f = fixture();
    let out = natflow(&[
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--dns",
        s(&f.dns),
        "--no-progress",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("By destination domain (names from the VPC's DNS queries):"),
        "{text}"
    );
    assert!(text.contains("DNS (Route 53 Resolver query logs): "), "{text}");
    let plain = natflow(&[
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--no-progress",
    ]);
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(!plain.contains("DNS") && !plain.contains("domain"), "{plain}");
    // Only the named destinations' labels and the DNS sections differ.
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("DNS") && !l.starts_with("     ") && !l.is_empty())
            .map(|l| match l.find(" -> ") {
                Some(i) => l[..i].to_string(),
                None => l.to_string(),
            })
            .collect()
    };
    assert_eq!(strip(&text), strip(&plain));
}

#[test]
fn damaged_and_foreign_dns_files_are_warned_about_a_missing_one_is_an_error() {
    let f = fixture();
    let bad = f.dir.path().join("dns/broken.log.gz");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    // Flow-log records given as DNS logs: no query in them, every line malformed.
    let (r, _) = report(&f, &["--dns", s(&bad), "--dns", s(&f.records)]);
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("1 DNS query-log file(s) skipped") && warnings.contains("broken.log.gz"),
        "{warnings}"
    );
    assert!(
        warnings.contains("hold no Route 53 Resolver query-log entry") && warnings.contains("records.log"),
        "{warnings}"
    );
    assert!(r["dns"]["input"]["malformed"].as_u64().unwrap() > 0);
    assert!(r["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["destination"].get("hostnames").is_none()));
    let out = natflow(&["analyze", s(&f.records), "--dns", "/nonexistent/dns", "--no-progress"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dns"));
}

type Handler = dyn Fn(&str, &Value) -> (u16, Value) + Send + Sync;

/// A CloudWatch Logs endpoint on loopback (awsJson1.1, `X-Amz-Target: Logs_20140328.<Action>`);
/// every request's action and body is logged.
fn endpoint(handler: Arc<Handler>) -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut length, mut target) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-amz-target:") {
                    target = line.trim().rsplit('.').next().unwrap_or("").to_string();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().unwrap().push((target.clone(), body.clone()));
            let (status, payload) = handler(&target, &body);
            let payload = payload.to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: \
                 00000000-0000-0000-0000-000000000000\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (url, log)
}

/// FilterLogEvents pages as the API reference describes them: "a returned page might only be
/// partially full, or even empty", and only a missing nextToken ends the pages. Here: an empty
/// first page, then the events in two pages.
#[test]
fn a_dns_log_group_is_read_page_by_page_over_the_flows_window() {
    let f = fixture();
    let text = std::fs::read_to_string(&f.dns).unwrap();
    let events: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(i, l)| json!({"logStreamName": "vpc-0a1b2c3d4e5f60718_vpcdnsquerylogs_x", "timestamp": 1_764_000_000_000u64 + i as u64, "message": l, "ingestionTime": 1_764_000_100_000u64, "eventId": i.to_string()}))
        .collect();
    let half = events.len() / 2;
    let pages = [vec![], events[..half].to_vec(), events[half..].to_vec()];
    let handler: Arc<Handler> = Arc::new(move |action, body| {
        if action != "FilterLogEvents" {
            return (400, json!({"__type": "UnknownOperationException", "message": action}));
        }
        let i: usize = body["nextToken"].as_str().map_or(0, |t| t.parse().unwrap());
        let mut page = json!({"events": pages[i], "searchedLogStreams": []});
        if i + 1 < pages.len() {
            page["nextToken"] = json!((i + 1).to_string());
        }
        (200, page)
    });
    let (url, log) = endpoint(handler);
    let out = bare()
        .args([
            "analyze",
            s(&f.records),
            "--inventory",
            s(&f.inventory),
            "--top",
            "100000",
        ])
        .args([
            "--dns-log-group",
            "/natrec/test/dns",
            "--region",
            "eu-west-1",
            "--format",
            "json",
            "--no-progress",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_ENDPOINT_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(named_in_report(&r), named_in_truth(&f.truth));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    // The flows' window, in milliseconds.
    let (start, end) = (r["window"][0].as_i64().unwrap(), r["window"][1].as_i64().unwrap());
    for (action, body) in log.iter() {
        assert_eq!(action, "FilterLogEvents");
        assert_eq!(body["logGroupName"], "/natrec/test/dns");
        assert_eq!(
            (body["startTime"].as_i64(), body["endTime"].as_i64()),
            (Some(start * 1000), Some(end * 1000))
        );
    }
}

#[test]
fn a_refused_dns_log_group_is_one_actionable_line() {
    let f = fixture();
    let handler: Arc<Handler> = Arc::new(|_, _| {
        (
            400,
            json!({"__type": "ResourceNotFoundException", "message": "The specified log group does not exist."}),
        )
    });
    let (url, _) = endpoint(handler);
    let out = bare()
        .args([
            "analyze",
            s(&f.records),
            "--dns-log-group",
            "/nope",
            "--region",
            "eu-west-1",
            "--no-progress",
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_ENDPOINT_URL", &url)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("FilterLogEvents on /nope") && err.contains("does not exist"),
        "{err}"
    );
}
