//! The report's reads as CloudWatch Logs answers them on AWS (the emulator throttles nothing and
//! has no deadline): paced, throttling absorbed without losing a page, stopping in time for the
//! Lambda's deadline with what was read marked truncated. Simulated time only: the fake clock
//! advances when the code sleeps or a request takes time, nothing waits for real.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod fakes;

use async_trait::async_trait;
use fakes::NoQueries;
use natrec::pacing::Clock;
use natrec::ports::*;
use natrec::report::{self, ReadLimits, ReportInput, ReportSettings};
use natrec::{RecorderError, Result};
use serde_json::json;

/// Simulated time: `sleep` advances it; `random` is a fixed sequence.
struct FakeClock {
    now: Mutex<i64>,
    draws: Mutex<u64>,
}

impl FakeClock {
    fn at(ms: i64) -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(ms),
            draws: Mutex::new(0),
        })
    }
    fn advance(&self, ms: i64) {
        *self.now.lock().unwrap() += ms;
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        *self.now.lock().unwrap()
    }
    async fn sleep(&self, d: Duration) {
        self.advance(d.as_millis() as i64);
    }
    fn random(&self) -> f64 {
        let mut n = self.draws.lock().unwrap();
        *n += 1;
        (*n * 7919 % 1000) as f64 / 1000.0
    }
}

/// `FilterLogEvents` as its API reference and CloudWatch Logs' quotas describe it:
/// - a page holds at most 1 MB (1,048,576 bytes, counted here as message + 26 bytes an event,
///   PutLogEvents' accounting) or 10,000 events, and a `nextToken` while more remain; a page can
///   be empty and still carry a token ("can return empty results while there are more log
///   events available through the token");
/// - 5 requests per second per account and region, shared with every other reader of the
///   account (`others_per_second` here): a request beyond it gets `ThrottlingException`
///   (AWS Knowledge Center, "cloudwatch-logs-throttling");
/// - each request takes `latency_ms`; a request given less time than that times out.
struct FakeLogs {
    clock: Arc<FakeClock>,
    /// (timestamp, message) of every record, in timestamp order.
    records: Vec<(i64, String)>,
    latency_ms: i64,
    others_per_second: usize,
    /// Every request: (time, nextToken asked, answered with a page?)
    log: Mutex<Vec<(i64, Option<String>, bool)>>,
    /// Token -> index of the first record of the page it asks for.
    tokens: Mutex<BTreeMap<String, usize>>,
    /// Answer an empty page (with a token) every n-th page.
    empty_every: usize,
    /// Extra throttles to answer, whatever the rate.
    forced_throttles: Mutex<VecDeque<()>>,
    /// Fewer events a page than AWS's 10,000 (small records, many pages, little memory).
    max_events: usize,
}

const PAGE_BYTES: usize = 1_048_576;
const PAGE_EVENTS: usize = 10_000;
const QUOTA_PER_SECOND: usize = 5;

impl FakeLogs {
    fn new(clock: Arc<FakeClock>, records: Vec<(i64, String)>) -> Self {
        Self {
            clock,
            records,
            latency_ms: 150,
            others_per_second: 0,
            log: Mutex::new(vec![]),
            tokens: Mutex::new(BTreeMap::new()),
            empty_every: 0,
            forced_throttles: Mutex::new(VecDeque::new()),
            max_events: PAGE_EVENTS,
        }
    }

    fn throttled() -> RecorderError {
        // What RecorderError::from_sdk makes of a ThrottlingException.
        RecorderError::Transient {
            service: "CloudWatch Logs",
            operation: "FilterLogEvents",
            message: "ThrottlingException: Rate exceeded".into(),
        }
    }

    fn requests_per_second(&self) -> BTreeMap<i64, usize> {
        let mut per = BTreeMap::new();
        for (t, _, _) in self.log.lock().unwrap().iter() {
            *per.entry(t.div_euclid(1000)).or_insert(0) += 1;
        }
        per
    }
}

