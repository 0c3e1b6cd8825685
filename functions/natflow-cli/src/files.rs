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

fn plan(paths: &[PathBuf]) -> Result<(Vec<Item>, u64), CliError> {
    let mut files = Vec::new();
    collect(paths, &mut files)?;
    let mut items = Vec::new();
    let mut total = 0;
    for path in files {
        let len = std::fs::metadata(&path).map_err(|e| read_err(&path, e))?.len();
        total += len;
        if len == 0 {
            continue;
        }
        let gzip = is_gzip(&path)?;
        let (format, timestamp_prefix) = layout(&path, gzip)?;
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
    Ok((items, total))
}

fn run_item(a: &mut Analyzer, item: &Item, default: &Format, bar: &ProgressBar) -> Result<(), CliError> {
    a.set_format(item.format.clone().unwrap_or_else(|| default.clone()))?;
    a.set_timestamp_prefix(item.timestamp_prefix);
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    if item.gzip {
        let f = open(&item.path)?;
        let counted = Counting { inner: f, bar };
        let mut r = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted));
        loop {
            let n = r.read(&mut buf[filled..]).map_err(|source| CliError::Gzip {
                path: item.path.display().to_string(),
                source,
            })?;
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
        return Ok(());
    }
    if filled > 0 {
        a.feed(&buf[..filled]);
    }
    Ok(())
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
    loop {
        let n = input
            .read(&mut buf[filled..])
            .map_err(|e| read_err(Path::new("-"), e))?;
        if n == 0 {
            break;
        }
        filled += n;
        filled = feed_whole_lines(&mut a, &mut buf, filled);
    }
    if filled > 0 {
        a.feed(&buf[..filled]);
    }
    Ok(a)
}

pub fn analyze(a: Analyzer, paths: &[PathBuf], threads: usize, progress: bool) -> Result<Analyzer, CliError> {
    if paths.len() == 1 && paths[0].as_os_str() == "-" {
        return stdin(a);
    }
    let (items, total) = plan(paths)?;
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
    let results: Vec<Result<Analyzer, CliError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mut mine = a.fork();
                let (queue, bar, default) = (&queue, &bar, &default);
                s.spawn(move || -> Result<Analyzer, CliError> {
                    loop {
                        let next = queue.lock().expect("queue lock").pop();
                        let Some(item) = next else { return Ok(mine) };
                        run_item(&mut mine, &item, default, bar)?;
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
    Ok(merged)
}
