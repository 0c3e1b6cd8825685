//! Server-side aggregation: CloudWatch Logs Insights groups the records (`stats ... by` every
//! field the analysis decides on, `queries/report-records.query`), and each result row is fed to
//! the same [`Analyzer`] as one record standing for `records` records. The classification
//! (which rows are the NAT's, upload or download, NODATA, REJECT, regional NAT, ...) is the
//! streaming path's own code, so a report built from the rows equals the report built by reading
//! every record — except what only reading can know: the bytes read and examples of malformed
//! lines.
//!
//! Query syntax: CloudWatch Logs User Guide, "CloudWatch Logs Insights language query syntax"
//! (parse with a glob, `stats` with `sum`, `count`, `min`, `max` and `by`); results: Logs API
//! reference, StartQuery (`limit` at most 100,000, "only supported for Logs Insights QL") and
//! GetQueryResults (rows of `{field, value}`, at most 10,000 a request: `maxItems`, the rest
//! through `nextToken`, up to 100,000 a query); the query syntax's `limit` page
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Limit.html: "You can
//! specify a limit value of up to 100,000").

use serde::{Deserialize, Serialize};

use crate::analyze::Analyzer;
use crate::format::RECORDER_FIELDS;
use crate::report::ServerSide;

/// The report's query, compiled in from `queries/`.
pub const RECORDS_QUERY: &str = include_str!("../../../queries/report-records.query");

/// Most rows one query returns: StartQuery's `limit` and the query's `limit` command go up to
/// 100,000 (Logs Insights QL), read from GetQueryResults [`PAGE_ROWS`] at a time with
/// `nextToken`. A full answer may be missing groups: the caller splits the window and asks again.
pub const MAX_ROWS: usize = 100_000;
/// Most rows one query returns where a `limit` above 10,000 is refused (the API reference's
/// older bound, "1 to 10,000"; StartQuery answers `InvalidParameterException` or
/// `MalformedQueryException`): the plan falls back to it ([`Plan::rows_refused`]).
pub const LEGACY_MAX_ROWS: usize = 10_000;
/// Rows a GetQueryResults request returns at most (`maxItems`: "The maximum is 10,000 log events
/// per request"); the caller asks for the next page with `nextToken` until none is returned.
pub const PAGE_ROWS: usize = 10_000;

/// The report query asking for at most `max_rows` rows (its `limit` command).
pub fn records_query(max_rows: usize) -> String {
    let limit = RECORDS_QUERY
        .lines()
        .find(|l| l.starts_with("| limit "))
        .expect("the report query ends with a limit");
    RECORDS_QUERY.replace(limit, &format!("| limit {max_rows}"))
}

/// Reading one answer's GetQueryResults pages ([`PAGE_ROWS`] rows a page, `nextToken` to the
/// next; Logs API reference, GetQueryResults): which token to ask for next, when the answer is
/// whole, and when the paging misbehaves. The reference promises no more than "a token while
/// more results remain", so an empty page with a token is read on, and a repeated token or more
/// pages than [`MAX_ROWS`] need breaks the reading instead of passing a short answer for a whole one.
#[derive(Debug, Default)]
pub struct Pages {
    rows: usize,
    pages: usize,
    seen: std::collections::HashSet<String>,
}

/// What to do after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStep {
    /// Ask for the page of this token.
    Next(String),
    /// The answer is whole (or holds [`MAX_ROWS`] rows: the plan splits its window).
    Done,
    /// The answer cannot be read whole: why.
    Broken(String),
}

impl Pages {
    /// Pages one answer may take: [`MAX_ROWS`] / [`PAGE_ROWS`] full pages and some empty ones.
    pub const MAX_PAGES: usize = MAX_ROWS / PAGE_ROWS + 10;