#[async_trait]
impl FlowRecords for FakeLogs {
    async fn page(&self, _q: &RecordQuery, token: Option<&str>, time_limit: Duration) -> Result<RecordPage> {
        let now = self.clock.now_ms();
        let second = now.div_euclid(1000);
        let mut log = self.log.lock().unwrap();
        let ours_this_second = log.iter().filter(|(t, _, _)| t.div_euclid(1000) == second).count();
        let over_quota = ours_this_second + self.others_per_second >= QUOTA_PER_SECOND;
        let forced = self.forced_throttles.lock().unwrap().pop_front().is_some();
        if over_quota || forced {
            log.push((now, token.map(str::to_string), false));
            return Err(Self::throttled());
        }
        if (time_limit.as_millis() as i64) < self.latency_ms {
            self.clock.advance(time_limit.as_millis() as i64);
            log.push((now, token.map(str::to_string), false));
            return Err(RecorderError::Transient {
                service: "CloudWatch Logs",
                operation: "FilterLogEvents",
                message: "timeout".into(),
            });
        }
        self.clock.advance(self.latency_ms);
        let mut tokens = self.tokens.lock().unwrap();
        let from = match token {
            None => 0,
            Some(t) => *tokens.get(t).expect("a token this fake issued"),
        };
        let pages_served = log.iter().filter(|(_, _, ok)| *ok).count();
        log.push((now, token.map(str::to_string), true));
        let mut records = vec![];
        let mut i = from;
        if !(self.empty_every > 0 && pages_served % self.empty_every == self.empty_every - 1) {
            let mut size = 0;
            while i < self.records.len() && records.len() < self.max_events.min(PAGE_EVENTS) {
                let (ts, m) = &self.records[i];
                if size + m.len() + 26 > PAGE_BYTES {
                    break;
                }
                size += m.len() + 26;
                records.push(LogRecord {
                    timestamp_ms: *ts,
                    message: m.clone(),
                });
                i += 1;
            }
        }
        let next_token = (i < self.records.len()).then(|| {
            let t = format!("token-{i}-{}", tokens.len());
            tokens.insert(t.clone(), i);
            t
        });
        Ok(RecordPage { records, next_token })
    }
}

const T0: i64 = 1_790_000_000_000; // ms

/// `n` records over the 15 minutes after T0, each `size` bytes, numbered.
fn records(n: usize, size: usize) -> Vec<(i64, String)> {
    (0..n)
        .map(|i| {
            let ts = T0 + (i as i64 * 900_000 / n as i64);
            let mut m = format!("r{i:09} ");
            m.extend(std::iter::repeat_n('x', size.saturating_sub(m.len())));
            (ts, m)
        })
        .collect()
}

fn limits(stop_ms: i64) -> ReadLimits {
    ReadLimits {
        max_bytes: u64::MAX,
        reads_per_second: 2.0,
        stop_ms,
    }
}

fn query() -> RecordQuery {
    RecordQuery {
        streams: vec![],
        start_ms: T0,
        end_ms: T0 + 900_000,
    }
}

/// Reads and returns the outcome and the record numbers fed, in order.
async fn read(logs: &FakeLogs, clock: &Arc<FakeClock>, l: ReadLimits) -> (Result<ReadOutcome>, Vec<String>) {
    let mut seen = vec![];
    let out = report::read_records(logs, clock.as_ref(), &query(), l, &mut |m: &[u8]| {
        seen.push(String::from_utf8_lossy(&m[..10]).into_owned())
    })
    .await;
    (out, seen)
}

