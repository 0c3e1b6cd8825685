//! Synthetic NAT Gateway flow logs with their ground truth, for tests and the benchmark.
//!
//! Each simulated flow (VPC host <-> remote, through one NAT interface) is written the way a
//! NAT's flow log writes it: four records, two of them translated (carrying the real
//! endpoints) and the NAT's own two halves. Noise lines (NODATA, SKIPDATA, REJECT, garbage) are
//! mixed in at known counts. The truth is kept per flow as it is generated, independently of
//! the analyzer.
//!
//! A regional NAT Gateway's flows are written as AWS documents them for a `RegionalNatGateway`
//! flow log (see [`Writer::regional_flow`]), and the records an EKS node's interface writes for
//! its pods' traffic (secondary IPs) can be mixed in, to check that a report counts only its NAT.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use crate::inventory::Eni;

/// splitmix64: deterministic, dependency-free.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub const ACCOUNT: &str = "123456789012";
pub const VPC: &str = "vpc-0a1b2c3d4e5f60718";
/// When the first generated flow starts (epoch seconds).
pub const START: u64 = 1_764_000_000;
/// The zonal NAT Gateway whose interfaces the scenario's `nat` are.
pub const ZONAL_NAT: &str = "nat-0123456789abcdef0";
/// A regional NAT Gateway in the same VPC (its records: `interface-id` `-`, this `resource-id`).
pub const REGIONAL_NAT: &str = "nat-0fedcba98765432a1";
/// The regional NAT's public IP (what its internet-side records show).
pub const REGIONAL_NAT_PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(18, 204, 10, 20);

#[derive(Debug, Clone)]
pub struct NatInterface {
    pub id: String,
    pub ip: Ipv4Addr,
    pub subnet: String,
    pub az_id: String,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub ip: Ipv4Addr,
    pub az_id: String,
    pub eni: Eni,
}

#[derive(Debug, Clone)]
pub struct Remote {
    pub ip: Ipv4Addr,
    /// What `pkt-*-aws-service` says, if an AWS service.
    pub service: Option<&'static str>,
}

/// The expected result, per (VPC host, remote).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    pub pairs: BTreeMap<(IpAddr, IpAddr), (u64, u64)>,
    pub upload: u64,
    pub download: u64,
    pub cross_az: u64,
    pub services: BTreeMap<String, u64>,
    pub flows: u64,
    pub nodata: u64,
    pub skipdata: u64,
    pub rejected: u64,
    pub malformed: u64,
    pub lines: u64,
    /// Records that are not the NAT's (another interface's, e.g. an EKS node's pod traffic).
    pub other_records: u64,
}

pub struct Scenario {
    pub nat: Vec<NatInterface>,
    pub hosts: Vec<Host>,
    pub remotes: Vec<Remote>,
}

