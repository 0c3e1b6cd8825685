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
//! reference, GetQueryResults (rows of `{field, value}`, at most 10,000 rows per query).

use crate::analyze::Analyzer;
use crate::format::RECORDER_FIELDS;

/// The report's query, compiled in from `queries/`.
pub const RECORDS_QUERY: &str = include_str!("../../../queries/report-records.query");

/// Most rows one query returns (GetQueryResults; `limit` at most 10,000). A full answer may
/// be missing groups: the caller splits the window and asks again.
pub const MAX_ROWS: usize = 10_000;

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
    ("resource-id", "resource_id"),
];

/// The aggregate columns of the query.
pub const SUM_BYTES: &str = "sum_bytes";
pub const SUM_PACKETS: &str = "sum_packets";
pub const RECORDS: &str = "records";
pub const FIRST_START: &str = "first_start";
pub const LAST_END: &str = "last_end";

/// One result row: `(field, value)` pairs as GetQueryResults returns them (a field whose value
/// is null may be missing).
pub type Row = [(String, String)];

fn value<'a>(row: &'a Row, field: &str) -> Option<&'a str> {
    row.iter()
        .find(|(f, _)| f == field)
        .map(|(_, v)| v.as_str())
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

impl Analyzer {
    /// Counts one row of [`RECORDS_QUERY`]: the group of `records` records it stands for, as
    /// if each had been read (the analyzer must use the recorder's format). A row without a
    /// record count, or whose every grouped field is empty (lines the `parse` pattern did not
    /// match), counts its records as malformed.
    pub fn feed_group(&mut self, row: &Row) {
        let records = number(value(row, RECORDS)).unwrap_or(0);
        if records == 0 {
            return;
        }
        let grouped: Vec<Option<&str>> = GROUP_FIELDS.iter().map(|(_, q)| value(row, q)).collect();
        if grouped.iter().all(Option::is_none) {
            self.add_malformed(records);
            return;
        }
        let mut line = String::with_capacity(256);
        for field in RECORDER_FIELDS {
            let v = match *field {
                "bytes" => value(row, SUM_BYTES),
                "packets" => value(row, SUM_PACKETS),
                "start" => value(row, FIRST_START),
                "end" => value(row, LAST_END),
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
        self.line_weighted(line.as_bytes(), records);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn the_query_groups_by_every_field_the_analysis_reads() {
        for (field, name) in GROUP_FIELDS {
            assert!(RECORDER_FIELDS.contains(field), "{field}");
            assert!(RECORDS_QUERY.contains(&format!(" {name},")) || RECORDS_QUERY.contains(&format!(" {name}\n")));
        }
        let stats = RECORDS_QUERY.lines().find(|l| l.starts_with("| stats ")).unwrap();
        let by = stats.split(" by ").nth(1).unwrap();
        let names: Vec<&str> = by.split(',').map(str::trim).collect();
        assert_eq!(names, GROUP_FIELDS.iter().map(|(_, q)| *q).collect::<Vec<_>>());
        // The parse pattern has one `*` per recorder field.
        let parse = RECORDS_QUERY
            .lines()
            .find(|l| l.starts_with("parse @message "))
            .unwrap();
        let pattern = parse.split('"').nth(1).unwrap();
        assert_eq!(pattern.split(' ').count(), RECORDER_FIELDS.len());
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
}
