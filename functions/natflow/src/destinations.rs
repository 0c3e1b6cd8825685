//! Well-known destinations of NAT traffic by hostname, and what to do about them.
//!
//! Two lookups, both pure (no AWS call, no DNS):
//! - [`Catalogue::classify`]: container and package registries from `destinations.json`
//!   (Docker Hub, GitHub, Quay, ECR, PyPI, npm, crates.io, Go proxy, Maven Central, ...), each
//!   with its advice (pull through cache, CodeArtifact) and the VPC endpoints that keep the
//!   traffic off the NAT.
//! - [`Catalogue::aws_endpoint`]: an AWS service endpoint read from its `*.amazonaws.com` name
//!   (service and Region), with the exact VPC endpoint service name, the
//!   `aws ec2 create-vpc-endpoint` line and its cost against the NAT processing it saves.
//!
//! A host matches a pattern on whole labels from the right (`registry-1.docker.io` matches
//! `docker.io`; `evildocker.io` and `docker.io.attacker.net` do not). Names are compared
//! after dropping one trailing dot and lower-casing ASCII letters; anything else (IDN
//! U-labels, punycode `xn--` labels) is compared as it is, so it matches only a pattern
//! spelt the same way. A name the catalogue does not know gets `None`: advice is never
//! invented.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::prices::{Prices, GB};
use crate::report::{human_bytes, usd};

/// The documented catalogue (`functions/natflow/destinations.json`).
pub const BUILT_IN: &str = include_str!("../destinations.json");

/// Hours in a month as AWS's pricing pages and calculator count them (8,760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The placeholders advice and commands may use: the VPC's Region and ID.
const PLACEHOLDERS: &[&str] = &["region", "vpc_id"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DestinationsError {
    #[error("destinations file: {0}")]
    File(String),
    #[error("destinations file, {section} entry {key:?}: {reason}")]
    Entry {
        section: &'static str,
        key: String,
        reason: String,
    },
}

type Result<T> = std::result::Result<T, DestinationsError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    ContainerRegistry,
    PackageRegistry,
}

/// How a VPC endpoint is attached: a gateway endpoint (S3, DynamoDB: route table entries,
/// free) or an interface endpoint (network interfaces in subnets, billed by the hour in each
/// Availability Zone and by the GB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndpointType {
    Gateway,
    Interface,
}

/// A VPC endpoint by its PrivateLink service name without the `com.amazonaws.<region>.`
/// prefix (`s3`, `ecr.dkr`, `kinesis-streams`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcEndpoint {
    pub service: String,
    #[serde(rename = "type")]
    pub kind: EndpointType,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    class: Class,
    patterns: Vec<String>,
    advice: String,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    endpoints: Vec<String>,
    sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    name: String,
    endpoint: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<EndpointType>,
    #[serde(default)]
    note: Option<String>,
}

/// One label of a pattern: literal, or `<prefix>{region}<suffix>`.
#[derive(Debug, Clone, PartialEq)]
enum LabelPattern {
    Literal(String),
    Region { prefix: String, suffix: String },
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    text: String,
    labels: Vec<LabelPattern>,
}

