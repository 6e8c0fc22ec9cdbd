"""rc.d scripts and the portable rc.subr, run by real shells with real processes.

A throwaway rc.d script (same shape as ours) whose command is a small Python
daemon drives rc.subr through its verbs; hearth_api, hearth_front and
hearth_rotate are driven with a stand-in for `hearth` that behaves like
`hearth daemon`, so these tests do not depend on the real wrapper.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RC_D = ROOT / "rc.d"
RC_SUBR = RC_D / "rc.subr"
SCRIPTS = sorted(p for p in RC_D.iterdir() if p.is_file() and p.name != "rc.subr")
SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]

# Detaches, writes its pid file, records SIGHUP, exits (removing the pid file) on SIGTERM.
FAKE_DAEMON = f"""#!{sys.executable}
import os, signal, sys, time
pidfile, hupfile = sys.argv[1], sys.argv[2]
pid = os.fork()
if pid:  # exit 0 once the pid file names the detached process
    for _ in range(200):
        if os.path.exists(pidfile) and open(pidfile).read().split() == [str(pid)]:
            sys.exit(0)
        time.sleep(0.02)
    sys.exit(1)
os.setsid()
with open(os.path.join(os.environ["FAKE_DIR"], "started.pids"), "a") as f:
    f.write(f"{{os.getpid()}}\\n")
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
def hup(*_):
    with open(hupfile, "a") as f:
        f.write("HUP\\n")
def term(*_):
    os.unlink(pidfile)
    os._exit(0)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
with open(pidfile + ".tmp", "w") as f:
    f.write(f"{{os.getpid()}}\\n")
os.rename(pidfile + ".tmp", pidfile)
while True:
    signal.pause()
"""

# Our rc.d scripts' shape, with the fake daemon as command.
FAKE_SCRIPT = """#!/bin/sh
#
# PROVIDE: hearth_fake
# REQUIRE: LOGIN
# KEYWORD: shutdown
#
. "${RC_SUBR:-/etc/rc.subr}"

name="hearth_fake"
rcvar="hearth_fake_enable"
desc="stand-in daemon"

load_rc_config "$name"

: "${hearth_fake_enable:=NO}"
: "${hearth_var:=/nonexistent}"

pidfile="${hearth_var}/run/fake.pid"
command="FAKE_DAEMON"
command_interpreter="PYTHON"
command_args="${pidfile} ${hearth_var}/hup.log"
extra_commands="reload"
start_precmd="hearth_fake_prestart"

hearth_fake_prestart()
{
	[ -z "${FAKE_PRECMD_FAIL}" ] && mkdir -p "${hearth_var}/run"
}

run_rc_command "$1"
"""

# Stands in for `hearth`: with "daemon" it is the wrapper (detaches, -P and -p
# pid files, runs the command after "--", titles itself as the real wrapper
# does, SIGTERM stops it), otherwise it is the child. Each records SIGHUP in
# $FAKE_DIR; the wrapper records its argv, and writes its pid files once the
# child can take a SIGHUP.
FAKE_HEARTH = f"""#!{sys.executable}
import json, os, signal, subprocess, sys, time
from setproctitle import setproctitle
argv, out = sys.argv[1:], os.environ["FAKE_DIR"]
def record(name, line):
    with open(os.path.join(out, name), "a") as f:
        f.write(line + "\\n")
if "daemon" not in argv:
    record("started.pids", str(os.getpid()))
    signal.signal(signal.SIGHUP, lambda *_: record(f"{{os.getpid()}}.hup", "HUP"))
    record(f"{{os.getpid()}}.ready", "")
    while True:
        signal.pause()
pidfile, child_pidfile = argv[argv.index("-P") + 1], argv[argv.index("-p") + 1]
title = argv[argv.index("-t") + 1]
pid = os.fork()
if pid:  # exit 0 once the pid file names the detached process
    for _ in range(200):
        if os.path.exists(pidfile) and open(pidfile).read().split() == [str(pid)]:
            sys.exit(0)
        time.sleep(0.02)
    sys.exit(1)
os.setsid()
record("started.pids", str(os.getpid()))
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
with open(os.path.join(out, title + ".argv.json"), "w") as f:
    json.dump(argv, f)
child = subprocess.Popen(argv[argv.index("--") + 1:])
setproctitle(f"hearth: {{title}}[{{child.pid}}] (daemon)")
while not os.path.exists(os.path.join(out, f"{{child.pid}}.ready")):
    time.sleep(0.01)