    /// After a page of `rows` rows whose answer carried `next_token`.
    pub fn after(&mut self, rows: usize, next_token: Option<&str>) -> PageStep {
        self.rows += rows;
        self.pages += 1;
        let Some(t) = next_token.filter(|t| !t.is_empty()) else {
            return PageStep::Done;
        };
        if self.rows >= MAX_ROWS {
            return PageStep::Done;
        }
        if !self.seen.insert(t.to_string()) {
            return PageStep::Broken("GetQueryResults gave the same nextToken twice".into());
        }
        if self.pages >= Self::MAX_PAGES {
            return PageStep::Broken(format!(
                "GetQueryResults still had a nextToken after {} pages ({} rows)",
                self.pages, self.rows
            ));
        }
        PageStep::Next(t.to_string())
    }
}

/// Each recorder field the query groups by, as the query's `parse ... as` names it.
pub const GROUP_FIELDS: &[(&str, &str)] = &[
    ("interface-id", "interface_id"),
    ("srcaddr", "srcaddr"),
    ("dstaddr", "dstaddr"),
    ("action", "action"),
    ("log-status", "log_status"),
    ("az-id", "az_id"),
    ("pkt-srcaddr", "pkt_srcaddr"),
    ("pkt-dstaddr", "pkt_dstaddr"),
    ("pkt-src-aws-service", "pkt_src_aws_service"),
    ("pkt-dst-aws-service", "pkt_dst_aws_service"),
    // The last glob: "type resource-id", or "type" in records from before resource-id.
    ("type resource-id", TYPE_AND_RESOURCE),
];

/// The query's last field: the record's `type` and, when the record has one, its `resource-id`.
pub const TYPE_AND_RESOURCE: &str = "type_and_resource";

/// The aggregate columns of the query.
pub const SUM_BYTES: &str = "sum_bytes";
pub const SUM_PACKETS: &str = "sum_packets";
pub const RECORDS: &str = "records";
pub const FIRST_START: &str = "first_start";
pub const LAST_END: &str = "last_end";

/// One result row: `(field, value)` pairs as GetQueryResults returns them (a field whose value
/// is null may be missing).
pub type Row = [(String, String)];

/// A GetQueryResults row (`{field, value}` items) as [`Row`] pairs: items without a value left
/// out, and `@ptr` (the pointer to the log event Insights adds to every row), which is no field.
pub fn result_row<'a>(items: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Vec<(String, String)> {
    items
        .into_iter()
        .filter_map(|(f, v)| Some((f?.to_string(), v?.to_string())))
        .filter(|(f, _)| f != "@ptr")
        .collect()
}

fn value<'a, K: AsRef<str>, V: AsRef<str>>(row: &'a [(K, V)], field: &str) -> Option<&'a str> {
    row.iter()
        .find(|(f, _)| f.as_ref() == field)
        .map(|(_, v)| v.as_ref())
        .filter(|v| !v.is_empty())
}

/// A count as Insights prints it: an integer, or a float such as `1.2345e+06` or `42.0`.
fn number(v: Option<&str>) -> Option<u64> {
    let v = v?;
    v.parse::<u64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

/// One result row in the compact form the analysis needs: the record line it stands for, in the
/// recorder's format, and how many records. About 200 bytes, where the row's `(field, value)`
/// pairs take about 1.5 KB: 100,000 rows of an answer are ~20 MB instead of ~150 MB, so a caller
/// converts each page's rows as it arrives ([`Group::from_row`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `None`: lines the `parse` pattern did not match (every grouped field empty).
    line: Option<Box<str>>,
    records: u64,
}

impl Group {
    /// A row of [`RECORDS_QUERY`] as a group (one for every row, so that a caller can tell a
    /// full answer by their number; a row without a record count counts nothing).
    pub fn from_row(row: &Row) -> Self {
        Self::from_pairs(row)
    }

