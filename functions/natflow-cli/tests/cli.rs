//! The CLI on files: generated flow logs with a known truth, in every layout it reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use natflow::synth::{Scenario, Truth, Writer, REGIONAL_NAT, ZONAL_NAT};

use flate2::write::GzEncoder;
use serde_json::Value;

/// The CLI with no AWS settings from the caller's environment (region, profile, credentials).
fn bare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_natflow"));
    for v in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        c.env_remove(v);
    }
    c.env("AWS_CONFIG_FILE", "/nonexistent/natflow-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/natflow-test/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

fn natflow(args: &[&str]) -> Output {
    bare().args(args).output().expect("natflow runs")
}

fn ok_json(args: &[&str]) -> Value {
    let out = natflow(args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

struct Fixture {
    dir: tempfile::TempDir,
    records: PathBuf,
    inventory: PathBuf,
    truth: Value,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.log");
    let inventory = dir.path().join("inventory.jsonl");
    let truth = dir.path().join("truth.json");
    let out = natflow(&[
        "generate",
        "--bytes",
        "3000000",
        "--hosts",
        "60",
        "--remotes",
        "40",
        "--seed",
        "5",
        "-o",
        records.to_str().unwrap(),
        "--inventory-output",
        inventory.to_str().unwrap(),
        "--truth-output",
        truth.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
    Fixture {
        dir,
        records,
        inventory,
        truth,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn gzip(text: &[u8], path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut e = GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap();
}

/// (upload, download, talkers) of a JSON report.
fn totals(r: &Value) -> (u64, u64, u64) {
    (
        r["upload_bytes"].as_u64().unwrap(),
        r["download_bytes"].as_u64().unwrap(),
        r["distinct_talkers"].as_u64().unwrap(),
    )
}

#[test]
fn json_report_matches_the_generated_truth_pair_by_pair() {
    let f = fixture();
    let r = ok_json(&[
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--format",
        "json",
        "--top",
        "100000",
        "--no-progress",
    ]);
    let pairs = f.truth["pairs"].as_array().unwrap();
    assert_eq!(
        totals(&r),
        (
            f.truth["upload_bytes"].as_u64().unwrap(),
            f.truth["download_bytes"].as_u64().unwrap(),
            pairs.len() as u64
        )
    );
    let talkers = r["talkers"].as_array().unwrap();
    for p in pairs {
        let t = talkers
            .iter()
            .find(|t| t["source"]["ip"] == p["source"] && t["destination"]["ip"] == p["destination"])
            .unwrap_or_else(|| panic!("missing {p}"));
        assert_eq!(t["upload_bytes"], p["upload_bytes"]);
        assert_eq!(t["download_bytes"], p["download_bytes"]);
    }
    assert_eq!(r["cross_az"]["bytes"], f.truth["cross_az_bytes"]);
    assert_eq!(r["input"]["malformed"], f.truth["malformed"]);
}

#[test]
fn one_thread_or_many_gives_the_same_report() {
    let f = fixture();
    let base = [
        "analyze",
        s(&f.records),
        "--format",
        "json",
        "--top",
        "50",
        "--no-progress",
    ];
    let one = ok_json(&[&base[..], &["--threads", "1"]].concat());
    let four = ok_json(&[&base[..], &["--threads", "4"]].concat());
    assert_eq!(totals(&one), totals(&four));
    assert_eq!(one["input"], four["input"]);
    assert_eq!(one["services"], four["services"]);
    let ips = |r: &Value| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = r["talkers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    format!("{}>{}", t["source"]["ip"], t["destination"]["ip"]),
                    t["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ips(&one), ips(&four));
}

#[test]
fn gzip_s3_and_cloudwatch_export_layouts_give_the_same_totals() {
    let f = fixture();
    let plain = ok_json(&["analyze", s(&f.records), "--format", "json", "--no-progress"]);
    let text = std::fs::read(&f.records).unwrap();

    // Plain gzip.
    let gz = f.dir.path().join("records.log.gz");
    gzip(&text, &gz);
    assert_eq!(
        totals(&ok_json(&["analyze", s(&gz), "--format", "json", "--no-progress"])),
        totals(&plain)
    );

    // S3 flow-log layout: a header line first, split over two hourly files.
    let s3 = f.dir.path().join("s3");
    let header = natflow::format::RECORDER_FIELDS.join(" ") + "\n";
    let mid = text[..text.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let day = s3.join("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/28");
    gzip(
        &[header.as_bytes(), &text[..mid]].concat(),
        &day.join("a_vpcflowlogs_us-east-1_fl-1_20261128T1000Z_x.log.gz"),
    );
    gzip(
        &[header.as_bytes(), &text[mid..]].concat(),
        &day.join("a_vpcflowlogs_us-east-1_fl-1_20261128T1100Z_y.log.gz"),
    );
    let r = ok_json(&["analyze", s(&s3), "--format", "json", "--no-progress"]);
    assert_eq!(totals(&r), totals(&plain));
    assert_eq!(r["input"]["headers"], 2);
    assert_eq!(r["input"]["malformed"], plain["input"]["malformed"]);

    // CloudWatch Logs export: timestamp before each record, a permission probe beside the data.
    let export = f.dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(export.join("aws-logs-write-test"), "Permission Check Successful").unwrap();
    let stamped: String = String::from_utf8(text.clone())
        .unwrap()
        .lines()
        .map(|l| format!("2026-11-28T10:00:00.000Z {l}\n"))
        .collect();
    gzip(
        stamped.as_bytes(),
        &export.join("0f2a/eni-0aaaaaaaaaaaaaaa1-all/000000.gz"),
    );
    let r = ok_json(&["analyze", s(&export), "--format", "json", "--no-progress"]);
    assert_eq!(totals(&r), totals(&plain));
    assert_eq!(r["input"]["lines"], plain["input"]["lines"]);
}

#[test]
fn custom_field_order_is_read_with_fields() {
    let f = fixture();
    let plain = ok_json(&["analyze", s(&f.records), "--format", "json", "--no-progress"]);
    // The same records with the columns reversed.
    let reversed: String = std::fs::read_to_string(&f.records)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').rev().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let path = f.dir.path().join("reversed.log");
    std::fs::write(&path, reversed).unwrap();
    let fields: Vec<&str> = natflow::format::RECORDER_FIELDS.iter().rev().copied().collect();
    let spec = fields.iter().map(|f| format!("${{{f}}}")).collect::<Vec<_>>().join(" ");
    let r = ok_json(&[
        "analyze",
        s(&path),
        "--fields",
        &spec,
        "--format",
        "json",
        "--no-progress",
    ]);
    assert_eq!(totals(&r), totals(&plain));
}

#[test]
fn text_report_names_talkers_services_and_cross_az() {
    let f = fixture();
    let out = natflow(&[
        "analyze",
        s(&f.records),
        "--inventory",
        s(&f.inventory),
        "--no-progress",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Top talkers"), "{text}");
    assert!(text.contains("(host-"), "inventory names: {text}");
    assert!(text.contains("gateway VPC endpoint for S3 is free"), "{text}");
    assert!(text.contains("Cross-AZ: ") && text.contains("use1-az"), "{text}");
    assert!(text.contains("prices us-east-1"), "{text}");
}

#[test]
fn unreadable_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // (arguments, exit status, message): 3 for input that cannot be read, 2 for usage errors.
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["analyze".into(), dir.path().join("nope.log").display().to_string()],
            3,
            "cannot read",
        ),
        (vec!["analyze".into()], 2, "nothing to read"),
        (
            vec![
                "analyze".into(),
                "-".into(),
                "--fields".into(),
                "version srcadr dstaddr bytes".into(),
            ],
            2,
            "unknown field \"srcadr\"",
        ),
        (
            vec![
                "analyze".into(),
                "-".into(),
                "--fields".into(),
                "version srcaddr dstaddr bytes".into(),
            ],
            2,
            "NAT's own addresses are needed",
        ),
        (
            vec!["analyze".into(), "--log-group".into(), "g".into()],
            2,
            "--log-group needs --start and --end",
        ),
    ];
    for (args, code, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = natflow(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // A corrupt .gz: right magic, broken stream.
    let bad = dir.path().join("broken.log.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    let out = natflow(&["analyze", s(&bad), "--no-progress"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.log.gz: skipped, not valid gzip"), "{err}");
    // An inventory that is not one.
    let inv = dir.path().join("inv.json");
    std::fs::write(&inv, "{\"interface_id\": 1}\n").unwrap();
    let out = natflow(&["analyze", "-", "--inventory", s(&inv)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inventory: line 1"));
}

fn natflow_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bare()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("natflow runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn gzip_bytes(text: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

#[test]
fn input_without_a_single_record_is_an_error_saying_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.log"), "").unwrap();
    let noise: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1) // no NUL: invalid UTF-8 only
        .collect();
    std::fs::write(d.join("random.bin"), &noise).unwrap();
    std::fs::write(d.join("doc.json"), "{\"NetworkInterfaces\": []}\n").unwrap();
    std::fs::write(d.join("notes.txt"), "hello world\nsecond line\n").unwrap();
    std::fs::create_dir(d.join("nothing")).unwrap();
    for (name, want) in [
        ("empty.log", "empty.log: it is empty"),
        ("random.bin", "random.bin: binary data"),
        ("doc.json", "doc.json: a JSON document"),
        (
            "notes.txt",
            "notes.txt: 2 line(s), none a record of the recorder format",
        ),
        ("nothing", "nothing: the directory holds no file"),
    ] {
        let out = natflow(&["analyze", s(&d.join(name)), "--no-progress"]);
        assert_eq!(out.status.code(), Some(1), "{name}: nothing to report");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no flow-log record in"), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no report");
    }
    // gzip on stdin, and JSON on stdin.
    let out = natflow_stdin(&["analyze", "-"], &gzip_bytes(b"5 1 eni-1 10.0.0.1\n"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no flow-log record in stdin: gzip-compressed data"),
        "{err}"
    );
    let out = natflow_stdin(&["analyze", "-"], b"[1, 2, 3]");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin: a JSON document"));
}

#[test]
fn a_directory_with_damaged_files_says_which_were_skipped_and_why() {
    let f = fixture();
    let text = std::fs::read(&f.records).unwrap();
    let dir = f.dir.path().join("mixed");
    gzip(&text, &dir.join("good.log.gz"));
    let gz = gzip_bytes(&text);
    std::fs::write(dir.join("cut.log.gz"), &gz[..gz.len() / 2]).unwrap();
    std::fs::write(dir.join("inventory.json"), "{\"NetworkInterfaces\": []}\n").unwrap();
    let r = ok_json(&["analyze", s(&dir), "--format", "json", "--no-progress"]);
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("cut.log.gz (truncated"), "{warnings}");
    assert!(!warnings.contains("give plain files"), "{warnings}");
    assert!(
        warnings.contains("hold no flow-log record") && warnings.contains("inventory.json"),
        "{warnings}"
    );
    // The good file is all there; the cut one adds only complete records.
    assert!(r["upload_bytes"].as_u64().unwrap() >= f.truth["upload_bytes"].as_u64().unwrap());
    let out = natflow(&["analyze", s(&dir), "--no-progress"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARNING: ") && text.contains("cut.log.gz (truncated"),
        "{text}"
    );
}

#[test]
fn text_report_shows_malformed_lines_and_no_endpoint_for_ec2_ranges() {
    let f = fixture();
    let out = natflow(&["analyze", s(&f.records), "--no-progress"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Malformed lines (first 3):"), "{text}");
    assert!(text.contains("this is not a flow log record"), "{text}");
    let ec2 = text
        .lines()
        .find(|l| l.trim_start().starts_with("EC2: "))
        .expect("EC2 traffic listed");
    assert!(ec2.contains("no VPC endpoint carries this"), "{ec2}");
    assert!(!text.contains("interface VPC endpoint"), "{text}");
}

/// Records of a zonal NAT, the regional NAT, and an EKS node's pod traffic, in one file.
fn mixed_input(dir: &Path) -> (PathBuf, PathBuf, Truth, Truth) {
    let scenario = Scenario::new(12, 9);
    let mut buf = Vec::new();
    let zonal = {
        let mut w = Writer::new(&mut buf, &scenario, 51);
        w.fill(200_000).unwrap();
        let node_az = scenario.hosts[1].az_id.clone();
        for k in 0..30u64 {
            let pod = std::net::Ipv4Addr::new(10, 0, 200, 10 + (k % 5) as u8);
            w.flow_from(pod, &node_az, (k % 9) as usize, 0, 70_000, 800_000)
                .unwrap();
            w.node_rows(1, pod, (k % 9) as usize, 70_000, 800_000).unwrap();
        }
        w.truth
    };
    let regional = {
        let mut w = Writer::new(&mut buf, &scenario, 53);
        w.regional = true;
        w.fill(150_000).unwrap();
        w.truth
    };
    let records = dir.join("vpc.log");
    std::fs::write(&records, &buf).unwrap();
    let inventory = dir.join("inv.jsonl");
    let inv: String = scenario
        .inventory()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(&inventory, inv).unwrap();
    (records, inventory, zonal, regional)
}

fn up_down(r: &Value) -> (u64, u64) {
    (
        r["upload_bytes"].as_u64().unwrap(),
        r["download_bytes"].as_u64().unwrap(),
    )
}

#[test]
fn vpc_wide_flow_logs_count_only_the_named_nat() {
    let dir = tempfile::tempdir().unwrap();
    let (records, inventory, zonal, regional) = mixed_input(dir.path());
    let base = ["analyze", s(&records), "--format", "json", "--no-progress"];

    // The zonal NAT, its interfaces from the inventory.
    let r = ok_json(&[&base[..], &["--inventory", s(&inventory), "--nat-gateway", ZONAL_NAT]].concat());
    assert_eq!(up_down(&r), (zonal.upload, zonal.download));
    assert_eq!(
        r["input"]["other_interfaces"].as_u64().unwrap(),
        zonal.other_records + 4 * regional.flows
    );
    assert!(r.get("warnings").is_none(), "{}", r["warnings"]);

    // The regional NAT, by its ID (resource-id).
    let r = ok_json(&[&base[..], &["--nat-gateway", REGIONAL_NAT]].concat());
    assert_eq!(up_down(&r), (regional.upload, regional.download));

    // The zonal NAT's private IPs select its records too.
    let r = ok_json(&[&base[..], &["--nat-ip", "10.0.0.10", "--nat-ip", "10.0.1.10"]].concat());
    assert_eq!(up_down(&r), (zonal.upload, zonal.download));

    // Nothing names the NAT: counted anyway, with a warning saying it cannot tell and how to fix it.
    let out = natflow(&["analyze", s(&records), "--no-progress"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cannot tell NAT traffic from other translated traffic"),
        "{text}"
    );
    assert!(text.contains("--nat-gateway"), "{text}");

    // A NAT ID that is not one.
    let out = natflow(&["analyze", s(&records), "--nat-gateway", "nat-xyz", "--no-progress"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a NAT Gateway ID"));
}

/// What a test shows of a run: exit status, stdout, stderr.
fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let out = c.output().expect("natflow runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_status_says_report_nothing_usage_or_input_error() {
    let f = fixture();
    let rec = s(&f.records);
    // 0: a report.
    let (code, out, _) = run(bare().args(["analyze", rec, "--no-progress"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("Top talkers"), "{out}");
    // 1: records, but none of them the named NAT's: the report is printed and says why.
    let (code, out, _) = run(bare().args([
        "analyze",
        rec,
        "--nat-gateway",
        "nat-0000000000000000f",
        "--no-progress",
    ]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("No traffic through the NAT was found"), "{out}");
    // 1: no flow-log record at all.
    let empty = f.dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let (code, _, err) = run(bare().args(["analyze", s(&empty), "--no-progress"]));
    assert_eq!(code, Some(1), "{err}");
    // 2: usage errors, clap's and ours.
    for args in [
        vec!["analyze", rec, "--no-such-option"],
        vec!["analyze", rec, "--top", "many"],
        vec!["analyze", rec, "--region", "eu-nort-1"],
        vec!["frobnicate"],
    ] {
        let (code, _, err) = run(bare().args(&args));
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
    // 3: an input file that is not what it should be.
    let prices = f.dir.path().join("prices.json");
    std::fs::write(&prices, "{\"us-east-1\": {\"nat_per_gb\": \"cheap\"}}").unwrap();
    let (code, _, err) = run(bare().args(["analyze", rec, "--prices", s(&prices), "--no-progress"]));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("price table: region us-east-1"), "{err}");
}

/// The region of a JSON report's prices.
fn priced_region(c: &mut Command) -> String {
    let (code, out, err) = run(c);
    assert_eq!(code, Some(0), "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    r["prices"]["region"].as_str().unwrap().to_string()
}

#[test]
fn region_is_picked_as_the_aws_cli_does_and_unknown_names_are_refused() {
    let f = fixture();
    let config = f.dir.path().join("aws-config");
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-3\n[profile other]\nregion = ap-south-1\n",
    )
    .unwrap();
    let args = ["analyze", s(&f.records), "--format", "json", "--no-progress"];
    let cmd = || {
        let mut c = bare();
        c.args(args).env("AWS_CONFIG_FILE", &config);
        c
    };
    assert_eq!(priced_region(&mut cmd()), "eu-west-3", "the profile's region");
    assert_eq!(priced_region(cmd().env("AWS_PROFILE", "other")), "ap-south-1");
    assert_eq!(priced_region(cmd().env("AWS_DEFAULT_REGION", "us-west-1")), "us-west-1");
    assert_eq!(
        priced_region(
            cmd()
                .env("AWS_DEFAULT_REGION", "us-west-1")
                .env("AWS_REGION", "us-east-2")
        ),
        "us-east-2"
    );
    assert_eq!(
        priced_region(cmd().env("AWS_REGION", "us-east-2").args(["--region", "eu-north-1"])),
        "eu-north-1"
    );
    // Nothing set: files are priced as us-east-1.
    assert_eq!(priced_region(bare().args(args)), "us-east-1");
    // A misspelt name is refused wherever it comes from, and the message says where to look.
    let (code, _, err) = run(bare().args(args).args(["--region", "eu-nort-1"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--region \"eu-nort-1\" is not an AWS Region") && err.contains("AWS_REGIONS"),
        "{err}"
    );
    let (code, _, err) = run(bare().args(args).env("AWS_REGION", "mars-1"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("AWS_REGION \"mars-1\" is not an AWS Region"), "{err}");
}

#[test]
fn top_zero_lists_none_and_a_partial_price_override_merges() {
    let f = fixture();
    let (code, out, err) = run(bare().args(["analyze", s(&f.records), "--top", "0", "--no-progress"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("No traffic"), "{out}");
    assert!(out.contains("Talkers: none listed"), "{out}");
    let prices = f.dir.path().join("prices.json");
    std::fs::write(&prices, "{\"eu-west-1\": {\"nat_per_gb\": 0.048}}").unwrap();
    let r = ok_json(&[
        "analyze",
        s(&f.records),
        "--prices",
        s(&prices),
        "--region",
        "eu-west-1",
        "--format",
        "json",
        "--no-progress",
    ]);
    assert_eq!(r["prices"]["nat_per_gb"], 0.048);
    assert_eq!(r["prices"]["cross_az_per_gb"], 0.02, "the rest from the built-in table");
    assert_eq!(
        r["prices"]["source"],
        "eu-west-1 (nat_per_gb given; the rest us-east-1's)"
    );
}

/// A CloudWatch Logs endpoint on loopback that answers every request with one error, as the
/// service does: HTTP 400 and the code as `__type` in an awsJson1.1 body (CloudWatch Logs API
/// reference, "Common Errors"; FilterLogEvents "Errors"). Returns its URL and a request counter.
fn failing_endpoint(
    code: &'static str,
    message: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, Ordering::SeqCst);
            let payload = format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}");
            let _ = write!(
                conn,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: \
                 00000000-0000-0000-0000-000000000000\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (url, count)
}

/// `analyze --log-group` with test credentials against `endpoint`.
fn log_group_run(endpoint: &str) -> (Option<i32>, String, String) {
    run(bare()
        .args([
            "analyze",
            "--log-group",
            "/natrec/test/flow-logs",
            "--start",
            "0",
            "--end",
            "60",
        ])
        .args(["--region", "eu-west-1", "--no-progress"])
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_ENDPOINT_URL", endpoint))
}

/// One line, exit status 3, no Rust debug output.
fn one_actionable_line(code: Option<i32>, err: &str) {
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for debug in ["ConnectorError", "Some(", "{ ", "DispatchFailure", "ServiceError"] {
        assert!(!err.contains(debug), "debug output {debug:?}: {err}");
    }
}

#[test]
fn aws_errors_are_one_line_a_user_can_act_on() {
    // No region anywhere.
    let (code, _, err) = run(bare().args(["analyze", "--log-group", "g", "--start", "0", "--end", "60"]));
    one_actionable_line(code, &err);
    assert!(err.contains("no AWS region") && err.contains("--region"), "{err}");
    // No credentials anywhere (instance metadata disabled, no profile files).
    let (code, _, err) = run(bare().args([
        "analyze",
        "--log-group",
        "g",
        "--start",
        "0",
        "--end",
        "60",
        "--region",
        "eu-west-1",
    ]));
    one_actionable_line(code, &err);
    assert!(
        err.contains("no AWS credentials found") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, _, err) = log_group_run(&url);
    one_actionable_line(code, &err);
    assert!(err.contains("cannot reach CloudWatch Logs"), "{err}");
    // The service's refusals.
    for (aws_code, want) in [
        ("AccessDeniedException", "access denied"),
        ("ResourceNotFoundException", "the log group does not exist"),
        ("UnrecognizedClientException", "AWS rejected the credentials"),
        (
            "ThrottlingException",
            "throttled by CloudWatch Logs beyond the SDK's retries",
        ),
    ] {
        let (url, requests) = failing_endpoint(aws_code, "refused by the test endpoint");
        let (code, _, err) = log_group_run(&url);
        one_actionable_line(code, &err);
        assert!(
            err.starts_with("natflow: FilterLogEvents on /natrec/test/flow-logs in eu-west-1: ") && err.contains(want),
            "{aws_code}: {err}"
        );
        let n = requests.load(std::sync::atomic::Ordering::SeqCst);
        if aws_code == "ThrottlingException" {
            assert!(n > 1, "the SDK retried a throttled call ({n} requests)");
        } else {
            assert!(n >= 1);
        }
    }
}

#[test]
fn log_group_options_with_files_are_a_usage_error() {
    let f = fixture();
    let rec = s(&f.records);
    for (extra, named) in [
        (vec!["--start", "2026-11-28T10:00:00Z"], "--start goes"),
        (vec!["--end", "60"], "--end goes"),
        (vec!["--streams", "eni-0123456789abcdef0"], "--streams goes"),
        (vec!["--start", "0", "--end", "60"], "--start, --end go"),
    ] {
        let (code, out, err) = run(bare().args(["analyze", rec, "--no-progress"]).args(&extra));
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(named) && err.contains("with --log-group only"),
            "{extra:?}: {err}"
        );
        assert!(out.is_empty(), "{extra:?}: no report: {out}");
    }
    // Without any input either: the misplaced option is what is wrong.
    let (code, _, err) = run(bare().args(["analyze", "--start", "0"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--start goes with --log-group only"), "{err}");
}

#[test]
fn an_option_file_that_cannot_be_read_is_named_by_its_option() {
    let f = fixture();
    let missing = f.dir.path().join("nonexistent.json");
    for option in ["--inventory", "--ip-ranges", "--prices"] {
        let (code, out, err) = run(bare().args(["analyze", s(&f.records), "--no-progress", option, s(&missing)]));
        assert_eq!(code, Some(3), "{option}: {err}");
        let want = format!("natflow: {option} {}: cannot read: ", missing.display());
        assert!(err.starts_with(&want), "{option}: {err}");
        assert!(err.contains("No such file"), "{option}: {err}");
        assert!(out.is_empty(), "{option}: {out}");
    }
}

#[test]
fn a_profile_that_does_not_exist_is_named_not_reported_as_missing_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-1\n[profile dev]\nregion = eu-west-3\n",
    )
    .unwrap();
    std::fs::write(
        &credentials,
        "[ci]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n",
    )
    .unwrap();
    // A loopback endpoint that would refuse the call: the run must not get that far.
    let (url, requests) = failing_endpoint("AccessDeniedException", "refused by the test endpoint");
    let cmd = |profile: &str| {
        let mut c = bare();
        c.args(["analyze", "--log-group", "g", "--start", "0", "--end", "60"])
            .args(["--region", "us-east-1", "--no-progress"])
            .env("HOME", dir.path())
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_ENDPOINT_URL", &url)
            .env("AWS_PROFILE", profile);
        c
    };
    let (code, _, err) = run(&mut cmd("nope"));
    one_actionable_line(code, &err);
    assert!(
        err.contains(&format!(
            "AWS_PROFILE \"nope\": no such profile in {} or {} (their profiles: ci, default, dev)",
            config.display(),
            credentials.display()
        )),
        "{err}"
    );
    assert!(!err.contains("no AWS credentials found"), "{err}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0, "no call made");
    // A profile of either file goes on to the call (here refused by the endpoint).
    for profile in ["ci", "dev"] {
        let (code, _, err) = run(&mut cmd(profile));
        assert_eq!(code, Some(3), "{profile}: {err}");
        assert!(!err.contains("no such profile"), "{profile}: {err}");
    }
    // ci has credentials: its call reached the endpoint.
    assert!(requests.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // No files at all: says so.
    let (code, _, err) = run(bare()
        .args([
            "analyze",
            "--log-group",
            "g",
            "--start",
            "0",
            "--end",
            "60",
            "--region",
            "us-east-1",
        ])
        .env("AWS_PROFILE", "nope"));
    one_actionable_line(code, &err);
    assert!(
        err.contains("AWS_PROFILE \"nope\": no such profile") && err.contains("(neither file exists)"),
        "{err}"
    );
}

#[test]
fn no_arguments_at_all_is_a_usage_error() {
    let (code, out, err) = run(&mut bare());
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("Usage: natflow"), "{err}");
    assert!(err.contains("analyze") && err.contains("generate"), "{err}");
}
