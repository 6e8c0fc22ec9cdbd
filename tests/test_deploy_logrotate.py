"""deploy/logrotate.conf, run by the real logrotate(8) against a live wrapper: no line lost."""
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_rotate import PAYLOAD, PRINTER

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not shutil.which("logrotate") or os.geteuid() != 0,
                                reason="needs logrotate(8) (Debian package logrotate) and root, as in production")


def test_shipped_logrotate_conf_rotates_a_live_wrapper_without_losing_lines(tmp_path):
    var = tmp_path / "var"
    (var / "log").mkdir(parents=True)
    (var / "run").mkdir()
    shipped = (REPO / "deploy" / "logrotate.conf").read_text()
    assert "copytruncate" not in re.sub(r"#.*", "", shipped)
    # Same file, pointed at this test's data directory; the hearth group doesn't exist here.
    conf = tmp_path / "logrotate.conf"
    conf.write_text(shipped.replace("/var/db/hearth", str(var)).replace("root hearth", "root root"))
    log = var / "log" / "printer.log"
    rate, seconds = 5_000, 3
    daemon = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "daemon", "-P", str(var / "run" / "printer.pid"),
         "-p", str(var / "run" / "printer.child.pid"), "-o", str(log), "-H", "--foreground", "--",
         sys.executable, "-c", PRINTER, str(rate), str(seconds)], cwd=REPO)
    try:
        for _ in range(4):
            time.sleep(0.6)
            # notifempty/missingok skip an empty or missing log: under load the
            # child may not have written yet; wait for it, not for the clock.
            deadline = time.monotonic() + 20
            while not (log.exists() and log.stat().st_size) and time.monotonic() < deadline:
                time.sleep(0.05)
            result = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
                                    capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
        assert daemon.wait(timeout=seconds + 30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    archives = sorted(var.glob("log/printer.log.*"), key=lambda p: -int(p.name.split(".")[2]))
    assert [p.name for p in archives] == ["printer.log.4.gz", "printer.log.3.gz", "printer.log.2.gz", "printer.log.1"]
    lines = []
    for path in [*archives, log]:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines += [line for line in data.decode().splitlines() if PAYLOAD.fullmatch(line)]
    assert lines == [f"seq {i:08d} the quick brown fox" for i in range(rate * seconds)]