#[tokio::test]
async fn reading_stops_before_the_deadline_marked_truncated_by_time() {
    // 2,000 full pages at 2 a second take 1,000 s: more than a 900 s Lambda has.
    let start = T0 + 1_500_000;
    let clock = FakeClock::at(start);
    let mut logs = FakeLogs::new(clock.clone(), records(2_000 * 5, 40));
    logs.max_events = 5;
    let deadline = start + 900_000;
    let stop = report::stop_reading_at(start, deadline);
    assert_eq!(stop, deadline - 60_000, "60 s kept for the report itself");
    let (out, seen) = read(&logs, &clock, limits(stop)).await;
    let out = out.unwrap();
    assert_eq!(out.truncated, Some(Truncation::Deadline));
    assert!(
        clock.now_ms() <= stop,
        "read past the stop: {} > {stop}",
        clock.now_ms()
    );
    // It used its time: every 500 ms a page until ~2 s before the stop.
    assert!(out.pages >= 1_670 && out.pages < 2_000, "{} pages", out.pages);
    assert_eq!(seen.len() as u64, out.events);
    assert!(out.last_timestamp_ms.unwrap() < T0 + 900_000);
}

#[tokio::test]
async fn a_short_deadline_keeps_a_fifth_for_the_report() {
    let clock = FakeClock::at(T0);
    let mut logs = FakeLogs::new(clock.clone(), records(400, 40));
    logs.max_events = 5;
    let deadline = T0 + 30_000;
    let stop = report::stop_reading_at(T0, deadline);
    assert_eq!(stop, deadline - 6_000);
    let (out, _) = read(&logs, &clock, limits(stop)).await;
    assert_eq!(out.unwrap().truncated, Some(Truncation::Deadline));
    assert!(clock.now_ms() <= stop);
}

#[tokio::test]
async fn pacing_keeps_to_the_configured_rate_retries_included() {
    for rate in [2.0, 0.5, 4.0] {
        let clock = FakeClock::at(T0);
        let mut logs = FakeLogs::new(clock.clone(), records(300 * 5, 40));
        logs.max_events = 5;
        logs.latency_ms = 20;
        logs.forced_throttles = Mutex::new((0..5).map(|_| ()).collect());
        let (out, _) = read(
            &logs,
            &clock,
            ReadLimits {
                reads_per_second: rate,
                ..limits(T0 + 3_600_000)
            },
        )
        .await;
        let out = out.unwrap();
        assert_eq!(out.truncated, None);
        let per = logs.requests_per_second();
        let most = *per.values().max().unwrap();
        assert!(most as f64 <= rate.ceil(), "rate {rate}: {most} requests in one second");
        // Not slower than the rate either (apart from the backoffs).
        let spent_s = (clock.now_ms() - T0) as f64 / 1000.0;
        let requests = logs.log.lock().unwrap().len() as f64;
        assert!(
            requests / spent_s > rate * 0.6,
            "rate {rate}: {requests} requests in {spent_s} s"
        );
    }
}

#[tokio::test]
async fn throttling_loses_no_page_and_reads_none_twice() {
    let clock = FakeClock::at(T0);
    let mut logs = FakeLogs::new(clock.clone(), records(400 * 5, 40));
    logs.max_events = 5;
    // Another reader in the account uses 3 of the 5 requests a second: ours get throttled often.
    logs.others_per_second = 3;
    logs.empty_every = 7;
    let total = logs.records.len();
    let (out, seen) = read(
        &logs,
        &clock,
        ReadLimits {
            reads_per_second: 4.0,
            ..limits(T0 + 3_600_000)
        },
    )
    .await;
    let out = out.unwrap();
    assert_eq!(out.truncated, None);
    assert!(out.retried > 0, "the fake throttled");
    let expected: Vec<String> = logs.records.iter().map(|(_, m)| m[..10].to_string()).collect();
    assert_eq!(seen.len(), total);
    assert_eq!(seen, expected, "every record once, in order");
    // Each throttled request was repeated with the same token.
    let log = logs.log.lock().unwrap();
    for w in log.windows(2) {
        if !w[0].2 {
            assert_eq!(w[0].1, w[1].1, "a retry continues from the same nextToken");
        }
    }
}

