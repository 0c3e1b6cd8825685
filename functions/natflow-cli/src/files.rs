//! Files in: plain or gzip, one record per line; S3 flow-log files (header line first) and
//! CloudWatch Logs exports (a timestamp before each record) recognised by their first line.
//! Plain files are split into ranges at line boundaries so every core parses; gzip files are
//! read one per core. Memory: the talkers, one buffer per gzip reader; plain files are mapped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use natflow::{Analyzer, Format};

use crate::CliError;

const BUF: usize = 4 << 20;
/// Plain files are split into ranges of about this size.
const RANGE: u64 = 64 << 20;

struct Item {
    path: PathBuf,
    gzip: bool,
    start: u64,
    end: u64,
    format: Option<Format>,
    timestamp_prefix: bool,
}

/// Files under `paths`, directories walked in name order. CloudWatch's export permission probe
/// (`aws-logs-write-test`) is not data.
fn collect(paths: &[PathBuf], out: &mut Vec<PathBuf>) -> Result<(), CliError> {
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| CliError::Read {
            path: p.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|source| CliError::Read {
                    path: p.display().to_string(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    e.file_name()
                        .is_some_and(|n| n != "aws-logs-write-test" && !n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            collect(&entries, out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(())
}

fn is_gzip(path: &Path) -> Result<bool, CliError> {
    let mut magic = [0u8; 2];
    let mut f = open(path)?;
    let n = f.read(&mut magic).map_err(|source| read_err(path, source))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|source| read_err(path, source))
}

fn read_err(path: &Path, source: std::io::Error) -> CliError {
    CliError::Read {
        path: path.display().to_string(),
        source,
    }
}

fn reader(path: &Path, gzip: bool) -> Result<Box<dyn BufRead>, CliError> {
    let f = open(path)?;
    Ok(if gzip {
        Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(BufReader::new(f))))
    } else {
        Box::new(BufReader::with_capacity(BUF, f))
    })
}

/// `2026-11-28T10:00:00.000Z ...`: the CloudWatch Logs export layout.
fn starts_with_timestamp(line: &str) -> bool {
    let first = line.split(' ').next().unwrap_or("");
    let b = first.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && first.ends_with('Z')
}

/// Looks at the first line: header (S3 layout) or timestamp prefix (export layout).
fn layout(path: &Path, gzip: bool) -> Result<(Option<Format>, bool), CliError> {
    let mut first = String::new();
    let mut r = reader(path, gzip)?;
    let mut raw = Vec::new();
    r.by_ref()
        .take(64 << 10)
        .read_until(b'\n', &mut raw)
        .map_err(|source| {
            if gzip {
                CliError::Gzip {
                    path: path.display().to_string(),
                    source,
                }
            } else {
                read_err(path, source)
            }
        })?;
    first.push_str(&String::from_utf8_lossy(&raw));
    let ts = starts_with_timestamp(&first);
    let body = if ts {
        first.split_once(' ').map_or("", |(_, b)| b)
    } else {
        &first
    };
    Ok((Format::from_header(body.trim_end()), ts))
}

/// Why a file was skipped, in words (a truncated gzip stream says so).
fn skip_reason(e: &CliError) -> String {
    match e {
        CliError::Gzip { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated: the gzip stream ends early (an incomplete download or copy?)".into()
        }
        CliError::Gzip { source, .. } => format!("not valid gzip ({source})"),
        CliError::Read { source, .. } => format!("cannot read ({source})"),
        other => other.to_string(),
    }
}

/// What the files held, besides the analysis: files skipped and why, files without a record.
pub struct Outcome {
    pub analyzer: Analyzer,
    /// (file, reason)
    pub skipped: Vec<(PathBuf, String)>,
    /// Files read, with the records and lines found in each.
    pub files: Vec<(PathBuf, u64, u64)>,
    /// Directories given that hold no file.
    pub empty_dirs: Vec<PathBuf>,
}

impl Outcome {
    /// For an input without a single record: what was found instead.
    pub fn describe_nothing(&self, format: &Format) -> String {
        let mut parts = Vec::new();
        for d in &self.empty_dirs {
            parts.push(format!("{}: the directory holds no file", d.display()));
        }
        for (path, _, lines) in self.files.iter().take(5) {
            parts.push(format!("{}: {}", path.display(), describe_file(path, *lines, format)));
        }
        for (path, why) in self.skipped.iter().take(5) {
            parts.push(format!("{}: skipped, {why}", path.display()));
        }
        if parts.is_empty() {
            parts.push("nothing was read".into());
        }
        parts.join("; ")
    }

    /// Warnings for the report: files skipped, files that hold no record.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.skipped.is_empty() {
            let list: Vec<String> = self
                .skipped
                .iter()
                .take(10)
                .map(|(p, why)| format!("{} ({why})", p.display()))
                .collect();
            w.push(format!(
                "{} file(s) skipped, the figures leave them out: {}{}",
                self.skipped.len(),
                list.join("; "),
                if self.skipped.len() > 10 { "; ..." } else { "" }
            ));
        }
        let empty: Vec<String> = self
            .files
            .iter()
            .filter(|(_, records, _)| *records == 0)
            .map(|(p, _, _)| p.display().to_string())
            .collect();
        if !empty.is_empty() {
            w.push(format!(
                "{} file(s) hold no flow-log record: {}",
                empty.len(),
                empty.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        w
    }
}

/// Up to 64 KiB of a file's text (decompressed if gzip).
fn sample(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let gzip = is_gzip(path).unwrap_or(false);
    if let Ok(r) = reader(path, gzip) {
        let _ = r.take(64 << 10).read_to_end(&mut out);
    }
    out
}

/// What a file without a record holds.
fn describe_file(path: &Path, lines: u64, format: &Format) -> String {
    describe_bytes(&sample(path), lines, format)
}

/// What some bytes without a flow-log record are.
pub fn describe_bytes(b: &[u8], lines: u64, format: &Format) -> String {
    let text = b
        .iter()
        .skip_while(|c| c.is_ascii_whitespace())
        .copied()
        .collect::<Vec<u8>>();
    if b.is_empty() {
        "it is empty".into()
    } else if b.starts_with(&[0x1f, 0x8b]) {
        "gzip-compressed data: decompress it first (zcat FILE | natflow analyze -) or give the file's path".into()
    } else if text.is_empty() {
        "only blank lines".into()
    } else if b.contains(&0) || is_not_text(&b[..b.len().min(4096)]) {
        "binary data, not text".into()
    } else if text[0] == b'{' || text[0] == b'[' {
        "a JSON document, not flow-log records (one record a line, fields separated by spaces)".into()
    } else {
        let first =
            String::from_utf8_lossy(&text[..text.iter().position(|&c| c == b'\n').unwrap_or(text.len()).min(200)])
                .into_owned();
        format!(
            "{lines} line(s), none a record of the {} format ({} fields), e.g. {first:?}; give --fields if the format differs",
            format.name(),
            format.len()
        )
    }
}

/// Invalid UTF-8 (a character cut at the end of the sample is not invalid).
fn is_not_text(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_err_and(|e| e.error_len().is_some())
}

fn plan(
    paths: &[PathBuf],
    skipped: &mut Vec<(PathBuf, String)>,
    empty_dirs: &mut Vec<PathBuf>,
) -> Result<(Vec<Item>, u64, Vec<PathBuf>), CliError> {
    let mut files = Vec::new();
    for p in paths {
        let before = files.len();
        collect(std::slice::from_ref(p), &mut files)?;
        if files.len() == before && p.is_dir() {
            empty_dirs.push(p.clone());
        }
    }
    let mut items = Vec::new();
    let mut total = 0;
    let mut read = Vec::new();
    for path in files {
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) => {
                skipped.push((path.clone(), skip_reason(&read_err(&path, e))));
                continue;
            }
        };
        total += len;
        read.push(path.clone());
        if len == 0 {
            continue;
        }
        let probe = is_gzip(&path).and_then(|gzip| layout(&path, gzip).map(|l| (gzip, l)));
        let (gzip, (format, timestamp_prefix)) = match probe {
            Ok(v) => v,
            Err(e) => {
                read.pop();
                skipped.push((path.clone(), skip_reason(&e)));
                continue;
            }
        };
        if gzip {
            items.push(Item {
                path,
                gzip,
                start: 0,
                end: len,
                format,
                timestamp_prefix,
            });
            continue;
        }
        // Split at line boundaries.
        let mut f = open(&path)?;
        let mut start = 0;
        while start < len {
            let mut end = (start + RANGE).min(len);
            if end < len {
                f.seek(SeekFrom::Start(end)).map_err(|e| read_err(&path, e))?;
                let mut skip = Vec::new();
                BufReader::new(&mut f)
                    .read_until(b'\n', &mut skip)
                    .map_err(|e| read_err(&path, e))?;
                end = (end + skip.len() as u64).min(len);
            }
            items.push(Item {
                path: path.clone(),
                gzip,
                start,
                end,
                format: format.clone(),
                timestamp_prefix,
            });
            start = end;
        }
    }
    Ok((items, total, read))
}

/// `Ok(Some(reason))`: the file could not be read to its end (what was read before counts).
fn run_item(a: &mut Analyzer, item: &Item, default: &Format, bar: &ProgressBar) -> Result<Option<String>, CliError> {
    a.set_format(item.format.clone().unwrap_or_else(|| default.clone()))?;
    a.set_timestamp_prefix(item.timestamp_prefix);
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    if item.gzip {
        let f = open(&item.path)?;
        let counted = Counting { inner: f, bar };
        let mut r = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted));
        loop {
            let n = match r.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(source) => {
                    // Keep the complete lines read before the damage; drop the cut one.
                    let e = CliError::Gzip {
                        path: item.path.display().to_string(),
                        source,
                    };
                    return Ok(Some(skip_reason(&e)));
                }
            };
            if n == 0 {
                break;
            }
            filled += n;
            filled = feed_whole_lines(a, &mut buf, filled);
        }
    } else {
        // Mapped, not copied: the range is parsed where the page cache holds it.
        let f = open(&item.path)?;
        // SAFETY: the file is only read; a file truncated by another process while mapped
        // would fault, as with any reader of a changing file.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| read_err(&item.path, e))?;
        let end = (item.end as usize).min(map.len());
        let mut at = (item.start as usize).min(end);
        while at < end {
            let mut stop = (at + BUF).min(end);
            if stop < end {
                stop = memchr::memrchr(b'\n', &map[at..stop]).map_or(stop, |nl| at + nl + 1);
            }
            a.feed(&map[at..stop]);
            bar.inc((stop - at) as u64);
            at = stop;
        }
        return Ok(None);
    }
    if filled > 0 {
        a.feed(&buf[..filled]);
    }
    Ok(None)
}

