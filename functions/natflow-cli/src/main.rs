//! natflow: who caused a NAT Gateway spike, offline.
//!
//! Reads flow-log records from files (plain or gzip; S3 flow-log files with their header line;
//! CloudWatch Logs exports with a timestamp before each record; directories of either) or from
//! a log group through the CloudWatch Logs API, and prints the same report the recorder's
//! notice carries.

mod files;
#[cfg(feature = "aws")]
mod insights;
#[cfg(feature = "aws")]
mod loggroup;

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use natflow::{Analyzer, Format, Inventory, IpRanges, Prices, Report, ReportOptions};

/// The exit statuses, one per kind of outcome (README, "Offline: the natflow CLI").
const EXIT_STATUS: &str = "\
Exit status:
  0  a report was produced
  1  nothing to report: no flow-log record in the input (stderr says what it holds), or records
     but no traffic through the NAT (the report is printed and says why)
  2  usage error: a missing or bad option or argument (clap's own errors too)
  3  input or AWS error: a file that cannot be read, a bad inventory, ip-ranges, prices or
     destinations file; no AWS region or credentials, an AWS_PROFILE that names no profile,
     access denied, throttled, log group not found, endpoint unreachable";

const ANALYZE_HELP: &str = "\
Examples:
  natflow analyze flows.log.gz --nat-gateway nat-0123456789abcdef0 --inventory inv.jsonl \\
      --dns AWSLogs/123456789012/vpcdnsquerylogs/ --format json
  natflow analyze --log-group /natrec/my-stack/flow-logs --region eu-west-1 \\
      --start 2026-11-28T10:00:00Z --end 2026-11-28T10:20:00Z --streams eni-0123456789abcdef0
  natflow analyze --log-group /natrec/my-stack/flow-logs --region eu-west-1 --server-side \\
      --start 2026-11-21T00:00:00Z --end 2026-11-28T00:00:00Z --nat-gateway nat-0123456789abcdef0";

const GENERATE_HELP: &str = "\
Examples:
  natflow generate --bytes 10000000 -o flows.log
  natflow generate --bytes 1000000000 --hosts 1000 --remotes 100 --no-malformed -o big.log \\
      --inventory-output inv.jsonl --truth-output truth.json --dns-output dns.log";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// A file an option names (--inventory, --ip-ranges, --prices, --destinations) cannot be read.
    #[error("{option} {path}: cannot read: {source}")]
    OptionFile {
        option: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid gzip ({source}); give plain files uncompressed or .gz files gzip-compressed")]
    Gzip { path: String, source: std::io::Error },
    #[error("nothing to read: give flow-log files or directories, or --log-group")]
    NoInput,
    /// Nothing to report (exit 1), or, when input could not be read, an input error (exit 3).
    #[error("no flow-log record in {input}: {found}")]
    NoRecords {
        input: String,
        found: String,
        unreadable: bool,
    },
    #[error("{0}")]
    Analysis(#[from] natflow::AnalysisError),
    /// A --destinations file that is not a valid catalogue (the entry and the reason named).
    #[error("--destinations: {0}")]
    Destinations(#[from] natflow::destinations::DestinationsError),
    #[error("{0}")]
    Usage(String),
    /// An AWS call failed, or no region or credentials: one line saying what to do.
    #[error("{0}")]
    Aws(String),
}

impl CliError {
    /// The exit status: see [`EXIT_STATUS`].
    fn exit_code(&self) -> u8 {
        match self {
            CliError::NoRecords { unreadable: false, .. } => 1,
            CliError::NoRecords { unreadable: true, .. } => 3,
            CliError::NoInput | CliError::Usage(_) => 2,
            CliError::Read { .. }
            | CliError::OptionFile { .. }
            | CliError::Gzip { .. }
            | CliError::Analysis(_)
            | CliError::Destinations(_)
            | CliError::Aws(_) => 3,
        }
    }
}

#[derive(Parser)]
#[command(
    name = "natflow",
    version,
    about = "Who caused a NAT Gateway spike: top talkers, AWS services, cross-AZ bytes and cost from VPC flow logs",
    after_help = EXIT_STATUS
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Report who sent the bytes through a NAT Gateway, from flow-log files or a log group.
    #[command(after_help = format!("{EXIT_STATUS}\n\n{ANALYZE_HELP}"))]
    Analyze(AnalyzeArgs),
    /// Write synthetic NAT flow logs with known talkers (to try natflow, for tests and benchmarks).
    #[command(after_help = GENERATE_HELP)]
    Generate(GenerateArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// The report as the recorder's notice shows it.
    Text,
    /// The report as JSON (schema: docs/report.schema.json).
    Json,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// Flow-log files or directories (plain or .gz; S3 and CloudWatch Logs export layouts). "-" reads stdin.
    paths: Vec<PathBuf>,
    /// Read this log group through the CloudWatch Logs API instead of files.
    #[arg(long)]
    log_group: Option<String>,
    /// Start of the window (RFC 3339 or epoch seconds); with --log-group only (files are read whole).
    #[arg(long)]
    start: Option<String>,
    /// End of the window (RFC 3339 or epoch seconds); with --log-group only.
    #[arg(long)]
    end: Option<String>,
    /// Only these log streams, comma-separated: the NAT's interface IDs (a flow log names its
    /// streams `<interface-id>-all`) or whole stream names; with --log-group only. Only their records count.
    #[arg(long, value_delimiter = ',')]
    streams: Vec<String>,
    /// The NAT Gateway whose traffic to count (nat-...): its records by resource-id (regional NAT) and
    /// its interfaces from --inventory (zonal NAT); every other record is skipped.
    #[arg(long)]
    nat_gateway: Option<String>,
    /// Record format: the field list (`${version} ${srcaddr} ...` or `version srcaddr ...`). Default: the
    /// recorder's format. A header line in a file (S3 layout) overrides it for that file.
    #[arg(long)]
    fields: Option<String>,
    /// ENI inventory: the recorder's JSON lines, a JSON array, or `aws ec2 describe-network-interfaces` output.
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// AWS's ip-ranges.json, to name AWS services for formats without pkt-*-aws-service.
    #[arg(long)]
    ip_ranges: Option<PathBuf>,
    /// The NAT Gateway's private IPs (repeatable); needed for formats without pkt-srcaddr/pkt-dstaddr
    /// when the inventory does not include the NAT's interfaces.
    #[arg(long = "nat-ip")]
    nat_ips: Vec<IpAddr>,
    /// AWS Region of the log group's API calls and of the prices, as in the AWS CLI: --region, else
    /// AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region (AWS_PROFILE, ~/.aws/config);
    /// files without any of them are priced as us-east-1.
    #[arg(long)]
    region: Option<String>,
    /// Price overrides, layout of functions/natflow/prices.json; a region may give only some prices
    /// (the others stay the built-in ones).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Destinations catalogue overrides, layout of functions/natflow/destinations.json: an entry
    /// replaces the built-in entry's fields it names, a new key adds one, null removes one. Used for
    /// the destinations --dns names (their class and advice).
    #[arg(long, value_name = "FILE")]
    destinations: Option<PathBuf>,
    /// How many talkers to list (0: none; the rest are summed as "other talkers").
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Output: the text report or its JSON.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
    /// Worker threads for files (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// With --log-group: let CloudWatch Logs Insights group the records (billed per GB scanned,
    /// $0.005 in us-east-1) instead of downloading each one; the same report, for any size.
    #[arg(long)]
    server_side: bool,
    /// Route 53 Resolver query-log files or directories (repeatable; JSON lines, plain or .gz; the S3
    /// layout AWSLogs/<account>/vpcdnsquerylogs/<vpc-id>/yyyy/mm/dd/, CloudWatch Logs exports): each
    /// destination is named by the hostname its source asked for, and talkers grouped by domain.
    #[arg(long = "dns", value_name = "PATH")]
    dns: Vec<PathBuf>,
    /// A log group where Route 53 Resolver query logging delivers, read over the same window:
    /// --start/--end with --log-group, the flow records' first start to last end with files.
    #[arg(long, value_name = "LOG_GROUP")]
    dns_log_group: Option<String>,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Bytes of records to write (at least).
    #[arg(long)]
    bytes: u64,
    /// VPC hosts (sources) in the generated traffic.
    #[arg(long, default_value_t = 5000)]
    hosts: usize,
    /// Far ends (internet addresses and AWS services) in the generated traffic.
    #[arg(long, default_value_t = 2000)]
    remotes: usize,
    /// Random seed: the same seed writes the same records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No malformed lines (NODATA, SKIPDATA and REJECT rows stay).
    #[arg(long)]
    no_malformed: bool,
    /// Where to write the records.
    #[arg(long, short)]
    output: PathBuf,
    /// Where to write the scenario's inventory (JSON lines).
    #[arg(long)]
    inventory_output: Option<PathBuf>,
    /// Where to write the truth: total bytes and per-pair bytes (JSON), with --dns-output each pair's
    /// expected hostnames.
    #[arg(long)]
    truth_output: Option<PathBuf>,
    /// Where to write the Route 53 Resolver query logs that go with the flows (JSON lines).
    #[arg(long)]
    dns_output: Option<PathBuf>,
}

/// The text of the file an option names; an error names the option.
fn read_option_file(option: &'static str, path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::OptionFile {
        option,
        path: path.display().to_string(),
        source,
    })
}

/// The AWS Region, as the AWS CLI picks it: `--region`, else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the profile's `region` (AWS CLI user guide, "Configuration and
/// credential file settings": command line options take precedence over environment variables,
/// which take precedence over the config file). With where it came from, for the error on a name
/// that is not an AWS Region.
fn resolve_region(args: &AnalyzeArgs) -> Result<Option<String>, CliError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let found = match (&args.region, env("AWS_REGION"), env("AWS_DEFAULT_REGION")) {
        (Some(r), _, _) => Some((r.clone(), "--region".to_string())),
        (None, Some(r), _) => Some((r, "AWS_REGION".into())),
        (None, None, Some(r)) => Some((r, "AWS_DEFAULT_REGION".into())),
        (None, None, None) => profile_region().map(|(r, p)| (r, format!("the region of AWS profile {p}"))),
    };
    let Some((region, from)) = found else {
        return Ok(None);
    };
    if !natflow::prices::is_aws_region(&region) {
        return Err(CliError::Usage(format!(
            "{from} {region:?} is not an AWS Region (e.g. us-east-1, eu-west-1; the list: AWS_REGIONS in \
             functions/natflow/src/prices.rs, from AWS's \"Regions and Zones\"; a Region newer than this \
             natflow: add it there)"
        )));
    }
    Ok(Some(region))
}

