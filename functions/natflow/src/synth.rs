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
            t: 1_764_000_000,
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