/// Feeds the complete lines in `buf[..filled]`, keeps the partial last line at the front;
/// returns its length. A line longer than the buffer is fed in pieces (it is garbage anyway).
fn feed_whole_lines(a: &mut Analyzer, buf: &mut [u8], filled: usize) -> usize {
    match memchr::memrchr(b'\n', &buf[..filled]) {
        Some(nl) => {
            a.feed(&buf[..=nl]);
            buf.copy_within(nl + 1..filled, 0);
            filled - nl - 1
        }
        None if filled == buf.len() => {
            a.feed(&buf[..filled]);
            0
        }
        None => filled,
    }
}

/// Counts compressed bytes for the progress bar.
struct Counting<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(b)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn stdin(mut a: Analyzer) -> Result<Analyzer, CliError> {
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    let mut input = std::io::stdin().lock();
    let mut head: Vec<u8> = Vec::new();
    loop {
        let n = input
            .read(&mut buf[filled..])
            .map_err(|e| read_err(Path::new("-"), e))?;
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            let take = n.min(4096 - head.len());
            head.extend_from_slice(&buf[filled..filled + take]);
        }
        if head.starts_with(&[0x1f, 0x8b]) {
            return Err(CliError::NoRecords {
                input: "stdin".into(),
                found: describe_bytes(&head, 0, a.format()),
                unreadable: false,
            });
        }
        filled += n;
        filled = feed_whole_lines(&mut a, &mut buf, filled);
    }
    if filled > 0 {
        a.feed(&buf[..filled]);
    }
    if a.stats().records() == 0 {
        return Err(CliError::NoRecords {
            input: "stdin".into(),
            found: describe_bytes(&head, a.stats().lines, a.format()),
            unreadable: false,
        });
    }
    Ok(a)
}

