//! The report: who sent the bytes through the NAT, to where, across which AZs, and what it cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::analyze::{is_private, Analyzer, Counters, InputStats, UNKNOWN_IP};
use crate::destinations::{AdviceContext, Catalogue, EndpointType, VpcEndpoint, HOURS_PER_MONTH};
use crate::dns::{DnsIndex, DnsStats};
use crate::inventory::Inventory;
use crate::ipranges::IpRanges;
use crate::prices::Prices;

/// The version of the JSON report's shape (`docs/report.schema.json`): raised when a key is
/// renamed or removed or its meaning changes; new optional keys keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// Services a gateway VPC endpoint serves at no charge: the `S3` and `DYNAMODB` address ranges
/// are those services' own endpoints, which is what a gateway endpoint routes.
pub const GATEWAY_ENDPOINT_SERVICES: &[&str] = &["S3", "DYNAMODB"];

/// `pkt-*-aws-service` names whose traffic is known to be that service's API, which an interface
/// VPC endpoint would carry, with the endpoint's service name. Endpoint advice comes only from
/// this list and the gateway list, never from a list of exceptions: most range names cover far
/// more than an API. `EC2` is every public address in EC2's ranges (anyone's instances and
/// Elastic IPs), `AMAZON` everything, `API_GATEWAY` anyone's public APIs (an `execute-api`
/// endpoint reaches private APIs only), `CLOUDFRONT`, `GLOBALACCELERATOR`, `ROUTE53*`,
/// `CODEBUILD`, `WORKSPACES_GATEWAYS`, `EC2_INSTANCE_CONNECT`, ... are service fleets, not an API
/// an endpoint serves. None of AWS's published range names is known to be only an API, so the
/// list is empty: add a name here only with a source saying that its ranges are the API.
pub const INTERFACE_ENDPOINT_SERVICES: &[(&str, &str)] = &[];

/// The VPC endpoint that would carry a service's traffic, if one is known to: `gateway` or
/// `interface`.
pub fn endpoint_for(service: &str) -> Option<&'static str> {
    if GATEWAY_ENDPOINT_SERVICES.contains(&service) {
        Some("gateway")
    } else if INTERFACE_ENDPOINT_SERVICES.iter().any(|(s, _)| *s == service) {
        Some("interface")
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub struct ReportOptions<'a> {
    pub inventory: Option<&'a Inventory>,
    pub ip_ranges: Option<&'a IpRanges>,
    pub prices: Prices,
    /// Bytes the NAT's own CloudWatch metrics counted in the same window (upload, download).
    pub nat_metrics: Option<(u64, u64)>,
    /// How many talkers to list (the rest are summed).
    pub top: usize,
    /// Set when not all records were read, with the reason.
    pub truncated: Option<String>,
    /// Step Functions transitions and their price, for the recording's own cost. Set only by the
    /// recorder: it also makes the text call the ingestion cost "this recording's own cost"
    /// (without it, records read from anywhere, the wording is neutral: "Reading these records").
    pub state_transitions: Option<u32>,
    /// How to tell the analysis which records are the NAT's (an option name per input kind),
    /// for the warning shown when the records of several interfaces were all counted.
    pub selection_hint: Option<String>,
    /// Set when Logs Insights grouped the records (see [`crate::insights`]).
    pub server_side: Option<ServerSide>,
    /// Route 53 Resolver query logs of the window, to name destinations (see [`crate::dns`]).
    pub dns: Option<&'a DnsIndex>,
    /// What well-known destinations are and what to do about them (see [`crate::destinations`]);
    /// `None`: the built-in catalogue. Used only for destinations DNS named.
    pub destinations: Option<&'a Catalogue>,
}

/// What the Logs Insights queries of a server-side report did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSide {
    /// Queries run, split ones included.
    pub queries: u32,
    /// Full answers (10,000 rows) asked again as two halves of their window.
    pub split: u32,
    pub records_scanned: u64,
    pub bytes_scanned: u64,
    /// Logs Insights' price of the bytes scanned.
    pub cost_usd: f64,
}