/// The profile's region (AWS_PROFILE, else `default`; AWS_CONFIG_FILE, else ~/.aws/config).
#[cfg(feature = "aws")]
fn profile_region() -> Option<(String, String)> {
    loggroup::profile_region()
}

#[cfg(not(feature = "aws"))]
fn profile_region() -> Option<(String, String)> {
    None
}

/// An AWS_PROFILE that names no profile is an error (for --log-group).
#[cfg(feature = "aws")]
fn check_profile() -> Result<(), CliError> {
    loggroup::check_profile()
}

#[cfg(not(feature = "aws"))]
fn check_profile() -> Result<(), CliError> {
    Ok(())
}

/// A report, and whether it found traffic through the NAT (exit status 1 when not).
struct Produced {
    out: String,
    traffic: bool,
}

/// The options that go with --log-group only, given without it.
fn log_group_only_options(args: &AnalyzeArgs) -> Vec<&'static str> {
    let mut given = Vec::new();
    if args.start.is_some() {
        given.push("--start");
    }
    if args.end.is_some() {
        given.push("--end");
    }
    if !args.streams.is_empty() {
        given.push("--streams");
    }
    if args.server_side {
        given.push("--server-side");
    }
    given
}

fn analyze(args: AnalyzeArgs) -> Result<Produced, CliError> {
    // Usage errors before any file is read or AWS setting looked at.
    if args.log_group.is_some() {
        if !args.paths.is_empty() {
            return Err(CliError::Usage("give files or --log-group, not both".into()));
        }
        if args.start.is_none() || args.end.is_none() {
            return Err(CliError::Usage("--log-group needs --start and --end".into()));
        }
    } else {
        // Files are analyzed whole: a window of time or a set of streams selects events of a log
        // group only. Silently ignoring them would report on more than was asked for.
        let given = log_group_only_options(&args);
        if !given.is_empty() {
            return Err(CliError::Usage(format!(
                "{} go{} with --log-group only (a log group's window and streams); files are read whole: \
                 give the files of the window (S3 flow-log file names carry their hour) or read the log group",
                given.join(", "),
                if given.len() == 1 { "es" } else { "" }
            )));
        }
    }
    let inventory = args
        .inventory
        .as_ref()
        .map(|p| Inventory::from_json(&read_option_file("--inventory", p)?).map_err(CliError::from))
        .transpose()?;
    let ip_ranges = args
        .ip_ranges
        .as_ref()
        .map(|p| IpRanges::from_json(&read_option_file("--ip-ranges", p)?).map_err(CliError::from))
        .transpose()?;
    let overrides = args
        .prices
        .as_ref()
        .map(|p| read_option_file("--prices", p))
        .transpose()?;
    // Checked before any record is read: a typo in the file fails fast.
    let destinations = args
        .destinations
        .as_ref()
        .map(|p| read_option_file("--destinations", p))
        .transpose()?
        .map(|text| natflow::destinations::Catalogue::load(Some(&text)))
        .transpose()?;
    let uses_aws = args.log_group.is_some() || args.dns_log_group.is_some();
    if uses_aws {
        // Before the region: a profile that does not exist has no region either.
        check_profile()?;
    }
    let region = resolve_region(&args)?;
    if uses_aws && region.is_none() {
        return Err(CliError::Aws(
            "no AWS region for the CloudWatch Logs API: give --region, or set AWS_REGION, or a region in your \
             AWS profile (aws configure set region eu-west-1)"
                .into(),
        ));
    }
    let prices = Prices::for_region(region.as_deref().unwrap_or("us-east-1"), overrides.as_deref())?;
    let format = match &args.fields {
        Some(f) => Format::parse(f).map_err(|e| CliError::Usage(format!("--fields: {e}")))?,
        None => Format::recorder(),
    };
    let mut nat_ips = args.nat_ips.clone();
    if let Some(inv) = &inventory {
        nat_ips.extend(inv.nat_ips());
    }
    let mut analyzer = Analyzer::new(format, &nat_ips).map_err(|e| CliError::Usage(e.to_string()))?;
    let progress = !args.no_progress;
    let mut warnings = Vec::new();
    // Which records are the NAT's: a log group or a VPC-wide flow log holds other interfaces'
    // records too (other NATs, EKS nodes' pods), and those must not be counted as NAT traffic.
    let (interfaces, mut nats) = nat_interfaces(&args, inventory.as_ref(), &mut warnings)?;
    if !interfaces.is_empty() {
        analyzer.only_interfaces(&interfaces);
    }
    nats.extend(args.nat_gateway.clone());
    if !nats.is_empty() {
        analyzer.only_resources(&nats);
    }
    if !args.nat_ips.is_empty() {
        analyzer.only_addresses(&args.nat_ips);
    }

    let mut server_side = None;
    let (analyzer, hint) = match &args.log_group {
        Some(group) => {
            if !args.paths.is_empty() {
                return Err(CliError::Usage("give files or --log-group, not both".into()));
            }
            let region = region.as_deref().unwrap_or("us-east-1");
            let (a, queries, notes) = read_log_group(analyzer, group, region, &args, &interfaces, progress)?;
            server_side = queries;
            warnings.extend(notes);
            if a.stats().records() == 0 {
                return Err(CliError::NoRecords {
                    input: format!("log group {group} ({region})"),
                    found: format!(
                        "{} events between --start and --end{} (flow-log records reach the group 5 to 10 \
                         minutes after capture)",
                        a.stats().lines,
                        if args.streams.is_empty() {
                            ""
                        } else {
                            " in the --streams"
                        }
                    ),
                    unreadable: false,
                });
            }
            (
                a,
                "Name the NAT: --nat-gateway nat-... with --inventory, --nat-ip, or --streams with its interface IDs.",
            )
        }
        None => {
            if args.paths.is_empty() {
                return Err(CliError::NoInput);
            }
            let threads = args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let out = files::analyze(analyzer, &args.paths, threads.max(1), progress)?;
            let names = || {
                args.paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if out.analyzer.stats().records() == 0 {
                return Err(CliError::NoRecords {
                    input: names(),
                    found: out.describe_nothing(out.analyzer.format()),
                    unreadable: !out.skipped.is_empty(),
                });
            }
            warnings.extend(out.warnings());
            (
                out.analyzer,
                "Name the NAT: --nat-gateway nat-... with --inventory (its interfaces), or --nat-ip with its private IPs.",
            )
        }
    };
    let dns = read_dns(&args, analyzer.window(), region.as_deref(), progress, &mut warnings)?;
    let mut o = ReportOptions::new(prices);
    o.dns = dns.as_ref();
    o.destinations = destinations.as_ref();
    o.inventory = inventory.as_ref();
    o.ip_ranges = ip_ranges.as_ref();
    o.top = args.top;
    o.server_side = server_side;
    o.selection_hint = Some(hint.into());
    let mut report = Report::build(&analyzer, &o);
    report.warnings.extend(warnings);
    let out = match args.format {
        Output::Text => report.to_text(),
        Output::Json => serde_json::to_string_pretty(&report).expect("a report serializes") + "\n",
    };
    Ok(Produced {
        out,
        traffic: report.distinct_talkers > 0,
    })
}

/// The NAT's interfaces, when known: the inventory's interfaces of `--nat-gateway` (or, without it,
/// every NAT Gateway interface the inventory names), and the NAT Gateway IDs they name (so that a
/// regional NAT's records, selected by resource-id, count too).
fn nat_interfaces(
    args: &AnalyzeArgs,
    inventory: Option<&Inventory>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<String>, Vec<String>), CliError> {
    if let Some(nat) = &args.nat_gateway {
        let hex = nat.strip_prefix("nat-").unwrap_or("");
        if !(hex.len() == 8 || hex.len() == 17)
            || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(CliError::Usage(format!(
                "--nat-gateway {nat:?} is not a NAT Gateway ID (nat- and 8 or 17 lowercase hex digits)"
            )));
        }
    }
    let Some(inv) = inventory else {
        if let (Some(nat), true) = (&args.nat_gateway, args.streams.is_empty()) {
            warnings.push(format!(
                "{nat}'s interfaces are not known (no --inventory): only records with {nat} as resource-id (a regional \
                 NAT Gateway's) count. For a zonal NAT give --inventory or --streams with its interface IDs."
            ));
        }
        return Ok((vec![], vec![]));
    };
    let nat_of = |e: &natflow::Eni| -> Option<String> {
        let d = e.description.as_deref().unwrap_or("");
        d.split_whitespace().find(|w| w.starts_with("nat-")).map(str::to_string)
    };
    let enis: Vec<&natflow::Eni> = inv
        .enis()
        .iter()
        .filter(|e| e.kind() == natflow::inventory::ResourceKind::NatGateway)
        .filter(|e| match &args.nat_gateway {
            Some(nat) => nat_of(e).as_deref() == Some(nat.as_str()),
            None => true,
        })
        .collect();
    let ids: Vec<String> = enis.iter().map(|e| e.interface_id.clone()).collect();
    let mut nats: Vec<String> = enis.iter().filter_map(|e| nat_of(e)).collect();
    nats.sort();
    nats.dedup();
    if let (Some(nat), true) = (&args.nat_gateway, ids.is_empty()) {
        warnings.push(format!(
            "the inventory names no interface of {nat}: only records with {nat} as resource-id (a regional NAT \
             Gateway's) count."
        ));
    }
    Ok((ids, nats))
}