#[tokio::test]
async fn throttling_at_the_end_stops_in_time_with_the_pages_read() {
    let clock = FakeClock::at(T0);
    let mut logs = FakeLogs::new(clock.clone(), records(100 * 5, 40));
    logs.max_events = 5;
    // 10 pages read, then throttled for good.
    let stop = T0 + 60_000;
    let mut seen = 0u64;
    let mut n = 0;
    let out = report::read_records(&logs, clock.as_ref(), &query(), limits(stop), &mut |_m: &[u8]| {
        seen += 1;
        n += 1;
        if n == 50 {
            logs.forced_throttles.lock().unwrap().extend((0..100).map(|_| ()));
        }
    })
    .await
    .unwrap();
    assert!(matches!(
        out.truncated,
        Some(Truncation::Failing(_)) | Some(Truncation::Deadline)
    ));
    assert_eq!(out.events, seen);
    assert_eq!(out.events, 50, "the pages read are kept");
    assert!(clock.now_ms() <= stop, "backoff slept past the stop");
}

#[tokio::test]
async fn persistent_failure_before_any_page_is_an_error_to_retry() {
    let clock = FakeClock::at(T0);
    let logs = FakeLogs::new(clock.clone(), records(10, 200));
    logs.forced_throttles.lock().unwrap().extend((0..100).map(|_| ()));
    let (out, seen) = read(&logs, &clock, limits(T0 + 3_600_000)).await;
    assert!(out.unwrap_err().is_transient());
    assert!(seen.is_empty());
    assert_eq!(logs.log.lock().unwrap().len() as u32, report::MAX_FAILURES);
}

#[tokio::test]
async fn the_byte_budget_still_truncates() {
    let clock = FakeClock::at(T0);
    let logs = FakeLogs::new(clock.clone(), records(100, 1_000));
    let (out, seen) = read(
        &logs,
        &clock,
        ReadLimits {
            max_bytes: 10_500,
            ..limits(T0 + 3_600_000)
        },
    )
    .await;
    let out = out.unwrap();
    assert_eq!(out.truncated, Some(Truncation::MaxBytes));
    assert_eq!((out.events, seen.len()), (10, 10));
}

// --- The whole report step against the deadline -----------------------------------------------

#[derive(Default)]
struct FakeArchive(Mutex<BTreeMap<String, Vec<String>>>);

#[async_trait]
impl Archive for FakeArchive {
    async fn put(&self, stream: &str, lines: &[String]) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .entry(stream.into())
            .or_default()
            .extend_from_slice(lines);
        Ok(())
    }
    async fn get(&self, stream: &str) -> Result<Vec<String>> {
        Ok(self.0.lock().unwrap().get(stream).cloned().unwrap_or_default())
    }
}

struct Metrics;

#[async_trait]
impl NatMetrics for Metrics {
    async fn bytes(&self, _: &natrec::nat::NatGatewayId, _: i64, _: i64) -> Result<NatBytes> {
        Ok(NatBytes {
            upload: 1_000_000_000,
            download: 1_000_000_000,
        })
    }
}

fn flow_line(i: usize) -> String {
    // A VPC host -> internet row as a zonal NAT's interface logs it (recorder's format, v9).
    format!(
        "9 123456789012 eni-0aaaaaaaaaaaaaaa1 10.0.1.{} 10.0.0.10 40000 443 6 10 1000 1790000000 1790000060 ACCEPT OK \
         vpc-1 subnet-1 use1-az1 ingress 8 10.0.1.{} 203.0.113.9 - - 19 IPv4 -",
        i % 200 + 1,
        i % 200 + 1
    )
}