impl<'a> ReportOptions<'a> {
    pub fn new(prices: Prices) -> Self {
        Self {
            inventory: None,
            ip_ranges: None,
            prices,
            nat_metrics: None,
            top: 10,
            truncated: None,
            state_transitions: None,
            selection_hint: None,
            server_side: None,
            dns: None,
            destinations: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: String,
    /// What a person recognises: `i-0abc (web-1)`, `S3`, `203.0.113.5`.
    pub label: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The names the VPC's DNS queries gave this address (Route 53 Resolver query logs), most
    /// queried first: the talker's source's own queries, else any host's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Whose queries gave `hostnames`: `source` (the talker's source asked) or `other-hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostnames_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Talker {
    /// The VPC side.
    pub source: Endpoint,
    /// The far side.
    pub destination: Endpoint,
    pub upload_bytes: u64,
    pub download_bytes: u64,
    pub bytes: u64,
    /// Of all counted bytes.
    pub share: f64,
    /// NAT processing, plus cross-AZ transfer where the source is in another AZ than the NAT.
    pub cost_usd: f64,
    pub cross_az: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceUse {
    pub service: String,
    pub bytes: u64,
    pub nat_cost_usd: f64,
    /// `gateway` (free), `interface` (PrivateLink), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// NAT processing an endpoint would have saved on this traffic (interface: minus its own
    /// per-GB charge; hourly charges not included).
    pub saving_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossAzFlow {
    pub source_az: String,
    pub nat_az: String,
    pub bytes: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossAz {
    /// False without an inventory: a source's AZ is not in the records.
    pub known: bool,
    pub bytes: u64,
    pub cost_usd: f64,
    pub flows: Vec<CrossAzFlow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub flow_log_bytes: u64,
    pub nat_metric_bytes: u64,
    /// flow_log_bytes / nat_metric_bytes (None when the metrics counted nothing).
    pub ratio: Option<f64>,
}

/// The talkers beyond the listed ones, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Others {
    /// How many (source, destination) pairs.
    pub talkers: usize,
    pub upload_bytes: u64,
    pub download_bytes: u64,
    pub bytes: u64,
    pub packets: u64,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    pub nat_processing_usd: f64,
    pub cross_az_usd: f64,
    /// What ingesting the bytes read into CloudWatch Logs as vended logs costs (for a recording:
    /// its own cost, with Step Functions).
    pub flow_log_ingestion_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_functions_usd: Option<f64>,
}

/// The talkers whose destination's (most queried) name is under one domain ([`crate::dns::domain`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainUse {
    pub domain: String,
    pub upload_bytes: u64,
    pub download_bytes: u64,
    pub bytes: u64,
    /// How many (source, destination) pairs.
    pub talkers: usize,
    /// NAT processing, plus cross-AZ transfer, as for the talkers.
    pub cost_usd: f64,
}

/// What the Route 53 Resolver query logs named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsUse {
    pub input: DnsStats,
    /// Bytes of talkers whose destination a query named, and of the others.
    pub named_bytes: u64,
    pub unnamed_bytes: u64,
    /// The top domains (--top of them), largest first.
    pub domains: Vec<DomainUse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceUse {
    pub interface_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`]: the shape of this JSON (`docs/report.schema.json`).
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    pub format: String,
    pub input: InputStats,
    /// First record start and last record end (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<(i64, i64)>,
    pub upload_bytes: u64,
    pub download_bytes: u64,
    pub bytes: u64,
    pub distinct_talkers: usize,
    pub talkers: Vec<Talker>,
    /// Everything beyond the listed talkers.
    pub others: Others,
    /// Only for formats without packet addresses: far-side endpoints, not paired with sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Talker>,
    pub services: Vec<ServiceUse>,
    pub cross_az: CrossAz,
    pub interfaces: Vec<InterfaceUse>,
    pub costs: Costs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side: Option<ServerSide>,
    /// Present when Route 53 Resolver query logs were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsUse>,
    /// What to do about the listed destinations whose names the catalogue knows (registries,
    /// AWS service endpoints by hostname), largest first; never for an unknown name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_advice: Vec<DestinationAdvice>,
    pub inventory_interfaces: usize,
    pub prices: Prices,
    /// What the reader must know to trust the figures (records of several interfaces counted
    /// without knowing which are the NAT's; inputs skipped and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// Advice for the talkers whose destination is one well-known destination or AWS service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationAdvice {
    /// `container-registry`, `package-registry` (catalogue entries) or `aws-endpoint`.
    pub class: String,
    /// The catalogue's key (`docker-hub`), or for an AWS service its VPC endpoint (`sqs`).
    pub key: String,
    /// As a person calls it: `Docker Hub`, `SQS`.
    pub name: String,
    /// The hostnames that matched, most bytes first.
    pub hosts: Vec<String>,
    /// The Region in the hostname (ECR, AWS endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub talkers: usize,
    pub bytes: u64,
    pub nat_cost_usd: f64,
    /// The VPC endpoints' full service names (`com.amazonaws.eu-west-1.sqs`).
    pub endpoints: Vec<String>,
    /// Availability Zones the interface endpoints are priced in (the sources' zones, at least 1).
    pub azs: u32,
    /// The interface endpoints' hourly charge over a month in those zones (gateways are free).
    pub endpoint_monthly_usd: f64,
    pub text: String,
    /// Commands to paste, in order.
    pub commands: Vec<String>,
}

/// `pkt-*-aws-service` code of the traffic a VPC endpoint carries, where the report's services
/// section already advises it (gateway endpoints).
fn advised_service_code(endpoint: &str) -> Option<&'static str> {
    match endpoint {
        "s3" => Some("S3"),
        "dynamodb" => Some("DYNAMODB"),
        _ => None,
    }
}

struct Namer<'a> {
    inventory: Option<&'a Inventory>,
    ip_ranges: Option<&'a IpRanges>,
    dns: Option<&'a DnsIndex>,
    catalogue: &'a Catalogue,
}

impl Namer<'_> {
    fn endpoint(&self, ip: IpAddr, service: Option<&str>) -> Endpoint {
        if ip == UNKNOWN_IP {
            return Endpoint {
                ip: "-".into(),
                label: "unknown (format has no pkt-dstaddr)".into(),
                kind: "unknown".into(),
                service: None,
                interface_id: None,
                subnet_id: None,
                az: None,
                tags: BTreeMap::new(),
                hostnames: Vec::new(),
                hostnames_from: None,
            };
        }
        let service = service
            .map(str::to_string)
            .or_else(|| self.ip_ranges.and_then(|r| r.service(ip)).map(str::to_string));
        let mut e = Endpoint {
            ip: ip.to_string(),
            label: ip.to_string(),
            kind: if is_private(ip) { "private" } else { "internet" }.into(),
            service: service.clone(),
            interface_id: None,
            subnet_id: None,
            az: None,
            tags: BTreeMap::new(),
            hostnames: Vec::new(),
            hostnames_from: None,
        };
        if let Some(eni) = self.inventory.and_then(|i| i.by_ip(&ip)) {
            // Every interface that held the address in the window (natflow::inventory).
            e.label = self.inventory.and_then(|i| i.name(&ip)).unwrap_or_default();
            e.kind = serde_json::to_value(eni.kind())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "interface".into());
            e.interface_id = Some(eni.interface_id.clone());
            e.subnet_id = eni.subnet_id.clone();
            e.az = eni.az().map(str::to_string);
            e.tags = eni.tags.clone();
        } else if let Some(s) = &service {
            e.label = format!("{} {ip}", service_label(s));
            e.kind = "aws-service".into();
        } else if let Some(name) = self.inventory.and_then(|i| i.name(&ip)) {
            // Another VPC's address (by VPC and account), or "unknown private address (ip)".
            e.label = name;
        }
        e
    }

    /// A far side, named by the DNS queries of `source` (None: any host's) where they name it:
    /// `registry-1.docker.io (104.16.1.1)`, the IP kept.
    fn destination(&self, source: Option<IpAddr>, ip: IpAddr, service: Option<&str>) -> Endpoint {
        let mut e = self.endpoint(ip, service);
        let Some(n) = self.dns.and_then(|d| d.names(source, ip)) else {
            return e;
        };
        // Each name shown with what the catalogue calls it: `registry-1.docker.io (Docker Hub)`.
        let named = |h: &String| match self.catalogue.label(h) {
            Some(l) => format!("{h} ({l})"),
            None => h.clone(),
        };
        let shown = match n.names.len() {
            0 => return e,
            1 | 2 => n.names.iter().map(named).collect::<Vec<_>>().join(", "),
            k => format!("{}, {} +{} more", named(&n.names[0]), named(&n.names[1]), k - 2),
        };
        // Without a source (formats without packet addresses) no source asked: no remark.
        let from = if n.asked_by_source || source.is_none() {
            ""
        } else {
            ", named by another host's query"
        };
        e.label = format!("{shown} ({}{from})", e.label);
        // Whose queries: said only of a talker with a source.
        e.hostnames_from = source.map(|_| if n.asked_by_source { "source" } else { "other-hosts" }.into());
        e.hostnames = n.names;
        e
    }
}

/// What the catalogue makes of a talker's destination.
enum Known {
    Destination(crate::destinations::Destination),
    Aws(crate::destinations::AwsEndpoint, VpcEndpoint),
}

struct AdviceGroup {
    known: Known,
    hosts: Vec<(String, u64)>,
    bytes: u64,
    talkers: usize,
    azs: std::collections::BTreeSet<String>,
}

/// One piece of advice per well-known destination (catalogue entry) or AWS VPC endpoint (service
/// and Region) among the listed talkers' destinations, largest first. A talker counts under the
/// first of its names (most queried first) that the catalogue knows; a name it does not know
/// gets nothing. An AWS endpoint the services section already advises (S3, DynamoDB gateway
/// endpoints, found by `pkt-dst-aws-service`) is left to it, and so are those endpoints'
/// commands in a registry's advice.
fn destination_advice<'t>(
    catalogue: &Catalogue,
    talkers: impl Iterator<Item = &'t Talker>,
    services: &[ServiceUse],
    p: &Prices,
    vpc_id: Option<&str>,
) -> Vec<DestinationAdvice> {
    let region = p.region.as_str();
    let advised = |endpoint: &str| {
        advised_service_code(endpoint).is_some_and(|c| services.iter().any(|s| s.service == c && s.endpoint.is_some()))
    };
    let mut groups: BTreeMap<String, AdviceGroup> = BTreeMap::new();
    for t in talkers {
        let found = t.destination.hostnames.iter().find_map(|h| {
            if let Some(d) = catalogue.classify(h) {
                return Some((d.key.clone(), d.host.clone(), Known::Destination(d)));
            }
            let e = catalogue.aws_endpoint(h)?;
            let ep = e.endpoint.clone()?;
            if advised(&ep.service) {
                return None;
            }
            let key = format!("aws:{}:{}", ep.service, e.region.as_deref().unwrap_or(region));
            Some((key, e.host.clone(), Known::Aws(e, ep)))
        });
        let Some((key, host, known)) = found else {
            continue;
        };
        let g = groups.entry(key).or_insert_with(|| AdviceGroup {
            known,
            hosts: Vec::new(),
            bytes: 0,
            talkers: 0,
            azs: Default::default(),
        });
        g.bytes += t.bytes;
        g.talkers += 1;
        match g.hosts.iter_mut().find(|(h, _)| *h == host) {
            Some((_, b)) => *b += t.bytes,
            None => g.hosts.push((host, t.bytes)),
        }
        if let Some(az) = &t.source.az {
            g.azs.insert(az.clone());
        }
    }
    let mut out = Vec::new();
    for (key, mut g) in groups {
        g.hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let azs = (g.azs.len() as u32).max(1);
        let (class, name, region_of, endpoints, monthly, commands): (
            String,
            String,
            Option<String>,
            Vec<String>,
            f64,
            Vec<String>,
        );
        let mut text: String;
        match &g.known {
            Known::Aws(e, ep) => {
                let ctx = AdviceContext {
                    region,
                    vpc_id,
                    prices: p,
                    azs,
                };
                // None: an endpoint of another Region than the VPC's.
                let Some(adv) = e.advice(&ctx, g.bytes) else {
                    continue;
                };
                let cost = e.cost(g.bytes, p, azs);
                class = "aws-endpoint".into();
                name = e.name.clone();
                region_of = e.region.clone();
                endpoints = crate::destinations::service_name(region, &ep.service)
                    .into_iter()
                    .collect();
                monthly = cost.map_or(0.0, |c| c.monthly_usd);
                // The header line names the service and host already.
                text = match adv.text.strip_prefix(&format!("{} ({}): ", e.name, e.host)) {
                    Some(rest) => {
                        let mut c = rest.chars();
                        c.next()
                            .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
                    }
                    None => adv.text,
                };
                commands = adv.commands;
                // No month is extrapolated from a spike: the advice states the break-even
                // traffic a month instead (what the recording cannot know, the user can).
            }
            Known::Destination(d) => {
                let adv = d.advice(region, vpc_id);
                // Endpoints the services section advises already: their commands are there.
                let skip: Vec<String> = d
                    .endpoints
                    .iter()
                    .filter(|e| advised(&e.service))
                    .flat_map(|e| crate::destinations::endpoint_commands(e, region, vpc_id))
                    .collect();
                let interface: Vec<&str> = d
                    .endpoints
                    .iter()
                    .filter(|e| e.kind == EndpointType::Interface)
                    .map(|e| e.service.as_str())
                    .collect();
                class = serde_json::to_value(d.class)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                name = d.name.clone();
                region_of = d.region.clone();
                endpoints = d
                    .endpoints
                    .iter()
                    .filter_map(|e| crate::destinations::service_name(region, &e.service))
                    .collect();
                monthly = interface.len() as f64 * p.per.interface_endpoint_per_hour * f64::from(azs) * HOURS_PER_MONTH;
                text = adv.text;
                commands = adv.commands.into_iter().filter(|c| !skip.contains(c)).collect();
                for e in d.endpoints.iter().filter(|e| advised(&e.service)) {
                    let code = advised_service_code(&e.service).unwrap_or_default();
                    text.push_str(&format!(
                        " For the {} gateway endpoint, see \"AWS services reached through the NAT\".",
                        service_label(code)
                    ));
                }
                if !interface.is_empty() {
                    text.push_str(&format!(
                        " The {} interface endpoint{} cost{} {} a month in {azs} Availability Zone{}.",
                        interface.join(" and "),
                        if interface.len() == 1 { "" } else { "s" },
                        if interface.len() == 1 { "s" } else { "" },
                        usd(monthly),
                        if azs == 1 { "" } else { "s" }
                    ));
                }
            }
        }
        out.push(DestinationAdvice {
            class,
            key: match &g.known {
                Known::Aws(_, ep) => ep.service.clone(),
                Known::Destination(_) => key,
            },
            name,
            hosts: g.hosts.into_iter().map(|(h, _)| h).collect(),
            region: region_of,
            talkers: g.talkers,
            bytes: g.bytes,
            nat_cost_usd: round_usd(p.nat(g.bytes)),
            endpoints,
            azs,
            endpoint_monthly_usd: round_usd(monthly),
            text,
            commands,
        });
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.key.cmp(&b.key)));
    out
}

fn round_usd(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

impl Report {
    pub fn build(a: &Analyzer, o: &ReportOptions<'_>) -> Report {
        let catalogue: &Catalogue = match o.destinations {
            Some(c) => c,
            None => crate::destinations::built_in_catalogue(),
        };
        let namer = Namer {
            inventory: o.inventory,
            ip_ranges: o.ip_ranges,
            dns: o.dns,
            catalogue,
        };
        let p = &o.prices;
        // The NAT interface's AZ: from the inventory (comparable with the sources'), else the
        // records' az-id when the inventory has AZ IDs too.
        let nat_az = |iface: u32| -> Option<String> {
            let id = a.interface_name(iface);
            let inv = o.inventory?;
            match inv.by_interface(id) {
                Some(e) => e.az().map(str::to_string),
                None => a.interface_az(iface).map(str::to_string),
            }
        };

        // Per (local, remote): bytes, service, cross-AZ bytes.
        struct Pair {
            c: Counters,
            service: Option<String>,
            cross_az_bytes: u64,
        }
        let mut pairs: FxHashMap<(IpAddr, IpAddr), Pair> = FxHashMap::default();
        let mut services: BTreeMap<String, u64> = BTreeMap::new();
        let mut cross: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut interfaces: BTreeMap<String, InterfaceUse> = BTreeMap::new();
        let mut local_az_cache: FxHashMap<IpAddr, Option<String>> = FxHashMap::default();
        let (mut up, mut down) = (0u64, 0u64);
        for (k, c) in a.flows() {
            up += c.upload;
            down += c.download;
            let svc = a
                .service_name(k.service)
                .map(str::to_string)
                .or_else(|| o.ip_ranges.and_then(|r| r.service(k.remote)).map(str::to_string));
            if let Some(s) = &svc {
                *services.entry(s.clone()).or_default() += c.bytes();
            }
            let iface = a.interface_name(k.interface).to_string();
            interfaces
                .entry(iface.clone())
                .or_insert_with(|| InterfaceUse {
                    interface_id: iface,
                    az: a.interface_az(k.interface).map(str::to_string),
                    bytes: 0,
                })
                .bytes += c.bytes();
            let local_az = local_az_cache
                .entry(k.local)
                .or_insert_with(|| {
                    o.inventory
                        .and_then(|i| i.by_ip(&k.local))
                        .and_then(|e| e.az().map(str::to_string))
                })
                .clone();
            let mut cross_bytes = 0;
            if let (Some(src), Some(nat)) = (local_az, nat_az(k.interface)) {
                if src != nat {
                    cross_bytes = c.bytes();
                    *cross.entry((src, nat)).or_default() += c.bytes();
                }
            }
            let pair = pairs.entry((k.local, k.remote)).or_insert(Pair {
                c: Counters::default(),
                service: None,
                cross_az_bytes: 0,
            });
            pair.c.add(c);
            pair.cross_az_bytes += cross_bytes;
            if pair.service.is_none() {
                pair.service = svc;
            }
        }
        let total = up + down;
        let share = |b: u64| if total == 0 { 0.0 } else { b as f64 / total as f64 };

        let mut ranked: Vec<((IpAddr, IpAddr), Pair)> = pairs.into_iter().collect();
        let order = |(ka, a): &((IpAddr, IpAddr), Pair), (kb, b): &((IpAddr, IpAddr), Pair)| {
            b.c.bytes().cmp(&a.c.bytes()).then(ka.cmp(kb))
        };
        // Only the listed talkers need sorting.
        if ranked.len() > o.top && o.top > 0 {
            ranked.select_nth_unstable_by(o.top - 1, order);
            ranked[..o.top].sort_unstable_by(order);
        } else {
            ranked.sort_unstable_by(order);
        }
        let distinct = ranked.len();
        let mut others = Counters::default();
        let mut talkers = Vec::new();
        let mut domains: BTreeMap<String, DomainUse> = BTreeMap::new();
        let (mut named_bytes, mut unnamed_bytes) = (0u64, 0u64);
        for (i, ((local, remote), pair)) in ranked.into_iter().enumerate() {
            // Every talker, listed or not, in its destination's domain (its most queried name's).
            if let Some(d) = o.dns {
                match d.top_name(Some(local), remote) {
                    Some(name) => {
                        named_bytes += pair.c.bytes();
                        let domain = crate::dns::domain(name);
                        let u = domains.entry(domain.clone()).or_insert_with(|| DomainUse {
                            domain,
                            ..Default::default()
                        });
                        u.upload_bytes += pair.c.upload;
                        u.download_bytes += pair.c.download;
                        u.bytes += pair.c.bytes();
                        u.talkers += 1;
                        u.cost_usd += p.nat(pair.c.bytes()) + p.cross_az(pair.cross_az_bytes);
                    }
                    None => unnamed_bytes += pair.c.bytes(),
                }
            }
            if i >= o.top {
                others.add(&pair.c);
                continue;
            }
            talkers.push(Talker {
                source: namer.endpoint(local, None),
                destination: namer.destination(Some(local), remote, pair.service.as_deref()),
                upload_bytes: pair.c.upload,
                download_bytes: pair.c.download,
                bytes: pair.c.bytes(),
                share: share(pair.c.bytes()),
                cost_usd: round_usd(p.nat(pair.c.bytes()) + p.cross_az(pair.cross_az_bytes)),
                cross_az: pair.cross_az_bytes > 0,
            });
        }

        let mut destinations: Vec<Talker> = a
            .remotes()
            .map(|(ip, svc, c)| Talker {
                source: namer.endpoint(UNKNOWN_IP, None),
                destination: namer.destination(None, ip, (svc != "-").then_some(svc)),
                upload_bytes: c.upload,
                download_bytes: c.download,
                bytes: c.bytes(),
                share: share(c.bytes()),
                cost_usd: round_usd(p.nat(c.bytes())),
                cross_az: false,
            })
            .collect();
        destinations.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.destination.ip.cmp(&b.destination.ip)));
        destinations.truncate(o.top);

        let mut services: Vec<ServiceUse> = services
            .into_iter()
            .map(|(service, bytes)| {
                let nat_cost = p.nat(bytes);
                let (endpoint, saving) = match endpoint_for(&service) {
                    Some("gateway") => (Some("gateway".to_string()), nat_cost),
                    Some(kind) => {
                        let via_endpoint = bytes as f64 / crate::prices::GB * p.per.interface_endpoint_per_gb;
                        (Some(kind.to_string()), (nat_cost - via_endpoint).max(0.0))
                    }
                    None => (None, 0.0),
                };
                ServiceUse {
                    service,
                    bytes,
                    nat_cost_usd: round_usd(nat_cost),
                    endpoint,
                    saving_usd: round_usd(saving),
                }
            })
            .collect();
        services.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.service.cmp(&b.service)));

        let mut cross_flows: Vec<CrossAzFlow> = cross
            .into_iter()
            .map(|((source_az, nat_az), bytes)| CrossAzFlow {
                source_az,
                nat_az,
                bytes,
                cost_usd: round_usd(p.cross_az(bytes)),
            })
            .collect();
        cross_flows.sort_by(|a, b| b.bytes.cmp(&a.bytes));
        let cross_bytes: u64 = cross_flows.iter().map(|f| f.bytes).sum();
        let mut interfaces: Vec<InterfaceUse> = interfaces.into_values().collect();
        interfaces.sort_by(|a, b| b.bytes.cmp(&a.bytes));

        let costs = Costs {
            nat_processing_usd: round_usd(p.nat(total)),
            cross_az_usd: round_usd(p.cross_az(cross_bytes)),
            flow_log_ingestion_usd: round_usd(p.flow_log_ingestion(a.stats().bytes_read)),
            step_functions_usd: o.state_transitions.map(|t| round_usd(t as f64 * 0.000025)),
        };
        let coverage = o.nat_metrics.map(|(mu, md)| Coverage {
            flow_log_bytes: total,
            nat_metric_bytes: mu + md,
            ratio: (mu + md > 0).then(|| total as f64 / (mu + md) as f64),
        });
        let mut warnings = Vec::new();
        if !a.is_selecting() && a.distinct_interfaces() > 1 && a.stats().counted > 0 {
            warnings.push(format!(
                "The records come from {} network interfaces and nothing says which are the NAT's, so this report \
                 cannot tell NAT traffic from other translated traffic: every record whose packet addresses differ \
                 from its interface's was counted (an EKS node's pods, other secondary IPs, other NATs would be \
                 too). {}",
                a.distinct_interfaces(),
                o.selection_hint.as_deref().unwrap_or(
                    "Give the NAT's interfaces, its NAT Gateway ID (resource-id of a regional NAT) or its private IPs."
                )
            ));
        }
        let dns = o.dns.map(|d| {
            let mut domains: Vec<DomainUse> = domains
                .into_values()
                .map(|u| DomainUse {
                    cost_usd: round_usd(u.cost_usd),
                    ..u
                })
                .collect();
            domains.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.domain.cmp(&b.domain)));
            domains.truncate(o.top);
            DnsUse {
                input: d.stats().clone(),
                named_bytes,
                unnamed_bytes,
                domains,
            }
        });
        // The VPC: the NAT interfaces' in the inventory.
        let vpc_id = o.inventory.and_then(|inv| {
            interfaces
                .iter()
                .find_map(|i| inv.by_interface(&i.interface_id).and_then(|e| e.vpc_id.clone()))
        });
        let destination_advice = if o.dns.is_some() {
            destination_advice(
                catalogue,
                talkers.iter().chain(&destinations),
                &services,
                p,
                vpc_id.as_deref(),
            )
        } else {
            Vec::new()
        };
        let others = Others {
            talkers: distinct - talkers.len(),
            upload_bytes: others.upload,
            download_bytes: others.download,
            bytes: others.bytes(),
            packets: others.packets,
            records: others.records,
        };
        Report {
            schema_version: SCHEMA_VERSION,
            format: a.format().name(),
            input: a.stats().clone(),
            window: a.window(),
            upload_bytes: up,
            download_bytes: down,
            bytes: total,
            distinct_talkers: distinct,
            talkers,
            others,
            destinations,
            services,
            cross_az: CrossAz {
                known: o.inventory.is_some_and(|i| !i.is_empty()),
                bytes: cross_bytes,
                cost_usd: round_usd(p.cross_az(cross_bytes)),
                flows: cross_flows,
            },
            interfaces,
            costs,
            coverage,
            truncated: o.truncated.clone(),
            server_side: o.server_side.clone().map(|q| ServerSide {
                cost_usd: round_usd(q.bytes_scanned as f64 / crate::prices::GB * p.per.logs_insights_per_gb),
                ..q
            }),
            dns,
            destination_advice,
            inventory_interfaces: o.inventory.map_or(0, |i| i.len()),
            prices: p.clone(),
            warnings,
        }
    }

    /// Plain text for the email and the terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let pct = |v: f64| format!("{:.1}%", v * 100.0);
        let _ = writeln!(
            s,
            "Traffic through the NAT in the flow logs: {} ({} from the VPC, {} back), NAT processing {}.",
            human_bytes(self.bytes),
            human_bytes(self.upload_bytes),
            human_bytes(self.download_bytes),
            usd(self.costs.nat_processing_usd)
        );
        if let Some(t) = &self.truncated {
            let _ = writeln!(s, "TRUNCATED: {t}. The figures below cover only the records read.");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "WARNING: {w}");
        }
        if let Some(c) = &self.coverage {
            let _ = match c.ratio {
                Some(r) => writeln!(
                    s,
                    "Coverage: the flow logs account for {} of the {} the NAT's CloudWatch metrics counted ({}).",
                    human_bytes(c.flow_log_bytes),
                    human_bytes(c.nat_metric_bytes),
                    pct(r)
                ),
                None => writeln!(
                    s,
                    "Coverage: the NAT's CloudWatch metrics counted no bytes in this window (flow logs: {}).",
                    human_bytes(c.flow_log_bytes)
                ),
            };
        }
        let _ = writeln!(s);
        if self.distinct_talkers == 0 {
            let _ = writeln!(
                s,
                "No traffic through the NAT was found in the records (flow-log delivery can lag; see the input line)."
            );
        } else if self.talkers.is_empty() {
            let _ = writeln!(
                s,
                "Talkers: none listed (the report was asked for the top 0); {} talkers sent {} in all.",
                self.distinct_talkers,
                human_bytes(self.bytes)
            );
        } else {
            let _ = writeln!(s, "Top talkers (source -> destination: bytes up/down, share, cost):");
            for (i, t) in self.talkers.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{:>3}. {} -> {}: {} ({} up / {} down), {}, {}{}",
                    i + 1,
                    t.source.label,
                    t.destination.label,
                    human_bytes(t.bytes),
                    human_bytes(t.upload_bytes),
                    human_bytes(t.download_bytes),
                    pct(t.share),
                    usd(t.cost_usd),
                    if t.cross_az { ", cross-AZ" } else { "" }
                );
            }
            if self.others.bytes > 0 {
                let _ = writeln!(
                    s,
                    "     {} other talkers: {}",
                    self.others.talkers,
                    human_bytes(self.others.bytes)
                );
            }
        }
        if let Some(d) = &self.dns {
            if !d.domains.is_empty() {
                let _ = writeln!(s, "\nBy destination domain (names from the VPC's DNS queries):");
                for u in &d.domains {
                    let _ = writeln!(
                        s,
                        "     {}: {} ({} up / {} down), {}, {}, {} talker{}",
                        u.domain,
                        human_bytes(u.bytes),
                        human_bytes(u.upload_bytes),
                        human_bytes(u.download_bytes),
                        pct(share_of(u.bytes, self.bytes)),
                        usd(u.cost_usd),
                        u.talkers,
                        if u.talkers == 1 { "" } else { "s" }
                    );
                }
            }
            if d.unnamed_bytes > 0 {
                let _ = writeln!(
                    s,
                    "     no DNS query named the destination: {} ({})",
                    human_bytes(d.unnamed_bytes),
                    pct(share_of(d.unnamed_bytes, self.bytes))
                );
            }
        }
        if !self.destinations.is_empty() {
            let _ = writeln!(s, "\nDestinations (this format cannot pair them with sources):");
            for t in &self.destinations {
                let _ = writeln!(s, "     {}: {}", t.destination.label, human_bytes(t.bytes));
            }
        }
        let _ = writeln!(s);
        if self.services.is_empty() {
            let _ = writeln!(s, "AWS services through the NAT: none seen.");
        } else {
            let _ = writeln!(s, "AWS services reached through the NAT:");
            for v in &self.services {
                let name = service_label(&v.service);
                let advice = match v.endpoint.as_deref() {
                    Some("gateway") => format!(
                        "a gateway VPC endpoint for {name} is free: it would have saved {}",
                        usd(v.saving_usd)
                    ),
                    Some(_) => format!(
                        "an interface VPC endpoint would have saved about {} (minus its hourly charge)",
                        usd(v.saving_usd)
                    ),
                    None if v.service == "EC2" => "no VPC endpoint carries this: EC2's ranges are every public \
                         address of EC2 (anyone's instances and Elastic IPs), not the EC2 API"
                        .into(),
                    None => "no VPC endpoint is known to carry this range's traffic".into(),
                };
                let _ = writeln!(
                    s,
                    "     {name}: {}, NAT processing {}; {}",
                    human_bytes(v.bytes),
                    usd(v.nat_cost_usd),
                    advice
                );
            }
        }
        if !self.destination_advice.is_empty() {
            let _ = writeln!(
                s,
                "\nWhat to do about the destinations known by name (from the VPC's DNS queries):"
            );
            for d in &self.destination_advice {
                let _ = writeln!(
                    s,
                    "     {} ({}): {} from {} talker{}, NAT processing {}.",
                    d.name,
                    d.hosts.join(", "),
                    human_bytes(d.bytes),
                    d.talkers,
                    if d.talkers == 1 { "" } else { "s" },
                    usd(d.nat_cost_usd)
                );
                let _ = writeln!(s, "       {}", d.text);
                for c in &d.commands {
                    let _ = writeln!(s, "         {c}");
                }
            }
        }
        let _ = writeln!(s);
        if !self.cross_az.known {
            let _ = writeln!(
                s,
                "Cross-AZ: unknown (no ENI inventory to place the sources in their AZs)."
            );
        } else if self.cross_az.bytes == 0 {
            let _ = writeln!(s, "Cross-AZ: none; every source is in its NAT interface's AZ.");
        } else {
            let _ = writeln!(
                s,
                "Cross-AZ: {} reached the NAT from another AZ, {} of transfer (a NAT in each AZ avoids it):",
                human_bytes(self.cross_az.bytes),
                usd(self.cross_az.cost_usd)
            );
            for f in &self.cross_az.flows {
                let _ = writeln!(
                    s,
                    "     {} -> NAT in {}: {}, {}",
                    f.source_az,
                    f.nat_az,
                    human_bytes(f.bytes),
                    usd(f.cost_usd)
                );
            }
        }
        let _ = writeln!(s);
        let sfn = self
            .costs
            .step_functions_usd
            .map(|v| format!(" and {} of Step Functions", usd(v)))
            .unwrap_or_default();
        // The recorder's report (it states its Step Functions transitions) tells a recording's own
        // cost; records read from anywhere else (S3 files, someone's log group) were not ingested
        // for this report, so the line only prices them.
        if self.costs.step_functions_usd.is_some() {
            let _ = writeln!(
                s,
                "This recording's own cost: {} of flow-log ingestion ({}){sfn}.",
                usd(self.costs.flow_log_ingestion_usd),
                human_bytes(self.input.bytes_read)
            );
        } else {
            let _ = writeln!(
                s,
                "Cost of these records as flow logs: {} to ingest {} into CloudWatch Logs.",
                usd(self.costs.flow_log_ingestion_usd),
                human_bytes(self.input.bytes_read)
            );
        }
        if let Some(q) = &self.server_side {
            let split = match q.split {
                0 => String::new(),
                n => format!(", {n} full answer(s) asked again in halves of their window"),
            };
            let _ = writeln!(
                s,
                "Counted by CloudWatch Logs Insights, not read record by record: {} queries{split}, {} records and {} scanned, {} of queries.",
                q.queries,
                q.records_scanned,
                human_bytes(q.bytes_scanned),
                usd(q.cost_usd)
            );
        }
        let i = &self.input;
        if i.other_interfaces > 0 {
            let _ = writeln!(
                s,
                "Skipped {} records of other interfaces or NAT Gateways (not the NAT's).",
                i.other_interfaces
            );
        }
        let _ = writeln!(
            s,
            "Input: {} lines, {} counted, {} not counted (the NAT's own copy of a flow already counted, or not through the NAT), {} rejected, {} NODATA/SKIPDATA, {} incomplete, {} malformed; format {}; {} interfaces in the inventory; prices {}.",
            i.lines,
            i.counted,
            i.untranslated,
            i.rejected,
            i.nodata + i.skipdata,
            i.incomplete,
            i.malformed,
            self.format,
            self.inventory_interfaces,
            self.prices.source
        );
        if !i.malformed_examples.is_empty() {
            let _ = writeln!(s, "Malformed lines (first {}):", i.malformed_examples.len());
            for e in &i.malformed_examples {
                let _ = writeln!(s, "     {e}");
            }
        }
        if let Some(d) = &self.dns {
            let q = &d.input;
            let _ = writeln!(
                s,
                "DNS (Route 53 Resolver query logs): {} lines, {} queries, {} answered with addresses, {} failed (NXDOMAIN, SERVFAIL, ...), {} without an address, {} malformed.",
                q.lines, q.queries, q.answered, q.failed, q.without_address, q.malformed
            );
            if !q.malformed_examples.is_empty() {
                let _ = writeln!(s, "Malformed DNS lines (first {}):", q.malformed_examples.len());
                for e in &q.malformed_examples {
                    let _ = writeln!(s, "     {e}");
                }
            }
        }
        s
    }
}

fn share_of(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

/// Dollars as a bill shows them; an amount under a cent is "< $0.01", not a row of zeros.
pub fn usd(v: f64) -> String {
    if v > 0.0 && v < 0.01 {
        "< $0.01".into()
    } else {
        format!("${v:.2}")
    }
}

/// A `pkt-*-aws-service` / ip-ranges.json service code as AWS writes the service's name
/// (`DYNAMODB` -> `DynamoDB`); a code not in the list reads with spaces for underscores.
/// The codes: VPC user guide, "Available fields" (pkt-src-aws-service), and ip-ranges.json.
pub fn service_label(code: &str) -> String {
    let known = match code {
        "AMAZON" => "Amazon (any AWS address)",
        "AMAZON_APPFLOW" => "AppFlow",
        "AMAZON_CONNECT" => "Amazon Connect",
        "API_GATEWAY" => "API Gateway",
        "CHIME_MEETINGS" => "Chime meetings",
        "CHIME_VOICECONNECTOR" => "Chime Voice Connector",
        "CLOUD9" => "Cloud9",
        "CLOUDFRONT" => "CloudFront",
        "CODEBUILD" => "CodeBuild",
        "DYNAMODB" => "DynamoDB",
        "EBS" => "EBS",
        "EC2" => "EC2",
        "EC2_INSTANCE_CONNECT" => "EC2 Instance Connect",
        "GLOBALACCELERATOR" => "Global Accelerator",
        "KINESIS_VIDEO_STREAMS" => "Kinesis Video Streams",
        "ROUTE53" => "Route 53",
        "ROUTE53_HEALTHCHECKS" => "Route 53 health checks",
        "ROUTE53_HEALTHCHECKS_PUBLISHING" => "Route 53 health checks publishing",
        "ROUTE53_RESOLVER" => "Route 53 Resolver",
        "S3" => "S3",
        "WORKSPACES_GATEWAYS" => "WorkSpaces gateways",
        other => return other.replace('_', " "),
    };
    known.into()
}

/// Decimal units, as the NAT's metrics are usually read.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_under_a_cent_are_not_a_row_of_zeros() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0002), "< $0.01");
        assert_eq!(usd(0.0099), "< $0.01");
        assert_eq!(usd(0.01), "$0.01");
        assert_eq!(usd(12.345), "$12.35");
    }

    #[test]
    fn service_codes_read_as_aws_writes_them() {
        assert_eq!(service_label("DYNAMODB"), "DynamoDB");
        assert_eq!(service_label("S3"), "S3");
        assert_eq!(service_label("ROUTE53_RESOLVER"), "Route 53 Resolver");
        assert_eq!(service_label("SOME_NEW_SERVICE"), "SOME NEW SERVICE");
    }
}