impl Pattern {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        if text.is_empty() || text != text.to_ascii_lowercase() || text.ends_with('.') {
            return Err(format!("pattern {text:?}: lower-case labels, no trailing dot"));
        }
        let mut labels = Vec::new();
        for l in text.split('.') {
            if l.is_empty() {
                return Err(format!("pattern {text:?}: empty label"));
            }
            labels.push(match l.split_once("{region}") {
                None if l.contains(['{', '}', '*']) => {
                    return Err(format!("pattern {text:?}: only {{region}} may stand for something"))
                }
                None => LabelPattern::Literal(l.to_string()),
                Some((p, s)) if s.contains("{region}") || p.contains(['{', '}']) || s.contains(['{', '}']) => {
                    return Err(format!("pattern {text:?}: at most one {{region}} a label"))
                }
                Some((p, s)) => LabelPattern::Region {
                    prefix: p.to_string(),
                    suffix: s.to_string(),
                },
            });
        }
        Ok(Self {
            text: text.to_string(),
            labels,
        })
    }

    /// Whether `host` (normalised labels) ends with this pattern; with the Region the
    /// `{region}` labels stood for (all the same one).
    fn matches(&self, host: &[&str]) -> Option<Option<String>> {
        if host.len() < self.labels.len() {
            return None;
        }
        let tail = &host[host.len() - self.labels.len()..];
        let mut region: Option<&str> = None;
        for (p, h) in self.labels.iter().zip(tail) {
            match p {
                LabelPattern::Literal(l) if l == h => {}
                LabelPattern::Literal(_) => return None,
                LabelPattern::Region { prefix, suffix } => {
                    let r = h
                        .strip_prefix(prefix.as_str())
                        .and_then(|r| r.strip_suffix(suffix.as_str()))
                        .filter(|r| looks_like_region(r))?;
                    if region.is_some_and(|x| x != r) {
                        return None;
                    }
                    region = Some(r);
                }
            }
        }
        Some(region.map(str::to_string))
    }
}

/// An AWS Region code's shape: two letters, words, a number (`eu-west-1`, `us-gov-west-1`).
/// The shape, not [`crate::prices::AWS_REGIONS`]: a Region opened later is still one.
pub fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// A hostname as compared: one trailing dot dropped, ASCII letters lower-cased, nothing else
/// touched (IDN and punycode labels stay as given). `None` for an empty name or label.
pub fn normalize(host: &str) -> Option<String> {
    let h = host.trim();
    let h = h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    (!h.is_empty() && h.split('.').all(|l| !l.is_empty())).then_some(h)
}

/// A well-known destination a host belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    /// The catalogue's key (`docker-hub`).
    pub key: String,
    pub name: String,
    pub class: Class,
    /// The host as compared.
    pub host: String,
    /// The pattern it matched.
    pub pattern: String,
    /// The Region a `{region}` of the pattern stood for (an ECR registry's Region).
    pub region: Option<String>,
    /// The endpoints that keep this traffic off the NAT.
    pub endpoints: Vec<VpcEndpoint>,
    pub sources: Vec<String>,
    /// Templates: [`Destination::advice`] fills them in.
    #[serde(skip)]
    advice: String,
    #[serde(skip)]
    commands: Vec<String>,
}

/// What to do, ready to print: a paragraph and the commands to paste, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub text: String,
    pub commands: Vec<String>,
}

fn fill(template: &str, region: &str, vpc_id: Option<&str>) -> String {
    template
        .replace("{region}", region)
        .replace("{vpc_id}", vpc_id.unwrap_or("<vpc-id>"))
}

/// `com.amazonaws.<region>.<service>`; `None` in the China Regions, where the prefix differs
/// from service to service (`com.amazonaws.` or `cn.com.amazonaws.`).
pub fn service_name(region: &str, service: &str) -> Option<String> {
    (!region.starts_with("cn-")).then(|| format!("com.amazonaws.{region}.{service}"))
}

/// The commands that create `e` in the VPC (same wording as the recorder's gateway advice):
/// gateway endpoints in route tables; interface endpoints in one subnet per Availability Zone,
/// with private DNS so the service's usual hostname resolves to the endpoint (CodeArtifact user
/// guide, "Create VPC endpoints": `--private-dns-enabled`; the security group must allow TCP 443
/// from the VPC's subnets). In a China Region: the lookup of the service name instead.
pub fn endpoint_commands(e: &VpcEndpoint, region: &str, vpc_id: Option<&str>) -> Vec<String> {
    let vpc = vpc_id.unwrap_or("<vpc-id>");
    let Some(n) = service_name(region, &e.service) else {
        return vec![format!(
            "aws ec2 describe-vpc-endpoint-services --region {region} --query \"ServiceNames[?ends_with(@, '.{}')]\" --output text",
            e.service
        )];
    };
    match e.kind {
        EndpointType::Gateway => vec![format!(
            "aws ec2 create-vpc-endpoint --region {region} --vpc-id {vpc} --service-name {n} --route-table-ids <route table IDs>"
        )],
        // DescribeVpcEndpointServices: ServiceDetails[].AvailabilityZones are the zones the
        // service is offered in (EC2 API reference).
        EndpointType::Interface => vec![
            format!(
                "aws ec2 describe-vpc-endpoint-services --region {region} --service-names {n} \
                 --query 'ServiceDetails[].AvailabilityZones' --output text"
            ),
            format!(
                "aws ec2 create-vpc-endpoint --region {region} --vpc-id {vpc} --vpc-endpoint-type Interface \
                 --service-name {n} --subnet-ids <one subnet ID per Availability Zone> \
                 --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled"
            ),
        ],
    }
}

