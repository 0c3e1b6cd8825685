//! No Logs Insights query a report starts outlives its recording: the query ledger
//! (natrec::ledger::Ledgered around the report's queries) and the sweeper's
//! natrec::sweep::stop_queries, against the fake Logs Insights (CloudWatch Logs API reference:
//! a query runs until it ends or StopQuery stops it; StopQuery on an ended query is an error the
//! adapter takes as done) and a fake ledger that keeps sets as the DynamoDB adapter does.

mod fakes;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use fakes::{transient, FakeExecutions, FakeInsights, FakeLedger};
use natflow::insights::{MAX_ROWS, RECORDS_QUERY};
use natflow::{Analyzer, Format};
use natrec::insights::{advance, Outcome, Progress, CONCURRENT};
use natrec::ledger::{Ledgered, LEDGER_TTL_S};
use natrec::pacing::Clock;
use natrec::ports::{LogQueries, QueryLedger, QueryState};
use natrec::sweep::{stop_queries, QueryScope};
use natrec::Result;

const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:natrec-x:alarm-1";
/// 2026-11-25T09:00:00Z
const NOW_MS: i64 = 1_795_597_200_000;

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

fn clock() -> FakeClock {
    FakeClock(Mutex::new(NOW_MS))
}

/// Every window answers with no group (the ledger does not look at rows).
fn quiet() -> FakeInsights {
    FakeInsights::new(Box::new(|_, _| (vec![], 10)))
}

fn analyzer() -> Analyzer {
    Analyzer::new(Format::recorder(), &[]).unwrap()
}

fn stopped(fake: &FakeInsights) -> Vec<usize> {
    let qs = fake.queries.lock().unwrap();
    (0..qs.len()).filter(|&i| qs[i].stopped).collect()
}

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(NOW_MS).unwrap()
}

#[tokio::test]
async fn queries_left_running_by_a_report_are_stopped_once_its_execution_ends() {
    // The report's invocation ends while its queries run: it carries on after WaitForQueries,
    // and the execution is stopped by hand during that wait.
    let (mut fake, ledger, clock, execs) = (quiet(), FakeLedger::default(), clock(), FakeExecutions::default());
    fake.polls = 1_000;
    let queries = Ledgered::new(&fake, &ledger, &clock, EXEC);
    let out = advance(
        &queries,
        &clock,
        Progress::new(0, 3_600),
        NOW_MS + 10_000,
        &mut analyzer(),
    )
    .await
    .unwrap();
    let Outcome::Pending(progress) = out else {
        panic!("expected the run to carry on, got {out:?}")
    };
    assert!(!progress.running.is_empty() && progress.running.len() <= CONCURRENT);
    let running: Vec<String> = progress.query_ids().map(str::to_string).collect();
    assert_eq!(ledger.of(EXEC), running, "every running query is in the ledger");
    assert_eq!(
        ledger.ledgers.lock().unwrap()[EXEC].1,
        NOW_MS / 1000 + LEDGER_TTL_S,
        "the ledger expires 2 h after its latest query started"
    );

    // While the execution runs (waiting), the scheduled sweep leaves its queries alone.
    execs.running.lock().unwrap().push(EXEC.into());
    let swept = stop_queries(now(), QueryScope::NotRunning, &ledger, &fake, &execs).await;
    assert!(swept.is_empty(), "{swept:?}");
    assert!(stopped(&fake).is_empty());

    // Stopped by hand: the status change rule calls the sweeper for it.
    execs.running.lock().unwrap().clear();
    let swept = stop_queries(now(), QueryScope::Ended(EXEC), &ledger, &fake, &execs).await;
    assert_eq!(swept.stopped, running);
    assert_eq!(stopped(&fake).len(), running.len());
    assert!(ledger.is_empty());
    let again = stop_queries(now(), QueryScope::NotRunning, &ledger, &fake, &execs).await;
    assert!(again.is_empty(), "nothing stopped twice: {again:?}");
}

