"""`hearth rotate`: newsyslog.conf parsing, when-specs, the rotation sequence, and
rotation of logs that live processes are writing (no line may be lost)."""
from __future__ import annotations

import bz2
import fcntl
import gzip
import io
import lzma
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import zstandard

from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus
from services.rc.newsyslog import Entry, decide, format_entry, list_archives, parse_conf
from services.rc.rotate import rotate_all
from services.rc.when import parse_when

REPO = Path(__file__).resolve().parent.parent
TURNED_OVER = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ newsyslog\[\d+\]: logfile turned over$")
HUP = int(signal.SIGHUP)


def write_conf(tmp_path: Path, *lines: str) -> Path:
    conf = tmp_path / "newsyslog.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def decompress(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".bz2":
        return bz2.decompress(data)
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".zst":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def history(log: Path) -> list[str]:
    """Every line of the archives (oldest first) and then the live log, minus
    newsyslog's own lines. Each file must end on a whole line."""
    files = [a.path for a in sorted(list_archives(log), key=lambda a: -a.number)] + [log]
    lines = []
    for path in files:
        text = decompress(path).decode()
        assert text == "" or text.endswith("\n"), f"{path.name} ends with a torn line"
        lines += [line for line in text.splitlines() if not TURNED_OVER.match(line)]
    return lines


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# --- parser ----------------------------------------------------------------------

def test_parse_every_field_form(tmp_path):
    conf = write_conf(
        tmp_path,
        "# logfilename  [owner:group]  mode count size when flags [/pid_file] [sig_num]",
        "",
        "/var/log/a.log   root:wheel  640  7  100  *      JC  /var/run/a.pid  SIGUSR1",
        "b.log            hearth:     0600 3  *    24     Z         # trailing comment",
        "c.log            :staff      644  0  1M   @T00   -",
        "d.log                        640  5  *    $W0D23 pB  run/d.pid  15",
        "e.log                        640  5  10K  *",
        "   f.log   640 1 * 12@T00 Y /run/f.pid hup",
        "g.log 640 2 * $ML xe /run/g.pid",
    )
    assert parse_conf(conf) == [
        Entry("/var/log/a.log", "root", "wheel", 0o640, 7, 100, None, "JC", "/var/run/a.pid", int(signal.SIGUSR1)),
        Entry("b.log", "hearth", None, 0o600, 3, None, "24", "Z", None, HUP),
        Entry("c.log", None, "staff", 0o644, 0, 1024, "@T00", "", None, HUP),
        Entry("d.log", None, None, 0o640, 5, None, "$W0D23", "pB", "run/d.pid", 15),
        Entry("e.log", None, None, 0o640, 5, 10, None, "", None, HUP),
        Entry("f.log", None, None, 0o640, 1, None, "12@T00", "Y", "/run/f.pid", HUP),
        Entry("g.log", None, None, 0o640, 2, None, "$ML", "XE", "/run/g.pid", HUP),
    ]
    assert parse_conf(conf)[1].where == f"{conf}:4"


def test_format_entry_round_trips(tmp_path):
    entries = parse_conf(write_conf(
        tmp_path,
        "/var/log/a.log root:wheel 640 7 100 * JC /var/run/a.pid SIGUSR1",
        "b.log hearth: 600 3 * 24 Z",
        "c.log :staff 644 0 * @T00",
        "d.log 640 5 * $W0D23 pB run/d.pid 15",
    ))
    lines = [format_entry(e) for e in entries]
    assert lines[0].split() == ["/var/log/a.log", "root:wheel", "640", "7", "100", "*", "JC",
                                "/var/run/a.pid", "SIGUSR1"]
    assert lines[1].index("600") == lines[3].index("640"), "columns are aligned"
    assert parse_conf(write_conf(tmp_path, *lines)) == entries


