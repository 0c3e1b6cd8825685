import logging
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.stack import ROOT, Emulator, Recorder, load_template  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)

TARGET = Path(os.environ.get("NATREC_BIN_DIR", ROOT / "target" / "debug"))


@pytest.fixture(scope="session")
def template():
    return load_template()


@pytest.fixture(scope="session")
def emulator():
    missing = [b for b in ("start-recording", "park-token", "resume-recording", "finish-recording", "sweep-orphans", "build-report", "natflow",
                                  "alarms-macro")
               if not (TARGET / b).exists()]
    if missing:
        pytest.fail(f"build the functions first (cargo build --workspace): missing {missing} in {TARGET}")
    emu = Emulator(Path(tempfile.mkdtemp(prefix="natrec-logs-")))
    yield emu
    emu.close()


@pytest.fixture(scope="session")
def recorder_host(emulator, template):
    rec = Recorder(emulator, template, TARGET, concurrency=int(os.environ.get("NATREC_CONCURRENCY", "2")))
    yield rec
    rec.close()


@pytest.fixture
def recorder(recorder_host, emulator):
    """A freshly deployed recorder in a reset emulator; function settings back to defaults."""
    emulator.reset()
    emulator.router.insights.reset()  # the test bed's Logs Insights: queries, faults, limits
    for logical_id, host in recorder_host.hosts.items():
        wanted = recorder_host.function_env(logical_id)
        if host.env != wanted:
            host.env = {}
            host.restart(**wanted)
    recorder_host.deploy()
    yield recorder_host


def pytest_terminal_summary(terminalreporter):
    from tests import test_faults
    if test_faults.SUMMARY["scenarios"]:
        terminalreporter.write_line(test_faults.pytest_summary_line())
