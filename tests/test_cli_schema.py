"""The JSON report against its documented shape, docs/report.schema.json.

The schema is strict (no key it does not name), so a renamed or added key fails here until the schema
and, for a rename or removal, `schema_version` follow. Real output: the debug `natflow` binary on
generated records (`natflow generate`: NAT double rows, AWS services, cross-AZ sources, malformed
lines), in the recorder's format with an inventory, and in AWS's default format (no packet
addresses: the `destinations` list). The recorder's stored report is checked in test_report.py with
`validate_report` from here.
"""
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import TARGET

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
NATFLOW = TARGET / "natflow"
# AWS's default format, version 2: the first 14 fields of the recorder's.
DEFAULT_FIELDS = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
                  "action log-status")


def validate_report(report: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    if not NATFLOW.exists():
        pytest.fail(f"build natflow first (cargo build --workspace): missing {NATFLOW}")
    d = tmp_path_factory.mktemp("schema")
    subprocess.run([str(NATFLOW), "generate", "--bytes", "300000", "--hosts", "12", "--remotes", "10", "--seed", "3",
                    "-o", str(d / "records.log"), "--inventory-output", str(d / "inv.jsonl")],
                   check=True, capture_output=True)
    return d


def analyze(*args) -> dict:
    out = subprocess.run([str(NATFLOW), "analyze", *map(str, args), "--format", "json", "--no-progress"],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_json_report_matches_its_schema(generated):
    r = analyze(generated / "records.log", "--inventory", generated / "inv.jsonl", "--top", "5")
    validate_report(r)
    # What the schema covers is in the output: talkers, the rest, services, cross-AZ flows, examples.
    assert r["schema_version"] == 1
    assert len(r["talkers"]) == 5 and r["others"]["talkers"] == r["distinct_talkers"] - 5
    assert r["services"] and r["cross_az"]["flows"] and r["input"]["malformed_examples"]
    assert r["talkers"][0]["source"]["tags"] or any(t["source"].get("tags") for t in r["talkers"])


def test_default_format_report_with_destinations_matches_its_schema(generated):
    lines = (generated / "records.log").read_text().splitlines()
    (generated / "v2.log").write_text("".join(" ".join(l.split(" ")[:14]) + "\n" for l in lines))
    r = analyze(generated / "v2.log", "--fields", DEFAULT_FIELDS, "--inventory", generated / "inv.jsonl")
    validate_report(r)
    assert r["destinations"], "the default format lists destinations apart"


def test_report_with_dns_names_matches_its_schema(generated):
    """With Route 53 Resolver query logs (natflow generate --dns-output): hostnames on the destinations,
    the dns section with its domains; a misspelt hostnames_from is refused."""
    d = generated
    subprocess.run([str(NATFLOW), "generate", "--bytes", "300000", "--hosts", "12", "--remotes", "10", "--seed", "3",
                    "-o", str(d / "records-dns.log"), "--dns-output", str(d / "dns.log")],
                   check=True, capture_output=True)
    r = analyze(d / "records-dns.log", "--inventory", d / "inv.jsonl", "--dns", d / "dns.log", "--top", "50")
    validate_report(r)
    assert r["dns"]["domains"] and r["dns"]["input"]["malformed"] == 2
    named = [t["destination"] for t in r["talkers"] if "hostnames" in t["destination"]]
    assert named and {n["hostnames_from"] for n in named} == {"source", "other-hosts"}
    # The synth names include Docker Hub hosts: advice for them, in the documented shape.
    assert "docker-hub" in {a["key"] for a in r["destination_advice"]}
    named[0]["hostnames_from"] = "another-host"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(r)


def test_the_schema_refuses_a_renamed_key(generated):
    """The check can fail: the old `others.upload` name is not the documented shape."""
    r = analyze(generated / "records.log", "--top", "1")
    r["others"]["upload"] = r["others"].pop("upload_bytes")
    with pytest.raises(jsonschema.ValidationError):
        validate_report(r)


def test_benchmark_scripts_never_build_into_the_users_target_directory():
    """Every `cargo build` in tests/bench/ sets CARGO_TARGET_DIR (target/bench): a benchmark's release
    build (natflow without `aws`, the Lambdas) must never replace the user's target/release binaries.
    Read from the scripts' source (benchmarks are not run in CI)."""
    import ast

    builds = []
    for script in sorted((ROOT / "tests" / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List)):
                continue
            words = [e.value for e in node.args[0].elts if isinstance(e, ast.Constant)]
            if words[:2] != ["cargo", "build"]:
                continue
            env = next((k.value for k in node.keywords if k.arg == "env"), None)
            builds.append((script.name, env is not None and "CARGO_TARGET_DIR" in ast.unparse(env)))
    assert {name for name, _ in builds} >= {"lambdas.py", "natflow_vs_duckdb.py"}, builds
    assert all(ok for _, ok in builds), f"a cargo build without CARGO_TARGET_DIR: {builds}"