impl Destination {
    /// The advice for a VPC in `region`: the entry's paragraph and commands, then the commands
    /// creating its endpoints.
    pub fn advice(&self, region: &str, vpc_id: Option<&str>) -> Advice {
        let mut commands: Vec<String> = self.commands.iter().map(|c| fill(c, region, vpc_id)).collect();
        for e in &self.endpoints {
            commands.extend(endpoint_commands(e, region, vpc_id));
        }
        Advice {
            text: fill(&self.advice, region, vpc_id),
            commands,
        }
    }
}

/// An AWS service endpoint read from its hostname.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwsEndpoint {
    /// The host as compared.
    pub host: String,
    /// The catalogue's key: the hostname's service labels (`dkr.ecr`, `s3`, `sqs`).
    pub key: String,
    /// The service as people call it (`ECR registry`).
    pub name: String,
    /// `None`: a global endpoint (`sts.amazonaws.com`, `bucket.s3.amazonaws.com`).
    pub region: Option<String>,
    /// An `amazonaws.com.cn` name.
    pub china: bool,
    /// The VPC endpoint that serves it; `None` when none does (see `note`).
    pub endpoint: Option<VpcEndpoint>,
    pub note: Option<String>,
}

/// What a VPC endpoint costs against the NAT processing it saves, for some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EndpointCost {
    pub kind: EndpointType,
    /// NAT processing of the bytes.
    pub nat_usd: f64,
    /// The endpoint's own processing of the same bytes (interface endpoints; 0 for gateways).
    pub endpoint_processing_usd: f64,
    /// `nat_usd - endpoint_processing_usd`, not below 0.
    pub saving_usd: f64,
    /// The endpoint's hourly charge in all its Availability Zones (0 for gateways).
    pub hourly_usd: f64,
    /// The same over a month of [`HOURS_PER_MONTH`].
    pub monthly_usd: f64,
    /// GB (2^30 bytes) a month through the endpoint above which it costs less than the NAT
    /// processing it saves; `None` for a gateway (free) or when it never does.
    pub break_even_gb_per_month: Option<f64>,
}

/// Where the advice is for.
#[derive(Debug, Clone, Copy)]
pub struct AdviceContext<'a> {
    /// The VPC's Region (the NAT's).
    pub region: &'a str,
    pub vpc_id: Option<&'a str>,
    pub prices: &'a Prices,
    /// Availability Zones an interface endpoint would be in (one per zone with sources).
    pub azs: u32,
}

/// `$0.01`, `$0.013`: an hourly rate with the digits it has (up to 4 decimals).
fn rate(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0');
    let s = if s.ends_with('.') {
        format!("{s}00")
    } else {
        s.to_string()
    };
    let s = match s.split_once('.') {
        Some((_, d)) if d.len() == 1 => format!("{s}0"),
        _ => s,
    };
    format!("${s}")
}

impl AwsEndpoint {
    /// The VPC endpoint's full service name (`com.amazonaws.eu-west-1.sqs`): `None` without an
    /// endpoint, a Region, or in a China Region.
    pub fn service_name(&self) -> Option<String> {
        let e = self.endpoint.as_ref()?;
        service_name(self.region.as_deref()?, &e.service)
    }

