//! The report's server-side path (natrec::insights) against a fake Logs Insights that behaves as
//! the CloudWatch Logs API reference documents it: StartQuery refused with
//! `LimitExceededException` while the account's concurrent queries are at their quota (30 in the
//! API reference); a query is Scheduled/Running for a while, then Complete with at most 10,000
//! rows and its statistics, or Failed/Cancelled/Timeout; GetQueryResults answers again for a
//! complete query (results are kept 7 days); StopQuery ends a running query.

mod fakes;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fakes::{row, FakeInsights};
use natflow::{Analyzer, Format};
use natrec::insights::{advance, Outcome, Progress, CONCURRENT};
use natrec::pacing::Clock;

struct FakeClock(Mutex<i64>);

#[async_trait]
impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        *self.0.lock().unwrap()
    }
    async fn sleep(&self, d: Duration) {
        *self.0.lock().unwrap() += d.as_millis() as i64;
        tokio::task::yield_now().await;
    }
    fn random(&self) -> f64 {
        0.5
    }
}

/// The window 0..99 holds 12,000 groups (too many for one answer); each half holds 6,000.
fn dense(s: i64, e: i64) -> (Vec<Vec<(String, String)>>, u64) {
    let hosts: Vec<u32> = match (s, e) {
        (0, 99) => (0..12_000).collect(),
        (0, 49) => (0..6_000).collect(),
        (50, 99) => (6_000..12_000).collect(),
        other => panic!("unexpected window {other:?}"),
    };
    let rows: Vec<_> = hosts.iter().map(|h| row(*h, 100, 2)).collect();
    let scanned = rows.len() as u64 * 2;
    (rows, scanned)
}

fn analyzer() -> Analyzer {
    Analyzer::new(Format::recorder(), &[]).unwrap()
}

#[tokio::test]
async fn a_full_answer_is_split_and_only_the_halves_are_counted() {
    let fake = FakeInsights::new(Box::new(dense));
    let clock = FakeClock(Mutex::new(0));
    let mut a = analyzer();
    let out = advance(&fake, &clock, Progress::new(0, 99), 600_000, &mut a)
        .await
        .unwrap();
    let Outcome::Done { server_side, warnings } = out else {
        panic!("{out:?}")
    };
    assert_eq!((server_side.queries, server_side.split), (3, 1));
    assert_eq!(server_side.records_scanned, 24_000);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(a.stats().counted, 24_000);
    assert_eq!(a.flows().map(|(_, c)| c.bytes()).sum::<u64>(), 1_200_000);
    assert!(*fake.most_running.lock().unwrap() <= CONCURRENT);
}

/// Out of time: the run hands its progress on (small, JSON) and the next invocation finishes it,
/// reading again the answers the first one saw.
#[tokio::test]
async fn a_run_that_does_not_finish_in_time_carries_on_in_the_next_invocation() {
    let mut fake = FakeInsights::new(Box::new(dense));
    fake.polls = 3;
    let clock = FakeClock(Mutex::new(0));
    let mut first = analyzer();
    let out = advance(&fake, &clock, Progress::new(0, 99), 3_000, &mut first)
        .await
        .unwrap();
    let Outcome::Pending(p) = out else { panic!("{out:?}") };
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.len() < 2_000, "{json}");
    assert_eq!(first.stats().lines, 0, "nothing is counted before the end");
    let p: Progress = serde_json::from_str(&json).unwrap();
    let mut second = analyzer();
    let out = advance(&fake, &clock, p, 600_000, &mut second).await.unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(second.stats().counted, 24_000);
}

/// Twenty recordings report at once with the account's quota of 30 concurrent queries: some
/// starts are refused and wait; none fails.
#[tokio::test]
async fn twenty_reports_at_once_queue_within_the_concurrent_query_quota() {
    let mut fake = FakeInsights::new(Box::new(dense));
    fake.quota = 30;
    let fake = Arc::new(fake);
    let runs = (0..20).map(|_| {
        let fake = fake.clone();
        async move {
            let clock = FakeClock(Mutex::new(0));
            let mut a = analyzer();
            let out = advance(&*fake, &clock, Progress::new(0, 99), 3_600_000, &mut a)
                .await
                .unwrap();
            (out, a.stats().counted)
        }
    });
    let results = futures_join(runs.collect()).await;
    for (out, counted) in results {
        assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
        assert_eq!(counted, 24_000);
    }
    assert!(*fake.most_running.lock().unwrap() <= 30);
    assert!(
        *fake.refused.lock().unwrap() > 0,
        "the quota was reached and waited out"
    );
}

async fn futures_join<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = fs.into_iter().map(Box::pin).collect();
    // Polled together on one thread: interleaved at every await, as concurrent invocations are.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut done: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        done[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(done.into_iter().map(Option::unwrap));
    out
}

/// A query that fails ends the run as Failed (the report reads the records instead), and the
/// other running query is stopped.
#[tokio::test]
async fn a_failed_query_stops_the_others_and_says_why() {
    let mut fake = FakeInsights::new(Box::new(dense));
    fake.fail.insert((0, 49), "Timeout".into());
    let clock = FakeClock(Mutex::new(0));
    let mut a = analyzer();
    let out = advance(&fake, &clock, Progress::new(0, 99), 600_000, &mut a)
        .await
        .unwrap();
    let Outcome::Failed(why) = out else { panic!("{out:?}") };
    assert!(why.contains("0..49 ended Timeout"), "{why}");
    let qs = fake.queries.lock().unwrap();
    let other = qs.iter().find(|q| q.window == (50, 99)).unwrap();
    assert!(
        other.stopped || other.polls_left == 0,
        "the other half is not left running"
    );
    assert_eq!(a.stats().lines, 0);
}
