//! `natflow analyze --log-group ... --server-side` against a CloudWatch Logs endpoint on loopback
//! that answers StartQuery, GetQueryResults and StopQuery as the API reference documents them
//! (awsJson1.1, `X-Amz-Target: Logs_20140328.<Action>`; query status Scheduled/Running, then
//! Complete, Failed, Cancelled or Timeout; StartQuery `limit` up to 100,000, or refused above
//! 10,000 with `InvalidParameterException` where the older bound holds; GetQueryResults at most
//! 10,000 rows a request (`maxItems`), the rest through `nextToken`; `LimitExceededException`
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
    let addr = format!("10.{}.{}.{}", host / 62_500, host / 250 % 250, host % 250 + 1);
    json!([
        field("interface_id", "eni-0aaa".into()),
        field("srcaddr", addr.clone()),
        field("dstaddr", "10.0.0.9".into()),
        field("action", "ACCEPT".into()),
        field("log_status", "OK".into()),
        field("pkt_srcaddr", addr),
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

/// A complete answer of `total` rows (`make(i)` the i-th) as GetQueryResults pages it: `maxItems`
/// rows from `nextToken` on ("The maximum is 10,000 log events per request"), and a `nextToken`
/// while rows remain.
fn paged(body: &Value, total: usize, make: impl Fn(usize) -> Value, scanned: u64) -> (u16, Value) {
    let max = body["maxItems"].as_u64().map_or(10_000, |m| m as usize);
    assert!(max <= 10_000, "maxItems {max}");
    let from: usize = body["nextToken"].as_str().map_or(0, |t| t.parse().unwrap());
    let to = (from + max).min(total);
    let (status, mut out) = answer("Complete", (from..to).map(make).collect(), scanned);
    if to < total {
        out["nextToken"] = json!(to.to_string());
    }
    (status, out)
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

/// A full answer (100,000 rows, read in 10 pages) may miss groups: its window is asked again in
/// two halves, whose rows are counted instead; its own rows are not. The halves scanned what the
/// whole scanned.
#[test]
fn a_full_answer_is_asked_again_in_halves_and_only_the_halves_count() {
    let handler: Arc<Handler> = Arc::new(|action, body| match action {
        "StartQuery" => {
            let (s, e) = (body["startTime"].as_i64().unwrap(), body["endTime"].as_i64().unwrap());
            assert_eq!(body["limit"], 100_000);
            let text = body["queryString"].as_str().unwrap();
            assert!(text.contains("stats sum(bytes)") && text.trim_end().ends_with("| limit 100000"));
            (200, json!({"queryId": format!("q-{s}-{e}")}))
        }
        "GetQueryResults" => match body["queryId"].as_str().unwrap() {
            // The whole window: full, 300,000 records scanned (its rows are not counted: small
            // ones keep the test quick).
            "q-0-99" => paged(body, 100_000, |_| json!([{"field": "records", "value": "1"}]), 300_000),
            // Its halves [0, 49] and [50, 99]: 3 and 2 groups, 120,000 + 180,000 records scanned.
            "q-0-49" => answer(
                "Complete",
                vec![row(1, 1_000_000, 7), row(2, 500, 1), row(3, 300, 2)],
                120_000,
            ),
            "q-50-99" => answer("Complete", vec![row(1, 2_000_000, 5), row(4, 200, 1)], 180_000),
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
    assert_eq!(report["input"]["malformed"], 300_000 - 16);
    let q = &report["server_side"];
    assert_eq!((q["queries"].as_u64(), q["split"].as_u64()), (Some(3), Some(1)));
    assert_eq!(q["records_scanned"], 300_000);
    assert!(report.get("warnings").is_none(), "{report}");
    let log = log.lock().unwrap();
    let starts: Vec<String> = log
        .iter()
        .filter(|(a, _)| a == "StartQuery")
        .map(|(_, b)| format!("{}-{}", b["startTime"], b["endTime"]))
        .collect();
    assert_eq!(starts, ["0-99", "0-49", "50-99"]);
    // The full answer read in 10 pages of 10,000, each with the token of the one before.
    let tokens: Vec<&Value> = log
        .iter()
        .filter(|(a, b)| a == "GetQueryResults" && b["queryId"] == "q-0-99")
        .map(|(_, b)| &b["nextToken"])
        .collect();
    let expected: Vec<Value> = std::iter::once(Value::Null)
        .chain((1..10).map(|p| json!((p * 10_000).to_string())))
        .collect();
    assert_eq!(tokens, expected.iter().collect::<Vec<_>>());
    assert!(log
        .iter()
        .filter(|(a, _)| a == "GetQueryResults")
        .all(|(_, b)| b["maxItems"] == 10_000));
}

/// 20,001 groups in the window (a dense NAT's talkers): one query, its answer read in 3 pages,
/// every group counted once, the records scanned once.
#[test]
fn an_answer_of_more_than_10_000_rows_is_read_in_pages_by_one_query() {
    let handler: Arc<Handler> = Arc::new(|action, body| match action {
        "StartQuery" => (200, json!({"queryId": "q-1"})),
        "GetQueryResults" => paged(body, 20_001, |h| row(h as u32, 100, 2), 40_002),
        _ => (200, json!({})),
    });
    let (url, log) = endpoint(handler);
    let (code, report, err) = run(&url);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report["input"]["counted"], 40_002);
    assert_eq!(report["bytes"], 2_000_100);
    let q = &report["server_side"];
    assert_eq!((q["queries"].as_u64(), q["split"].as_u64()), (Some(1), Some(0)));
    assert_eq!(q["records_scanned"], 40_002);
    let calls = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(a, _)| a == "GetQueryResults")
        .count();
    assert_eq!(calls, 3);
}

/// Halves that scanned other than their whole (records at the boundary second counted twice or
/// not at all) are reported, not hidden. Here StartQuery refuses a limit above 10,000 (the older
/// bound): the CLI asks for 10,000 rows instead and says so.
#[test]
fn halves_that_do_not_add_up_to_their_window_are_reported() {
    let handler: Arc<Handler> = Arc::new(|action, body| match action {
        "StartQuery" if body["limit"].as_u64().unwrap() > 10_000 => (
            400,
            json!({"__type": "InvalidParameterException", "message": "limit must be between 1 and 10000"}),
        ),
        "StartQuery" => {
            assert!(body["queryString"]
                .as_str()
                .unwrap()
                .trim_end()
                .ends_with("| limit 10000"));
            (
                200,
                json!({"queryId": format!("q-{}-{}", body["startTime"], body["endTime"])}),
            )
        }
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
    assert!(
        warnings.contains("refused queries of 100000 rows (InvalidParameterException: limit must be"),
        "{warnings}"
    );
    assert_eq!(report["server_side"]["queries"], 3, "the refused start is no query");
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