impl Scenario {
    /// `hosts` VPC hosts spread over two AZs, `remotes` far ends (a third of them AWS services),
    /// a NAT with one interface in each AZ.
    pub fn new(hosts: usize, remotes: usize) -> Self {
        let nat = vec![
            NatInterface {
                id: "eni-0aaaaaaaaaaaaaaa1".into(),
                ip: Ipv4Addr::new(10, 0, 0, 10),
                subnet: "subnet-0aaaaaaaaaaaaaaa1".into(),
                az_id: "use1-az1".into(),
            },
            NatInterface {
                id: "eni-0bbbbbbbbbbbbbbb2".into(),
                ip: Ipv4Addr::new(10, 0, 1, 10),
                subnet: "subnet-0bbbbbbbbbbbbbbb2".into(),
                az_id: "use1-az2".into(),
            },
        ];
        let hosts = (0..hosts)
            .map(|h| {
                let ip = Ipv4Addr::new(10, 0, 16 + (h / 250) as u8 % 200, 4 + (h % 250) as u8);
                let az_id = if h % 2 == 0 { "use1-az1" } else { "use1-az2" }.to_string();
                let mut eni = Eni {
                    interface_id: format!("eni-{:017x}", 0x1000 + h),
                    private_ips: vec![ip.to_string()],
                    subnet_id: Some(format!("subnet-{}", if h % 2 == 0 { "a" } else { "b" })),
                    availability_zone: Some(if h % 2 == 0 { "us-east-1a" } else { "us-east-1b" }.into()),
                    availability_zone_id: Some(az_id.clone()),
                    vpc_id: Some(VPC.into()),
                    interface_type: Some("interface".into()),
                    ..Default::default()
                };
                if h % 5 == 4 {
                    eni.interface_type = Some("lambda".into());
                    eni.description = Some(format!(
                        "AWS Lambda VPC ENI-worker-{h}-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"
                    ));
                } else {
                    eni.instance_id = Some(format!("i-{:017x}", 0x2000 + h));
                    eni.tags.insert("Name".into(), format!("host-{h}"));
                }
                Host { ip, az_id, eni }
            })
            .collect();
        let remotes = (0..remotes)
            .map(|r| {
                let (ip, service) = match r % 6 {
                    0 => (Ipv4Addr::new(52, 216, (r / 250) as u8, (r % 250) as u8 + 1), Some("S3")),
                    1 => (
                        Ipv4Addr::new(3, 218, (r / 250) as u8, (r % 250) as u8 + 1),
                        Some("DYNAMODB"),
                    ),
                    2 => (
                        Ipv4Addr::new(54, 239, (r / 250) as u8, (r % 250) as u8 + 1),
                        Some("EC2"),
                    ),
                    3 => (Ipv4Addr::new(203, 0, (r / 250) as u8 % 100, (r % 250) as u8 + 1), None),
                    4 => (Ipv4Addr::new(198, 51, (r / 250) as u8 % 100, (r % 250) as u8 + 1), None),
                    _ => (Ipv4Addr::new(151, 101, (r / 250) as u8, (r % 250) as u8 + 1), None),
                };
                Remote { ip, service }
            })
            .collect();
        Self { nat, hosts, remotes }
    }

    /// The NAT interfaces and hosts as the recorder's inventory.
    pub fn inventory(&self) -> Vec<Eni> {
        let mut out: Vec<Eni> = self
            .nat
            .iter()
            .map(|n| Eni {
                interface_id: n.id.clone(),
                private_ips: vec![n.ip.to_string()],
                subnet_id: Some(n.subnet.clone()),
                availability_zone_id: Some(n.az_id.clone()),
                vpc_id: Some(VPC.into()),
                interface_type: Some("nat_gateway".into()),
                description: Some(format!("Interface for NAT Gateway {ZONAL_NAT}")),
                ..Default::default()
            })
            .collect();
        out.extend(self.hosts.iter().map(|h| h.eni.clone()));
        out
    }
}

/// Writes records in the recorder's format.
pub struct Writer<'a, W: Write> {
    pub out: W,
    pub truth: Truth,
    scenario: &'a Scenario,
    rng: Rng,
    t: u64,
    pub written: u64,
    /// Leave out the malformed lines (for comparisons with tools that do not validate).
    pub malformed: bool,
    /// `fill` writes the flows of the regional NAT Gateway instead of the zonal NAT's.
    pub regional: bool,
}