#[cfg(feature = "aws")]
fn read_log_group(
    a: Analyzer,
    group: &str,
    region: &str,
    args: &AnalyzeArgs,
    interfaces: &[String],
    progress: bool,
) -> Result<LogGroupRead, CliError> {
    let (Some(start), Some(end)) = (&args.start, &args.end) else {
        return Err(CliError::Usage("--log-group needs --start and --end".into()));
    };
    let (start, end) = (loggroup::parse_time(start)?, loggroup::parse_time(end)?);
    if end <= start {
        return Err(CliError::Usage("--end must be after --start".into()));
    }
    loggroup::read(
        a,
        group,
        region,
        &args.streams,
        interfaces,
        start,
        end,
        progress,
        args.server_side,
    )
}

/// The analyzer, what the Logs Insights queries did (with --server-side) and notes for the report.
type LogGroupRead = (Analyzer, Option<natflow::report::ServerSide>, Vec<String>);

#[cfg(not(feature = "aws"))]
fn read_log_group(
    _: Analyzer,
    _: &str,
    _: &str,
    _: &AnalyzeArgs,
    _: &[String],
    _: bool,
) -> Result<LogGroupRead, CliError> {
    Err(CliError::Usage(
        "this natflow was built without the `aws` feature: it reads files only".into(),
    ))
}