    /// The endpoint's cost against the NAT processing of `bytes` (prices of the VPC's Region);
    /// `None` without an endpoint.
    pub fn cost(&self, bytes: u64, prices: &Prices, azs: u32) -> Option<EndpointCost> {
        let e = self.endpoint.as_ref()?;
        let gb = bytes as f64 / GB;
        let nat_usd = gb * prices.per.nat_per_gb;
        Some(match e.kind {
            EndpointType::Gateway => EndpointCost {
                kind: e.kind,
                nat_usd,
                endpoint_processing_usd: 0.0,
                saving_usd: nat_usd,
                hourly_usd: 0.0,
                monthly_usd: 0.0,
                break_even_gb_per_month: None,
            },
            EndpointType::Interface => {
                let processing = gb * prices.per.interface_endpoint_per_gb;
                let hourly = prices.per.interface_endpoint_per_hour * f64::from(azs.max(1));
                let monthly = hourly * HOURS_PER_MONTH;
                let margin = prices.per.nat_per_gb - prices.per.interface_endpoint_per_gb;
                EndpointCost {
                    kind: e.kind,
                    nat_usd,
                    endpoint_processing_usd: processing,
                    saving_usd: (nat_usd - processing).max(0.0),
                    hourly_usd: hourly,
                    monthly_usd: monthly,
                    break_even_gb_per_month: (margin > 0.0).then(|| monthly / margin),
                }
            }
        })
    }

    /// What to do about `bytes` of this traffic through the NAT of a VPC in `ctx.region`.
    /// `None` when no VPC endpoint serves it (`note` says why, when known) or when the endpoint
    /// is in another Region than the VPC (an endpoint serves its own Region).
    pub fn advice(&self, ctx: &AdviceContext<'_>, bytes: u64) -> Option<Advice> {
        let e = self.endpoint.as_ref()?;
        let r = ctx.region;
        // `lead` ends where "a gateway VPC endpoint ..." / "an interface VPC endpoint ..." begins.
        let lead = match (&self.region, self.key.as_str()) {
            (Some(own), _) if own != r => return None,
            (Some(_), _) => format!("{} ({}): ", self.name, self.host),
            // S3's global names: DNS answers with the bucket's Region's addresses, which a
            // gateway endpoint of that Region serves.
            (None, "s3") => format!(
                "{} ({}) is S3's global name, served by the bucket's own Region; for a bucket in {r}: ",
                self.name, self.host
            ),
            // IAM user guide, "Create a VPC endpoint for AWS STS": after creating the endpoint
            // "you must use the matching regional endpoint"; the global one is sts.amazonaws.com.
            (None, "sts") => format!(
                "{} ({}) is STS's global endpoint, which no VPC endpoint serves: have the clients call the regional \
                 endpoint sts.{r}.amazonaws.com (AWS_STS_REGIONAL_ENDPOINTS=regional, or sts_regional_endpoints = \
                 regional in the AWS config file). Then ",
                self.name, self.host
            ),
            (None, _) => return None,
        };
        let cost = self.cost(bytes, ctx.prices, ctx.azs)?;
        let full = service_name(r, &e.service);
        let what = match &full {
            Some(n) => n.clone(),
            None => format!(
                "the {} endpoint service of {r} (look its name up with the first command)",
                e.service
            ),
        };
        let mut text = match e.kind {
            EndpointType::Gateway => format!(
                "{lead}a gateway VPC endpoint ({what}) is free and its traffic pays no NAT processing: it would have \
                 saved {} on these {}. Add it to the route tables of the subnets that send this traffic.",
                usd(cost.saving_usd),
                human_bytes(bytes)
            ),
            EndpointType::Interface => {
                let azs = ctx.azs.max(1);
                let pays = cost.break_even_gb_per_month.map_or_else(
                    || "at these prices it never costs less than the NAT processing it saves".to_string(),
                    |g| format!("it pays for itself above {g:.0} GB a month through it"),
                );
                format!(
                    "{lead}an interface VPC endpoint ({what}) with private DNS would carry this traffic instead of the \
                     NAT. On these {}: NAT processing {}, through the endpoint {}, saved {}. The endpoint costs {} an hour \
                     in each Availability Zone it is in ({azs} {}: {} a month), so {pays}. Private DNS needs the VPC's \
                     enableDnsSupport and enableDnsHostnames attributes on.",
                    human_bytes(bytes),
                    usd(cost.nat_usd),
                    usd(cost.endpoint_processing_usd),
                    usd(cost.saving_usd),
                    rate(ctx.prices.per.interface_endpoint_per_hour),
                    if azs == 1 { "zone" } else { "zones" },
                    usd(cost.monthly_usd),
                )
            }
        };
        if let Some(n) = &self.note {
            text.push_str(&format!(" Note: {n}."));
        }
        Some(Advice {
            text,
            commands: endpoint_commands(e, r, ctx.vpc_id),
        })
    }
}

