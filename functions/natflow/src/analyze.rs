//! The streaming aggregation: flow-log lines in, bytes per (VPC endpoint, remote endpoint) out.
//!
//! On a NAT Gateway's interface every flow appears twice: VPC host -> NAT (its destination
//! translated: `dstaddr` is the NAT, `pkt-dstaddr` the real destination) and NAT -> destination,
//! and the same for the reply. Only the rows whose packet addresses differ from the interface
//! addresses carry both real endpoints; counting only those counts each flow once:
//! `dstaddr != pkt-dstaddr` is upload (VPC -> destination), `srcaddr != pkt-srcaddr` download.
//! Formats without the packet addresses fall back on the NAT's own IPs: the VPC-side rows give
//! the sources, the internet-side rows the destinations, and the two cannot be paired.
//!
//! A regional NAT Gateway's records (`interface-id` `-`, `resource-id` the NAT's ID) follow
//! another rule, see [`Analyzer::regional`].
//!
//! Which records are the NAT's: a log group or an S3 prefix can hold several NATs' records, or a
//! whole VPC's (where an EKS node's pod traffic, with `pkt-srcaddr` the pod and `srcaddr` the
//! node, looks translated too). When the NAT's interfaces, its ID or its private IPs are given,
//! only its records count and the rest are counted as skipped (`other_interfaces`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result};
use crate::format::{Columns, Format, MAX_FIELDS, RECORDER_FIELDS_V5};

/// Stands for "not known" where the format cannot tell (the remote end in default-format rows).
pub const UNKNOWN_IP: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// How many malformed lines are kept as examples for the report.
const EXAMPLES: usize = 3;

/// What happened to every input line; nothing is dropped without being counted here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputStats {
    pub lines: u64,
    pub bytes_read: u64,
    /// Records counted in the traffic (one per translated flow direction).
    pub counted: u64,
    /// Header lines (S3 files start with one; a new header switches the format).
    pub headers: u64,
    /// Lines that are not a record of the format (wrong field count, bad number or address).
    pub malformed: u64,
    pub nodata: u64,
    pub skipdata: u64,
    pub rejected: u64,
    /// The NAT's own half of each translated flow (counted through the other half), and any
    /// traffic that is not translated by the NAT.
    pub untranslated: u64,
    /// Records with `-` where attribution needs a value.
    pub incomplete: u64,
    /// Records of interfaces outside the analysis (another NAT in the same log group, other
    /// interfaces of a VPC-wide flow log), when the NAT's records were selected.
    #[serde(default)]
    pub other_interfaces: u64,
    /// Records counted with the regional NAT Gateway rule (included in `counted`).
    #[serde(default)]
    pub regional: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub malformed_examples: Vec<String>,
}

impl InputStats {
    /// Lines that were flow-log records of the format (whatever became of them).
    pub fn records(&self) -> u64 {
        self.lines - self.malformed - self.headers
    }