def term(*_):
    child.terminate()
    child.wait()
    os.unlink(child_pidfile)
    os.unlink(pidfile)
    os._exit(0)
signal.signal(signal.SIGHUP, lambda *_: record(title + ".wrapper.hup", "HUP"))
signal.signal(signal.SIGTERM, term)
for path, pid in ((child_pidfile, child.pid), (pidfile, os.getpid())):
    with open(path + ".tmp", "w") as f:
        f.write(f"{{pid}}\\n")
    os.rename(path + ".tmp", path)
while True:
    signal.pause()
"""


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def text_of(path: Path, timeout: float = 5) -> str:
    """The file's text once it has a whole line (a signal handler writes it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            break
        time.sleep(0.02)
    return path.read_text() if path.exists() else ""


def read_pid(path: Path) -> int:
    return int(path.read_text().split()[0])


class Rc:
    """Runs rc.d scripts with a shell, RC_SUBR pointing at ours and RC_CONF in tmp."""

    def __init__(self, tmp: Path, shell: str = "sh"):
        self.tmp, self.shell = tmp, shell
        self.var = tmp / "var"
        self.rc_conf = tmp / "rc.conf"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RC_SUBR": str(RC_SUBR),
            "RC_CONF": str(self.rc_conf),
            "RC_CONF_DIR": str(tmp / "rc.conf.d"),
            "FAKE_DIR": str(tmp),
        }

    def conf(self, **values: str | None) -> None:
        self.rc_conf.write_text("".join(f'{k}="{v}"\n' for k, v in values.items() if v is not None))

    def __call__(self, script: Path, verb: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.shell, str(script), verb], env={**self.env, **env},
                              capture_output=True, text=True, timeout=30)

    def cleanup(self) -> None:
        """Kill what a failed test left running: the fakes list their pids."""
        started = self.tmp / "started.pids"
        for pid in map(int, started.read_text().split() if started.exists() else ()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def fake(tmp_path, request):
    """(rc, script): the throwaway rc.d script and a runner for it."""
    shell = getattr(request, "param", "sh")
    daemon = tmp_path / "fake_daemon"
    daemon.write_text(FAKE_DAEMON)
    daemon.chmod(0o755)
    script = tmp_path / "hearth_fake"
    script.write_text(FAKE_SCRIPT.replace("FAKE_DAEMON", str(daemon))
                      .replace("PYTHON", sys.executable))
    rc = Rc(tmp_path, shell)
    yield rc, script
    rc.cleanup()


# -- every script in rc.d ---------------------------------------------------

@pytest.mark.parametrize("shell", ["sh", *SHELLS])
@pytest.mark.parametrize("path", [*SCRIPTS, RC_SUBR], ids=lambda p: p.name)
def test_scripts_parse_in_every_shell(path, shell):
    done = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not shutil.which("checkbashisms"), reason="checkbashisms not installed")