/// The catalogue: built-in, or merged with an override file.
#[derive(Debug, Clone)]
pub struct Catalogue {
    destinations: Vec<Known>,
    services: BTreeMap<String, ServiceEntry>,
}

/// A destinations entry, checked.
#[derive(Debug, Clone)]
struct Known {
    key: String,
    entry: Entry,
    patterns: Vec<Pattern>,
    endpoints: Vec<VpcEndpoint>,
}

type Section = serde_json::Map<String, serde_json::Value>;

const SECTIONS: &[&str] = &["destinations", "aws_services"];

fn sections(text: &str) -> Result<BTreeMap<&'static str, Section>> {
    let raw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| DestinationsError::File(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        if k.starts_with('_') {
            continue;
        }
        let Some(&name) = SECTIONS.iter().find(|s| **s == k) else {
            return Err(DestinationsError::File(format!(
                "unknown section {k:?}; the sections are {}",
                SECTIONS.join(", ")
            )));
        };
        match v {
            serde_json::Value::Object(m) => {
                out.insert(name, m);
            }
            other => {
                return Err(DestinationsError::File(format!(
                    "section {k}: expected an object of entries, found {other}"
                )))
            }
        }
    }
    Ok(out)
}

/// `base` with `over` applied: an object replaces the fields it names (or adds the entry),
/// `null` removes the entry; keys starting with `_` are comments.
fn merge(section: &'static str, base: &mut Section, over: Section) -> Result<()> {
    for (k, v) in over {
        if k.starts_with('_') {
            continue;
        }
        match v {
            serde_json::Value::Null => {
                base.remove(&k);
            }
            serde_json::Value::Object(fields) => match base.get_mut(&k) {
                Some(serde_json::Value::Object(old)) => old.extend(fields),
                _ => {
                    base.insert(k, serde_json::Value::Object(fields));
                }
            },
            other => {
                return Err(DestinationsError::Entry {
                    section,
                    key: k,
                    reason: format!("expected an object of fields or null, found {other}"),
                })
            }
        }
    }
    Ok(())
}

/// `{name}` placeholders of `s` that are not [`PLACEHOLDERS`] (JSON braces and `<...>` left alone).
fn unknown_placeholder(s: &str) -> Option<String> {
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        if let Some(j) = after.find('}') {
            let name = &after[..j];
            if !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !PLACEHOLDERS.contains(&name)
            {
                return Some(name.to_string());
            }
        }
        rest = after;
    }
    None
}

fn endpoint_of(key: &str, e: &ServiceEntry) -> Result<Option<VpcEndpoint>> {
    let bad = |reason: String| DestinationsError::Entry {
        section: "aws_services",
        key: key.to_string(),
        reason,
    };
    match (&e.endpoint, e.kind) {
        (Some(s), Some(kind)) if !s.is_empty() => Ok(Some(VpcEndpoint {
            service: s.clone(),
            kind,
        })),
        (Some(_), None) => Err(bad("an endpoint needs its \"type\": Gateway or Interface".into())),
        (None, Some(_)) => Err(bad("a \"type\" without an endpoint".into())),
        (Some(_), Some(_)) => Err(bad("empty endpoint name".into())),
        (None, None) => Ok(None),
    }
}