    fn from_pairs<K: AsRef<str>, V: AsRef<str>>(row: &[(K, V)]) -> Self {
        let records = number(value(row, RECORDS)).unwrap_or(0);
        let grouped: Vec<Option<&str>> = GROUP_FIELDS.iter().map(|(_, q)| value(row, q)).collect();
        if records == 0 || grouped.iter().all(Option::is_none) {
            return Self { line: None, records };
        }
        let mut line = String::with_capacity(256);
        for field in RECORDER_FIELDS {
            let last = value(row, TYPE_AND_RESOURCE);
            let v = match *field {
                "bytes" => value(row, SUM_BYTES),
                "packets" => value(row, SUM_PACKETS),
                "start" => value(row, FIRST_START),
                "end" => value(row, LAST_END),
                // Split at the first space only: anything after a resource-id stays with it,
                // and the line then has too many fields, as the record had (malformed).
                "type" => last.map(|l| l.split_once(' ').map_or(l, |(t, _)| t)),
                "resource-id" => last.and_then(|l| l.split_once(' ').map(|(_, r)| r)),
                f => GROUP_FIELDS
                    .iter()
                    .position(|(name, _)| *name == f)
                    .and_then(|i| grouped[i]),
            };
            // Sums and times as integers, whatever notation Insights printed them in.
            let v = match (*field, v) {
                ("bytes" | "packets" | "start" | "end", Some(n)) => number(Some(n)).map(|n| n.to_string()),
                (_, v) => v.map(str::to_string),
            };
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(v.as_deref().unwrap_or("-"));
        }
        Self {
            line: Some(line.into_boxed_str()),
            records,
        }
    }

    /// A GetQueryResults row (`{field, value}` items) as a group ([`result_row`], then
    /// [`Group::from_row`]).
    pub fn from_result<'a>(items: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Self {
        // The same pairs as `result_row`, borrowed rather than copied.
        let pairs: Vec<(&str, &str)> = items
            .into_iter()
            .filter_map(|(f, v)| Some((f?, v?)))
            .filter(|(f, _)| *f != "@ptr")
            .collect();
        Self::from_pairs(&pairs)
    }

    /// The records it stands for.
    pub fn records(&self) -> u64 {
        self.records
    }
}

impl Analyzer {
    /// Counts one row of [`RECORDS_QUERY`]: the group of `records` records it stands for, as
    /// if each had been read (the analyzer must use the recorder's format). A row without a
    /// record count, or whose every grouped field is empty (lines the `parse` pattern did not
    /// match), counts its records as malformed.
    pub fn feed_group(&mut self, row: &Row) {
        self.count_group(&Group::from_row(row));
    }

    /// Counts one group ([`Analyzer::feed_group`] of the row it was made from).
    pub fn count_group(&mut self, g: &Group) {
        match &g.line {
            _ if g.records == 0 => {}
            Some(line) => self.line_weighted(line.as_bytes(), g.records),
            None => self.add_malformed(g.records),
        }
    }
}

/// A window of the log group to query: epoch seconds, both ends inclusive (StartQuery's
/// `startTime` and `endTime`: "The range is inclusive").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    /// The split window this is a half of (an index into the plan's splits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The probe: the window's first [`PROBE_S`] seconds, whose answer sizes the windows of the rest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
}

/// The probe's length: a window longer than twice this is first asked for its first minute.
pub const PROBE_S: i64 = 60;
/// Rows a sized window is expected to hold at most, in tenths of the plan's most rows: room
/// below it for a busier stretch.
const TARGET_TENTHS: usize = 6;

/// A full answer's window, asked again in two halves: the halves must scan what it scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Split {
    start: i64,
    end: i64,
    scanned: u64,
    halves_scanned: u64,
    halves_done: u8,
}

/// What to do with a complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Count its rows ([`Analyzer::feed_answer`]).
    Count,
    /// It was full: ignore its rows; its two halves are queued.
    Split,
    /// Full, and its window is one second: it cannot be split (the message says so).
    TooDense(String),
}