/// A 900-second recording of `nat` on `interfaces`, starting at `T0`, as BuildReport gets it.
fn report_input(nat: &str, interfaces: &[&str]) -> ReportInput {
    let started = T0 / 1000;
    let state = json!({
        "status": "recording", "nat_id": nat, "alarm_name": "a", "execution": "arn:x:exec",
        "interfaces": interfaces, "started_at": chrono::DateTime::from_timestamp(started, 0).unwrap(),
        "recording_time": 900, "log_group": "/natrec/s/flow-logs",
        "finished": {"subject": "NAT spike recorded", "message": "facts", "ended_at": chrono::DateTime::from_timestamp(started + 900, 0).unwrap()},
    });
    serde_json::from_value(json!({"execution": "arn:x:exec", "state": state})).unwrap()
}

fn report_settings(top: usize) -> ReportSettings {
    ReportSettings {
        region: "us-east-1".into(),
        reports_log_group: "/natrec/s/reports".into(),
        max_bytes: 1 << 30,
        reads_per_second: 2.0,
        prices: None,
        top,
        stack_name: "s".into(),
        threshold: None,
        aggregation: report::Aggregation::Streaming,
    }
}

#[tokio::test]
async fn the_report_says_it_ran_out_of_time_and_how_much_of_the_window_is_missing() {
    let input = report_input("nat-0123456789abcdef0", &["eni-0aaaaaaaaaaaaaaa1"]);
    let settings = report_settings(10);
    let now = T0 + 1_500_000;
    let clock = FakeClock::at(now);
    // 2,400 pages of records over the window: 1,200 s at 2 a second.
    let recs: Vec<(i64, String)> = (0..2_400 * 10)
        .map(|i| (T0 + i as i64 * 900_000 / 24_000, flow_line(i)))
        .collect();
    let mut logs = FakeLogs::new(clock.clone(), recs);
    logs.latency_ms = 100;
    // Pages of 10 records: many pages, little memory (the time matters here, not the bytes).
    logs.max_events = 10;
    let archive = FakeArchive::default();
    let deadline = now + 900_000;
    let notice = report::build(
        input,
        &settings,
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &NoQueries,
        &Metrics,
    )
    .await
    .unwrap();
    assert!(notice.truncated);
    assert!(clock.now_ms() <= deadline - 60_000, "reading ran into the reserve");
    let m = &notice.message;
    let line = m.lines().find(|l| l.starts_with("TRUNCATED: ")).expect(m);
    assert!(line.contains("ran out of time, not bytes"), "{line}");
    assert!(
        line.contains("at 2 requests per second (ReportReadsPerSecond)"),
        "{line}"
    );
    // ~1,680 of 2,400 pages: about 70% of the window read, 30% missing.
    assert!(line.contains("% of the recording's window; the last "), "{line}");
    let pct: f64 = line
        .split("were read, ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((65.0..=75.0).contains(&pct), "{line}");
    assert!(m.contains("Coverage: "), "{m}");
    // The JSON report was stored, marked truncated.
    let stored = archive.0.lock().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stored[&notice.report_stream][0]).unwrap();
    assert!(json["truncated"].as_str().unwrap().contains("ran out of time"));
}

/// One row in the recorder's format (v9, `resource-id` last).
#[allow(clippy::too_many_arguments)]
fn row(eni: &str, src: &str, dst: &str, psrc: &str, pdst: &str, bytes: u64, dir: &str, resource: &str) -> String {
    format!(
        "9 123456789012 {eni} {src} {dst} 40000 443 6 10 {bytes} 1790000000 1790000060 ACCEPT OK \
         vpc-1 - - {dir} 8 {psrc} {pdst} - - 19 IPv4 {resource}"
    )
}

/// A regional NAT Gateway's flow, four rows as AWS documents them for a `RegionalNatGateway`
/// flow log (VPC user guide, flow-logs-records-examples): `interface-id` `-`, the NAT's ID in
/// `resource-id`, the inside rows carry the host and the remote host.
fn regional_flow(nat: &str, host: &str, up: u64, down: u64) -> Vec<String> {
    let (pubip, remote) = ("198.51.100.7", "203.0.113.9");
    vec![
        row("-", host, remote, host, remote, up, "ingress", nat),
        row("-", pubip, remote, pubip, remote, up, "egress", nat),
        row("-", remote, pubip, remote, pubip, down, "ingress", nat),
        row("-", remote, host, remote, host, down, "egress", nat),
    ]
}