impl Catalogue {
    /// The built-in catalogue (its validity is a unit test).
    pub fn built_in() -> Self {
        Self::load(None).expect("the built-in destinations.json is valid")
    }

    /// The built-in catalogue merged with `overrides` (same layout as destinations.json): an
    /// entry given replaces the built-in entry's fields it names, a new key adds an entry,
    /// `null` removes one. Every entry is checked, with an error naming it.
    pub fn load(overrides: Option<&str>) -> Result<Self> {
        let mut all = sections(BUILT_IN)?;
        if let Some(o) = overrides {
            for (name, over) in sections(o)? {
                merge(name, all.entry(name).or_default(), over)?;
            }
        }
        let mut services = BTreeMap::new();
        for (k, v) in all.remove("aws_services").unwrap_or_default() {
            if k.starts_with('_') {
                continue;
            }
            let e: ServiceEntry = serde_json::from_value(v).map_err(|e| DestinationsError::Entry {
                section: "aws_services",
                key: k.clone(),
                reason: e.to_string(),
            })?;
            if k.is_empty() || Pattern::parse(&k).is_err() || k.contains('{') {
                return Err(DestinationsError::Entry {
                    section: "aws_services",
                    key: k,
                    reason: "the key is the hostname's service labels, lower case (dkr.ecr)".into(),
                });
            }
            endpoint_of(&k, &e)?;
            services.insert(k, e);
        }
        let known: BTreeMap<&str, EndpointType> = services
            .values()
            .filter_map(|e| Some((e.endpoint.as_deref()?, e.kind?)))
            .collect();
        let mut destinations = Vec::new();
        for (k, v) in all.remove("destinations").unwrap_or_default() {
            if k.starts_with('_') {
                continue;
            }
            let bad = |reason: String| DestinationsError::Entry {
                section: "destinations",
                key: k.clone(),
                reason,
            };
            let e: Entry = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
            if e.patterns.is_empty() {
                return Err(bad("no patterns".into()));
            }
            let patterns = e
                .patterns
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<std::result::Result<Vec<_>, _>>();
            let patterns = patterns.map_err(bad)?;
            if let Some(p) = std::iter::once(&e.advice)
                .chain(&e.commands)
                .find_map(|s| unknown_placeholder(s))
            {
                return Err(bad(format!(
                    "unknown placeholder {{{p}}}; the placeholders are {{region}} and {{vpc_id}}"
                )));
            }
            let endpoints = e
                .endpoints
                .iter()
                .map(|s| match known.get(s.as_str()) {
                    Some(&kind) => Ok(VpcEndpoint {
                        service: s.clone(),
                        kind,
                    }),
                    None => Err(bad(format!("endpoint {s:?} is not an endpoint of aws_services"))),
                })
                .collect::<Result<Vec<_>>>()?;
            destinations.push(Known {
                key: k,
                entry: e,
                patterns,
                endpoints,
            });
        }
        Ok(Self { destinations, services })
    }

    /// The well-known destination `host` belongs to: the entry whose matching pattern has the
    /// most labels (ties: the first key in order). `None` for a host the catalogue does not know.
    pub fn classify(&self, host: &str) -> Option<Destination> {
        let h = normalize(host)?;
        let labels: Vec<&str> = h.split('.').collect();
        let mut best: Option<(&Known, &Pattern, Option<String>)> = None;
        for d in &self.destinations {
            for p in &d.patterns {
                if let Some(region) = p.matches(&labels) {
                    if best.as_ref().is_none_or(|b| p.labels.len() > b.1.labels.len()) {
                        best = Some((d, p, region));
                    }
                }
            }
        }
        let (d, p, region) = best?;
        let e = &d.entry;
        Some(Destination {
            key: d.key.clone(),
            name: e.name.clone(),
            class: e.class,
            host: h.clone(),
            pattern: p.text.clone(),
            region,
            endpoints: d.endpoints.clone(),
            sources: e.sources.clone(),
            advice: e.advice.clone(),
            commands: e.commands.clone(),
        })
    }

