#!/usr/bin/env python3
"""Benchmark: natflow's top-talkers aggregation vs DuckDB on the same generated flow-log file.

Run from the repository root (not a test; results go to docs/benchmarks.md):
    .venv/bin/pip install duckdb==1.4.1
    .venv/bin/python tests/bench/natflow_vs_duckdb.py [--sizes-mb 256,1024,2048] [--repeat 3]

For each size: generate the file (natflow generate: NAT double rows, NODATA/SKIPDATA/REJECT
rows; no malformed lines, which DuckDB would not validate), run natflow with 1 thread and with
all cores, DuckDB with 1 thread and with all cores, each in its own process (wall time, peak RSS
from wait4), and check that both produce the same top 100 talkers and the same totals. The
file is read once before timing so both start from a warm page cache.

natflow is built without the `aws` feature into its own target directory, target/bench
(CARGO_TARGET_DIR): the user's target/release/natflow is never rebuilt or replaced.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Its own target directory: the benchmark builds natflow without the `aws` feature (files only), and
# must never replace the user's target/release/natflow (which reads --log-group) with that build.
BENCH_TARGET = ROOT / "target" / "bench"
NATFLOW = BENCH_TARGET / "release" / "natflow"
DOC = ROOT / "docs" / "benchmarks.md"
TOP = 100

FIELDS = ["version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
          "packets", "bytes", "start", "end", "action", "log_status", "vpc_id", "subnet_id", "az_id",
          "flow_direction", "traffic_path", "pkt_srcaddr", "pkt_dstaddr", "pkt_src_aws_service",
          "pkt_dst_aws_service", "tcp_flags", "type", "resource_id"]

# The same attribution natflow does: only translated rows, each flow counted once, upload where
# the destination was translated, download where the source was.
DUCKDB_SQL = """
WITH r AS (
  SELECT * FROM read_csv('{path}', delim=' ', header=false, quote='', escape='', ignore_errors=true,
                         columns={{{columns}}})
), t AS (
  SELECT CASE WHEN dstaddr <> pkt_dstaddr THEN pkt_srcaddr ELSE pkt_dstaddr END AS src,
         CASE WHEN dstaddr <> pkt_dstaddr THEN pkt_dstaddr ELSE pkt_srcaddr END AS dst,
         CASE WHEN dstaddr <> pkt_dstaddr THEN TRY_CAST(bytes AS UBIGINT) ELSE 0 END AS up,
         CASE WHEN dstaddr <> pkt_dstaddr THEN 0 ELSE TRY_CAST(bytes AS UBIGINT) END AS down
  FROM r
  WHERE log_status = 'OK' AND action = 'ACCEPT' AND pkt_srcaddr <> '-' AND pkt_dstaddr <> '-'
    AND (dstaddr <> pkt_dstaddr OR srcaddr <> pkt_srcaddr) AND TRY_CAST(bytes AS UBIGINT) IS NOT NULL
), g AS (
  SELECT src, dst, sum(up)::UBIGINT AS up, sum(down)::UBIGINT AS down FROM t GROUP BY src, dst
)
SELECT (SELECT sum(up)::UBIGINT FROM g), (SELECT sum(down)::UBIGINT FROM g), (SELECT count(*) FROM g),
       (SELECT list({{'src': src, 'dst': dst, 'bytes': up + down}} ORDER BY up + down DESC, src, dst)
          FROM (SELECT * FROM g ORDER BY up + down DESC, src, dst LIMIT {top}))
"""

DUCKDB_RUNNER = """
import json, sys, duckdb
con = duckdb.connect()
con.execute("SET threads TO " + sys.argv[1])
con.execute("SET enable_progress_bar = false")
row = con.execute(sys.stdin.read()).fetchone()
print(json.dumps({"upload": row[0], "download": row[1], "talkers": row[2],
                  "top": [[t["src"], t["dst"], t["bytes"]] for t in row[3]]}))
"""


def run(cmd, stdin=None):
    """(seconds, peak RSS MiB, stdout) of one process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    if stdin:
        p.stdin.write(stdin.encode())
        p.stdin.close()
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{cmd[0]} failed: {err.decode()[-2000:]}")
    return secs, usage.ru_maxrss / 1024, out


def natflow_result(out: bytes) -> dict:
    r = json.loads(out)
    top = sorted(([t["source"]["ip"], t["destination"]["ip"], t["bytes"]] for t in r["talkers"]),
                 key=lambda x: (-x[2], x[0], x[1]))
    return {"upload": r["upload_bytes"], "download": r["download_bytes"], "talkers": r["distinct_talkers"],
            "top": top}


