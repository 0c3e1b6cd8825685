"""`make demo`, as a new user sees it: one run of tests/demo.py (the recorder in the emulator, with
staged traffic), its output checked for the facts a reader needs, not for wording."""
import re
import subprocess
import sys

from tests.conftest import TARGET
from tests.harness.stack import ROOT

ACCESS_LOG = re.compile(r'127\.0\.0\.1 - - \[|"(GET|POST|PUT|DELETE|HEAD) /\S* HTTP/1\.[01]"')


def test_demo_notice_names_the_top_talker_and_the_emulator_log_stays_in_its_file(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "demo.py"), "--logs", str(tmp_path),
                          "--bin-dir", str(TARGET)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    # The emulator's HTTP access log goes to the file the demo names, never to the terminal.
    assert not ACCESS_LOG.search(out) and not ACCESS_LOG.search(run.stderr), run.stderr[-2000:]
    log = tmp_path / "emulator.log"
    assert ACCESS_LOG.search(log.read_text()) and str(log) in out.splitlines()[-1]
    notice = out[out.index("Subject:"):]
    lines = notice.splitlines()
    # The top talker is named from the inventory snapshot (the Lambda's ENI description).
    first = next(line for line in lines if re.match(r"\s+1\. ", line))
    assert "Lambda thumbnailer" in first and "S3" in first, first
    assert any("(build-runner)" in line for line in lines)  # an instance by its Name tag
    # A non-zero total, GB-scale as staged (4.4 GB of flows).
    assert re.search(r"\b4\.4\d* GB\b", notice) and "0 B (0 B" not in notice
    # S3 without a gateway endpoint: the service line with the advice; DynamoDB as AWS writes it.
    assert any("S3" in line and "endpoint" in line for line in lines)
    assert "DynamoDB" in notice
    assert "prod-egress-a" in notice  # the NAT by its Name tag
    # README "Demo and tests" shows this run's subject.
    subject = lines[0].strip()
    assert f"\n  {subject}\n" in (ROOT / "README.md").read_text(), subject
    # The ECS task in another AZ: a line naming its AZ and the NAT's.
    assert any(len(set(re.findall(r"us-east-1[a-f]", line))) == 2 for line in lines), notice
