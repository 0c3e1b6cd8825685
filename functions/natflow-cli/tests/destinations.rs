//! `natflow analyze --destinations FILE`: the catalogue of well-known destinations overridden
//! and extended (layout of functions/natflow/destinations.json), for the destinations `--dns`
//! names; a bad file is refused before anything is read, naming the entry.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn natflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_natflow"))
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/nonexistent/natflow-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/natflow-test/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .output()
        .expect("natflow runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generated records and the query logs that go with them: the synth names include
/// `registry-<n>.docker.io` (Docker Hub) and `cdn-<n>.example.co.uk` (nobody's).
fn generated(dir: &Path) {
    let out = natflow(&[
        "generate",
        "--bytes",
        "300000",
        "--hosts",
        "12",
        "--remotes",
        "10",
        "--seed",
        "3",
        "-o",
        s(&dir.join("records.log")),
        "--inventory-output",
        s(&dir.join("inv.jsonl")),
        "--dns-output",
        s(&dir.join("dns.log")),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn analyze(dir: &Path, extra: &[&str]) -> Output {
    let (records, inventory, dns) = (dir.join("records.log"), dir.join("inv.jsonl"), dir.join("dns.log"));
    let mut args = vec![
        "analyze",
        s(&records),
        "--inventory",
        s(&inventory),
        "--dns",
        s(&dns),
        "--top",
        "50",
        "--region",
        "eu-west-1",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    natflow(&args)
}

fn advice_keys(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    r["destination_advice"]
        .as_array()
        .map(|a| a.iter().map(|d| d["key"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn an_override_file_removes_and_adds_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(d);
    // The built-in catalogue: Docker Hub advised (in the VPC's Region), example.co.uk not.
    let built_in = analyze(d, &["--format", "json"]);
    assert!(advice_keys(&built_in).contains(&"docker-hub".to_string()));
    let text = String::from_utf8(analyze(d, &[]).stdout).unwrap();
    assert!(text.contains(".docker.io (Docker Hub)"), "{text}");
    assert!(text.contains("--ecr-repository-prefix docker-hub"), "{text}");
    assert!(text.contains("pull through cache in eu-west-1"), "{text}");
    assert!(!text.contains("(Example CDN)"), "{text}");

    let file = d.join("destinations.json");
    std::fs::write(
        &file,
        r#"{"_comment": "ours",
            "destinations": {
              "docker-hub": null,
              "example-cdn": {"name": "Example CDN", "class": "package-registry", "patterns": ["example.co.uk"],
                              "advice": "Mirror it in {region}.", "sources": ["our wiki"]}}}"#,
    )
    .unwrap();
    let over = analyze(d, &["--format", "json", "--destinations", s(&file)]);
    let keys = advice_keys(&over);
    assert!(keys.contains(&"example-cdn".to_string()), "{keys:?}");
    assert!(!keys.contains(&"docker-hub".to_string()), "{keys:?}");
    let text = String::from_utf8(analyze(d, &["--destinations", s(&file)]).stdout).unwrap();
    assert!(text.contains(".example.co.uk (Example CDN)"), "{text}");
    assert!(text.contains("\n       Mirror it in eu-west-1.\n"), "{text}");
    assert!(!text.contains("Docker Hub"), "{text}");
}

#[test]
fn a_bad_destinations_file_is_refused_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(d);
    let file = d.join("destinations.json");
    std::fs::write(
        &file,
        r#"{"destinations": {"mirror": {"name": "M", "class": "package-registry", "patterns": ["Example.com"],
            "advice": "x", "sources": []}}}"#,
    )
    .unwrap();
    let out = analyze(d, &["--destinations", s(&file)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--destinations: destinations file, destinations entry \"mirror\": pattern \"Example.com\""),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // A file that is not there: the option and the path.
    let out = analyze(d, &["--destinations", s(&d.join("missing.json"))]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--destinations "));
}