def test_no_bashisms():
    done = subprocess.run(["checkbashisms", "-f", str(RC_SUBR), *map(str, SCRIPTS)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_have_the_freebsd_shape(path):
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert os.access(path, os.X_OK)
    header = dict(re.findall(r"^# (PROVIDE|REQUIRE|KEYWORD): *(.*)$", text, re.M))
    assert header.keys() == {"PROVIDE", "REQUIRE", "KEYWORD"}
    assert header["PROVIDE"].split() == [path.name]
    assert "shutdown" in header["KEYWORD"].split()
    assert '\n. "${RC_SUBR:-/etc/rc.subr}"\n' in text
    assert f'\nname="{path.name}"\n' in text
    assert f'\nrcvar="{path.name}_enable"\n' in text
    assert '\nload_rc_config "$name"\n' in text
    assert text.rstrip().endswith('run_rc_command "$1"')


# -- rc.subr's functions ----------------------------------------------------

@pytest.mark.parametrize("shell", SHELLS)
def test_checkyesno_truth_table(shell):
    values = ["YES", "yes", "Yes", "TRUE", "true", "ON", "on", "1",
              "NO", "no", "No", "FALSE", "false", "OFF", "off", "0", "", "maybe", "2", "yes "]
    program = '. "$RC_SUBR"\nfor v in "$@"; do x=$v; if checkyesno x; then echo "[$v]=0"; ' \
              'else echo "[$v]=1"; fi; done'
    done = subprocess.run([shell, "-c", program, "test", *values], env={"RC_SUBR": str(RC_SUBR)},
                          capture_output=True, text=True)
    results = dict(re.findall(r"^\[(.*)\]=(\d)$", done.stdout, re.M))
    assert results == {v: "0" if v in values[:8] else "1" for v in values}
    assert done.stderr.count("WARNING: $x is not set properly - see rc.conf(5).") == 4


@pytest.mark.parametrize("shell", SHELLS)
def test_load_rc_config_reads_rc_conf_then_rc_conf_d(tmp_path, shell):
    (tmp_path / "rc.conf").write_text('a="from rc.conf"\nb="from rc.conf"\n')
    (tmp_path / "rc.conf.d").mkdir()
    (tmp_path / "rc.conf.d" / "svc").write_text('b="from rc.conf.d"\n')
    program = '. "$RC_SUBR"\nload_rc_config svc\necho "$a|$b"\nload_rc_config other\necho "$b"'
    env = {"RC_SUBR": str(RC_SUBR), "RC_CONF": str(tmp_path / "rc.conf"),
           "RC_CONF_DIR": str(tmp_path / "rc.conf.d")}
    done = subprocess.run([shell, "-c", program], env=env, capture_output=True, text=True)
    assert done.stdout == "from rc.conf|from rc.conf.d\nfrom rc.conf.d\n", done.stderr
    env["RC_CONF"] = str(tmp_path / "missing")
    done = subprocess.run([shell, "-c", program], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "|from rc.conf.d\nfrom rc.conf.d\n", "")


def test_wait_for_pids_gives_up_after_rc_stop_timeout():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        done = subprocess.run(
            ["sh", "-c", f'. "$RC_SUBR"; name=svc; wait_for_pids {sleeper.pid}'],
            env={"RC_SUBR": str(RC_SUBR), "rc_stop_timeout": "1", "PATH": os.environ["PATH"]},
            capture_output=True, text=True, timeout=10)
        assert time.monotonic() - started < 5
        assert done.returncode == 1
        assert done.stdout == f"Waiting for PIDS: {sleeper.pid}.\n"
        assert f"svc: still running after 1s: {sleeper.pid}" in done.stderr
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


# -- run_rc_command, driving the throwaway script ----------------------------

@pytest.mark.parametrize("fake", SHELLS, indirect=True)
def test_lifecycle(fake):
    rc, script = fake
    rc.conf(hearth_fake_enable="YES", hearth_var=rc.var)
    pidfile = rc.var / "run" / "fake.pid"

    done = rc(script, "start")
    assert (done.returncode, done.stdout, done.stderr) == (0, "Starting hearth_fake.\n", "")
    pid = read_pid(pidfile)
    assert alive(pid)

    done = rc(script, "status")
    assert (done.returncode, done.stdout) == (0, f"hearth_fake is running as pid {pid}.\n")

    done = rc(script, "start")
    assert done.returncode == 1
    assert done.stderr == f"hearth_fake already running? (pid={pid}).\n"
    assert read_pid(pidfile) == pid

    done = rc(script, "reload")
    assert done.returncode == 0, done.stderr
    assert text_of(rc.var / "hup.log") == "HUP\n"
    assert alive(pid)

    done = rc(script, "restart")
    assert done.returncode == 0, done.stderr
    assert "Stopping hearth_fake.\n" in done.stdout and "Starting hearth_fake.\n" in done.stdout
    assert not alive(pid)
    pid = read_pid(pidfile)
    assert alive(pid)

    done = rc(script, "stop")
    assert done.returncode == 0, done.stderr
    assert done.stdout in ("Stopping hearth_fake.\n",
                           f"Stopping hearth_fake.\nWaiting for PIDS: {pid}.\n")
    assert not alive(pid) and not pidfile.exists()

    done = rc(script, "status")
    assert (done.returncode, done.stdout) == (1, "hearth_fake is not running.\n")

    done = rc(script, "stop")
    assert done.returncode == 1
    assert done.stderr == f"hearth_fake not running? (check {pidfile}).\n"


def test_stale_pid_file(fake):
    rc, script = fake
    rc.conf(hearth_fake_enable="YES", hearth_var=rc.var)
    pidfile = rc.var / "run" / "fake.pid"
    pidfile.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")

    done = rc(script, "status")
    assert (done.returncode, done.stdout) == \
        (1, f"hearth_fake is not running (stale pid file {pidfile}).\n")
    done = rc(script, "stop")
    assert done.returncode == 1 and "not running?" in done.stderr

    done = rc(script, "start")
    assert done.returncode == 0, done.stderr
    pid = read_pid(pidfile)
    assert pid != dead.pid and alive(pid)
    assert rc(script, "stop").returncode == 0


def test_pid_of_another_program_is_not_ours(fake):
    rc, script = fake
    rc.conf(hearth_fake_enable="YES", hearth_var=rc.var)
    pidfile = rc.var / "run" / "fake.pid"
    pidfile.parent.mkdir(parents=True)
    other = subprocess.Popen(["sleep", "30"])
    try:
        pidfile.write_text(f"{other.pid}\n")
        done = rc(script, "status")
        assert (done.returncode, done.stdout) == \
            (1, f"hearth_fake is not running (stale pid file {pidfile}).\n")
        assert rc(script, "stop").returncode == 1
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_not_enabled(fake):
    rc, script = fake
    rc.conf(hearth_var=rc.var)
    pidfile = rc.var / "run" / "fake.pid"

    done = rc(script, "start")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "Cannot 'start' hearth_fake. Set hearth_fake_enable to YES in "
        f"{rc.rc_conf} or use 'onestart' instead of 'start'.\n")
    assert not pidfile.exists()

    done = rc(script, "quietstart")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not pidfile.exists()

    done = rc(script, "enabled")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")

    done = rc(script, "onestart")
    assert (done.returncode, done.stdout) == (0, "Starting hearth_fake.\n"), done.stderr
    pid = read_pid(pidfile)
    done = rc(script, "status")          # status needs no enable
    assert (done.returncode, done.stdout) == (0, f"hearth_fake is running as pid {pid}.\n")
    done = rc(script, "stop")            # stop works on what is running
    assert done.returncode == 0, done.stderr
    assert not alive(pid)

    done = rc(script, "stop")
    assert done.returncode == 1 and "use 'onestop' instead of 'stop'" in done.stderr
    rc.conf(hearth_var=rc.var, hearth_fake_enable="yes")
    assert rc(script, "enabled").returncode == 0


def test_force_ignores_a_failing_precmd(fake):
    rc, script = fake
    rc.conf(hearth_fake_enable="YES", hearth_var=rc.var)
    (rc.var / "run").mkdir(parents=True)
    done = rc(script, "start", FAKE_PRECMD_FAIL="1")
    assert done.returncode == 1
    assert done.stderr == f"{script}: WARNING: failed precmd routine for hearth_fake\n"
    assert not (rc.var / "run" / "fake.pid").exists()
    done = rc(script, "forcestart", FAKE_PRECMD_FAIL="1")
    assert done.returncode == 0, done.stderr
    assert alive(read_pid(rc.var / "run" / "fake.pid"))
    assert rc(script, "forcestop").returncode == 0


def test_unknown_verb_prints_usage(fake):
    rc, script = fake
    for verb in ("bogus", ""):
        done = rc(script, verb)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.endswith(
            f"Usage: {script} [fast|force|one|quiet]"
            "(start|stop|restart|rcvar|enabled|describe|extracommands|reload|status|poll)\n")
    assert rc(script, "bogus").stderr.startswith(f"{script}: unknown directive 'bogus'.\n")


def test_rcvar_and_describe(fake):
    rc, script = fake
    rc.conf(hearth_var=rc.var)
    done = rc(script, "rcvar")
    assert (done.returncode, done.stdout) == (
        0, '# hearth_fake : stand-in daemon\n#\nhearth_fake_enable="NO"\n#   (default: "")\n\n')
    done = rc(script, "describe")
    assert (done.returncode, done.stdout) == (0, "stand-in daemon\n")


# -- hearth_api, hearth_front and hearth_rotate ------------------------------

@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_rcvar_and_describe_of_our_scripts(tmp_path, path):
    rc = Rc(tmp_path)
    rc.conf(**{f"{path.name}_enable": "YES", "hearth_var": rc.var})
    done = rc(path, "rcvar")
    desc = rc(path, "describe").stdout.strip()
    assert desc
    assert (done.returncode, done.stdout, done.stderr) == (
        0, f'# {path.name} : {desc}\n#\n{path.name}_enable="YES"\n#   (default: "")\n\n', "")
    rc.conf()
    done = rc(path, "start")
    assert done.returncode == 1
    assert f"Cannot 'start' {path.name}. Set {path.name}_enable to YES in {rc.rc_conf}" \
        in done.stderr
    assert not rc.var.exists()


def test_scripts_match_the_wrapper_title_as_freebsd_does(tmp_path):
    """FreeBSD's check_pidfile, with procname and no command_interpreter,
    accepts a first word of "<basename of procname>:", which is how the
    wrapper titles itself ("hearth: NAME[PID] (daemon)"). Check with an
    rc.subr that only prints what the script set."""
    stub = tmp_path / "rc.subr"
    stub.write_text('load_rc_config() { :; }\nrun_rc_command() {\n'
                    '  echo "$command|$procname|$command_interpreter|$pidfile"\n}\n')
    for path in SCRIPTS:
        done = subprocess.run(["sh", str(path), "status"], capture_output=True, text=True,
                              env={"RC_SUBR": str(stub), "hearth_bin": "/opt/bin/hearth",
                                   "hearth_var": "/v"})
        command, procname, interpreter, pidfile = done.stdout.strip().split("|")
        assert (command, procname, interpreter) == ("/opt/bin/hearth", "/opt/bin/hearth", "")
        assert pidfile == f"/v/run/{path.name.removeprefix('hearth_')}.pid"


USER_CASES = [("hearth_api", "", []), ("hearth_api", None, ["-u", "hearth"]),
              ("hearth_front", None, ["-u", "hearth"]), ("hearth_rotate", "someone", [])]


@pytest.mark.parametrize("name,user,user_args", USER_CASES)
def test_our_scripts_drive_the_wrapper(tmp_path, name, user, user_args):
    rc = Rc(tmp_path)
    try:
        drive_the_wrapper(rc, name, user, user_args)
    finally:
        rc.cleanup()


def drive_the_wrapper(rc, name, user, user_args):
    tmp_path = rc.tmp
    hearth = tmp_path / "bin" / "hearth"
    hearth.parent.mkdir()
    hearth.write_text(FAKE_HEARTH)
    hearth.chmod(0o755)
    config = tmp_path / "hearth.toml"
    rc.conf(**{f"{name}_enable": "YES"}, hearth_var=rc.var, hearth_bin=hearth,
            hearth_python=hearth, hearth_config=config, hearth_user=user,
            hearth_daemon_flags="-r --stop-timeout 10")
    short = name.removeprefix("hearth_")
    pidfile, child_pidfile = rc.var / "run" / f"{short}.pid", rc.var / "run" / f"{short}.child.pid"
    path = RC_D / name

    done = rc(path, "start")
    assert (done.returncode, done.stdout) == (0, f"Starting {name}.\n"), done.stderr
    wrapper, child = read_pid(pidfile), read_pid(child_pidfile)
    assert alive(wrapper) and alive(child)
    child_args = (["-m", f"services.{short}", "--config", str(config)] if name in ("hearth_api", "hearth_front")
                  else ["--config", str(config), "rotate", "--every", "60"])
    assert json.loads((tmp_path / f"{name}.argv.json").read_text()) == [
        "--config", str(config), "daemon", "-r", "--stop-timeout", "10",
        "-P", str(pidfile), "-p", str(child_pidfile), "-o", str(rc.var / "log" / f"{short}.log"),
        "-H", "-f", "-t", name, *user_args, "--", str(hearth), *child_args]
    assert (rc.var / "log").is_dir()

    done = rc(path, "status")
    assert (done.returncode, done.stdout) == (0, f"{name} is running as pid {wrapper}.\n")

    done = rc(path, "reload")
    assert (done.returncode, done.stderr) == (0, "")
    assert text_of(tmp_path / f"{child}.hup") == "HUP\n"
    assert not (tmp_path / f"{name}.wrapper.hup").exists()

    done = rc(path, "stop")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Stopping {name}.\n")
    assert not alive(wrapper) and not alive(child)
    assert not pidfile.exists() and not child_pidfile.exists()

    done = rc(path, "reload")
    assert (done.returncode, done.stderr) == (1, f"{name} not running? (check {pidfile}).\n")
    done = rc(path, "status")
    assert (done.returncode, done.stdout) == (1, f"{name} is not running.\n")