#[tokio::test]
async fn a_regional_nats_report_counts_only_its_own_records_in_the_shared_group() {
    let mine = "nat-0123456789abcdef0";
    let input = report_input(mine, &[]);
    let settings = report_settings(10);
    // The group holds this NAT's flow, another regional NAT's and a zonal NAT's recording.
    let mut lines = regional_flow(mine, "10.0.1.5", 1_000, 500);
    lines.extend(regional_flow("nat-0fedcba98765432a1", "10.0.2.6", 70_000, 30_000));
    lines.push(row(
        "eni-0aaaaaaaaaaaaaaa1",
        "10.0.3.7",
        "10.0.0.10",
        "10.0.3.7",
        "203.0.113.9",
        900_000,
        "ingress",
        "-",
    ));
    let recs = lines.into_iter().enumerate().map(|(i, l)| (T0 + i as i64, l)).collect();
    let clock = FakeClock::at(T0 + 1_500_000);
    let logs = FakeLogs::new(clock.clone(), recs);
    let archive = FakeArchive::default();
    let deadline = clock.now_ms() + 900_000;
    let notice = report::build(
        input,
        &settings,
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &NoQueries,
        &Metrics,
    )
    .await
    .unwrap();
    let stored = archive.0.lock().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stored[&notice.report_stream][0]).unwrap();
    assert_eq!(
        (json["upload_bytes"].as_u64(), json["download_bytes"].as_u64()),
        (Some(1_000), Some(500)),
        "{json:#}"
    );
}

#[tokio::test]
async fn a_report_with_thousands_of_talkers_listed_stays_far_below_the_payload_limits() {
    let input = report_input("nat-0123456789abcdef0", &["eni-0aaaaaaaaaaaaaaa1"]);
    let settings = report_settings(10_000);
    // 6,000 distinct talkers, every one listed.
    let recs = (0..6_000usize)
        .map(|i| {
            let host = format!("10.0.{}.{}", i / 250 + 1, i % 250 + 1);
            let line = row(
                "eni-0aaaaaaaaaaaaaaa1",
                &host,
                "10.0.0.10",
                &host,
                "203.0.113.9",
                1_000 + i as u64,
                "ingress",
                "-",
            );
            (T0 + i as i64, line)
        })
        .collect();
    let clock = FakeClock::at(T0 + 1_500_000);
    let logs = FakeLogs::new(clock.clone(), recs);
    let archive = FakeArchive::default();
    let deadline = clock.now_ms() + 900_000;
    let notice = report::build(
        input,
        &settings,
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &NoQueries,
        &Metrics,
    )
    .await
    .unwrap();
    let m = &notice.message;
    assert!(m.len() < report::MAX_REPORT_TEXT + 4_096, "{} bytes", m.len());
    assert!(
        m.contains("the report is longer than 64 KB"),
        "{}",
        &m[m.len() - 2_000..]
    );
    assert!(m.contains("Full report (JSON): log group /natrec/s/reports") && m.ends_with("facts"));
}

fn insights_settings() -> ReportSettings {
    ReportSettings {
        aggregation: report::Aggregation::Insights,
        ..report_settings(10)
    }
}

/// The recording's window with its margin, in inclusive seconds, and its probe: the margin and
/// the recording's first minute (its flow logs exist from its start on).
const WINDOW: (i64, i64) = (T0 / 1000 - 120, T0 / 1000 + 900 + 120);
const PROBE: (i64, i64) = (WINDOW.0, T0 / 1000 + 59);