    fn merge(&mut self, o: &InputStats) {
        self.lines += o.lines;
        self.bytes_read += o.bytes_read;
        self.counted += o.counted;
        self.headers += o.headers;
        self.malformed += o.malformed;
        self.nodata += o.nodata;
        self.skipdata += o.skipdata;
        self.rejected += o.rejected;
        self.untranslated += o.untranslated;
        self.incomplete += o.incomplete;
        self.other_interfaces += o.other_interfaces;
        self.regional += o.regional;
        for e in &o.malformed_examples {
            if self.malformed_examples.len() < EXAMPLES {
                self.malformed_examples.push(e.clone());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// VPC -> remote bytes (NAT BytesInFromSource).
    pub upload: u64,
    /// Remote -> VPC bytes (NAT BytesInFromDestination).
    pub download: u64,
    pub packets: u64,
    pub records: u64,
}

impl Counters {
    pub fn bytes(&self) -> u64 {
        self.upload + self.download
    }

    /// `records` records' bytes, in their direction.
    pub fn count(&mut self, bytes: u64, packets: u64, upload: bool, records: u64) {
        if upload {
            self.upload += bytes;
        } else {
            self.download += bytes;
        }
        self.packets += packets;
        self.records += records;
    }

    pub fn add(&mut self, o: &Counters) {
        self.upload += o.upload;
        self.download += o.download;
        self.packets += o.packets;
        self.records += o.records;
    }
}

/// One aggregation cell: a VPC endpoint, a remote endpoint, the AWS service named by the record,
/// and the NAT interface the flow went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local: IpAddr,
    pub remote: IpAddr,
    pub service: u16,
    pub interface: u32,
}

/// Small string interner for the few distinct interfaces and services.
#[derive(Debug, Clone, Default)]
struct Interner {
    names: Vec<Box<[u8]>>,
    index: FxHashMap<Box<[u8]>, u32>,
    last: Option<u32>,
}

impl Interner {
    fn id(&mut self, s: &[u8]) -> u32 {
        if let Some(i) = self.last {
            if *self.names[i as usize] == *s {
                return i;
            }
        }
        let i = match self.index.get(s) {
            Some(&i) => i,
            None => {
                let i = self.names.len() as u32;
                self.names.push(s.into());
                self.index.insert(s.into(), i);
                i
            }
        };
        self.last = Some(i);
        i
    }

    fn name(&self, i: u32) -> &str {
        std::str::from_utf8(&self.names[i as usize]).unwrap_or("?")
    }
}

pub struct Analyzer {
    format: Format,
    cols: Columns,
    nat_ips: FxHashSet<IpAddr>,
    stats: InputStats,
    flows: FxHashMap<FlowKey, Counters>,
    /// Default-format fallback only: traffic per remote endpoint seen on the NAT's public side.
    remotes: FxHashMap<(IpAddr, u16), Counters>,
    interfaces: Interner,
    /// The `az-id` of each interface's records (first seen).
    interface_az: Vec<Option<String>>,
    services: Interner,
    first_start: Option<i64>,
    last_end: Option<i64>,
    timestamp_prefix: bool,
    /// When set, only records of these interfaces count...
    only: Option<FxHashSet<Box<[u8]>>>,
    /// ... or whose resource-id is one of these (regional NAT Gateways) ...
    only_resources: Option<FxHashSet<Box<[u8]>>>,
    /// ... or that carry one of these NAT private IPs in srcaddr or dstaddr.
    only_addresses: Option<FxHashSet<Box<[u8]>>>,
    /// Per interned interface: whether it counts.
    allowed: Vec<bool>,
    /// Field count of the recorder's earlier format while the recorder's format is in use.
    legacy_len: Option<usize>,
    /// How many records the line being processed stands for: 1, or a Logs Insights group's
    /// record count ([`feed_group`](Self::feed_group)).
    weight: u64,
}

impl Analyzer {
    /// `nat_ips` is needed only for formats without the packet addresses.
    pub fn new(format: Format, nat_ips: &[IpAddr]) -> Result<Self> {
        if !format.has_packet_addresses() && nat_ips.is_empty() {
            return Err(AnalysisError::NatAddressesNeeded);
        }
        let mut services = Interner::default();
        services.id(b"-"); // service 0: none
        let legacy_len = format.is_recorder().then_some(RECORDER_FIELDS_V5.len());
        Ok(Self {
            cols: format.columns,
            format,
            nat_ips: nat_ips.iter().copied().collect(),
            stats: InputStats::default(),
            flows: FxHashMap::default(),
            remotes: FxHashMap::default(),
            interfaces: Interner::default(),
            interface_az: Vec::new(),
            services,
            first_start: None,
            last_end: None,
            timestamp_prefix: false,
            only: None,
            only_resources: None,
            only_addresses: None,
            allowed: Vec::new(),
            legacy_len,
            weight: 1,
        })
    }

    /// Switches the format for the lines that follow (e.g. another file's header).
    pub fn set_format(&mut self, format: Format) -> Result<()> {
        if !format.has_packet_addresses() && self.nat_ips.is_empty() {
            return Err(AnalysisError::NatAddressesNeeded);
        }
        self.cols = format.columns;
        self.legacy_len = format.is_recorder().then_some(RECORDER_FIELDS_V5.len());
        self.format = format;
        Ok(())
    }

    /// Counts only the records of these interfaces (the others are counted as
    /// `other_interfaces`): a log group can hold several NATs' records. Combines with
    /// [`only_resources`](Self::only_resources) and [`only_addresses`](Self::only_addresses): a
    /// record counts when any of them selects it.
    pub fn only_interfaces<S: AsRef<str>>(&mut self, ids: &[S]) {
        self.only = Some(ids.iter().map(|i| i.as_ref().as_bytes().into()).collect());
        self.allowed.clear();
    }

    /// Counts only the records whose `resource-id` is one of these (a regional NAT Gateway's
    /// records: their `interface-id` is `-`).
    pub fn only_resources<S: AsRef<str>>(&mut self, ids: &[S]) {
        self.only_resources = Some(ids.iter().map(|i| i.as_ref().as_bytes().into()).collect());
        self.ensure_interface_selection();
    }

    /// Counts only the records with one of these NAT private IPs as `srcaddr` or `dstaddr`: on a
    /// NAT's interface every record has the NAT's own address on one side.
    pub fn only_addresses(&mut self, ips: &[IpAddr]) {
        self.only_addresses = Some(ips.iter().map(|i| i.to_string().into_bytes().into()).collect());
        self.ensure_interface_selection();
    }

    /// One NAT Gateway's records: those of its interfaces (zonal) or with its ID as
    /// `resource-id` (regional). What the recorder's report asks for.
    pub fn only_nat<S: AsRef<str>>(&mut self, nat_id: &str, interfaces: &[S]) {
        self.only_interfaces(interfaces);
        self.only_resources(&[nat_id]);
    }

    /// A selection by resource or address alone selects no interface by its ID.
    fn ensure_interface_selection(&mut self) {
        if self.only.is_none() {
            self.only = Some(FxHashSet::default());
            self.allowed.clear();
        }
    }

    /// Whether only the records of given interfaces, resources or addresses count.
    pub fn is_selecting(&self) -> bool {
        self.only.is_some()
    }

    /// Distinct interface IDs in the records read (`-` not counted).
    pub fn distinct_interfaces(&self) -> usize {
        self.interfaces
            .names
            .iter()
            .filter(|n| &***n != b"-" && !n.starts_with(b"nat-"))
            .count()
    }

    fn counts_interface(&mut self, id: &[u8]) -> bool {
        let i = self.interfaces.id(id) as usize;
        let Some(only) = &self.only else { return true };
        if self.allowed.len() <= i {
            let names = &self.interfaces.names;
            self.allowed
                .extend((self.allowed.len()..=i).map(|k| only.contains(&names[k])));
        }
        self.allowed[i]
    }

    /// Whether a record that is not of a selected interface is still the NAT's.
    fn selected_otherwise(&self, f: &Fields<'_>, c: &Columns) -> bool {
        if let (Some(set), Some(i)) = (&self.only_resources, c.resource_id) {
            if set.contains(f.at(i)) {
                return true;
            }
        }
        if let Some(set) = &self.only_addresses {
            for col in [c.srcaddr, c.dstaddr].into_iter().flatten() {
                if set.contains(f.at(col)) {
                    return true;
                }
            }
        }
        false
    }

    /// Lines start with a timestamp and a space, as in a CloudWatch Logs export to S3.
    pub fn set_timestamp_prefix(&mut self, on: bool) {
        self.timestamp_prefix = on;
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    pub fn stats(&self) -> &InputStats {
        &self.stats
    }

    pub fn flows(&self) -> impl Iterator<Item = (&FlowKey, &Counters)> {
        self.flows.iter()
    }

    pub fn remotes(&self) -> impl Iterator<Item = (IpAddr, &str, &Counters)> {
        self.remotes
            .iter()
            .map(|((ip, s), c)| (*ip, self.service_name(*s).unwrap_or("-"), c))
    }

    pub fn distinct_talkers(&self) -> usize {
        self.flows.len()
    }

    pub fn interface_name(&self, i: u32) -> &str {
        self.interfaces.name(i)
    }

    pub fn interface_az(&self, i: u32) -> Option<&str> {
        self.interface_az.get(i as usize).and_then(|a| a.as_deref())
    }

    /// `None` for "-".
    pub fn service_name(&self, i: u16) -> Option<&str> {
        (i != 0).then(|| self.services.name(i as u32))
    }

    /// Start of the first and end of the last record counted (epoch seconds).
    pub fn window(&self) -> Option<(i64, i64)> {
        Some((self.first_start?, self.last_end?))
    }

    /// Feeds a buffer of whole lines (`\n` or `\r\n` separated; a last line without `\n` counts).
    pub fn feed(&mut self, buf: &[u8]) {
        self.scan(buf);
        self.stats.bytes_read += buf.len() as u64;
    }

    /// One line, without its newline.
    pub fn line(&mut self, line: &[u8]) {
        self.scan(line);
    }

    /// One line standing for `records` identical records (an aggregate row).
    pub(crate) fn line_weighted(&mut self, line: &[u8], records: u64) {
        self.weight = records;
        self.scan(line);
        self.weight = 1;
    }

    /// Lines known only by their number to be no record of the format (e.g. the log events a
    /// Logs Insights query scanned but could not parse): counted as malformed, no example.
    pub fn add_malformed(&mut self, lines: u64) {
        self.stats.lines += lines;
        self.stats.malformed += lines;
    }

    /// Bytes of input known only by their number (what a Logs Insights query scanned).
    pub fn add_bytes_read(&mut self, bytes: u64) {
        self.stats.bytes_read += bytes;
    }

    /// One pass over the buffer finds fields and lines together, 32 bytes at a time (the
    /// separators are too dense for a search routine to pay off).
    fn scan(&mut self, buf: &[u8]) {
        let mut offs = [(0usize, 0usize); MAX_FIELDS];
        let mut n = 0;
        let mut field_start = 0;
        let mut line_start = 0;
        let mut on_separator = |this: &mut Self, pos: usize, offs: &mut [(usize, usize); MAX_FIELDS]| {
            if n < MAX_FIELDS {
                offs[n] = (field_start, pos);
            }
            n += 1;
            field_start = pos + 1;
            if buf[pos] == b'\n' {
                this.process(buf, line_start, pos, offs, n);
                n = 0;
                line_start = pos + 1;
            }
        };
        let mut i = 0;
        while i + 32 <= buf.len() {
            let mut mask = separators32(&buf[i..i + 32]);
            while mask != 0 {
                let pos = i + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                on_separator(self, pos, &mut offs);
            }
            i += 32;
        }
        while i < buf.len() {
            if buf[i] == b' ' || buf[i] == b'\n' {
                on_separator(self, i, &mut offs);
            }
            i += 1;
        }
        if line_start < buf.len() {
            if n < MAX_FIELDS {
                offs[n] = (field_start, buf.len());
            }
            n += 1;
            self.process(buf, line_start, buf.len(), &mut offs, n);
        }
    }

    /// The line `buf[start..end]`, whose `n` fields are at `offs`.
    fn process(&mut self, buf: &[u8], start: usize, mut end: usize, offs: &mut [(usize, usize)], mut n: usize) {
        if end > start && buf[end - 1] == b'\r' {
            end -= 1;
            if n <= MAX_FIELDS {
                offs[n - 1].1 = end;
            }
        }
        if end == start {
            return;
        }
        let mut first = 0;
        if self.timestamp_prefix && n > 1 {
            first = 1;
            n -= 1;
        }
        let line = &buf[offs[first].0..end];
        self.stats.lines += self.weight;
        // A record of the recorder's earlier format (no resource-id, the last field).
        let legacy = n != self.format.len() && Some(n) == self.legacy_len;
        if (n != self.format.len() && !legacy) || n > MAX_FIELDS {
            if !self.header(line) {
                self.malformed(line);
            }
            return;
        }
        let fields = Fields {
            buf,
            offs: &offs[first..first + n],
        };
        if self.record(&fields, legacy).is_none() && !self.header(line) {
            self.malformed(line);
        }
    }

    fn header(&mut self, line: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(line) else {
            return false;
        };
        match Format::from_header(text) {
            Some(format) if format.has_packet_addresses() || !self.nat_ips.is_empty() => {
                self.stats.headers += 1;
                self.cols = format.columns;
                self.legacy_len = format.is_recorder().then_some(RECORDER_FIELDS_V5.len());
                self.format = format;
                true
            }
            _ => false,
        }
    }

    fn malformed(&mut self, line: &[u8]) {
        self.stats.malformed += self.weight;
        if self.stats.malformed_examples.len() < EXAMPLES {
            let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
            self.stats.malformed_examples.push(text);
        }
    }

    /// `None`: malformed.
    fn record(&mut self, f: &Fields<'_>, legacy: bool) -> Option<()> {
        let mut c = self.cols;
        if legacy {
            c.resource_id = None;
        }
        let selected = match c.interface_id {
            Some(i) => self.counts_interface(f.at(i)),
            None => self.only.is_none(),
        };
        if !selected && !self.selected_otherwise(f, &c) {
            self.stats.other_interfaces += self.weight;
            return Some(());
        }
        // A regional NAT Gateway's record: no interface, the NAT's ID as resource-id.
        let regional = c
            .resource_id
            .map(|i| f.at(i))
            .filter(|r| r.starts_with(b"nat-") && c.interface_id.is_none_or(|i| f.at(i) == b"-"));
        if let Some(i) = c.log_status {
            match f.at(i) {
                b"OK" | b"-" => {}
                b"NODATA" => {
                    self.stats.nodata += self.weight;
                    return Some(());
                }
                b"SKIPDATA" => {
                    self.stats.skipdata += self.weight;
                    return Some(());
                }
                _ => return None,
            }
        }
        if let Some(i) = c.action {
            match f.at(i) {
                b"ACCEPT" | b"-" => {}
                b"REJECT" => {
                    self.stats.rejected += self.weight;
                    return Some(());
                }
                _ => return None,
            }
        }
        let bytes_f = f.at(c.bytes?);
        if bytes_f == b"-" {
            self.stats.incomplete += self.weight;
            return Some(());
        }
        let bytes = parse_u64(bytes_f)?;
        let packets = match c.packets.map(|i| f.at(i)) {
            Some(b"-") | None => 0,
            Some(p) => parse_u64(p)?,
        };
        let (src, dst) = (f.at(c.srcaddr?), f.at(c.dstaddr?));

        let (local, remote, service, upload) = match (c.pkt_srcaddr, c.pkt_dstaddr) {
            _ if regional.is_some() && (src == b"-" || dst == b"-") => {
                self.stats.incomplete += self.weight;
                return Some(());
            }
            _ if regional.is_some() => match Self::regional(f, &c)? {
                Some(v) => v,
                None => {
                    self.stats.untranslated += self.weight;
                    return Some(());
                }
            },
            (Some(ps), Some(pd)) => {
                let (psrc, pdst) = (f.at(ps), f.at(pd));
                if psrc == b"-" || pdst == b"-" || src == b"-" || dst == b"-" {
                    self.stats.incomplete += self.weight;
                    return Some(());
                }
                if dst != pdst {
                    let svc = c.pkt_dst_aws_service.map(|i| f.at(i)).unwrap_or(b"-");
                    (parse_ip(psrc)?, parse_ip(pdst)?, svc, true)
                } else if src != psrc {
                    let svc = c.pkt_src_aws_service.map(|i| f.at(i)).unwrap_or(b"-");
                    (parse_ip(pdst)?, parse_ip(psrc)?, svc, false)
                } else {
                    // Validate before counting it as the NAT's own half.
                    parse_ip(src)?;
                    parse_ip(dst)?;
                    self.stats.untranslated += self.weight;
                    return Some(());
                }
            }
            _ => {
                if src == b"-" || dst == b"-" {
                    self.stats.incomplete += self.weight;
                    return Some(());
                }
                let (s, d) = (parse_ip(src)?, parse_ip(dst)?);
                let (s_nat, d_nat) = (self.nat_ips.contains(&s), self.nat_ips.contains(&d));
                match (s_nat, d_nat) {
                    (false, true) if is_private(s) => (s, UNKNOWN_IP, &b"-"[..], true),
                    (true, false) if is_private(d) => (d, UNKNOWN_IP, &b"-"[..], false),
                    (false, true) => {
                        self.remote(s, bytes, packets, false);
                        return Some(());
                    }
                    (true, false) => {
                        self.remote(d, bytes, packets, true);
                        return Some(());
                    }
                    _ => {
                        self.stats.untranslated += self.weight;
                        return Some(());
                    }
                }
            }
        };
        let interface = match (regional, c.interface_id.map(|i| f.at(i))) {
            // The regional NAT is the "interface"; it spans AZs, so no AZ of its own.
            (Some(nat), _) => {
                self.stats.regional += self.weight;
                let i = self.interfaces.id(nat);
                if self.interface_az.len() <= i as usize {
                    self.interface_az.resize(i as usize + 1, None);
                }
                i
            }
            (None, Some(id)) => {
                let i = self.interfaces.id(id);
                if self.interface_az.len() <= i as usize {
                    self.interface_az.resize(i as usize + 1, None);
                }
                if self.interface_az[i as usize].is_none() {
                    if let Some(az) = c.az_id.map(|a| f.at(a)).filter(|a| *a != b"-") {
                        self.interface_az[i as usize] = Some(String::from_utf8_lossy(az).into_owned());
                    }
                }
                i
            }
            (None, None) => self.interfaces.id(b"-"),
        };
        let service = self.services.id(service) as u16;
        let start = c.start.and_then(|i| parse_u64(f.at(i))).map(|t| t as i64);
        let end = c.end.and_then(|i| parse_u64(f.at(i))).map(|t| t as i64);
        self.widen_window(start, end);
        let cell = self.flows.entry(FlowKey {
            local,
            remote,
            service,
            interface,
        });
        cell.or_default().count(bytes, packets, upload, self.weight);
        self.stats.counted += self.weight;
        Some(())
    }

    /// A regional NAT Gateway's record: `Some((local, remote, service, upload))` for a VPC-side
    /// row, `None` for the NAT's internet-side half; `Err`-like outer `None`: malformed.
    ///
    /// AWS documents (VPC user guide, "Flow log record examples", section on a regional NAT
    /// gateway; https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html)
    /// four records per flow with `interface-id` and `subnet-id` `-` and the NAT's ID in
    /// `resource-id`, but unlike a zonal NAT's interface no NAT private IP appears: the VPC-side
    /// rows already carry the far address (outgoing: `srcaddr` = `pkt-srcaddr` = the VPC host,
    /// `dstaddr` = the destination; incoming: `srcaddr` = the remote host, `dstaddr` =
    /// `pkt-dstaddr` = the VPC host), and the internet-side rows carry the NAT's public IP and
    /// the remote host. So the zonal rule (packet address != interface address) finds nothing
    /// here. Each flow direction is counted once from its VPC-side row: the row with exactly one
    /// private end (the VPC host); the internet-side rows have none and are the NAT's halves.
    #[allow(clippy::type_complexity)]
    fn regional<'b>(f: &Fields<'b>, c: &Columns) -> Option<Option<(IpAddr, IpAddr, &'b [u8], bool)>> {
        let pick = |pkt: Option<usize>, plain: Option<usize>| -> Option<&'b [u8]> {
            match pkt.map(|i| f.at(i)) {
                Some(v) if v != b"-" => Some(v),
                _ => plain.map(|i| f.at(i)),
            }
        };
        let (s, d) = (pick(c.pkt_srcaddr, c.srcaddr)?, pick(c.pkt_dstaddr, c.dstaddr)?);
        let (s, d) = (parse_ip(s)?, parse_ip(d)?);
        Some(match (is_private(s), is_private(d)) {
            (true, false) => Some((s, d, c.pkt_dst_aws_service.map(|i| f.at(i)).unwrap_or(b"-"), true)),
            (false, true) => Some((d, s, c.pkt_src_aws_service.map(|i| f.at(i)).unwrap_or(b"-"), false)),
            _ => None,
        })
    }

    fn remote(&mut self, ip: IpAddr, bytes: u64, packets: u64, upload: bool) {
        self.remotes
            .entry((ip, 0))
            .or_default()
            .count(bytes, packets, upload, self.weight);
        self.stats.untranslated += self.weight;
    }

    /// Adds another analyzer's counts (same format), e.g. one per thread or per file.
    pub fn merge(&mut self, other: Analyzer) {
        self.stats.merge(&other.stats);
        let iface: Vec<u32> = (0..other.interfaces.names.len() as u32)
            .map(|i| self.interfaces.id(&other.interfaces.names[i as usize]))
            .collect();
        for (i, az) in other.interface_az.iter().enumerate() {
            let mine = iface[i] as usize;
            if self.interface_az.len() <= mine {
                self.interface_az.resize(mine + 1, None);
            }
            if self.interface_az[mine].is_none() {
                self.interface_az[mine] = az.clone();
            }
        }
        let svc: Vec<u16> = (0..other.services.names.len() as u32)
            .map(|i| self.services.id(&other.services.names[i as usize]) as u16)
            .collect();
        for (k, v) in other.flows {
            let k = FlowKey {
                interface: iface[k.interface as usize],
                service: svc[k.service as usize],
                ..k
            };
            self.flows.entry(k).or_default().add(&v);
        }
        for ((ip, s), v) in other.remotes {
            self.remotes.entry((ip, svc[s as usize])).or_default().add(&v);
        }
        self.widen_window(other.first_start, other.last_end);
    }

    /// Extends the window to cover a start and an end (either may be unknown).
    fn widen_window(&mut self, start: Option<i64>, end: Option<i64>) {
        if let Some(t) = start {
            self.first_start = Some(self.first_start.map_or(t, |m| m.min(t)));
        }
        if let Some(t) = end {
            self.last_end = Some(self.last_end.map_or(t, |m| m.max(t)));
        }
    }

    /// A new empty analyzer with the same settings (for another thread).
    pub fn fork(&self) -> Analyzer {
        let nat: Vec<IpAddr> = self.nat_ips.iter().copied().collect();
        let mut a = Analyzer::new(self.format.clone(), &nat).expect("same settings as a valid analyzer");
        a.timestamp_prefix = self.timestamp_prefix;
        a.only = self.only.clone();
        a.only_resources = self.only_resources.clone();
        a.only_addresses = self.only_addresses.clone();
        a
    }
}

/// Bit i set where `chunk[i]` (32 bytes) is a space or a newline.
#[cfg(target_arch = "x86_64")]
#[inline]
fn separators32(chunk: &[u8]) -> u32 {
    use std::arch::x86_64::*;
    assert!(chunk.len() >= 32);
    // SAFETY: SSE2 is part of the x86_64 baseline; the loads are unaligned and within `chunk`.
    unsafe {
        let sp = _mm_set1_epi8(b' ' as i8);
        let nl = _mm_set1_epi8(b'\n' as i8);
        let lo = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
        let hi = _mm_loadu_si128(chunk.as_ptr().add(16) as *const __m128i);
        let lo = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(lo, sp), _mm_cmpeq_epi8(lo, nl))) as u32;
        let hi = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(hi, sp), _mm_cmpeq_epi8(hi, nl))) as u32;
        lo | (hi << 16)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn separators32(chunk: &[u8]) -> u32 {
    separators32_swar(chunk)
}

