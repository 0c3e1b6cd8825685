//! `natflow analyze --log-group ... --server-side` against a CloudWatch Logs endpoint on loopback
//! that answers StartQuery, GetQueryResults and StopQuery as the API reference documents them
//! (awsJson1.1, `X-Amz-Target: Logs_20140328.<Action>`; query status Scheduled/Running, then
//! Complete, Failed, Cancelled or Timeout; at most 10,000 result rows; `LimitExceededException`
//! when the account's concurrent queries are at their quota). The end-to-end equality with the
//! streaming path runs in the emulator (tests/test_cli_server_side.py).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

type Handler = dyn Fn(&str, &Value) -> (u16, Value) + Send + Sync;

/// A loopback endpoint; every request's action and body is logged.
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

/// One result row of queries/report-records.query: an upload through eni-1 from `host` to a
/// public address, `records` records of `bytes` bytes in all.
fn row(host: u32, bytes: u64, records: u64) -> Value {
    let field = |f: &str, v: String| json!({"field": f, "value": v});
    json!([
        field("interface_id", "eni-0aaa".into()),
        field("srcaddr", format!("10.0.{}.{}", host / 250, host % 250 + 1)),
        field("dstaddr", "10.0.0.9".into()),
        field("action", "ACCEPT".into()),
        field("log_status", "OK".into()),
        field("pkt_srcaddr", format!("10.0.{}.{}", host / 250, host % 250 + 1)),
        field("pkt_dstaddr", "203.0.113.7".into()),
        field("sum_bytes", bytes.to_string()),
        field("sum_packets", "10".into()),
        field("records", records.to_string()),
        field("first_start", "100".into()),
        field("last_end", "160".into()),
        field("@ptr", "abc".into()),
    ])
}

fn answer(status: &str, rows: Vec<Value>, scanned: u64) -> (u16, Value) {
    (
        200,
        json!({"status": status, "results": rows,
               "statistics": {"recordsMatched": scanned as f64, "recordsScanned": scanned as f64, "bytesScanned": (scanned * 200) as f64}}),
    )
}

fn run(url: &str) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_natflow"))
        .args([
            "analyze",
            "--log-group",
            "/natrec/test/flow-logs",
            "--start",
            "0",
            "--end",
            "99",
        ])
        .args([
            "--region",
            "eu-west-1",
            "--no-progress",
            "--server-side",
            "--format",
            "json",
        ])
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_ENDPOINT_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A full answer (10,000 rows) may miss groups: its window is asked again in two halves, whose
/// rows are counted instead; its own rows are not. The halves scanned what the whole scanned.
#[test]
fn a_full_answer_is_asked_again_in_halves_and_only_the_halves_count() {
    let handler: Arc<Handler> = Arc::new(|action, body| match action {
        "StartQuery" => {
            let (s, e) = (body["startTime"].as_i64().unwrap(), body["endTime"].as_i64().unwrap());
            assert_eq!(body["limit"], 10_000);
            assert!(body["queryString"].as_str().unwrap().contains("stats sum(bytes)"));
            (200, json!({"queryId": format!("q-{s}-{e}")}))
        }
        "GetQueryResults" => match body["queryId"].as_str().unwrap() {
            // The whole window: full, 30,000 records scanned.
            "q-0-99" => answer("Complete", (0..10_000).map(|h| row(h, 1, 1)).collect(), 30_000),
            // Its halves [0, 49] and [50, 99]: 3 and 2 groups, 12,000 + 18,000 records scanned.
            "q-0-49" => answer(
                "Complete",
                vec![row(1, 1_000_000, 7), row(2, 500, 1), row(3, 300, 2)],
                12_000,
            ),
            "q-50-99" => answer("Complete", vec![row(1, 2_000_000, 5), row(4, 200, 1)], 18_000),
            other => panic!("unexpected query {other}"),
        },
        _ => (200, json!({"success": true})),
    });
    let (url, log) = endpoint(handler);
    let (code, report, err) = run(&url);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report["bytes"], 3_001_000);
    assert_eq!(report["input"]["counted"], 16);
    // Records scanned but in no group: the lines the pattern did not match.
    assert_eq!(report["input"]["malformed"], 30_000 - 16);
    let q = &report["server_side"];
    assert_eq!((q["queries"].as_u64(), q["split"].as_u64()), (Some(3), Some(1)));
    assert_eq!(q["records_scanned"], 30_000);
    assert!(report.get("warnings").is_none(), "{report}");
    let starts: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(a, _)| a == "StartQuery")
        .map(|(_, b)| format!("{}-{}", b["startTime"], b["endTime"]))
        .collect();
    assert_eq!(starts, ["0-99", "0-49", "50-99"]);
}

/// Halves that scanned other than their whole (records at the boundary second counted twice or
/// not at all) are reported, not hidden.
#[test]
fn halves_that_do_not_add_up_to_their_window_are_reported() {
    let handler: Arc<Handler> = Arc::new(|action, body| match action {
        "StartQuery" => (
            200,
            json!({"queryId": format!("q-{}-{}", body["startTime"], body["endTime"])}),
        ),
        "GetQueryResults" => match body["queryId"].as_str().unwrap() {
            "q-0-99" => answer("Complete", (0..10_000).map(|h| row(h, 1, 1)).collect(), 100),
            _ => answer("Complete", vec![row(1, 10, 60)], 60),
        },
        _ => (200, json!({})),
    });
    let (url, _) = endpoint(handler);
    let (code, report, err) = run(&url);
    assert_eq!(code, Some(0), "{err}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("scanned 100 records in the window 0..99 but 120 in its two halves"),
        "{warnings}"
    );
}

/// A query that fails ends the run with one line (exit 3), and every query started is stopped.
/// One refused for the concurrent-query quota is retried after a wait.
#[test]
fn a_failed_query_is_one_line_and_stopped_and_a_refused_start_is_retried() {
    let refused = Arc::new(Mutex::new(1));
    let handler: Arc<Handler> = Arc::new(move |action, _body| match action {
        "StartQuery" => {
            let mut left = refused.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return (
                    400,
                    json!({"__type": "LimitExceededException", "message": "Account maximum query concurrency limit of [30] reached."}),
                );
            }
            (200, json!({"queryId": "q-1"}))
        }
        "GetQueryResults" => answer("Failed", vec![], 0),
        _ => (200, json!({"success": true})),
    });
    let (url, log) = endpoint(handler);
    let (code, _, err) = run(&url);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("ended Failed") && err.contains("without --server-side"),
        "{err}"
    );
    let actions: Vec<String> = log.lock().unwrap().iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(actions, ["StartQuery", "StartQuery", "GetQueryResults", "StopQuery"]);
}

#[test]
fn server_side_goes_with_a_log_group_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_natflow"))
        .args(["analyze", "flows.log", "--server-side"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server-side"));
}