BAD_LINES = [
    ("a.log 64x 7 * *", "mode"),
    ("a.log 77777 7 * *", "mode"),
    ("a.log 0o640 7 * *", "mode"),
    ("a.log 640 seven * *", "count"),
    ("a.log 640 -1 * *", "count"),
    ("a.log 640 7 big *", "size"),
    ("a.log 640 7", "size"),
    ("a.log 640 7 *", "when"),
    ("a.log 640 7 * @T25", "when"),
    ("a.log 640 7 * @0230T", "when"),
    ("a.log 640 7 * $W7", "when"),
    ("a.log 640 7 * $Q1", "when"),
    ("a.log 640 7 * 0", "when"),
    ("a.log 640 7 * daily", "when"),
    ("a.log 640 7 * * ZQ", "flags"),
    ("a.log 640 7 * * G", "flags"),
    ("a.log 640 7 * * ZJ", "flags"),
    ("a.log 640 7 * * Z /run/a.pid SIGNOPE", "sig_num"),
    ("a.log 640 7 * * Z /run/a.pid 999", "sig_num"),
    ("a.log 640 7 * * Z a.pid", "pid file"),
    ("a.log 640 7 * * Z /run/a.pid HUP extra", "sig_num"),
    ("ok.log 640 7 * *", "logfile"),   # listed twice
]


@pytest.mark.parametrize("line,field", BAD_LINES)
def test_bad_line_names_file_line_and_field(tmp_path, line, field):
    conf = write_conf(tmp_path, "# hearth logs", "ok.log 640 7 * *", line)
    with pytest.raises(CommandError) as caught:
        parse_conf(conf)
    assert caught.value.status == ExitStatus.CONFIG == 2
    assert str(caught.value).startswith(f"{conf}:3: bad {field}:"), str(caught.value)


def test_bad_conf_changes_nothing(tmp_path):
    (tmp_path / "a.log").write_text("x\n")
    conf = write_conf(tmp_path, "a.log 640 7 * * Z", "b.log 640 7 * @T99")
    with pytest.raises(CommandError):
        rotate_all(conf, force=True)
    assert names(tmp_path) == {"a.log", "newsyslog.conf"}


# --- when-specs --------------------------------------------------------------------

D = datetime
WHEN_CASES = [
    # spec, now, last rotation, due?
    ("24", D(2026, 3, 5, 12), D(2026, 3, 4, 13), False),
    ("24", D(2026, 3, 5, 12), D(2026, 3, 4, 12), True),
    ("0.5", D(2026, 3, 5, 12), D(2026, 3, 5, 11, 40), False),
    ("24", D(2026, 3, 5, 12), None, True),
    ("@T00", D(2026, 3, 5, 0, 1), D(2026, 3, 4, 23, 59), True),
    ("@T00", D(2026, 3, 5, 23, 59), D(2026, 3, 5, 0, 1), False),
    ("@T00", D(2026, 3, 5, 0, 0), D(2026, 3, 4, 0, 0), True),     # the instant itself counts
    ("@T23", D(2026, 3, 5, 22, 59), D(2026, 3, 4, 23, 30), False),
    ("@0101T", D(2026, 1, 1, 0, 5), D(2025, 12, 31, 23), True),
    ("@0101T", D(2026, 12, 31, 23), D(2026, 1, 1, 0, 5), False),
    ("@0229T", D(2027, 3, 1), D(2024, 3, 1), False),              # next 29 Feb is in 2028
    ("@19990122T000000", D(2026, 3, 5), D(1998, 1, 1), True),     # a one-off instant
    ("@20990122T", D(2026, 3, 5), None, False),                   # … still to come
    ("$D0", D(2026, 3, 5, 0, 1), D(2026, 3, 4, 23, 59), True),
    ("$D0", D(2026, 3, 5, 12), D(2026, 3, 5, 0, 0), False),
    ("$W0D23", D(2026, 3, 1, 23, 30), D(2026, 3, 1, 22), True),   # 1 March 2026 is a Sunday
    ("$W0D23", D(2026, 3, 1, 22, 59), D(2026, 2, 28), False),     # last instant: 22 Feb 23:00
    ("$W0D23", D(2026, 3, 7, 12), D(2026, 2, 22, 22, 59), True),
    ("$M1D0", D(2026, 3, 1, 0, 0), D(2026, 2, 28), True),
    ("$M1D0", D(2026, 3, 31, 23), D(2026, 3, 1, 0, 0, 1), False),
    ("$ML", D(2026, 2, 28, 0, 1), D(2026, 2, 27), True),
    ("$ML", D(2026, 2, 27, 23, 59), D(2026, 2, 1), False),        # last instant: 31 Jan
    ("$ML", D(2024, 2, 29, 0, 10), D(2024, 2, 28, 12), True),     # leap year
    ("$MLD23", D(2026, 4, 30, 22), D(2026, 4, 1), False),
    ("12@T00", D(2026, 3, 5, 0, 30), D(2026, 3, 4, 23), False),   # instant passed, 12 h not
    ("12@T00", D(2026, 3, 5, 0, 30), D(2026, 3, 4, 11), True),
]