impl<'a, W: Write> Writer<'a, W> {
    pub fn new(out: W, scenario: &'a Scenario, seed: u64) -> Self {
        Self {
            out,
            truth: Truth::default(),
            scenario,
            rng: Rng::new(seed),
            t: START,
            written: 0,
            malformed: true,
            regional: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        iface: &NatInterface,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        psrc: Ipv4Addr,
        pdst: Ipv4Addr,
        bytes: u64,
        direction: &str,
        src_svc: &str,
        dst_svc: &str,
        action: &str,
    ) -> io::Result<()> {
        self.row_of(
            &iface.id,
            &iface.subnet,
            &iface.az_id,
            "-",
            src,
            dst,
            psrc,
            pdst,
            bytes,
            direction,
            src_svc,
            dst_svc,
            action,
        )
    }

    /// One record in the recorder's format (version 9: resource-id is the newest field).
    #[allow(clippy::too_many_arguments)]
    fn row_of(
        &mut self,
        interface: &str,
        subnet: &str,
        az_id: &str,
        resource: &str,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        psrc: Ipv4Addr,
        pdst: Ipv4Addr,
        bytes: u64,
        direction: &str,
        src_svc: &str,
        dst_svc: &str,
        action: &str,
    ) -> io::Result<()> {
        let packets = bytes / 1200 + 1;
        let (sp, dp) = (32768 + self.rng.below(28000), 443);
        let line = format!(
            "9 {ACCOUNT} {interface} {src} {dst} {sp} {dp} 6 {packets} {bytes} {} {} {action} OK {VPC} {subnet} {az_id} {direction} 8 {psrc} {pdst} {src_svc} {dst_svc} 19 IPv4 {resource}\n",
            self.t,
            self.t + 60,
        );
        self.out.write_all(line.as_bytes())?;
        self.written += line.len() as u64;
        self.truth.lines += 1;
        Ok(())
    }

    /// One flow through the NAT: four records, as the NAT's interface logs them.
    pub fn flow(&mut self, host: usize, remote: usize, iface: usize, up: u64, down: u64) -> io::Result<()> {
        let h = &self.scenario.hosts[host];
        self.flow_from(h.ip, &h.az_id.clone(), remote, iface, up, down)
    }

    /// One flow through the NAT from a VPC address (a host's, or a pod's secondary IP).
    pub fn flow_from(
        &mut self,
        local: Ipv4Addr,
        local_az: &str,
        remote: usize,
        iface: usize,
        up: u64,
        down: u64,
    ) -> io::Result<()> {
        let s = self.scenario;
        let (r, n) = (&s.remotes[remote], &s.nat[iface]);
        let svc = r.service.unwrap_or("-");
        // VPC host -> NAT (destination translated), NAT -> remote, remote -> NAT, NAT -> host.
        self.row(n, local, n.ip, local, r.ip, up, "ingress", "-", svc, "ACCEPT")?;
        self.row(n, n.ip, r.ip, n.ip, r.ip, up, "egress", "-", svc, "ACCEPT")?;
        self.row(n, r.ip, n.ip, r.ip, n.ip, down, "ingress", svc, "-", "ACCEPT")?;
        self.row(n, n.ip, local, r.ip, local, down, "egress", svc, "-", "ACCEPT")?;
        if local_az != n.az_id {
            self.truth.cross_az += up + down;
        }
        self.count_truth(local, r, up, down);
        Ok(())
    }

    fn count_truth(&mut self, local: Ipv4Addr, r: &Remote, up: u64, down: u64) {
        let t = &mut self.truth;
        let e = t.pairs.entry((IpAddr::V4(local), IpAddr::V4(r.ip))).or_default();
        e.0 += up;
        e.1 += down;
        t.upload += up;
        t.download += down;
        if let Some(svc) = r.service {
            *t.services.entry(svc.to_string()).or_default() += up + down;
        }
        t.flows += 1;
    }

    /// One flow through the regional NAT Gateway, as AWS documents a `RegionalNatGateway` flow
    /// log's records (VPC user guide, "Flow log record examples", regional NAT gateway): four
    /// records, `interface-id` and `subnet-id` `-`, the NAT's ID as `resource-id`; the VPC-side
    /// rows carry the host and the remote host (no NAT private IP: `srcaddr` = `pkt-srcaddr` out,
    /// `dstaddr` = `pkt-dstaddr` in), the internet-side rows the NAT's public IP.
    pub fn regional_flow(&mut self, host: usize, remote: usize, up: u64, down: u64) -> io::Result<()> {
        let s = self.scenario;
        let (h, r) = (s.hosts[host].ip, &s.remotes[remote]);
        let (nat, pubip) = (REGIONAL_NAT, REGIONAL_NAT_PUBLIC_IP);
        let svc = r.service.unwrap_or("-");
        // host -> remote (inside), NAT public IP -> remote, remote -> NAT public IP, remote -> host.
        self.row_of("-", "-", "-", nat, h, r.ip, h, r.ip, up, "ingress", "-", svc, "ACCEPT")?;
        self.row_of(
            "-", "-", "-", nat, pubip, r.ip, pubip, r.ip, up, "egress", "-", svc, "ACCEPT",
        )?;
        self.row_of(
            "-", "-", "-", nat, r.ip, pubip, r.ip, pubip, down, "ingress", svc, "-", "ACCEPT",
        )?;
        self.row_of("-", "-", "-", nat, r.ip, h, r.ip, h, down, "egress", svc, "-", "ACCEPT")?;
        self.count_truth(h, r, up, down);
        Ok(())
    }

    /// What an EKS node's own interface logs for a pod's flow to a remote host (VPC user guide,
    /// "Flow log records": traffic of a secondary private IP shows the interface's primary IP in
    /// `srcaddr`/`dstaddr` and the pod's in `pkt-srcaddr`/`pkt-dstaddr`). Not NAT traffic: in a
    /// VPC-wide flow log these two records come on top of the NAT's own four.
    pub fn node_rows(&mut self, node: usize, pod: Ipv4Addr, remote: usize, up: u64, down: u64) -> io::Result<()> {
        let s = self.scenario;
        let (h, r) = (&s.hosts[node], &s.remotes[remote]);
        let (id, subnet) = (h.eni.interface_id.clone(), h.eni.subnet_id.clone().unwrap_or_default());
        let (az, ip, rip) = (h.az_id.clone(), h.ip, r.ip);
        let svc = r.service.unwrap_or("-");
        self.row_of(
            &id, &subnet, &az, "-", ip, rip, pod, rip, up, "egress", "-", svc, "ACCEPT",
        )?;
        self.row_of(
            &id, &subnet, &az, "-", rip, ip, rip, pod, down, "ingress", svc, "-", "ACCEPT",
        )?;
        self.truth.other_records += 2;
        Ok(())
    }

    /// Noise of every kind the analysis must count and skip.
    pub fn noise(&mut self) -> io::Result<()> {
        let n = self.scenario.nat[0].clone();
        let line = format!(
            "5 {ACCOUNT} {} - - - - - - - {} {} - NODATA - - - - - - - - - - - -\n",
            n.id,
            self.t,
            self.t + 60
        );
        self.out.write_all(line.as_bytes())?;
        self.truth.nodata += 1;
        let line = format!(
            "5 {ACCOUNT} {} - - - - - - - {} {} - SKIPDATA - - - - - - - - - - - -\n",
            n.id,
            self.t,
            self.t + 60
        );
        self.out.write_all(line.as_bytes())?;
        self.truth.skipdata += 1;
        let h = self.scenario.hosts[0].ip;
        self.row(
            &n,
            Ipv4Addr::new(198, 51, 100, 99),
            n.ip,
            Ipv4Addr::new(198, 51, 100, 99),
            n.ip,
            60,
            "ingress",
            "-",
            "-",
            "REJECT",
        )?;
        self.truth.rejected += 1;
        self.truth.lines += 2;
        if !self.malformed {
            return Ok(());
        }
        for garbage in [
            "this is not a flow log record".to_string(),
            format!("5 {ACCOUNT} {} {h} 10.0.0.10 1 2 6 1 notanumber 1 2 ACCEPT OK {VPC} s a ingress 8 {h} 1.2.3.4 - - 0 IPv4 -", n.id),
            format!("5 {ACCOUNT} {} 999.1.1.1 10.0.0.10 1 2 6 1 10 1 2 ACCEPT OK {VPC} s a ingress 8 999.1.1.1 1.2.3.4 - - 0 IPv4 -", n.id),
        ] {
            self.out.write_all(garbage.as_bytes())?;
            self.out.write_all(b"\n")?;
            self.truth.malformed += 1;
            self.truth.lines += 1;
        }
        Ok(())
    }

    /// Random flows until `bytes` of records are written; a few heavy talkers dominate, as in a
    /// real spike. Noise every 1000 flows.
    pub fn fill(&mut self, bytes: u64) -> io::Result<()> {
        let (nh, nr) = (self.scenario.hosts.len() as u64, self.scenario.remotes.len() as u64);
        let mut i = 0u64;
        while self.written < bytes {
            let heavy = self.rng.below(10) < 3;
            let host = if heavy {
                self.rng.below(nh.min(5))
            } else {
                self.rng.below(nh)
            } as usize;
            let remote = if heavy {
                self.rng.below(nr.min(3))
            } else {
                self.rng.below(nr)
            } as usize;
            let iface = self.rng.below(2) as usize;
            let up = 40 + self.rng.below(if heavy { 50_000_000 } else { 200_000 });
            let down = 40 + self.rng.below(if heavy { 5_000_000 } else { 2_000_000 });
            if self.regional {
                self.regional_flow(host, remote, up, down)?;
            } else {
                self.flow(host, remote, iface, up, down)?;
            }
            i += 1;
            if i % 1000 == 0 {
                self.noise()?;
                self.t += 60;
            }
        }
        Ok(())
    }
}

/// What the Route 53 Resolver query logs written by [`write_dns`] hold, query by query: every
/// answered query's (answer address, asking host, name asked), counted, and the totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsTruth {
    pub answers: BTreeMap<(IpAddr, IpAddr, String), u64>,
    pub lines: u64,
    pub queries: u64,
    pub answered: u64,
    pub failed: u64,
    pub without_address: u64,
    pub malformed: u64,
    /// Flows (host, remote) whose host asked for no name of the remote, another host did.
    pub named_by_other_hosts: u64,
    /// Flows whose remote was resolved only before the flows began.
    pub resolved_before_window: u64,
    /// Remotes asked for by CNAME chains, by several names, and AAAA addresses written.
    pub cname_chains: u64,
    pub several_names: u64,
    pub ipv6_answers: u64,
}