/// Three groups of eni-0aaa's uploads in the probe's minute; nothing after it.
fn three_groups() -> fakes::FakeInsights {
    fakes::FakeInsights::new(Box::new(|s, e| {
        if (s, e) == PROBE {
            let rows = vec![
                fakes::row(1, 3_000_000, 30),
                fakes::row(2, 2_000_000, 20),
                fakes::row(3, 1_000, 1),
            ];
            (rows, 60)
        } else {
            (vec![], 0)
        }
    }))
}

/// By default Logs Insights counts the records: no record is read one by one, and the notice
/// says what the queries scanned and cost.
#[tokio::test]
async fn the_report_is_counted_by_logs_insights_without_reading_the_records() {
    let input = report_input("nat-0123456789abcdef0", &["eni-0aaa"]);
    let clock = FakeClock::at(T0 + 1_500_000);
    let logs = FakeLogs::new(clock.clone(), vec![(T0, flow_line(1))]);
    let queries = three_groups();
    let archive = FakeArchive::default();
    let deadline = T0 + 1_500_000 + 900_000;
    let notice = report::build(
        input,
        &insights_settings(),
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &queries,
        &Metrics,
    )
    .await
    .unwrap();
    assert!(notice.pending.is_none());
    assert!(logs.log.lock().unwrap().is_empty(), "no FilterLogEvents request");
    let m = &notice.message;
    assert!(m.contains("Traffic through the NAT in the flow logs: 5.0 MB"), "{m}");
    assert!(
        m.contains("Counted by CloudWatch Logs Insights, not read record by record: 2 queries"),
        "{m}"
    );
    // The queries covered the recording's window with its margin, in inclusive seconds: its first
    // minute (the probe), then the rest in one window (3 groups a minute fit many times over).
    let windows: Vec<(i64, i64)> = queries.queries.lock().unwrap().iter().map(|q| q.window).collect();
    assert_eq!(windows, [PROBE, (PROBE.1 + 1, WINDOW.1)]);
}

/// Queries still running when the invocation must end: the step answers `pending` (small), and
/// the next invocation, given it as $.report_progress, finishes the report.
#[tokio::test]
async fn queries_that_outlast_the_invocation_are_carried_on_by_the_next_one() {
    let input = report_input("nat-0123456789abcdef0", &["eni-0aaa"]);
    let clock = FakeClock::at(T0 + 1_500_000);
    let logs = FakeLogs::new(clock.clone(), vec![]);
    let mut queries = three_groups();
    queries.polls = 10; // 20 s of Running at one poll every 2 s
    let archive = FakeArchive::default();
    let now = clock.now_ms();
    let first = report::build(
        input,
        &insights_settings(),
        now + 15_000,
        clock.as_ref(),
        &archive,
        &logs,
        &queries,
        &Metrics,
    )
    .await
    .unwrap();
    let pending = first.pending.expect("still running");
    assert!(first.message.is_empty() && first.subject.is_empty());
    let mut input = report_input("nat-0123456789abcdef0", &["eni-0aaa"]);
    input.state["report_progress"] = serde_json::to_value(&pending).unwrap();
    let now = clock.now_ms();
    let done = report::build(
        input,
        &insights_settings(),
        now + 900_000,
        clock.as_ref(),
        &archive,
        &logs,
        &queries,
        &Metrics,
    )
    .await
    .unwrap();
    assert!(done.pending.is_none());
    assert!(done.message.contains("5.0 MB"), "{}", done.message);
    assert_eq!(
        queries.queries.lock().unwrap().len(),
        2,
        "the probe and the rest, none asked twice"
    );
}