def best(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    secs = min(r[0] for r in runs)
    return secs, max(r[1] for r in runs), runs[0][2], statistics.median(r[0] for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes-mb", default="256,1024,2048")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write the generated files (default: a temp dir)")
    ap.add_argument("--hosts", type=int, default=1000, help="VPC hosts in the generated traffic")
    ap.add_argument("--remotes", type=int, default=100, help="far ends in the generated traffic")
    args = ap.parse_args()
    import duckdb  # noqa: F401  (fail early if missing)
    duck_version = duckdb.__version__

    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "natflow-cli", "--no-default-features"],
                   cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(BENCH_TARGET)})
    cores = os.cpu_count()
    work = Path(args.dir or tempfile.mkdtemp(prefix="natflow-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for mb in (int(x) for x in args.sizes_mb.split(",")):
        path = work / f"flows-{mb}mb-{args.hosts}x{args.remotes}.log"
        if not path.exists():
            subprocess.run([str(NATFLOW), "generate", "--bytes", str(mb << 20), "--hosts", str(args.hosts),
                            "--remotes", str(args.remotes), "--seed", "42", "--no-malformed", "-o", str(path)],
                           check=True)
        size = path.stat().st_size
        with open(path, "rb") as f:  # warm the page cache for both tools alike
            while f.read(1 << 24):
                pass
        sql = DUCKDB_SQL.format(path=path, columns=", ".join(f"'{c}': 'VARCHAR'" for c in FIELDS), top=TOP)
        res = {}
        for threads in (1, cores):
            res[("natflow", threads)] = best(lambda: run(
                [str(NATFLOW), "analyze", str(path), "--format", "json", "--top", str(TOP), "--no-progress",
                 "--threads", str(threads)]), args.repeat)
            res[("duckdb", threads)] = best(lambda: run(
                [sys.executable, "-c", DUCKDB_RUNNER, str(threads)], stdin=sql), args.repeat)
        nf = natflow_result(res[("natflow", cores)][2])
        dd = json.loads(res[("duckdb", cores)][2])
        equal = nf == dd
        if not equal:
            print("MISMATCH", json.dumps(nf)[:500], json.dumps(dd)[:500], file=sys.stderr)
        for threads in (1, cores):
            n, d = res[("natflow", threads)], res[("duckdb", threads)]
            rows.append({"mb": size / 2**20, "threads": threads, "natflow_s": n[0], "duckdb_s": d[0],
                         "ratio": d[0] / n[0], "natflow_mbps_core": size / 2**20 / n[0] / threads,
                         "duckdb_mbps_core": size / 2**20 / d[0] / threads,
                         "natflow_rss": n[1], "duckdb_rss": d[1], "equal": equal, "talkers": nf["talkers"]})
        print(json.dumps(rows[-2:]), flush=True)
        path.unlink()

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    tag = f"{args.hosts}x{args.remotes}"
    lines = [
        f"<!-- natflow-vs-duckdb-{tag}:start (written by tests/bench/natflow_vs_duckdb.py) -->",
        f"## natflow vs DuckDB: top talkers, {args.hosts:,} VPC hosts x {args.remotes:,} remotes",
        "",
        f"Run {time.strftime('%Y-%m-%d')} on {cores} cores ({cpu}), {platform.system()} {platform.release()}; "
        f"DuckDB {duck_version}; best of {args.repeat} runs, each tool in its own process, warm page cache. "
        f"The file is `natflow generate` output in the recorder's format ({args.hosts:,} VPC hosts, {args.remotes:,} remotes, "
        "each flow written as a NAT writes it: four rows, two translated; NODATA/SKIPDATA/REJECT rows mixed in). "
        f"Both compute bytes per (source, destination) counted once, the totals and the top {TOP}; "
        "\"equal\" means both gave exactly the same totals, talker count and top list.",
        "",
        "| file MB | threads | natflow s | DuckDB s | DuckDB/natflow | natflow MB/s per core | DuckDB MB/s per core | natflow peak MB | DuckDB peak MB | distinct talkers | equal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|",
    ]
    for r in rows:
        lines.append(f"| {r['mb']:.0f} | {r['threads']} | {r['natflow_s']:.2f} | {r['duckdb_s']:.2f} | "
                     f"{r['ratio']:.2f}x | {r['natflow_mbps_core']:.0f} | {r['duckdb_mbps_core']:.0f} | "
                     f"{r['natflow_rss']:.0f} | {r['duckdb_rss']:.0f} | {r['talkers']} | {'yes' if r['equal'] else 'NO'} |")
    lines += ["", "Reproduce: `.venv/bin/pip install duckdb==" + duck_version + " && .venv/bin/python "
              f"tests/bench/natflow_vs_duckdb.py --hosts {args.hosts} --remotes {args.remotes}`.",
              f"<!-- natflow-vs-duckdb-{tag}:end -->"]
    section = "\n".join(lines) + "\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nMeasured on this project's CI machine kind; scripts in `tests/bench/`.\n\n"
    start, end = f"<!-- natflow-vs-duckdb-{tag}:start", f"<!-- natflow-vs-duckdb-{tag}:end -->"
    if start in text:
        a = text.index(start)
        b = text.index(end) + len(end) + 1
        text = text[:a] + section + text[b:]
    else:
        text += section
    DOC.write_text(text)
    print(section)
    if not all(r["equal"] for r in rows):
        sys.exit("results differ")


if __name__ == "__main__":
    main()