/// The same, portable (aarch64 Lambdas): eight bytes at a time in a u64.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn separators32_swar(chunk: &[u8]) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of every zero byte, exactly (no borrow between bytes).
    let zero = |x: u64| !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
    let mut out = 0u32;
    for k in 0..4 {
        let w = u64::from_le_bytes(chunk[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
        let mut m = zero(w ^ 0x2020_2020_2020_2020) | zero(w ^ 0x0a0a_0a0a_0a0a_0a0a);
        while m != 0 {
            out |= 1 << (k * 8 + (m.trailing_zeros() / 8) as usize);
            m &= m - 1;
        }
    }
    out
}

/// The fields of one line, as offsets into the buffer.
struct Fields<'a> {
    buf: &'a [u8],
    offs: &'a [(usize, usize)],
}

impl<'a> Fields<'a> {
    #[inline]
    fn at(&self, i: usize) -> &'a [u8] {
        let (a, b) = self.offs[i];
        &self.buf[a..b]
    }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

/// IPv4 without allocation; anything else through the standard parser (IPv6).
pub fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    parse_v4(s).or_else(|| {
        if memchr::memchr(b':', s).is_some() {
            std::str::from_utf8(s).ok()?.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            None
        }
    })
}

fn parse_v4(s: &[u8]) -> Option<IpAddr> {
    let mut octets = [0u8; 4];
    let mut idx = 0;
    let mut val: u32 = 0;
    let mut digits = 0;
    for &b in s {
        match b {
            b'0'..=b'9' => {
                val = val * 10 + (b - b'0') as u32;
                digits += 1;
                if digits > 3 {
                    return None;
                }
            }
            b'.' => {
                if digits == 0 || idx == 3 || val > 255 {
                    return None;
                }
                octets[idx] = val as u8;
                idx += 1;
                val = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if idx != 3 || digits == 0 || val > 255 {
        return None;
    }
    octets[3] = val as u8;
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

/// RFC 1918, shared address space (100.64/10) and IPv6 unique-local: the VPC side of a NAT.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_strictly() {
        assert_eq!(parse_ip(b"10.0.1.5"), Some("10.0.1.5".parse().unwrap()));
        assert_eq!(parse_ip(b"255.255.255.255"), Some("255.255.255.255".parse().unwrap()));
        assert_eq!(parse_ip(b"2600:1f18::1"), Some("2600:1f18::1".parse().unwrap()));
        for bad in [
            &b"256.0.0.1"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"1..2.3",
            b"1.2.3.",
            b"1234.1.1.1",
            b"-",
            b"",
        ] {
            assert_eq!(parse_ip(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_u64(b"12345"), Some(12345));
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn separator_masks_match_a_plain_scan() {
        let text = b"5 123 eni-1 10.0.0.1\n10.0.0.2  x\n\nabcdefghijklmnopqrstuvwxyz012345 \n";
        for start in 0..text.len() - 32 {
            let chunk = &text[start..start + 32];
            let want = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b' ' || **b == b'\n')
                .fold(0u32, |m, (i, _)| m | 1 << i);
            assert_eq!(separators32(chunk), want, "at {start}");
            assert_eq!(separators32_swar(chunk), want, "at {start}");
        }
    }

    #[test]
    fn private_ranges() {
        for p in ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1"] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["52.94.1.1", "100.128.0.1", "172.32.0.1", "2600::1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }
}