/// A query that fails: the records are read one by one instead, and the notice says why.
#[tokio::test]
async fn a_failed_query_falls_back_to_reading_the_records_and_says_so() {
    let input = report_input("nat-0123456789abcdef0", &["eni-0aaaaaaaaaaaaaaa1"]);
    let clock = FakeClock::at(T0 + 1_500_000);
    let recs: Vec<(i64, String)> = (0..100).map(|i| (T0 + i as i64 * 1000, flow_line(i))).collect();
    let logs = FakeLogs::new(clock.clone(), recs);
    let mut queries = three_groups();
    queries.fail.insert(PROBE, "Failed".into());
    let archive = FakeArchive::default();
    let deadline = clock.now_ms() + 900_000;
    let notice = report::build(
        input,
        &insights_settings(),
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &queries,
        &Metrics,
    )
    .await
    .unwrap();
    let m = &notice.message;
    assert!(m.contains("Traffic through the NAT in the flow logs: 100.0 KB"), "{m}");
    assert!(
        m.contains("CloudWatch Logs Insights could not count the records (the Logs Insights query for"),
        "{m}"
    );
    assert!(m.contains("ended Failed): they were read one by one instead"), "{m}");
    assert!(!m.contains("Counted by CloudWatch Logs Insights"), "{m}");
}

/// A carried-on run older than a query may live (60 minutes) stops its queries and reads instead.
#[tokio::test]
async fn a_run_older_than_a_query_may_live_stops_its_queries_and_reads_instead() {
    let mut input = report_input("nat-0123456789abcdef0", &["eni-0aaaaaaaaaaaaaaa1"]);
    let clock = FakeClock::at(T0 + 1_500_000);
    let logs = FakeLogs::new(clock.clone(), (0..10).map(|i| (T0, flow_line(i))).collect());
    let queries = three_groups();
    let mut progress = natrec::insights::Progress::new(0, 10);
    let w = progress.plan.next_window().unwrap();
    let id = natrec::ports::LogQueries::start(&queries, "stats sum(bytes)", w.start, w.end, 10_000)
        .await
        .unwrap()
        .unwrap();
    progress.running.push((w, id));
    input.state["report_progress"] = json!({"progress": progress, "since_ms": clock.now_ms() - 66 * 60_000});
    let archive = FakeArchive::default();
    let deadline = clock.now_ms() + 900_000;
    let notice = report::build(
        input,
        &insights_settings(),
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &queries,
        &Metrics,
    )
    .await
    .unwrap();
    assert!(queries.queries.lock().unwrap()[0].stopped);
    assert!(
        notice.message.contains("its queries ran for more than 65 minutes"),
        "{}",
        notice.message
    );
    assert!(notice.message.contains("10.0 KB"), "{}", notice.message);
}

/// The probe's answer is counted as it comes (3 groups, 5 MB), then a later query fails: the
/// records are read into a fresh analyzer, so the report holds what was read and nothing of the
/// abandoned run (5.1 MB if the probe's groups were left in).
#[tokio::test]
async fn a_run_that_fails_after_counting_answers_reads_into_a_fresh_analyzer() {
    let input = report_input("nat-0123456789abcdef0", &["eni-0aaa", "eni-0aaaaaaaaaaaaaaa1"]);
    let clock = FakeClock::at(T0 + 1_500_000);
    let recs: Vec<(i64, String)> = (0..100).map(|i| (T0 + i as i64 * 1000, flow_line(i))).collect();
    let logs = FakeLogs::new(clock.clone(), recs);
    let mut queries = three_groups();
    queries.fail.insert((PROBE.1 + 1, WINDOW.1), "Timeout".into());
    let archive = FakeArchive::default();
    let deadline = clock.now_ms() + 900_000;
    let notice = report::build(
        input,
        &insights_settings(),
        deadline,
        clock.as_ref(),
        &archive,
        &logs,
        &queries,
        &Metrics,
    )
    .await
    .unwrap();
    let m = &notice.message;
    assert_eq!(
        queries.queries.lock().unwrap().len(),
        2,
        "the probe answered, the rest failed"
    );
    assert!(m.contains("ended Timeout): they were read one by one instead"), "{m}");
    assert!(m.contains("Traffic through the NAT in the flow logs: 100.0 KB"), "{m}");
}