impl DnsTruth {
    /// The names a flow from `host` to `ip` is known by, as written: the names `host` asked for,
    /// else those any host asked for; most queried first, ties by name. `None`: no query named
    /// the address. The bool: `host` asked itself.
    pub fn expected(&self, host: IpAddr, ip: IpAddr) -> Option<(Vec<String>, bool)> {
        let rank = |own: bool| {
            let mut c: BTreeMap<&str, u64> = BTreeMap::new();
            for ((a, h, n), k) in &self.answers {
                if *a == ip && (!own || *h == host) {
                    *c.entry(n.as_str()).or_default() += k;
                }
            }
            let mut v: Vec<(&str, u64)> = c.into_iter().collect();
            v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
            v.into_iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()
        };
        let own = rank(true);
        if !own.is_empty() {
            return Some((own, true));
        }
        let any = rank(false);
        (!any.is_empty()).then_some((any, false))
    }
}

/// `2026-11-28T10:00:00Z` from epoch seconds (the civil-from-days algorithm, proleptic Gregorian).
pub fn iso8601(t: u64) -> String {
    let (days, secs) = ((t / 86_400) as i64, t % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The name a remote is asked for by (one name can stand for many addresses: DynamoDB's).
pub fn remote_name(s: &Scenario, r: usize) -> String {
    let ip = s.remotes[r].ip.octets();
    match s.remotes[r].service {
        Some("S3") => format!("bucket-{r}.s3.us-east-1.amazonaws.com"),
        Some("DYNAMODB") => "dynamodb.us-east-1.amazonaws.com".into(),
        Some(_) => format!("ec2-{}-{}-{}-{}.compute-1.amazonaws.com", ip[0], ip[1], ip[2], ip[3]),
        None => match r % 3 {
            0 => format!("registry-{r}.docker.io"),
            1 => format!("files-{r}.pythonhosted.org"),
            _ => format!("cdn-{r}.example.co.uk"),
        },
    }
}

/// The Route 53 Resolver query logs that go with the flows of `truth` (as a VPC's Resolver
/// writes them: one JSON object a line; Route 53 developer guide, resolver-query-logs-format),
/// with their own truth. Among them: CNAME chains (the name asked is the one to keep), remotes
/// asked for by two names, AAAA answers, NXDOMAIN and answerless queries, the documented PTR
/// example, a remote resolved only an hour before the flows, flows whose host never asked (another
/// host did, or nobody), remotes reached by address (no query), two malformed lines, and fields this reader does not know. `t0`: the
/// flows' first start ([`START`] for a [`Writer`]).
pub fn write_dns<W: Write>(s: &Scenario, truth: &Truth, mut out: W, t0: u64) -> io::Result<DnsTruth> {
    let mut t = DnsTruth::default();
    let host_of: BTreeMap<IpAddr, usize> = s.hosts.iter().enumerate().map(|(i, h)| (IpAddr::V4(h.ip), i)).collect();
    let remote_of: BTreeMap<IpAddr, usize> = s
        .remotes
        .iter()
        .enumerate()
        .map(|(i, r)| (IpAddr::V4(r.ip), i))
        .collect();
    let line = |out: &mut W,
                t: &mut DnsTruth,
                ts: u64,
                host: IpAddr,
                name: &str,
                qtype: &str,
                rcode: &str,
                answers: &[(&str, String)]|
     -> io::Result<()> {
        let a: Vec<serde_json::Value> = answers
            .iter()
            .map(|(k, d)| serde_json::json!({"Rdata": d, "Type": k, "Class": "IN"}))
            .collect();
        let v = serde_json::json!({"version": "1.100000", "account_id": ACCOUNT, "region": "us-east-1",
            "vpc_id": VPC, "query_timestamp": iso8601(ts), "query_name": format!("{name}."), "query_type": qtype,
            "query_class": "IN", "rcode": rcode, "answers": a, "srcaddr": host.to_string(), "srcport": "53535",
            "transport": "UDP", "srcids": {"instance": "i-0123456789abcdef0"}});
        writeln!(out, "{v}")?;
        t.lines += 1;
        t.queries += 1;
        let addrs: Vec<IpAddr> = answers
            .iter()
            .filter(|(k, _)| *k == "A" || *k == "AAAA")
            .map(|(_, d)| d.parse().expect("synth writes addresses"))
            .collect();
        if rcode != "NOERROR" {
            t.failed += 1;
        } else if addrs.is_empty() {
            t.without_address += 1;
        } else {
            t.answered += 1;
            for a in addrs {
                *t.answers.entry((a, host, name.to_string())).or_default() += 1;
            }
        }
        Ok(())
    };
    let v6 = |r: usize| format!("2001:db8:{:x}::{:x}", r / 256, r % 256 + 1);
    // Answers for remote r: a CNAME chain for every fifth, the remote, an address of no flow.
    let answers_of = |r: usize, ip: Ipv4Addr| -> Vec<(&'static str, String)> {
        let mut a = Vec::new();
        if r % 5 == 0 {
            a.push(("CNAME", format!("edge-{r}.cdn.example.net.")));
            a.push(("CNAME", format!("e{r}.a.edgekey.example.")));
        }
        a.push(("A", ip.to_string()));
        a.push(("A", format!("192.0.2.{}", r % 250 + 1)));
        a
    };
    let mut k = 0u64;
    for &(h, r) in truth.pairs.keys() {
        let (Some(&hi), Some(&ri)) = (host_of.get(&h), remote_of.get(&r)) else {
            continue; // a pod's address (secondary IP): its node asks, not modelled
        };
        if ri % 13 == 12 {
            continue; // reached by address: no query names it
        }
        let remote = &s.remotes[ri];
        let name = remote_name(s, ri);
        let before = ri % 11 == 4;
        let ts = if before { t0 - 3600 } else { t0 + (k % 600) };
        k += 1;
        let case = (hi * 31 + ri) % 8;
        if case == 0 {
            // This host does not ask; the next host does, for one flow in two.
            if (hi + ri) % 2 == 0 {
                let other = IpAddr::V4(s.hosts[(hi + 1) % s.hosts.len()].ip);
                line(
                    &mut out,
                    &mut t,
                    ts,
                    other,
                    &name,
                    "A",
                    "NOERROR",
                    &answers_of(ri, remote.ip),
                )?;
            }
            continue;
        }
        for _ in 0..1 + case % 3 {
            line(
                &mut out,
                &mut t,
                ts,
                h,
                &name,
                "A",
                "NOERROR",
                &answers_of(ri, remote.ip),
            )?;
        }
        line(&mut out, &mut t, ts, h, &name, "AAAA", "NOERROR", &[("AAAA", v6(ri))])?;
        if ri % 7 == 3 {
            line(
                &mut out,
                &mut t,
                ts,
                h,
                &format!("alt-{ri}.github.com"),
                "A",
                "NOERROR",
                &[("A", remote.ip.to_string())],
            )?;
        }
        // NXDOMAIN (a CNAME to a name that does not exist) and a name with no AAAA (NODATA).
        if case == 5 {
            line(
                &mut out,
                &mut t,
                ts,
                h,
                &format!("typo-{ri}.example.com"),
                "A",
                "NXDOMAIN",
                &[("CNAME", "gone.example.net.".into())],
            )?;
            line(
                &mut out,
                &mut t,
                ts,
                h,
                &format!("v4only-{ri}.example.com"),
                "AAAA",
                "NOERROR",
                &[],
            )?;
        }
    }
    // The documented example (a PTR query answered without an address), and two broken lines.
    writeln!(
        out,
        r#"{{"srcaddr": "4.5.64.102", "vpc_id": "vpc-7example", "answers": [{{"Rdata": "203.0.113.9", "Type": "PTR", "Class": "IN"}}], "firewall_rule_group_id": "rslvr-frg-01234567890abcdef", "firewall_rule_action": "BLOCK", "query_name": "15.3.4.32.in-addr.arpa.", "firewall_domain_list_id": "rslvr-fdl-01234567890abcdef", "query_class": "IN", "srcids": {{"instance": "i-0d15cd0d3example"}}, "rcode": "NOERROR", "query_type": "PTR", "transport": "UDP", "version": "1.100000", "account_id": "111122223333", "srcport": "56067", "query_timestamp": "2021-02-04T17:51:55Z", "region": "us-east-1"}}"#
    )?;
    t.lines += 1;
    t.queries += 1;
    t.without_address += 1;
    writeln!(out, "this is not a query log entry")?;
    writeln!(
        out,
        r#"{{"query_name": "cut.example.", "rcode": "NOERROR", "answers": [{{"Rdata": "203.0.113."#
    )?;
    t.lines += 2;
    t.malformed += 2;
    // What the scenario exercised (for tests to check that it did).
    for &(h, r) in truth.pairs.keys() {
        let Some(&ri) = remote_of.get(&r) else { continue };
        if let Some((names, own)) = t.expected(h, r) {
            t.named_by_other_hosts += u64::from(!own);
            t.several_names += u64::from(names.len() > 1);
            t.resolved_before_window += u64::from(ri % 11 == 4);
            t.cname_chains += u64::from(ri % 5 == 0);
        }
    }
    t.ipv6_answers = t.answers.keys().filter(|(a, _, _)| a.is_ipv6()).count() as u64;
    Ok(t)
}