#[tokio::test]
async fn queries_that_end_or_are_stopped_by_the_report_leave_the_ledger() {
    let (fake, ledger, clock) = (quiet(), FakeLedger::default(), clock());
    let queries = Ledgered::new(&fake, &ledger, &clock, EXEC);
    let out = advance(
        &queries,
        &clock,
        Progress::new(0, 3_600),
        NOW_MS + 600_000,
        &mut analyzer(),
    )
    .await
    .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert!(fake.queries.lock().unwrap().len() >= 2);
    assert!(
        ledger.is_empty(),
        "complete queries are taken out: {:?}",
        ledger.ledgers
    );

    // A query that ends Failed: the report reads the records instead.
    let (mut fake, ledger) = (quiet(), FakeLedger::default());
    fake.polls = 3;
    fake.fail.insert((0, 59), "Failed".into());
    let queries = Ledgered::new(&fake, &ledger, &clock, EXEC);
    let out = advance(&queries, &clock, Progress::new(0, 59), i64::MAX / 2, &mut analyzer())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Failed(_)), "{out:?}");
    assert!(ledger.is_empty(), "a failed query is taken out: {:?}", ledger.ledgers);

    // A query the report stops (insights::stop_all, on its failure paths).
    let id = queries.start(RECORDS_QUERY, 0, 59, MAX_ROWS).await.unwrap().unwrap();
    assert_eq!(ledger.of(EXEC), vec![id.clone()]);
    queries.stop(&id).await.unwrap();
    assert!(ledger.is_empty() && stopped(&fake) == vec![1]);
}

#[tokio::test]
async fn a_query_that_cannot_be_written_into_the_ledger_is_stopped_and_started_again() {
    let (fake, ledger, clock) = (quiet(), FakeLedger::default(), clock());
    *ledger.fail_record.lock().unwrap() = 1; // throttled once
    let queries = Ledgered::new(&fake, &ledger, &clock, EXEC);
    let err = queries.start(RECORDS_QUERY, 0, 59, MAX_ROWS).await.unwrap_err();
    assert!(err.is_transient(), "the ledger's error, as it is: {err}");
    assert_eq!(stopped(&fake), vec![0], "not left running unledgered");
    assert!(ledger.is_empty());

    // Within a report: the window is started again later, and the run completes.
    *ledger.fail_record.lock().unwrap() = 1;
    let out = advance(
        &queries,
        &clock,
        Progress::new(0, 3_600),
        NOW_MS + 600_000,
        &mut analyzer(),
    )
    .await
    .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(stopped(&fake), vec![0, 1]);
    assert!(ledger.is_empty());
}

#[tokio::test]
async fn a_query_the_ledger_cannot_forget_is_stopped_by_the_sweeper_after_its_execution() {
    let (fake, ledger, clock, execs) = (quiet(), FakeLedger::default(), clock(), FakeExecutions::default());
    let queries = Ledgered::new(&fake, &ledger, &clock, EXEC);
    let id = queries.start(RECORDS_QUERY, 0, 59, MAX_ROWS).await.unwrap().unwrap();
    *ledger.fail_forget.lock().unwrap() = 10;
    while matches!(queries.results(&id).await.unwrap(), QueryState::Running) {}
    assert_eq!(
        ledger.of(EXEC),
        vec![id.clone()],
        "a failed forget keeps it, and the report goes on"
    );
    // The execution ended normally (SUCCEEDED: no status change event): the schedule sweeps it.
    *ledger.fail_forget.lock().unwrap() = 0;
    let swept = stop_queries(now(), QueryScope::NotRunning, &ledger, &fake, &execs).await;
    assert_eq!(swept.stopped, vec![id]);
    assert!(ledger.is_empty());
}

#[tokio::test]
async fn a_finished_report_stops_the_queries_an_interrupted_invocation_left() {
    use natrec::report::{CarryOn, ReportNotice};
    let (mut fake, ledger, clock) = (quiet(), FakeLedger::default(), clock());
    fake.polls = 3;
    let queries = Ledgered::new(&fake, &ledger, &clock, EXEC);
    // An invocation starts a query and dies (Lambda timeout) before it returns its progress.
    let lost = queries.start(RECORDS_QUERY, 0, 59, MAX_ROWS).await.unwrap().unwrap();
    // The state machine's retry starts that window again and finishes.
    let out = advance(&queries, &clock, Progress::new(0, 59), i64::MAX / 2, &mut analyzer())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(ledger.of(EXEC), vec![lost.clone()]);
    let notice = |pending| ReportNotice {
        subject: String::new(),
        message: String::new(),
        report_stream: String::new(),
        truncated: false,
        pending,
    };
    let carry_on = Some(CarryOn {
        progress: Progress::new(0, 59),
        since_ms: NOW_MS,
    });
    assert_eq!(
        queries.after_report(&notice(carry_on)).await,
        0,
        "a report still waiting stops nothing"
    );
    assert!(stopped(&fake).is_empty());
    assert_eq!(queries.after_report(&notice(None)).await, 1);
    assert_eq!(stopped(&fake), vec![0], "the lost invocation's query");
    assert!(ledger.is_empty());
}

/// StopQuery refused `fails` times (throttled), then the fake's.
struct FlakyStop<'a>(&'a FakeInsights, Mutex<u32>);