/// The Route 53 Resolver query logs of `--dns` and `--dns-log-group`, if given.
fn read_dns(
    args: &AnalyzeArgs,
    window: Option<(i64, i64)>,
    region: Option<&str>,
    progress: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<natflow::dns::DnsIndex>, CliError> {
    if args.dns.is_empty() && args.dns_log_group.is_none() {
        return Ok(None);
    }
    let mut index = natflow::dns::DnsIndex::new();
    if !args.dns.is_empty() {
        let out = files::read_dns(&args.dns)?;
        warnings.extend(out.warnings());
        index.merge(out.index);
    }
    if let Some(group) = &args.dns_log_group {
        let region = region.unwrap_or("us-east-1");
        let got = read_dns_log_group(group, region, args, window, progress)?;
        if got.stats().lines == 0 {
            warnings.push(format!(
                "the DNS log group {group} holds no event in the window: no destination is named from it"
            ));
        }
        index.merge(got);
    }
    if index.stats().queries == 0 {
        warnings.push("the DNS input holds no Route 53 Resolver query-log entry: no destination is named".into());
    }
    Ok(Some(index))
}

#[cfg(feature = "aws")]
fn read_dns_log_group(
    group: &str,
    region: &str,
    args: &AnalyzeArgs,
    window: Option<(i64, i64)>,
    progress: bool,
) -> Result<natflow::dns::DnsIndex, CliError> {
    let (start, end) = match (&args.log_group, &args.start, &args.end) {
        (Some(_), Some(s), Some(e)) => (loggroup::parse_time(s)?, loggroup::parse_time(e)?),
        _ => window.ok_or_else(|| CliError::Usage("--dns-log-group: the flow records have no time window".into()))?,
    };
    loggroup::read_dns(group, region, start, end, progress)
}

#[cfg(not(feature = "aws"))]
fn read_dns_log_group(
    _: &str,
    _: &str,
    _: &AnalyzeArgs,
    _: Option<(i64, i64)>,
    _: bool,
) -> Result<natflow::dns::DnsIndex, CliError> {
    Err(CliError::Usage(
        "this natflow was built without the `aws` feature: --dns-log-group needs it (give --dns files)".into(),
    ))
}

fn generate(args: GenerateArgs) -> Result<String, CliError> {
    let err = |path: &PathBuf| {
        let path = path.display().to_string();
        move |source| CliError::Read { path, source }
    };
    let scenario = natflow::synth::Scenario::new(args.hosts.max(1), args.remotes.max(1));
    let file = std::fs::File::create(&args.output).map_err(err(&args.output))?;
    let mut w = natflow::synth::Writer::new(std::io::BufWriter::with_capacity(1 << 20, file), &scenario, args.seed);
    w.malformed = !args.no_malformed;
    w.noise().map_err(err(&args.output))?;
    w.fill(args.bytes).map_err(err(&args.output))?;
    w.out.flush().map_err(err(&args.output))?;
    if let Some(p) = &args.inventory_output {
        let text: String = scenario
            .inventory()
            .iter()
            .map(|e| serde_json::to_string(e).expect("serializes") + "\n")
            .collect();
        std::fs::write(p, text).map_err(err(p))?;
    }
    let dns = match &args.dns_output {
        Some(p) => {
            let file = std::fs::File::create(p).map_err(err(p))?;
            let mut out = std::io::BufWriter::new(file);
            let t = natflow::synth::write_dns(&scenario, &w.truth, &mut out, natflow::synth::START).map_err(err(p))?;
            out.flush().map_err(err(p))?;
            Some(t)
        }
        None => None,
    };
    if let Some(p) = &args.truth_output {
        let t = &w.truth;
        let pairs: Vec<serde_json::Value> = t
            .pairs
            .iter()
            .map(|((s, d), (u, dn))| {
                let mut v = serde_json::json!({"source": s.to_string(), "destination": d.to_string(), "upload_bytes": u, "download_bytes": dn});
                if let Some((names, own)) = dns.as_ref().and_then(|t| t.expected(*s, *d)) {
                    v["hostnames"] = serde_json::json!(names);
                    v["hostnames_from"] = serde_json::json!(if own { "source" } else { "other-hosts" });
                }
                v
            })
            .collect();
        let v = serde_json::json!({"upload_bytes": t.upload, "download_bytes": t.download, "cross_az_bytes": t.cross_az,
            "services": t.services, "flows": t.flows, "lines": t.lines, "malformed": t.malformed, "pairs": pairs});
        std::fs::write(p, v.to_string()).map_err(err(p))?;
    }
    Ok(format!("wrote {} bytes, {} flows\n", w.written, w.truth.flows))
}

fn main() -> ExitCode {
    // clap exits 2 on a usage error, 0 for --help and --version.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Generate(g) => generate(g).map(|out| Produced { out, traffic: true }),
    };
    match result {
        Ok(p) => {
            let _ = std::io::stdout().write_all(p.out.as_bytes());
            if p.traffic {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            // One line, whatever the cause.
            eprintln!("natflow: {}", e.to_string().replace('\n', " "));
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_lists_every_subcommand_and_describes_every_option_with_examples() {
        let mut cli = Cli::command();
        cli.build();
        let top = cli.render_help().to_string();
        assert!(
            top.contains("Exit status:") && top.contains("  3  input or AWS error"),
            "{top}"
        );
        for sub in cli.get_subcommands().filter(|c| c.get_name() != "help") {
            let name = sub.get_name();
            assert!(!sub.is_hide_set(), "{name} is listed");
            assert!(top.contains(&format!("  {name} ")), "{name} in natflow --help: {top}");
            assert!(sub.get_about().is_some(), "{name} has a one-line purpose");
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{name} {:?} has no description",
                    arg.get_id()
                );
            }
            let help = sub.clone().render_long_help().to_string();
            let examples = help.rfind("Examples:").unwrap_or_else(|| panic!("{name}: {help}"));
            let tail = &help[examples..];
            let n = tail.lines().filter(|l| l.starts_with("  natflow ")).count();
            assert!((2..=3).contains(&n), "{name}: {n} examples, at the end: {tail}");
        }
        let analyze = cli
            .find_subcommand_mut("analyze")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(analyze.contains("Exit status:"), "{analyze}");
    }
}