/// Which windows to query, sans I/O: the caller starts a query for each window it is given,
/// reports each complete answer, and counts the rows the plan says to count. Serializable, so
/// that a caller may carry it across invocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    todo: std::collections::VecDeque<Window>,
    /// The window after the probe, until the probe's answer sizes it.
    #[serde(default)]
    rest: Option<(i64, i64)>,
    splits: Vec<Split>,
    queries: u32,
    records_scanned: u64,
    bytes_scanned: u64,
    warnings: Vec<String>,
    /// A `limit` above [`LEGACY_MAX_ROWS`] was refused: queries ask for that many rows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    legacy_rows: bool,
}

impl Plan {
    /// The report query over `[start, end]` (epoch seconds, inclusive). Every query scans its whole
    /// window (and is billed for it), so a full answer asked again in halves scans its window twice:
    /// a long window is first probed (its first minute), and the rest is cut into windows sized from
    /// the probe's number of groups so that each answer fits, each record scanned once.
    pub fn new(start: i64, end: i64) -> Self {
        Self::with_records_from(start, start, end)
    }

    /// As [`Plan::new`], for a window that opens with a margin before its records can exist
    /// (the recorder reads from 2 minutes before its flow logs were created): the probe runs
    /// from `start` to a minute past `records_from`, so that it holds a minute of records and
    /// sizes the rest from them (its density is still read as that one minute's).
    pub fn with_records_from(start: i64, records_from: i64, end: i64) -> Self {
        let records_from = records_from.clamp(start, end);
        let first = if end - records_from + 1 > 2 * PROBE_S {
            Window {
                start,
                end: records_from + PROBE_S - 1,
                parent: None,
                probe: true,
            }
        } else {
            Window {
                start,
                end,
                parent: None,
                probe: false,
            }
        };
        Self {
            todo: [first].into(),
            rest: (first.end < end).then_some((first.end + 1, end)),
            ..Default::default()
        }
    }

    /// The rest of the window, cut into windows of `span_s` seconds.
    fn size_rest(&mut self, span_s: i64) {
        let Some((mut start, end)) = self.rest.take() else {
            return;
        };
        let span_s = span_s.max(1);
        while start <= end {
            let w_end = (start + span_s - 1).min(end);
            self.todo.push_back(Window {
                start,
                end: w_end,
                parent: None,
                probe: false,
            });
            start = w_end + 1;
        }
    }

    /// Most rows a query of this plan returns: [`MAX_ROWS`], or [`LEGACY_MAX_ROWS`] once refused.
    pub fn max_rows(&self) -> usize {
        if self.legacy_rows {
            LEGACY_MAX_ROWS
        } else {
            MAX_ROWS
        }
    }

    /// The query to start for each window ([`records_query`] of [`Plan::max_rows`]).
    pub fn query(&self) -> String {
        records_query(self.max_rows())
    }

    /// StartQuery refused window `w`'s query with a limit of [`MAX_ROWS`] (where only
    /// [`LEGACY_MAX_ROWS`] is allowed, StartQuery answers `InvalidParameterException` or
    /// `MalformedQueryException`): `true` when the plan now asks for [`LEGACY_MAX_ROWS`] and `w`
    /// is queued again; `false` when it already did (the refusal is for another reason).
    pub fn rows_refused(&mut self, w: Window, why: &str) -> bool {
        if self.legacy_rows {
            return false;
        }
        self.legacy_rows = true;
        self.not_started(w);
        self.warnings.push(format!(
            "Logs Insights refused queries of {MAX_ROWS} rows ({why}): queries of {LEGACY_MAX_ROWS} rows were \
             used, split where full"
        ));
        true
    }

    /// The next window to query, if any is waiting.
    pub fn next_window(&mut self) -> Option<Window> {
        let w = self.todo.pop_front()?;
        self.queries += 1;
        Some(w)
    }