    /// An AWS service endpoint read from its name: `<labels>.<region>.amazonaws.com` (or
    /// `.amazonaws.com.cn`), optionally `dualstack` before the Region, the service being the
    /// longest tail of the labels that is a key of `aws_services` (labels before it are a
    /// bucket, an account, a domain); S3's global and legacy names (`s3.amazonaws.com`,
    /// `bucket.s3.amazonaws.com`, `s3-external-1`, `s3-<region>`) and STS's global one.
    /// `None` for anything else, including names under amazonaws.com that are not a service
    /// API (`*.compute.amazonaws.com` instances, `*.elb.amazonaws.com` load balancers,
    /// `*.vpce.amazonaws.com` endpoints) and services not in the table.
    pub fn aws_endpoint(&self, host: &str) -> Option<AwsEndpoint> {
        let h = normalize(host)?;
        let (rest, china) = if let Some(r) = h.strip_suffix(".amazonaws.com.cn") {
            (r, true)
        } else {
            (h.strip_suffix(".amazonaws.com")?, false)
        };
        let labels: Vec<&str> = rest.split('.').collect();
        let last = *labels.last()?;
        let (key, region): (String, Option<String>) = if looks_like_region(last) {
            let mut svc = &labels[..labels.len() - 1];
            if svc.last() == Some(&"dualstack") {
                svc = &svc[..svc.len() - 1];
            }
            let key = (0..svc.len())
                .map(|i| svc[i..].join("."))
                .find(|k| self.services.contains_key(k))?;
            (key, Some(last.to_string()))
        } else if last == "s3-external-1" {
            // S3's legacy us-east-1 name (S3 user guide, "Legacy endpoints").
            ("s3".into(), Some("us-east-1".into()))
        } else if let Some(r) = last.strip_prefix("s3-").filter(|r| looks_like_region(r)) {
            ("s3".into(), Some(r.to_string()))
        } else if last == "s3" || (last == "sts" && labels.len() == 1) {
            (last.to_string(), None)
        } else {
            return None;
        };
        let e = self.services.get(&key)?;
        Some(AwsEndpoint {
            host: h.clone(),
            name: e.name.clone(),
            region,
            china,
            endpoint: endpoint_of(&key, e).ok().flatten(),
            note: e.note.clone(),
            key,
        })
    }
}

impl Catalogue {
    /// A few words naming what `host` is, for a report line like
    /// `registry-1.docker.io (Docker Hub)`: the well-known destination's name, else the AWS
    /// service and its Region (`SQS, eu-west-1`; `STS, global endpoint`). `None` when unknown.
    pub fn label(&self, host: &str) -> Option<String> {
        if let Some(d) = self.classify(host) {
            return Some(d.name);
        }
        let e = self.aws_endpoint(host)?;
        Some(match e.region {
            Some(r) => format!("{}, {r}", e.name),
            None => format!("{}, global endpoint", e.name),
        })
    }
}

/// The built-in catalogue, parsed once.
pub fn built_in_catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(Catalogue::built_in)
}

/// [`Catalogue::classify`] with the built-in catalogue.
pub fn classify(host: &str) -> Option<Destination> {
    built_in_catalogue().classify(host)
}

/// [`Catalogue::label`] with the built-in catalogue.
pub fn label(host: &str) -> Option<String> {
    built_in_catalogue().label(host)
}

/// [`Catalogue::aws_endpoint`] with the built-in catalogue.
pub fn aws_endpoint(host: &str) -> Option<AwsEndpoint> {
    built_in_catalogue().aws_endpoint(host)
}