pub fn analyze(a: Analyzer, paths: &[PathBuf], threads: usize, progress: bool) -> Result<Outcome, CliError> {
    if paths.len() == 1 && paths[0].as_os_str() == "-" {
        let a = stdin(a)?;
        return Ok(Outcome {
            analyzer: a,
            skipped: vec![],
            files: vec![],
            empty_dirs: vec![],
        });
    }
    let (mut skipped, mut empty_dirs) = (Vec::new(), Vec::new());
    let (items, total, read) = plan(paths, &mut skipped, &mut empty_dirs)?;
    let bar = if progress {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let default = a.format().clone();
    let queue = Mutex::new(items.into_iter().rev().collect::<Vec<_>>());
    // Per file: records and lines found, and why it could not be read to its end.
    let per_file: Mutex<PerFile> = Mutex::new(PerFile::new());
    let results: Vec<Result<Analyzer, CliError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mut mine = a.fork();
                let (queue, bar, default, per_file) = (&queue, &bar, &default, &per_file);
                s.spawn(move || -> Result<Analyzer, CliError> {
                    loop {
                        let next = queue.lock().expect("queue lock").pop();
                        let Some(item) = next else { return Ok(mine) };
                        let (r0, l0) = (mine.stats().records(), mine.stats().lines);
                        let problem = run_item(&mut mine, &item, default, bar)?;
                        let (r1, l1) = (mine.stats().records(), mine.stats().lines);
                        let mut m = per_file.lock().expect("per-file lock");
                        let e = m.entry(item.path.clone()).or_default();
                        e.0 += r1 - r0;
                        e.1 += l1 - l0;
                        if problem.is_some() {
                            e.2 = problem;
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread panicked"))
            .collect()
    });
    bar.finish_and_clear();
    let mut merged = a;
    for r in results {
        merged.merge(r?);
    }
    let per_file = per_file.into_inner().expect("per-file lock");
    let mut files = Vec::new();
    for path in read {
        let (records, lines, problem) = per_file.get(&path).cloned().unwrap_or_default();
        match problem {
            Some(why) if records == 0 => skipped.push((path, why)),
            Some(why) => {
                skipped.push((path.clone(), format!("{why}; its first {records} records were read")));
                files.push((path, records, lines));
            }
            None => files.push((path, records, lines)),
        }
    }
    Ok(Outcome {
        analyzer: merged,
        skipped,
        files,
        empty_dirs,
    })
}

/// Per file: (records, lines, why it could not be read to its end).
type PerFile = std::collections::BTreeMap<PathBuf, (u64, u64, Option<String>)>;

/// Route 53 Resolver query logs read from files: the index, files skipped and why, files that
/// hold no query.
pub struct DnsOutcome {
    pub index: natflow::dns::DnsIndex,
    pub skipped: Vec<(PathBuf, String)>,
    pub without_query: Vec<PathBuf>,
}

impl DnsOutcome {
    /// Warnings for the report.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let list = |v: Vec<String>| {
            let more = if v.len() > 10 { "; ..." } else { "" };
            format!("{}{more}", v.into_iter().take(10).collect::<Vec<_>>().join("; "))
        };
        if !self.skipped.is_empty() {
            w.push(format!(
                "{} DNS query-log file(s) skipped, their names are left out: {}",
                self.skipped.len(),
                list(
                    self.skipped
                        .iter()
                        .map(|(p, why)| format!("{} ({why})", p.display()))
                        .collect()
                )
            ));
        }
        if !self.without_query.is_empty() {
            w.push(format!(
                "{} --dns file(s) hold no Route 53 Resolver query-log entry (one JSON object a line): {}",
                self.without_query.len(),
                list(self.without_query.iter().map(|p| p.display().to_string()).collect())
            ));
        }
        w
    }
}

/// Resolver query-log files under `paths` (directories walked: the S3 layout
/// `AWSLogs/<account>/vpcdnsquerylogs/<vpc-id>/yyyy/mm/dd/*.log.gz`, a CloudWatch Logs export's
/// `<task>/<stream>/000000.gz`), plain or gzip, one JSON object a line (an export's timestamp
/// before each is stripped by [`natflow::dns`]). A file that cannot be read to its end is skipped
/// with a warning; what was read of it before stays.
pub fn read_dns(paths: &[PathBuf]) -> Result<DnsOutcome, CliError> {
    let mut files = Vec::new();
    collect(paths, &mut files)?;
    let mut out = DnsOutcome {
        index: natflow::dns::DnsIndex::new(),
        skipped: Vec::new(),
        without_query: Vec::new(),
    };
    for path in files {
        let before = out.index.stats().queries;
        let read = is_gzip(&path).and_then(|gzip| {
            let mut r = reader(&path, gzip)?;
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = r.read_until(b'\n', &mut line).map_err(|source| {
                    if gzip {
                        CliError::Gzip {
                            path: path.display().to_string(),
                            source,
                        }
                    } else {
                        read_err(&path, source)
                    }
                })?;
                if n == 0 {
                    return Ok(());
                }
                out.index.line(&line);
            }
        });
        match read {
            Err(e) => out.skipped.push((path, skip_reason(&e))),
            Ok(()) if out.index.stats().queries == before => out.without_query.push(path),
            Ok(()) => {}
        }
    }
    Ok(out)
}
