"""`hearth up | down | status | service`: the rc(8) of hearth.

Scripts are ordered like rcorder(8) and driven through their rc.subr verbs,
exactly as FreeBSD would run them; this module adds what a person needs on top:
readiness waits, a truthful status table, and log lines when something fails.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from services.core.bootstrap import ensure_config_file, ensure_initialised
from services.core.config import Config, load_config
from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus
from services.core.private import private_dir
from services.core.slots import COLOURS, display_name, instance_name, read_record, slot_of

from . import layout
from .layout import Paths, short_name
from .pidfile import pidfile_status
from .rcorder import RcScript, order, parse_script
from .readiness import NotReady, health_check, wait_ready
from .rotation_conf import write_newsyslog_conf
from .state import read_state

LOG_TAIL_LINES = 15


def ordered_scripts(config: Config) -> list[RcScript]:
    return order([parse_script(path) for path in layout.script_paths(config)])


def prepare(config: Config) -> list[RcScript]:
    """Regenerate rc.conf, user service scripts and newsyslog.conf; return the start order."""
    for sub in ("run", "log", "db", "blobs"):
        private_dir(config.data_path(sub))
    for stale in layout.stale_scripts(config):  # stopped while its script is still there to stop it
        stop_one(config, parse_script(stale))
    layout.write_generated(config)
    scripts = ordered_scripts(config)
    names = [script.name for script in scripts]
    layout.write_private(layout.rc_conf_path(config), layout.render_rc_conf(config, names))
    write_newsyslog_conf(config, [short_name(name) for name in names])
    return scripts


# What reaches rc.d scripts (and through them the daemons): like service(8), a clean
# environment, so a stray hearth_* variable can't override rc.conf. HEARTH_…
# overrides pass, because the daemons must see the config `hearth` itself saw, and so do the
# object store's credentials ([storage] blobs = "s3"), which hearth.toml never holds.
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
                      "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def rc_environment(config: Config) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key in PASSED_ENVIRONMENT or key.startswith("HEARTH_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin")
    env.pop("HEARTH_ADMIN_PASSWORD", None)
    env["RC_SUBR"] = str(layout.RC_SUBR)
    env["RC_CONF"] = str(layout.rc_conf_path(config))
    env["RC_CONF_DIR"] = str(layout.run_dir(config) / "rc.conf.d")
    return env


def run_verb(config: Config, script: RcScript, verb: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", str(script.path), verb], env=rc_environment(config),
                          stdin=subprocess.DEVNULL, capture_output=capture, text=True)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(path, errors="replace") as handle:
            return list(deque(handle, maxlen=lines))
    except OSError:
        return []


def start_one(config: Config, script: RcScript, wait: bool = True, timeout: float | None = None) -> None:
    name = short_name(script.name)
    paths = Paths(config.data_dir, name)
    shown = display_name(config, name)
    if not pidfile_status(paths.pidfile).running:
        result = run_verb(config, script, "start", capture=True)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise CommandError(f"{shown}: start failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    if not wait:
        return
    try:
        wait_ready(config, name, config.supervisor.ready_timeout if timeout is None else timeout)
    except NotReady as error:
        tail = log_tail(paths.logfile)
        if tail:
            print(f"last lines of {paths.logfile}:", file=sys.stderr)
            sys.stderr.writelines("  " + line for line in tail)
        status = ExitStatus.TIMEOUT if error.timed_out else ExitStatus.ERROR
        raise CommandError(f"{shown} did not become ready: {error}", status) from None
    check = health_check(config, name)
    print(f"{shown}: ready{f' ({check})' if check else ''}")


def run_up(args: argparse.Namespace) -> int:
    if ensure_config_file(args.config):
        print("wrote a starter hearth.toml")
    config = load_config(args.config)
    password = ensure_initialised(config)
    for script in prepare(config):
        staging = staging_status(config, short_name(script.name))
        try:
            # A staging slot whose last deploy failed is started, not waited for: it would only time out.
            start_one(config, script, wait=not args.no_wait and staging != "failed")
        except CommandError as error:
            if staging is None:
                raise
            # Staging is where broken versions are tried: it must not keep the suite, prod included, down.
            print(f"hearth: {error}; prod is unaffected", file=sys.stderr)
    check = health_check(config, "front")  # the one door: everything is reached through it
    print(f"hearth is up: {check.url.removesuffix('healthz') if check else ''}")
    if password:
        print(f"admin password (shown once; change it with `hearth user passwd admin`): {password}")
    return ExitStatus.OK


def staging_status(config: Config, name: str) -> str | None:
    """The last deploy's status if `name` is the staging colour of a slotted service, else None."""
    found = slot_of(config, name)
    if found is None or found[1] is None or found[1].label_of(found[0].colour) != "staging":
        return None
    return found[1].colours[found[0].colour].get("status", "ready")


def stop_one(config: Config, script: RcScript) -> None:
    name = short_name(script.name)
    paths = Paths(config.data_dir, name)
    status = pidfile_status(paths.pidfile)
    if status.running:
        result = run_verb(config, script, "stop", capture=True)
        if pidfile_status(paths.pidfile).running:
            raise CommandError(f"{display_name(config, name)}: did not stop: {result.stderr.strip()}",
                               ExitStatus.TIMEOUT)
        print(f"{display_name(config, name)}: stopped")
    for pidfile in (paths.pidfile, paths.child_pidfile):
        if pidfile_status(pidfile).stale:
            pidfile.unlink(missing_ok=True)