@pytest.mark.parametrize("spec,now,last,due", WHEN_CASES)
def test_when_spec(spec, now, last, due):
    assert parse_when(spec).is_due(now, last) is due


def test_decide_reads_last_rotation_from_newest_archive(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("x\n")
    old = tmp_path / "a.log.1.gz"
    old.write_bytes(b"")
    os.utime(old, (D(2030, 1, 1).timestamp(),) * 2)
    newest = tmp_path / "a.log.0.gz"
    newest.write_bytes(b"")
    entry = Entry("a.log", None, None, 0o640, 7, None, "@T00", "Z")
    os.utime(newest, (D(2030, 6, 14, 23).timestamp(),) * 2)
    assert decide(entry, log, D(2030, 6, 15, 0, 30)).action == "rotate"
    os.utime(newest, (D(2030, 6, 15, 0, 10).timestamp(),) * 2)
    assert decide(entry, log, D(2030, 6, 15, 0, 30)).action == "skip"
    interval = Entry("a.log", None, None, 0o640, 7, None, "1", "Z")
    assert decide(interval, log, D(2030, 6, 15, 1, 9)).action == "skip"
    assert decide(interval, log, D(2030, 6, 15, 1, 11)).action == "rotate"


def test_decide_without_archive_uses_the_logs_birth(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("x\n")
    os.utime(log, (time.time() - 3 * 86400,) * 2)   # an old mtime must not matter
    entry = Entry("a.log", None, None, 0o640, 7, None, "@T00", "")
    now = datetime.now()
    assert decide(entry, log, now).action == "skip"   # created after today's midnight
    assert decide(entry, log, now + timedelta(days=1)).action == "rotate"


def test_size_trigger(tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b"x" * 2047)
    entry = Entry("a.log", None, None, 0o640, 7, 2, None, "")
    assert decide(entry, log, datetime.now()).action == "skip"
    log.write_bytes(b"x" * 2048)
    assert decide(entry, log, datetime.now()).reason == "size 2 KB >= 2 KB"


def test_rotation_stamps_the_archive_so_it_is_not_due_again(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("last written two days ago\n")
    os.utime(log, (time.time() - 2 * 86400,) * 2)
    conf = write_conf(tmp_path, "a.log 640 7 * @T00 BZ")
    assert rotate_all(conf, force=True) == [str(log)]
    assert rotate_all(conf) == []
    assert decide(parse_conf(conf)[0], log, datetime.now()).action == "skip"


# --- the rotation sequence ----------------------------------------------------------

def test_prune_and_shift_keep_suffixes(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("current\n")
    for name, text in {"a.log.0": "zero\n", "a.log.9": "nine\n"}.items():
        (tmp_path / name).write_text(text)
    packed = {"a.log.1.gz": ("one\n", gzip.compress), "a.log.2.bz2": ("two\n", bz2.compress),
              "a.log.3.xz": ("three\n", lzma.compress), "a.log.4.zst": ("four\n", zstandard.compress),
              "a.log.5.gz": ("five\n", gzip.compress)}
    for name, (text, pack) in packed.items():
        (tmp_path / name).write_bytes(pack(text.encode()))
    (tmp_path / "a.log.tar").write_text("not an archive")
    (tmp_path / ".a.log.0.gz.tmp-999").write_text("a crashed run's temp file")
    conf = write_conf(tmp_path, "a.log 640 4 * * ZB")
    assert rotate_all(conf, force=True) == [str(log)]
    assert names(tmp_path) == {"a.log", "a.log.0.gz", "a.log.1.gz", "a.log.2.gz", "a.log.3.bz2",
                               "a.log.tar", "newsyslog.conf", "newsyslog.conf.lock"}
    assert [decompress(tmp_path / n) for n in ("a.log.0.gz", "a.log.1.gz", "a.log.2.gz", "a.log.3.bz2")] \
        == [b"current\n", b"zero\n", b"one\n", b"two\n"]
    assert log.read_bytes() == b""


@pytest.mark.parametrize("flag,suffix,tool", [("Z", ".gz", "gzip"), ("J", ".bz2", "bzip2"),
                                              ("X", ".xz", "xz"), ("Y", ".zst", "zstd")])
def test_compression_round_trips(tmp_path, flag, suffix, tool):
    data = os.urandom(100_000) + b"\n".join(b"line %d" % i for i in range(20_000))
    log = tmp_path / "a.log"
    log.write_bytes(data)
    conf = write_conf(tmp_path, f"a.log 604 3 * * {flag}B")
    rotate_all(conf, force=True)
    archive = tmp_path / f"a.log.0{suffix}"
    assert decompress(archive) == data
    if shutil.which(tool):
        assert subprocess.run([tool, "-dc", str(archive)], capture_output=True, check=True).stdout == data
    assert not (tmp_path / "a.log.0").exists()
    assert [n for n in names(tmp_path) if "tmp" in n] == []


def test_p_keeps_0_plain_and_compresses_it_as_1_with_its_mtime_and_mode(tmp_path):
    log = tmp_path / "a.log"
    conf = write_conf(tmp_path, "a.log 640 5 * * pZB")
    log.write_text("first\n")
    rotate_all(conf, force=True)
    assert (tmp_path / "a.log.0").read_text() == "first\n"
    assert not (tmp_path / "a.log.0.gz").exists()
    os.chmod(tmp_path / "a.log.0", 0o604)
    os.utime(tmp_path / "a.log.0", (1_000_000_000, 1_000_000_000))
    log.write_text("second\n")
    rotate_all(conf, force=True)
    assert (tmp_path / "a.log.0").read_text() == "second\n"
    assert decompress(tmp_path / "a.log.1.gz") == b"first\n"
    assert not (tmp_path / "a.log.1").exists()
    st = os.stat(tmp_path / "a.log.1.gz")
    assert st.st_mtime == 1_000_000_000
    assert st.st_mode & 0o777 == 0o604


def test_count_zero_keeps_no_archive(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("gone\n")
    (tmp_path / "a.log.0.gz").write_bytes(gzip.compress(b"old\n"))
    conf = write_conf(tmp_path, "a.log 640 0 * * ZB")
    rotate_all(conf, force=True)
    assert names(tmp_path) == {"a.log", "newsyslog.conf", "newsyslog.conf.lock"}
    assert log.read_bytes() == b""


def test_c_creates_a_missing_log(tmp_path):
    conf = write_conf(tmp_path, "a.log 604 3 * * C", "b.log 640 3 * *")
    assert rotate_all(conf, force=True) == []
    assert (tmp_path / "a.log").read_bytes() == b""
    assert os.stat(tmp_path / "a.log").st_mode & 0o777 == 0o604
    assert not (tmp_path / "b.log").exists()


def test_e_skips_an_empty_log_even_when_forced(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "full.log").write_bytes(b"")
    conf = write_conf(tmp_path, "empty.log 640 3 * * E", "full.log 640 3 * *")
    assert rotate_all(conf, force=True) == [str(tmp_path / "full.log")]
    assert not (tmp_path / "empty.log.0").exists()


def test_b_leaves_the_new_log_empty_otherwise_turned_over_line(tmp_path):
    (tmp_path / "text.log").write_text("x\n")
    (tmp_path / "binary.log").write_text("x\n")
    conf = write_conf(tmp_path, "text.log 640 3 * *", "binary.log 640 3 * * B")
    rotate_all(conf, force=True)
    assert (tmp_path / "binary.log").read_bytes() == b""
    [line] = (tmp_path / "text.log").read_text().splitlines()
    assert TURNED_OVER.match(line), line
    assert f"newsyslog[{os.getpid()}]" in line


def test_new_log_gets_mode(tmp_path):
    (tmp_path / "a.log").write_text("x\n")
    os.chmod(tmp_path / "a.log", 0o666)
    conf = write_conf(tmp_path, "a.log 0620 3 * *")
    rotate_all(conf, force=True)
    assert os.stat(tmp_path / "a.log").st_mode & 0o7777 == 0o620


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away (chown)")
def test_new_log_gets_owner_when_root(tmp_path):
    (tmp_path / "a.log").write_text("x\n")
    (tmp_path / "b.log").write_text("x\n")
    conf = write_conf(tmp_path, "a.log 4242:4343 640 3 * *", "b.log nosuchuser-hearth:4343 640 3 * *")
    with pytest.raises(CommandError, match="no such user 'nosuchuser-hearth'"):
        rotate_all(conf, force=True)
    st = os.stat(tmp_path / "a.log")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (4242, 4343, 0o640)
    assert not (tmp_path / "b.log.0").exists(), "a bad owner stops the entry before anything moves"


def test_dry_run_changes_nothing(tmp_path, capsys):
    (tmp_path / "a.log").write_text("x\n")
    (tmp_path / "a.log.0.gz").write_bytes(gzip.compress(b"old\n"))
    conf = write_conf(tmp_path, "a.log 640 1 * * Z ./a.pid", "b.log 640 1 * * C")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert rotate_all(conf, force=True, dry_run=True) == [str(tmp_path / "a.log")]
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == before
    out = capsys.readouterr().out
    assert "would rotate" in out and f"rm {tmp_path}/a.log.0.gz" in out and "would create" in out


def test_only_named_logs(tmp_path):
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_text("x\n")
    conf = write_conf(tmp_path, "a.log 640 3 * *", "b.log 640 3 * *")
    assert rotate_all(conf, force=True, only=["b.log"]) == [str(tmp_path / "b.log")]
    assert not (tmp_path / "a.log.0").exists()
    with pytest.raises(CommandError) as caught:
        rotate_all(conf, force=True, only=["c.log"])
    assert caught.value.status == ExitStatus.CONFIG


def test_missing_pid_file_is_logged_not_fatal(tmp_path, caplog):
    (tmp_path / "a.log").write_text("x\n")
    (tmp_path / "stale.pid").write_text("999999999\n")
    (tmp_path / "b.log").write_text("x\n")
    conf = write_conf(tmp_path, "a.log 640 3 * * Z run/missing.pid", "b.log 640 3 * * Z ./stale.pid")
    assert len(rotate_all(conf, force=True)) == 2
    assert "pid file missing" in caplog.text and "stale pid file" in caplog.text
    assert (tmp_path / "a.log.0.gz").exists() and (tmp_path / "b.log.0.gz").exists()


ROTATE_IN_CHILD = "import sys; from services.rc.rotate import rotate_all; rotate_all(sys.argv[1], force=True)"


def test_concurrent_runs_are_serialised_by_the_conf_lock(tmp_path):
    (tmp_path / "a.log").write_text("x\n")
    conf = write_conf(tmp_path, "a.log 640 3 * *")
    with open(f"{conf}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        other = subprocess.Popen([sys.executable, "-c", ROTATE_IN_CHILD, str(conf)], cwd=REPO)
        time.sleep(1.0)
        assert other.poll() is None, "the second run must wait for the lock"
        assert not (tmp_path / "a.log.0").exists()
    assert other.wait(timeout=10) == 0
    assert (tmp_path / "a.log.0").exists()


# --- live processes: signal, quiescence, the periodic runner ------------------------

# A daemon that appends numbered lines and reopens its log on SIGHUP, but only
# after `delay` seconds: a slow daemon, still writing to the archive meanwhile.
SLOW_REOPENER = textwrap.dedent("""
    import os, signal, sys, time
    log, pidfile, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    reopen_at, stop = None, False
    def on_hup(*_):
        global reopen_at
        if reopen_at is None:
            reopen_at = time.monotonic() + delay
    def on_term(*_):
        global stop
        stop = True
    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    out = open(log, "a", buffering=1)
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\\n")
    os.rename(pidfile + ".tmp", pidfile)
    n = 0
    while not stop:
        out.write(f"line {n:07d}\\n")
        n += 1
        if reopen_at is not None and time.monotonic() >= reopen_at:
            out.close()
            out = open(log, "a", buffering=1)
            reopen_at = None
        if n % 20 == 0:
            time.sleep(0.001)
    out.close()
    print(n)
""")


def size(path: Path) -> int:
    """The file's size, or -1 while it does not exist (mid-rotation)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_signalled_daemon_is_quiesced_before_compression(tmp_path):
    log, pidfile = tmp_path / "a.log", tmp_path / "a.pid"
    conf = write_conf(tmp_path, f"a.log 640 20 * * Z {pidfile}")
    child = subprocess.Popen([sys.executable, "-c", SLOW_REOPENER, str(log), str(pidfile), "0.3"],
                             stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: pidfile.exists() and size(log) > 10_000, what="the writer to start")
        for _ in range(3):
            started = time.monotonic()
            assert rotate_all(conf, force=True) == [str(log)]
            assert time.monotonic() - started >= 0.3, "rotate must wait for the daemon to reopen"
            time.sleep(0.4)
    finally:
        child.send_signal(signal.SIGTERM)
        written = int(child.communicate(timeout=10)[0])
    assert child.returncode == 0
    assert written > 5000
    assert history(log) == [f"line {n:07d}" for n in range(written)]
    assert sorted(names(tmp_path) - {"a.log", "a.pid", "newsyslog.conf", "newsyslog.conf.lock"}) == \
        ["a.log.0.gz", "a.log.1.gz", "a.log.2.gz"]


def rotate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", "rotate", *args]


def test_runner_rotates_periodically_and_exits_0_on_sigterm(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("x\n")
    conf = write_conf(tmp_path, "a.log 640 50 1 * BZ")
    runner = subprocess.Popen(rotate_command("-f", str(conf), "--every", "0.1"), cwd=REPO,
                              stderr=subprocess.PIPE, text=True)
    try:
        for i in range(3):
            log.write_text("y" * 2000 + "\n")
            wait_for(lambda: size(log) == 0, what=f"rotation {i}")
    finally:
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=10)
    assert runner.returncode == 0, err
    assert len(list_archives(log)) == 3
    assert "rotating (size 1 KB >= 1 KB)" in err


def test_cli_bad_conf_exits_2_with_one_line(tmp_path):
    conf = write_conf(tmp_path, "a.log 640 7 * * Q")
    done = subprocess.run(rotate_command("-f", str(conf)), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"hearth: {conf}:1: bad flags: unknown flag 'Q' in 'Q'"]


# --- acceptance: the test -------------------------------------------------------

# Prints `rate` numbered lines a second for `seconds` to stdout, in small batches.
PRINTER = textwrap.dedent("""
    import sys, time
    rate, seconds = int(sys.argv[1]), float(sys.argv[2])
    total, n, start = int(rate * seconds), 0, time.monotonic()
    while n < total:
        upto = min(total, max(n + 1, int((time.monotonic() - start) * rate)))
        sys.stdout.write("".join(f"seq {i:08d} the quick brown fox\\n" for i in range(n, upto)))
        sys.stdout.flush()
        n = upto
        time.sleep(0.005)
""")


PAYLOAD = re.compile(r"seq \d{8} the quick brown fox")


@pytest.mark.timeout(120)
def test_no_line_lost_under_rotation(tmp_path):
    """Acceptance: 20,000 lines/s for 10 s under the daemon wrapper, rotated every
    second by `hearth rotate --every 1`: every line survives exactly once, in order."""
    log, wrapper_pid, child_pid = tmp_path / "printer.log", tmp_path / "wrapper.pid", tmp_path / "child.pid"
    conf = write_conf(tmp_path, f"printer.log 640 1000 1 * Z {wrapper_pid} SIGHUP")
    rate, seconds = 20_000, 10
    daemon = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "daemon", "-P", str(wrapper_pid), "-p", str(child_pid),
         "-o", str(log), "-H", "--foreground", "--",
         sys.executable, "-c", PRINTER, str(rate), str(seconds)], cwd=REPO)
    runner = subprocess.Popen(rotate_command("-f", str(conf), "--every", "1"), cwd=REPO,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert daemon.wait(timeout=seconds + 30) == 0
    finally:
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
        if daemon.poll() is None:
            daemon.kill()
    assert runner.returncode == 0, err
    archives = list_archives(log)
    assert len(archives) >= seconds // 2, f"expected about a rotation a second, got {len(archives)}"
    assert all(a.suffix == ".gz" for a in archives), [a.path.name for a in archives]
    everything = history(log)
    lines = [line for line in everything if PAYLOAD.fullmatch(line)]
    others = [line for line in everything if not PAYLOAD.fullmatch(line)]   # the wrapper's own lines
    assert not [line for line in others if "seq " in line or "brown fox" in line], "torn or merged lines"
    expected = [f"seq {i:08d} the quick brown fox" for i in range(rate * seconds)]
    assert len(lines) == len(expected)
    assert lines == expected
