//! natflow: who caused a NAT Gateway spike, offline.
//!
//! Reads flow-log records from files (plain or gzip; S3 flow-log files with their header line;
//! CloudWatch Logs exports with a timestamp before each record; directories of either) or from
//! a log group through the CloudWatch Logs API, and prints the same report the recorder's
//! notice carries.

mod files;
#[cfg(feature = "aws")]
mod loggroup;

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use natflow::{Analyzer, Format, Inventory, IpRanges, Prices, Report, ReportOptions};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not valid gzip ({source}); give plain files uncompressed or .gz files gzip-compressed")]
    Gzip { path: String, source: std::io::Error },
    #[error("nothing to read: give flow-log files or directories, or --log-group")]
    NoInput,
    #[error("no flow-log record in {input}: {found}")]
    NoRecords { input: String, found: String },
    #[error("{0}")]
    Analysis(#[from] natflow::AnalysisError),
    #[error("{0}")]
    Usage(String),
    #[error("CloudWatch Logs: {0}")]
    Logs(String),
}

#[derive(Parser)]
#[command(
    name = "natflow",
    version,
    about = "Who caused a NAT Gateway spike: top talkers, AWS services, cross-AZ bytes and cost from VPC flow logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse flow-log records from files or a log group.
    Analyze(AnalyzeArgs),
    /// Write synthetic NAT flow logs with known talkers (for tests and the benchmark).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// Flow-log files or directories (plain or .gz; S3 and CloudWatch Logs export layouts). "-" reads stdin.
    paths: Vec<PathBuf>,
    /// Read this log group through the CloudWatch Logs API instead of files.
    #[arg(long)]
    log_group: Option<String>,
    /// Start of the window (RFC 3339 or epoch seconds); with --log-group.
    #[arg(long)]
    start: Option<String>,
    /// End of the window (RFC 3339 or epoch seconds); with --log-group.
    #[arg(long)]
    end: Option<String>,
    /// Only these log streams, comma-separated: the NAT's interface IDs (a flow log names its
    /// streams `<interface-id>-all`) or whole stream names; with --log-group. Only their records count.
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
    /// Region whose prices apply (default: AWS_REGION, else us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Price overrides, same layout as functions/natflow/prices.json.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Talkers to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
    /// Worker threads for files (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Bytes of records to write (at least).
    #[arg(long)]
    bytes: u64,
    #[arg(long, default_value_t = 5000)]
    hosts: usize,
    #[arg(long, default_value_t = 2000)]
    remotes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No malformed lines (NODATA, SKIPDATA and REJECT rows stay).
    #[arg(long)]
    no_malformed: bool,
    /// Records file.
    #[arg(long, short)]
    output: PathBuf,
    /// Where to write the scenario's inventory (JSON lines).
    #[arg(long)]
    inventory_output: Option<PathBuf>,
    /// Where to write the truth: total bytes and per-pair bytes (JSON).
    #[arg(long)]
    truth_output: Option<PathBuf>,
}

fn read_text(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn analyze(args: AnalyzeArgs) -> Result<String, CliError> {
    let inventory = args
        .inventory
        .as_ref()
        .map(|p| Inventory::from_json(&read_text(p)?).map_err(CliError::from))
        .transpose()?;
    let ip_ranges = args
        .ip_ranges
        .as_ref()
        .map(|p| IpRanges::from_json(&read_text(p)?).map_err(CliError::from))
        .transpose()?;
    let overrides = args.prices.as_ref().map(read_text).transpose()?;
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let prices = Prices::for_region(&region, overrides.as_deref())?;
    let format = match &args.fields {
        Some(f) => Format::parse(f)?,
        None => Format::recorder(),
    };
    let mut nat_ips = args.nat_ips.clone();
    if let Some(inv) = &inventory {
        nat_ips.extend(inv.nat_ips());
    }
    let mut analyzer = Analyzer::new(format, &nat_ips)?;
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

    let (analyzer, hint) = match &args.log_group {
        Some(group) => {
            if !args.paths.is_empty() {
                return Err(CliError::Usage("give files or --log-group, not both".into()));
            }
            let a = read_log_group(analyzer, group, &args, &interfaces, progress)?;
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
                });
            }
            warnings.extend(out.warnings());
            (
                out.analyzer,
                "Name the NAT: --nat-gateway nat-... with --inventory (its interfaces), or --nat-ip with its private IPs.",
            )
        }
    };
    let mut o = ReportOptions::new(prices);
    o.inventory = inventory.as_ref();
    o.ip_ranges = ip_ranges.as_ref();
    o.top = args.top;
    o.selection_hint = Some(hint.into());
    let mut report = Report::build(&analyzer, &o);
    report.warnings.extend(warnings);
    Ok(match args.format {
        Output::Text => report.to_text(),
        Output::Json => serde_json::to_string_pretty(&report).expect("a report serializes") + "\n",
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
    args: &AnalyzeArgs,
    interfaces: &[String],
    progress: bool,
) -> Result<Analyzer, CliError> {
    let (Some(start), Some(end)) = (&args.start, &args.end) else {
        return Err(CliError::Usage("--log-group needs --start and --end".into()));
    };
    let (start, end) = (loggroup::parse_time(start)?, loggroup::parse_time(end)?);
    if end <= start {
        return Err(CliError::Usage("--end must be after --start".into()));
    }
    loggroup::read(a, group, &args.streams, interfaces, start, end, progress)
}

#[cfg(not(feature = "aws"))]
fn read_log_group(_: Analyzer, _: &str, _: &AnalyzeArgs, _: &[String], _: bool) -> Result<Analyzer, CliError> {
    Err(CliError::Usage(
        "this natflow was built without the `aws` feature: it reads files only".into(),
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
    if let Some(p) = &args.truth_output {
        let t = &w.truth;
        let pairs: Vec<serde_json::Value> = t
            .pairs
            .iter()
            .map(|((s, d), (u, dn))| serde_json::json!({"source": s.to_string(), "destination": d.to_string(), "upload": u, "download": dn}))
            .collect();
        let v = serde_json::json!({"upload": t.upload, "download": t.download, "cross_az": t.cross_az,
            "services": t.services, "flows": t.flows, "lines": t.lines, "malformed": t.malformed, "pairs": pairs});
        std::fs::write(p, v.to_string()).map_err(err(p))?;
    }
    Ok(format!("wrote {} bytes, {} flows\n", w.written, w.truth.flows))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Generate(g) => generate(g),
    };
    match result {
        Ok(out) => {
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("natflow: {e}");
            ExitCode::from(2)
        }
    }
}
