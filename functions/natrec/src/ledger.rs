//! The query ledger around the report's Logs Insights queries: no query a recording's report
//! starts may outlive the recording. The report stops its own queries on its failure paths
//! (`crate::insights`), but an execution stopped by hand, failed hard or timed out while they run
//! (during its WaitForQueries loop above all) cannot: a Logs Insights query runs up to 60 minutes
//! (CloudWatch Logs quotas), scanning and billing. [`Ledgered`] writes each query the report
//! starts into the execution's ledger ([`QueryLedger`], the recorder's DynamoDB table) and takes
//! it out once the query ended or was stopped; the sweeper stops what is left of an execution
//! that is no longer running (`crate::sweep::stop_queries`), as it deletes its flow logs.

use async_trait::async_trait;
use tracing::{error, warn};

use crate::error::Result;
use crate::pacing::Clock;
use crate::ports::{LogQueries, QueryLedger, QueryState};

/// How long a ledger is kept (its TTL) after its latest query started: a query ends within 60
/// minutes ("CloudWatch Logs quotas": queries time out after 60 minutes), so a ledger past this
/// holds no running query, and DynamoDB's TTL removes it (typically within a few days of
/// expiry: "Time to Live", DynamoDB developer guide; the sweeper treats it as ended until then).
pub const LEDGER_TTL_S: i64 = 2 * 3600;

/// [`LogQueries`] with every query written into `execution`'s ledger while it may run.
pub struct Ledgered<'a, Q, L, C> {
    queries: &'a Q,
    ledger: &'a L,
    clock: &'a C,
    execution: String,
}

impl<'a, Q, L, C> Ledgered<'a, Q, L, C> {
    pub fn new(queries: &'a Q, ledger: &'a L, clock: &'a C, execution: impl Into<String>) -> Self {
        Self {
            queries,
            ledger,
            clock,
            execution: execution.into(),
        }
    }

    /// After the report step: once the report is done (its notice built, no query to carry on),
    /// stops every query still in the execution's ledger. Its own queries have all ended or been
    /// stopped by then; what is left was started by an invocation that did not finish (a Lambda
    /// timeout or crash after StartQuery, whose windows the state machine's retry started again),
    /// and is stopped now rather than once the sweeper finds the execution ended. Best effort:
    /// what fails is left for the sweeper. Returns how many were stopped.
    pub async fn after_report(&self, notice: &crate::report::ReportNotice) -> usize
    where
        Q: LogQueries,
        L: QueryLedger,
    {
        if notice.pending.is_some() {
            return 0; // its queries carry on after WaitForQueries
        }
        let ids = match self.ledger.of_execution(&self.execution).await {
            Ok(ids) => ids,
            Err(e) => {
                warn!(error = %e, "query ledger not read: leftover queries are left for the sweeper");
                return 0;
            }
        };
        let mut stopped = 0;
        for id in ids {
            match self.queries.stop(&id).await {
                Ok(()) => {
                    warn!(query = %id, "stopped a query left by an earlier invocation of this report");
                    self.forget(&id).await;
                    stopped += 1;
                }
                Err(e) => warn!(error = %e, query = %id, "StopQuery failed: the sweeper stops it"),
            }
        }
        stopped
    }

    /// Takes an ended query out of the ledger. A failure only leaves it for the sweeper, which
    /// stops it (an ended query answers StopQuery with an error the adapter takes as done) and
    /// takes it out once the execution is no longer running.
    async fn forget(&self, query_id: &str)
    where
        L: QueryLedger,
    {
        if let Err(e) = self.ledger.forget(&self.execution, query_id).await {
            warn!(error = %e, query = query_id, "query ended but not taken out of the ledger: the sweeper will");
        }
    }
}

#[async_trait]
impl<Q: LogQueries, L: QueryLedger, C: Clock> LogQueries for Ledgered<'_, Q, L, C> {
    /// Starts the query, then writes it into the ledger. A query that cannot be written in is
    /// stopped at once and the ledger's error returned (a transient one makes the report start
    /// it again later, any other makes it read the records instead): no query runs unledgered,
    /// except one whose StopQuery fails too, which ends by itself within 60 minutes.
    async fn start(&self, query: &str, start_s: i64, end_s: i64, limit: usize) -> Result<Option<String>> {
        let Some(id) = self.queries.start(query, start_s, end_s, limit).await? else {
            return Ok(None);
        };
        let expires_at_s = self.clock.now_ms() / 1000 + LEDGER_TTL_S;
        if let Err(e) = self.ledger.record(&self.execution, &id, expires_at_s).await {
            match self.queries.stop(&id).await {
                Ok(()) => warn!(error = %e, query = %id, "query not written into the ledger: stopped"),
                Err(stop) => error!(
                    error = %e, stop_error = %stop, query = %id,
                    "query neither written into the ledger nor stopped: it ends by itself within 60 minutes"
                ),
            }
            return Err(e);
        }
        Ok(Some(id))
    }

    /// The query's state; one that ended (Complete, Failed, Cancelled, Timeout) is taken out of
    /// the ledger. A Complete query is asked again for its rows later (GetQueryResults keeps them
    /// 7 days): taking it out again is harmless.
    async fn results(&self, query_id: &str) -> Result<QueryState> {
        let state = self.queries.results(query_id).await?;
        if !matches!(state, QueryState::Running) {
            self.forget(query_id).await;
        }
        Ok(state)
    }

    /// Stops the query and takes it out of the ledger; one that could not be stopped stays in
    /// it for the sweeper.
    async fn stop(&self, query_id: &str) -> Result<()> {
        self.queries.stop(query_id).await?;
        self.forget(query_id).await;
        Ok(())
    }
}