def run_down(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not layout.rc_conf_path(config).exists():
        print("hearth is not set up here: nothing to stop")
        return ExitStatus.OK
    for script in reversed(ordered_scripts(config)):
        stop_one(config, script)
    return ExitStatus.OK


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def describe(config: Config, name: str) -> tuple[dict[str, str], bool, str | None]:
    """One status row, whether the service is up, and why not if it is down."""
    paths = Paths(config.data_dir, name)
    status = pidfile_status(paths.pidfile)
    state = read_state(paths.pidfile) or {}
    row = {"NAME": display_name(config, name), "STATE": "stopped", "PID": "-", "UPTIME": "-",
           "RESTARTS": str(state.get("restarts", 0)) if state else "-", "LOG": str(paths.logfile)}
    reason = None
    up = False
    if status.running:
        row["STATE"] = state.get("state", "running")
        up = row["STATE"] in {"running", "starting"}
        if state.get("child_pid"):
            row["PID"] = str(state["child_pid"])
        if state.get("child_started_at") and up:
            row["UPTIME"] = _duration(time.time() - state["child_started_at"])
        if row["STATE"] == "backoff":
            reason = f"restarting after {state.get('last_exit')}"
    elif status.stale:
        row["STATE"] = "dead"
        reason = (f"stale pid file {paths.pidfile} (pid {status.pid} is gone); "
                  f"`hearth service {name} start` cleans it")
    elif state.get("state") in {"gave-up", "exited"}:
        row["STATE"] = state["state"]
        reason = state.get("reason")
    return row, up, reason


def run_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rows, problems = [], []
    for script in ordered_scripts(config):
        row, up, reason = describe(config, short_name(script.name))
        rows.append(row)
        if not up:
            problems.append(f"{row['NAME']}: {row['STATE']}" + (f": {reason}" if reason else ""))
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in rows[0]}
    print("  ".join(key.ljust(widths[key]) for key in widths).rstrip())
    for row in rows:
        print("  ".join(row[key].ljust(widths[key]) for key in widths).rstrip())
    if config.tunnel.relay:  # the agent's own view: whether the relay is reached, since when, why not
        from services.tunnel.agent_state import describe as describe_tunnel, read_agent_state
        print(describe_tunnel(read_agent_state(config.data_dir)))
    if config.relay.config:  # the relay's own view: which agents are in, what it turned away
        from services.tunnel.relay_status import describe_relay
        print("\n".join(describe_relay(config.resolve(config.relay.config))))
    from services.core.blobs import status_line
    if (blobs := status_line(config)) is not None:  # an object store: reached, or why not
        if blobs.endswith(": ok"):
            print(blobs)
        else:
            problems.append(blobs)
    for line in problems:
        print(line)
    return ExitStatus.NOT_RUNNING if problems else ExitStatus.OK


def find_script(config: Config, name: str) -> RcScript:
    """The script for `name`: api, hearth_api, a [[service]] name, or a slot: hello@prod, hello@blue, hello_blue."""
    wanted = layout.script_name(resolve_slot_name(config, name))
    for script in ordered_scripts(config):
        if script.name == wanted:
            return script
    known = ", ".join(short_name(s.name) for s in ordered_scripts(config))
    raise CommandError(f"no service named {name!r} (known: {known})", ExitStatus.CONFIG)


def resolve_slot_name(config: Config, name: str) -> str:
    """`hello@prod`, `hello@staging` or `hello@blue` as the supervised instance name (hello_blue)."""
    service, at, slot = name.partition("@")
    spec = next((s for s in config.services if s.name == layout.short_name(service)), None)
    if spec is None or not spec.slots:
        if at:
            raise CommandError(f"{name}: {service!r} is not a service with slots", ExitStatus.CONFIG)
        return name
    if not at:
        raise CommandError(f"{spec.name} runs as two slots: name one, {spec.name}@prod or {spec.name}@staging",
                           ExitStatus.CONFIG)
    if slot in COLOURS:
        return instance_name(spec.name, slot)
    if slot not in ("prod", "staging"):
        raise CommandError(f"{name}: expected {spec.name}@prod, @staging, @blue or @green", ExitStatus.CONFIG)
    try:
        record = read_record(config.data_dir, spec.name)
    except ValueError as error:
        raise CommandError(f"slot record {error}", ExitStatus.CONFIG) from None
    return instance_name(spec.name, record.colour_of(slot) if record else ("blue" if slot == "prod" else "green"))


def run_service(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    prepare(config)
    script = find_script(config, args.name)
    verb = args.verb
    if verb in {"start", "onestart", "forcestart"}:
        start_one(config, script)
        return ExitStatus.OK
    if verb in {"restart", "onerestart", "forcerestart"}:
        stop_one(config, script)
        start_one(config, script)
        return ExitStatus.OK
    result = run_verb(config, script, verb)
    if verb.endswith("status") and result.returncode != 0:
        return ExitStatus.NOT_RUNNING
    return result.returncode
