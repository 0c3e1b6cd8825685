//! The report's server-side path (natrec::insights) against a fake Logs Insights that behaves as
//! the CloudWatch Logs API reference documents it: StartQuery refused with
//! `LimitExceededException` while the account's concurrent queries are at their quota (30 in the
//! API reference); a query is Scheduled/Running for a while, then Complete with at most `limit`
//! rows (up to 100,000; StartQuery refuses more than 10,000 with `InvalidParameterException` where
//! the older bound holds) and its statistics, or Failed/Cancelled/Timeout; GetQueryResults answers
//! again for a complete query (results are kept 7 days); StopQuery ends a running query.

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

/// A fake answer: its rows and the records it scanned.
type Rows = (Vec<Vec<(String, String)>>, u64);

/// The window 0..99 holds 120,000 groups (too many for one answer of 100,000 rows); each half
/// holds 60,000.
fn dense(s: i64, e: i64) -> (Vec<Vec<(String, String)>>, u64) {
    dense_of(12 * 10_000)(s, e)
}

/// The window 0..99 holds `n` groups of 2 records of 100 bytes; each half holds half of them.
fn dense_of(n: u32) -> impl Fn(i64, i64) -> Rows + Send + Sync {
    move |s, e| {
        let hosts: Vec<u32> = match (s, e) {
            (0, 99) => (0..n).collect(),
            (0, 49) => (0..n / 2).collect(),
            (50, 99) => (n / 2..n).collect(),
            other => panic!("unexpected window {other:?}"),
        };
        let rows: Vec<_> = hosts.iter().map(|h| row(*h, 100, 2)).collect();
        let scanned = rows.len() as u64 * 2;
        (rows, scanned)
    }
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
    assert_eq!(server_side.records_scanned, 240_000);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(a.stats().counted, 240_000);
    assert_eq!(a.flows().map(|(_, c)| c.bytes()).sum::<u64>(), 12_000_000);
    assert!(*fake.most_running.lock().unwrap() <= CONCURRENT);
}

/// Out of time: the run hands its progress on (small, JSON) and the next invocation finishes it,
/// reading again the answers the first one saw.
#[tokio::test]
async fn a_run_that_does_not_finish_in_time_carries_on_in_the_next_invocation() {
    // Where a limit above 10,000 is refused (and 12,000 groups): the 10,000-row plan is carried on.
    let mut fake = FakeInsights::new(Box::new(dense_of(12_000)));
    fake.max_limit = 10_000;
    fake.polls = 3;
    let clock = FakeClock(Mutex::new(0));
    let mut first = analyzer();
    let out = advance(&fake, &clock, Progress::new(0, 99), 3_000, &mut first)
        .await
        .unwrap();
    let Outcome::Pending(p) = out else { panic!("{out:?}") };
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.len() < 2_000, "{json}");
    // The first invocation counted what it saw; its analyzer is dropped with the invocation.
    let p: Progress = serde_json::from_str(&json).unwrap();
    let mut second = analyzer();
    let out = advance(&fake, &clock, p, 600_000, &mut second).await.unwrap();
    let Outcome::Done { server_side, warnings } = out else {
        panic!("{out:?}")
    };
    assert_eq!(second.stats().counted, 24_000);
    assert_eq!((server_side.queries, server_side.split), (3, 1));
    assert!(
        warnings[0].contains(
            "refused queries of 100000 rows (CloudWatch Logs StartQuery was refused: InvalidParameterException"
        ),
        "{warnings:?}"
    );
    let qs = fake.queries.lock().unwrap();
    assert!(
        qs.iter().all(|q| q.limit == 10_000),
        "the 10,000-row plan was carried on"
    );
}

/// A bad-parameter refusal that does not speak of the limit is no reason to ask for fewer rows:
/// the run fails with it (the report reads the records and says why).
#[tokio::test]
async fn a_refused_query_that_is_not_about_its_limit_fails_the_run() {
    let mut fake = FakeInsights::new(Box::new(dense_of(10)));
    fake.refuse_start = Some("MalformedQueryException: unexpected symbol at 1:7".into());
    let clock = FakeClock(Mutex::new(0));
    let out = advance(&fake, &clock, Progress::new(0, 99), 600_000, &mut analyzer())
        .await
        .unwrap();
    let Outcome::Failed(why) = out else { panic!("{out:?}") };
    assert!(why.contains("unexpected symbol"), "{why}");
}

/// A complete answer whose reading fails (a page throttled: the adapter fails the whole call) is
/// polled again like any failed poll, and counted once; failing as long as a poll may, it ends
/// the run (the report reads the records).
#[tokio::test]
async fn a_failed_page_is_read_again_like_a_failed_poll_and_counted_once() {
    let fake = FakeInsights::new(Box::new(dense_of(1_000)));
    *fake.failing_reads.lock().unwrap() = 3;
    let clock = FakeClock(Mutex::new(0));
    let mut a = analyzer();
    let out = advance(&fake, &clock, Progress::new(0, 99), 600_000, &mut a)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(a.stats().counted, 2_000, "each group once");
    assert_eq!(fake.results_calls.lock().unwrap()["q0"], 2 + 3 + 1);

    let fake = FakeInsights::new(Box::new(dense_of(1_000)));
    *fake.failing_reads.lock().unwrap() = 100;
    let out = advance(&fake, &clock, Progress::new(0, 99), i64::MAX, &mut analyzer())
        .await
        .unwrap();
    let Outcome::Failed(why) = out else { panic!("{out:?}") };
    assert!(
        why.contains("GetQueryResults kept failing: CloudWatch Logs GetQueryResults failed transiently"),
        "{why}"
    );
}

/// Twenty recordings report at once while only 10 more queries fit in the account's concurrent
/// quota (30 in the API reference, shared with everyone's queries): some starts are refused and
/// wait; none fails.
#[tokio::test]
async fn twenty_reports_at_once_queue_within_the_concurrent_query_quota() {
    let light =
        |_: i64, _: i64| -> (Vec<Vec<(String, String)>>, u64) { ((0..100).map(|h| row(h, 100, 2)).collect(), 200) };
    let mut fake = FakeInsights::new(Box::new(light));
    fake.quota = 10;
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
        assert_eq!(counted, 200);
    }
    assert!(*fake.most_running.lock().unwrap() <= 10);
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
    let mut fake = FakeInsights::new(Box::new(dense_of(12_000)));
    fake.max_limit = 10_000;
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
}