    /// A window whose query could not be started yet (e.g. the concurrent-query quota): it goes
    /// back to the front of the queue.
    pub fn not_started(&mut self, w: Window) {
        self.queries -= 1;
        self.todo.push_front(w);
    }

    /// Whether windows are waiting to be queried (the rest after the probe waits for its answer).
    pub fn has_windows(&self) -> bool {
        !self.todo.is_empty() || self.rest.is_some()
    }

    /// A complete answer for window `w`: `rows` result rows, `scanned` records and `bytes` scanned
    /// (GetQueryResults `statistics`).
    pub fn answered(&mut self, w: Window, rows: usize, scanned: u64, bytes: u64) -> Verdict {
        self.bytes_scanned += bytes;
        if w.probe {
            // Groups grow at most in proportion to time (a group seen in two windows counts in
            // both): windows of the probe's density times 60% of the most rows fit. A full probe says only
            // "dense": quarter-minute windows, split further if they fill.
            let span = match rows {
                r if r >= self.max_rows() => PROBE_S / 4,
                0 => i64::MAX / 4,
                r => ((self.max_rows() * TARGET_TENTHS / 10) as i64 * PROBE_S / r as i64).max(1),
            };
            self.size_rest(span);
        }
        if let Some(p) = w.parent {
            let s = &mut self.splits[p];
            s.halves_scanned += scanned;
            s.halves_done += 1;
            if s.halves_done == 2 && s.halves_scanned != s.scanned {
                self.warnings.push(format!(
                    "Logs Insights scanned {} records in the window {}..{} but {} in its two halves: the figures \
                     may be off by the difference (records at the boundary second)",
                    s.scanned, s.start, s.end, s.halves_scanned
                ));
            }
        }
        if rows < self.max_rows() {
            self.records_scanned += scanned;
            return Verdict::Count;
        }
        if w.end <= w.start {
            return Verdict::TooDense(format!(
                "more than {} groups of records in the one second {}: too many to count server-side",
                self.max_rows(),
                w.start
            ));
        }
        self.splits.push(Split {
            start: w.start,
            end: w.end,
            scanned,
            halves_scanned: 0,
            halves_done: 0,
        });
        let parent = Some(self.splits.len() - 1);
        let mid = w.start + (w.end - w.start) / 2;
        self.todo.push_back(Window {
            start: w.start,
            end: mid,
            parent,
            probe: false,
        });
        self.todo.push_back(Window {
            start: mid + 1,
            end: w.end,
            parent,
            probe: false,
        });
        Verdict::Split
    }

    /// What the queries did (the report prices it).
    pub fn server_side(&self) -> ServerSide {
        ServerSide {
            queries: self.queries,
            split: self.splits.len() as u32,
            records_scanned: self.records_scanned,
            bytes_scanned: self.bytes_scanned,
            cost_usd: 0.0,
        }
    }