#[async_trait]
impl LogQueries for FlakyStop<'_> {
    async fn start(&self, q: &str, s: i64, e: i64, limit: usize) -> Result<Option<String>> {
        self.0.start(q, s, e, limit).await
    }
    async fn results(&self, id: &str) -> Result<QueryState> {
        self.0.results(id).await
    }
    async fn stop(&self, id: &str) -> Result<()> {
        let refused = {
            let mut n = self.1.lock().unwrap();
            let refused = *n > 0;
            *n = n.saturating_sub(1);
            refused
        };
        if refused {
            return Err(transient("StopQuery"));
        }
        self.0.stop(id).await
    }
}

/// Starts a query through the fake and writes it into `execution`'s ledger.
async fn ledgered(fake: &FakeInsights, ledger: &FakeLedger, execution: &str, expires_at_s: i64) -> String {
    let id = fake.start(RECORDS_QUERY, 0, 59, MAX_ROWS).await.unwrap().unwrap();
    ledger.record(execution, &id, expires_at_s).await.unwrap();
    id
}

#[tokio::test]
async fn the_scheduled_sweep_stops_only_queries_no_running_execution_waits_for() {
    let (mut fake, ledger, execs) = (quiet(), FakeLedger::default(), FakeExecutions::default());
    fake.polls = 1_000;
    let later = now().timestamp() + LEDGER_TTL_S;
    let running = ledgered(&fake, &ledger, "exec-running", later).await;
    let ended = ledgered(&fake, &ledger, "exec-ended", later).await;
    let unreadable = ledgered(&fake, &ledger, "exec-unreadable", later).await;
    // Past its TTL: no query runs that long, whatever the execution's status says.
    let expired = ledgered(&fake, &ledger, "exec-expired", now().timestamp() - 1).await;
    execs
        .running
        .lock()
        .unwrap()
        .extend(["exec-running".into(), "exec-expired".into()]);
    execs.unreadable.lock().unwrap().push("exec-unreadable".into());

    let swept = stop_queries(now(), QueryScope::NotRunning, &ledger, &fake, &execs).await;
    let mut got = swept.stopped.clone();
    got.sort();
    let mut want = vec![ended.clone(), expired.clone()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(swept.unchecked, vec!["exec-unreadable".to_string()]);
    assert_eq!(ledger.of("exec-running"), vec![running.clone()]);
    assert_eq!(ledger.of("exec-unreadable"), vec![unreadable.clone()]);
    assert!(ledger.of("exec-ended").is_empty() && ledger.of("exec-expired").is_empty());

    // The ended-execution event sweeps the others no longer running too; stack deletion, all.
    execs.running.lock().unwrap().clear();
    execs.unreadable.lock().unwrap().clear();
    let swept = stop_queries(now(), QueryScope::Ended("exec-other"), &ledger, &fake, &execs).await;
    assert_eq!(swept.stopped.len(), 2);
    let everything = ledgered(&fake, &ledger, "exec-new", later).await;
    execs.running.lock().unwrap().push("exec-new".into());
    let swept = stop_queries(now(), QueryScope::Everything, &ledger, &fake, &execs).await;
    assert_eq!(swept.stopped, vec![everything]);
    assert!(ledger.is_empty());
    assert_eq!(stopped(&fake).len(), 5);
}

#[tokio::test]
async fn what_the_sweeper_cannot_stop_now_is_kept_for_its_next_run_and_never_fails_it() {
    let (mut fake, ledger, execs) = (quiet(), FakeLedger::default(), FakeExecutions::default());
    fake.polls = 1_000;
    let id = ledgered(&fake, &ledger, EXEC, now().timestamp() + LEDGER_TTL_S).await;

    *ledger.fail_read.lock().unwrap() = 1;
    let swept = stop_queries(now(), QueryScope::Ended(EXEC), &ledger, &fake, &execs).await;
    assert!(swept.stopped.is_empty() && swept.errors[0].contains("ledger could not be read"));

    let flaky = FlakyStop(&fake, Mutex::new(1));
    let swept = stop_queries(now(), QueryScope::Ended(EXEC), &ledger, &flaky, &execs).await;
    assert!(swept.stopped.is_empty() && swept.errors[0].contains(&id), "{swept:?}");
    assert_eq!(ledger.of(EXEC), vec![id.clone()], "kept for the next sweep");

    let swept = stop_queries(now(), QueryScope::NotRunning, &ledger, &flaky, &execs).await;
    assert_eq!(swept.stopped, vec![id]);
    assert!(ledger.is_empty() && swept.errors.is_empty());

    // Past the ledger's expiry no query runs: a StopQuery refused there is not retried forever.
    let old = ledgered(&fake, &ledger, "exec-old", now().timestamp() - 1).await;
    let refusing = FlakyStop(&fake, Mutex::new(u32::MAX));
    let swept = stop_queries(now(), QueryScope::NotRunning, &ledger, &refusing, &execs).await;
    assert_eq!(swept.stopped, vec![old]);
    assert!(ledger.is_empty() && swept.errors.is_empty());
}

mod entry_points {
    //! The sweeper's entry points (natrec::sweep::Sweeper, what the Lambda calls).

    use super::*;
    use fakes::{FakeEc2, FakeNotifier, FakeStore};
    use natrec::nat::{NatGateway, NatGatewayId};
    use natrec::recording::{start, StartSettings};
    use natrec::sweep::Sweeper;
    use natrec::RecorderError;

    const NAT: &str = "nat-0123456789abcdef0";

    fn alarm() -> serde_json::Value {
        let path = format!(
            "{}/../../tests/fixtures/alarm-math-alarm.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn ec2() -> FakeEc2 {
        FakeEc2::with_nat(NatGateway {
            id: NatGatewayId::parse(NAT).unwrap(),
            state: "available".into(),
            vpc_id: None,
            regional: false,
            interfaces: vec!["eni-0aaa".into()],
            name: None,
        })
    }

    async fn recording(ec2: &FakeEc2, store: &FakeStore) {
        let settings = StartSettings {
            stack_name: "natrec-test".into(),
            log_group: "/natrec/natrec-test/flow-logs".into(),
            delivery_role_arn: "arn:aws:iam::123456789012:role/d".into(),
            recording_time_s: 900,
            max_recordings: 0,
        };
        start(alarm(), EXEC, now(), &settings, ec2, ec2, store).await.unwrap();
    }

    #[tokio::test]
    async fn a_failing_flow_log_sweep_still_stops_the_queries_first() {
        let (ec2, store, execs, notifier) = (
            ec2(),
            FakeStore::default(),
            FakeExecutions::default(),
            FakeNotifier::default(),
        );
        let (mut fake, ledger) = (quiet(), FakeLedger::default());
        fake.polls = 1_000;
        recording(&ec2, &store).await;
        let id = ledgered(&fake, &ledger, EXEC, now().timestamp() + LEDGER_TTL_S).await;
        *ec2.fail_delete.lock().unwrap() = Some(RecorderError::Aws {
            service: "EC2",
            operation: "DeleteFlowLogs",
            message: "UnauthorizedOperation".into(),
        });
        let sweeper = Sweeper::new("natrec-test", &ec2, &execs, &store, &notifier, &fake, &ledger);
        assert!(sweeper.sweep(now(), false).await.is_err(), "the flow-log sweep failed");
        assert_eq!(stopped(&fake), vec![0], "its query was stopped all the same");
        assert!(ledger.is_empty());
        let report = sweeper.sweep(now(), false).await.unwrap();
        assert_eq!(report.swept.len(), 1, "the flow logs go on the next run");
        assert!(report.queries.is_empty(), "{:?} stopped once: {id}", report.queries);
    }

    #[tokio::test]
    async fn the_status_change_of_an_execution_stopped_by_hand_stops_its_queries() {
        let (ec2, store, execs, notifier) = (
            ec2(),
            FakeStore::default(),
            FakeExecutions::default(),
            FakeNotifier::default(),
        );
        let (mut fake, ledger) = (quiet(), FakeLedger::default());
        fake.polls = 1_000;
        let id = ledgered(&fake, &ledger, EXEC, now().timestamp() + LEDGER_TTL_S).await;
        // DescribeExecution may still say RUNNING a moment after StopExecution: the event is
        // what counts for its own execution.
        execs.running.lock().unwrap().push(EXEC.into());
        let sweeper = Sweeper::new("natrec-test", &ec2, &execs, &store, &notifier, &fake, &ledger);
        let scheduled = sweeper.on_event(now(), &serde_json::json!({})).await.unwrap();
        assert!(scheduled.queries.is_empty() && stopped(&fake).is_empty());
        let event = serde_json::json!({
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {"executionArn": EXEC, "status": "ABORTED", "input": null},
        });
        let report = sweeper.on_event(now(), &event).await.unwrap();
        assert_eq!(report.queries.stopped, vec![id]);
        assert_eq!(stopped(&fake), vec![0]);
        assert!(ledger.is_empty());
        assert_eq!(
            serde_json::to_value(&report).unwrap()["queries"]["stopped"][0],
            serde_json::json!("q0"),
            "the sweeper's answer says which queries it stopped"
        );
    }
}