    /// What the report must say about the queries (halves that did not add up).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl Analyzer {
    /// Counts a complete answer the plan said to count: its groups, and the records it scanned
    /// that form no group (lines the pattern did not match) as malformed.
    pub fn feed_answer<'g>(&mut self, groups: impl IntoIterator<Item = &'g Group>, scanned: u64, bytes: u64) {
        let mut grouped = 0u64;
        for g in groups {
            grouped += g.records;
            self.count_group(g);
        }
        let unmatched = scanned.saturating_sub(grouped);
        if unmatched > 0 {
            self.add_malformed(unmatched);
        }
        self.add_bytes_read(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn the_query_groups_by_every_field_the_analysis_reads() {
        for (field, name) in GROUP_FIELDS {
            assert!(field.split(' ').all(|f| RECORDER_FIELDS.contains(&f)), "{field}");
            assert!(RECORDS_QUERY.contains(&format!(" {name},")) || RECORDS_QUERY.contains(&format!(" {name}\n")));
        }
        let stats = RECORDS_QUERY.lines().find(|l| l.starts_with("| stats ")).unwrap();
        let by = stats.split(" by ").nth(1).unwrap();
        let names: Vec<&str> = by.split(',').map(str::trim).collect();
        assert_eq!(names, GROUP_FIELDS.iter().map(|(_, q)| *q).collect::<Vec<_>>());
        // One `*` per recorder field but the last, which the one before it takes.
        let parse = RECORDS_QUERY
            .lines()
            .find(|l| l.starts_with("parse @message "))
            .unwrap();
        let pattern = parse.split('"').nth(1).unwrap();
        assert_eq!(pattern.split(' ').count(), RECORDER_FIELDS.len() - 1);
        assert!(parse.ends_with(&format!(" tcp_flags, {TYPE_AND_RESOURCE}")));
    }

    #[test]
    fn a_group_counts_as_its_records_and_numbers_in_any_notation() {
        let row = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
        // Upload through a zonal NAT's interface: 3 records.
        a.feed_group(&row(&[
            ("interface_id", "eni-1"),
            ("srcaddr", "10.0.1.5"),
            ("dstaddr", "10.0.0.9"),
            ("action", "ACCEPT"),
            ("log_status", "OK"),
            ("az_id", "use1-az1"),
            ("pkt_srcaddr", "10.0.1.5"),
            ("pkt_dstaddr", "52.216.8.9"),
            ("pkt_dst_aws_service", "S3"),
            ("sum_bytes", "1.5e+06"),
            ("sum_packets", "1000"),
            ("records", "3"),
            ("first_start", "1795950000"),
            ("last_end", "1795950060"),
        ]));
        // NODATA rows of the same interface: 2 records.
        a.feed_group(&row(&[
            ("interface_id", "eni-1"),
            ("log_status", "NODATA"),
            ("records", "2"),
        ]));
        // Lines the pattern did not match: every grouped field empty.
        a.feed_group(&row(&[("records", "4"), ("sum_bytes", "")]));
        let s = a.stats();
        assert_eq!((s.lines, s.counted, s.nodata, s.malformed), (9, 3, 2, 4));
        let (k, c) = a.flows().next().unwrap();
        assert_eq!((c.upload, c.download, c.packets, c.records), (1_500_000, 0, 1000, 3));
        assert_eq!(k.remote.to_string(), "52.216.8.9");
        assert_eq!(a.window(), Some((1795950000, 1795950060)));
    }

    #[test]
    fn the_plan_splits_full_answers_and_checks_the_halves() {
        let mut p = Plan::new(0, 99);
        let whole = p.next_window().unwrap();
        assert!(p.next_window().is_none());
        assert_eq!(p.answered(whole, MAX_ROWS, 300, 3000), Verdict::Split);
        let (a, b) = (p.next_window().unwrap(), p.next_window().unwrap());
        assert_eq!((a.start, a.end, b.start, b.end), (0, 49, 50, 99));
        // Refused by the quota: back to the front, not counted as a query.
        p.not_started(b);
        let b = p.next_window().unwrap();
        assert_eq!(p.answered(a, 10, 100, 1000), Verdict::Count);
        assert_eq!(p.answered(b, 20, 150, 1500), Verdict::Count);
        let q = p.server_side();
        assert_eq!(
            (q.queries, q.split, q.records_scanned, q.bytes_scanned),
            (3, 1, 250, 5500)
        );
        assert_eq!(p.warnings().len(), 1);
        assert!(
            p.warnings()[0].contains("scanned 300 records in the window 0..99 but 250"),
            "{:?}",
            p.warnings()
        );
        // A full one-second window cannot be split.
        let mut p = Plan::new(7, 7);
        let w = p.next_window().unwrap();
        assert!(matches!(p.answered(w, MAX_ROWS, 1, 1), Verdict::TooDense(m) if m.contains("one second 7")));
        // The plan survives a trip through JSON (a caller may carry it across invocations).
        let mut p = Plan::new(0, 9);
        let w = p.next_window().unwrap();
        p.answered(w, MAX_ROWS, 5, 5);
        let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_long_window_is_probed_and_the_rest_cut_to_fit_each_record_scanned_once() {
        let mut p = Plan::new(0, 899);
        let probe = p.next_window().unwrap();
        assert!(probe.probe && (probe.start, probe.end) == (0, 59));
        assert!(
            p.next_window().is_none() && p.has_windows(),
            "the rest waits for the probe"
        );
        // 20,000 groups a minute: windows of 60,000 rows' worth, 3 minutes.
        assert_eq!(p.answered(probe, 20_000, 10, 100), Verdict::Count);
        let mut windows = vec![];
        while let Some(w) = p.next_window() {
            windows.push((w.start, w.end));
            assert_eq!(p.answered(w, 50_000, 10, 100), Verdict::Count);
        }
        assert_eq!(windows, [(60, 239), (240, 419), (420, 599), (600, 779), (780, 899)]);
        assert!(!p.has_windows());
        let q = p.server_side();
        assert_eq!((q.queries, q.split, q.bytes_scanned), (6, 0, 600));
        // A quiet NAT: the rest in one window; a short window: no probe.
        let mut p = Plan::new(0, 899);
        let probe = p.next_window().unwrap();
        p.answered(probe, 3, 1, 1);
        let w = p.next_window().unwrap();
        assert_eq!((w.start, w.end), (60, 899));
        let mut p = Plan::new(0, 119);
        assert!(!p.next_window().unwrap().probe);
        // A full probe: quarter-minute windows for the rest (split further if they fill).
        let mut p = Plan::new(0, 899);
        let probe = p.next_window().unwrap();
        assert_eq!(p.answered(probe, MAX_ROWS, 1, 1), Verdict::Split);
        let next: Vec<(i64, i64)> = std::iter::from_fn(|| p.next_window().map(|w| (w.start, w.end)))
            .take(4)
            .collect();
        assert_eq!(next, [(60, 74), (75, 89), (90, 104), (105, 119)]);
    }

    #[test]
    fn pages_are_read_to_the_last_token_and_broken_paging_is_said() {
        let mut p = Pages::default();
        assert_eq!(p.after(PAGE_ROWS, Some("a")), PageStep::Next("a".into()));
        // An empty page that still carries a token is no end.
        assert_eq!(p.after(0, Some("b")), PageStep::Next("b".into()));
        assert_eq!(p.after(5, None), PageStep::Done);
        let mut p = Pages::default();
        p.after(3, Some("a"));
        assert!(matches!(p.after(3, Some("a")), PageStep::Broken(m) if m.contains("same nextToken")));
        let mut p = Pages::default();
        let steps: Vec<PageStep> = (0..Pages::MAX_PAGES)
            .map(|i| p.after(0, Some(&i.to_string())))
            .collect();
        assert!(
            matches!(steps.last(), Some(PageStep::Broken(m)) if m.contains("after 20 pages")),
            "{steps:?}"
        );
        // MAX_ROWS rows: whole as far as this query goes (the plan splits the window).
        let mut p = Pages::default();
        for i in 0..MAX_ROWS / PAGE_ROWS - 1 {
            assert_eq!(p.after(PAGE_ROWS, Some(&i.to_string())), PageStep::Next(i.to_string()));
        }
        assert_eq!(p.after(PAGE_ROWS, Some("more")), PageStep::Done);
    }

    /// The recorder reads from 2 minutes before its flow logs existed: its probe reaches a minute
    /// into the records (a probe of the empty margin alone would size the rest as one window).
    #[test]
    fn a_window_opening_with_a_margin_is_probed_through_its_first_minute_of_records() {
        let mut p = Plan::with_records_from(-120, 0, 899);
        let probe = p.next_window().unwrap();
        assert!(probe.probe && (probe.start, probe.end) == (-120, 59));
        assert_eq!(p.answered(probe, 20_000, 10, 100), Verdict::Count);
        let windows: Vec<(i64, i64)> = std::iter::from_fn(|| p.next_window().map(|w| (w.start, w.end))).collect();
        assert_eq!(windows, [(60, 239), (240, 419), (420, 599), (600, 779), (780, 899)]);
        // Records from before the window, or a window too short to probe, as Plan::new.
        assert_eq!(Plan::with_records_from(0, -50, 899), Plan::new(0, 899));
        assert!(!Plan::with_records_from(-120, 0, 100).next_window().unwrap().probe);
    }

    #[test]
    fn answers_hold_up_to_100_000_rows_and_10_000_where_more_is_refused() {
        assert_eq!(MAX_ROWS, 100_000);
        assert!(RECORDS_QUERY.trim_end().ends_with("| limit 100000"), "{RECORDS_QUERY}");
        assert!(records_query(10_000).trim_end().ends_with("| limit 10000"));
        assert_eq!(records_query(10_000).len(), RECORDS_QUERY.len() - 1);
        // 27,000 talkers in the probe's minute (a dense NAT): the rest of a 15-minute window in
        // windows of 60,000 rows' worth (133 s), each counted, each record scanned once.
        let mut p = Plan::new(0, 899);
        let probe = p.next_window().unwrap();
        assert_eq!(p.query(), RECORDS_QUERY);
        assert_eq!(p.answered(probe, 27_000, 10, 100), Verdict::Count);
        let mut n = 1;
        while let Some(w) = p.next_window() {
            assert_eq!(w.end - w.start + 1, 133.min(900 - w.start));
            assert_eq!(p.answered(w, 99_999, 10, 100), Verdict::Count);
            n += 1;
        }
        assert_eq!((n, p.server_side().split, p.server_side().bytes_scanned), (8, 0, 800));
        // Only a full answer (100,000 rows) is split.
        let mut p = Plan::new(0, 99);
        let w = p.next_window().unwrap();
        assert_eq!(p.answered(w, 100_000, 1, 1), Verdict::Split);
        // Refused: the window again, with queries of 10,000 rows, once.
        let mut p = Plan::new(0, 99);
        let w = p.next_window().unwrap();
        assert!(p.rows_refused(w, "InvalidParameterException"));
        assert_eq!((p.max_rows(), p.server_side().queries), (LEGACY_MAX_ROWS, 0));
        assert!(p.query().trim_end().ends_with("| limit 10000"));
        assert!(
            p.warnings()[0].contains("refused queries of 100000 rows"),
            "{:?}",
            p.warnings()
        );
        let w = p.next_window().unwrap();
        assert_eq!((w.start, w.end), (0, 99));
        assert!(!p.rows_refused(w, "again"), "a second refusal is another reason");
        let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.max_rows(), LEGACY_MAX_ROWS);
        assert_eq!(p.answered(w, 10_000, 1, 1), Verdict::Split);
    }

    #[test]
    fn a_result_row_keeps_fields_with_values_and_drops_the_pointer() {
        let row = result_row([
            (Some("records"), Some("3")),
            (Some("@ptr"), Some("CmAKJgo")),
            (Some("az_id"), None),
            (None, Some("x")),
        ]);
        assert_eq!(row, [("records".to_string(), "3".to_string())]);
        // A result row straight to its group: the same as through `result_row`.
        let items = [
            (Some("interface_id"), Some("eni-1")),
            (Some("srcaddr"), Some("10.0.1.5")),
            (Some("@ptr"), Some("CmAKJgo")),
            (Some("pkt_dstaddr"), None),
            (Some("sum_bytes"), Some("1.5e+06")),
            (Some("records"), Some("3")),
        ];
        let g = Group::from_result(items);
        assert_eq!(g, Group::from_row(&result_row(items)));
        assert_eq!(g.records(), 3);
        assert_eq!(Group::from_result([(Some("records"), Some("4"))]).line, None);
    }
}
