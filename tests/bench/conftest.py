"""Third-party supervisors the benchmarks compare hearth with: found, installed if we may, or explained.

A missing tool never fails a benchmark: its fixture yields a `Tool` whose `path`
is None and whose `reason` says why, and the benchmark prints that reason in
place of the tool's row.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

APT_TIMEOUT = 300
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class Tool:
    """A program to compare against: where it is and its version, or why it is not there."""

    name: str
    path: str | None
    version: str = ""
    reason: str = ""


@pytest.fixture(scope="session")
def debian_daemon() -> Tool:
    """libslack's daemon(1) (Debian package `daemon`), apt-installed when missing and we are root."""
    name = "debian-daemon"
    path = _which("daemon")
    if path is None:
        if os.geteuid() != 0:
            return Tool(name, None, reason="Debian's `daemon` is not installed, and installing it "
                                           "needs root (apt-get install daemon)")
        if shutil.which("apt-get") is None:
            return Tool(name, None, reason="Debian's `daemon` is not installed and there is no apt-get here")
        failure = _apt_install("daemon")
        path = _which("daemon")
        if path is None:
            return Tool(name, None, reason=failure or "apt-get install -y daemon installed no daemon binary")
    # FreeBSD's daemon(8) or another program of that name takes different flags.
    about = _output([path, "--help"]) + _output([path, "--version"])
    if "libslack" not in about:
        return Tool(name, None, reason=f"{path} is not libslack's daemon (Debian package `daemon`)")
    return Tool(name, path, version=_output([path, "--version"]).strip())


@pytest.fixture(scope="session")
def supervisord() -> Tool:
    """supervisord from this venv (the `bench` extra), or from PATH."""
    name = "supervisord"
    path = _which("supervisord")
    if path is None:
        return Tool(name, None, reason="supervisor is not installed: .venv/bin/pip install -e '.[bench]'")
    return Tool(name, path, version="supervisor " + _output([path, "--version"]).strip())


def _which(program: str) -> str | None:
    """PATH plus this interpreter's bin directory and the system directories apt installs to."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", ""),
                              "/usr/local/bin", "/usr/bin", "/usr/sbin"])
    return shutil.which(program, path=search)


def _apt_install(package: str) -> str:
    """apt-get install, with one apt-get update and a retry if the first try fails; '' or why it failed."""
    failure = ""
    for step in (["install"], ["update"], ["install"]):
        argv = ["apt-get", "-y", "-q", *step] + ([package] if step == ["install"] else [])
        print(f"\nbench: running {' '.join(argv)}", flush=True)
        try:
            result = subprocess.run(argv, env=APT_ENV, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=APT_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as error:
            return f"{' '.join(argv)} failed: {error}"
        if result.returncode == 0 and step == ["install"]:
            return ""
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            failure = f"{' '.join(argv)} exited {result.returncode}: {lines[-1] if lines else 'no output'}"
    return failure


def _output(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout + result.stderr


# -- HTTP tools for the front-end benchmark: wrk, curl, Caddy, nginx ---------------------

WEB_PORTS = (80, 443)  # where Debian's caddy and nginx packages would start their own instance
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


@pytest.fixture(scope="session")
def wrk() -> Tool:
    """wrk (Debian package `wrk`), the load generator."""
    return _debian_tool("wrk", "wrk", "wrk", ["-v"])


@pytest.fixture(scope="session")
def curl() -> Tool:
    """curl, the streaming client."""
    return _debian_tool("curl", "curl", "curl", ["--version"])


@pytest.fixture(scope="session")
def caddy() -> Tool:
    """Caddy (Debian package `caddy`), apt-installed when missing and we are root; never left running."""
    return _debian_tool("caddy", "caddy", "caddy", ["version"])


@pytest.fixture(scope="session")
def nginx() -> Tool:
    """nginx (Debian package `nginx`), apt-installed when missing and we are root; never left running."""
    return _debian_tool("nginx", "nginx", "nginx", ["-v"])


def _debian_tool(name: str, program: str, package: str, version_argv: list[str]) -> Tool:
    """Find `program`, or apt-install `package` so that no service it ships is started (or stays started)."""
    path = _which(program)
    if path is None:
        if os.geteuid() != 0:
            return Tool(name, None, reason=f"{program} is not installed, and installing it needs root "
                                           f"(apt-get install {package})")
        if shutil.which("apt-get") is None:
            return Tool(name, None, reason=f"{program} is not installed and there is no apt-get here")
        failure = _apt_install_no_services(package)
        path = _which(program)
        if path is None:
            return Tool(name, None, reason=failure or f"apt-get install -y {package} installed no {program}")
    version = _output([path, *version_argv]).strip().splitlines()
    return Tool(name, path, version=version[0] if version else "")


def _apt_install_no_services(package: str) -> str:
    """`_apt_install` with services held back: a policy-rc.d that answers 101 ("not allowed") while apt
    runs, unless the machine has its own; then whatever the package still started on :80/:443 (under
    systemd, say) is stopped by the pids that listen there now and did not before. Never by name."""
    before = _web_listeners()
    ours = not POLICY_RC_D.exists()
    if ours:
        POLICY_RC_D.write_text("#!/bin/sh\n# written by hearth's tests/bench while apt-get runs\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        failure = _apt_install(package)
    finally:
        if ours:
            POLICY_RC_D.unlink(missing_ok=True)
    for pid in sorted(_web_listeners() - before):
        print(f"bench: the {package} package started pid {pid} on :80/:443; stopping it", flush=True)
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
    return failure


def _web_listeners() -> set[int]:
    """Pids of the processes listening on TCP :80 or :443 (ss -ltnp), on any address."""
    listing = _output(["ss", "-Hltnp"])
    pids: set[int] = set()
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 4 or not any(fields[3].endswith(f":{port}") for port in WEB_PORTS):
            continue
        for token in line.split("pid=")[1:]:
            digits = token.split(",")[0]
            if digits.isdigit():
                pids.add(int(digits))
    return pids


# -- file-sync tools for the sync benchmark: Syncthing, rsync -----------------------------

@pytest.fixture(scope="session")
def syncthing() -> Tool:
    """Syncthing (Debian package `syncthing`), apt-installed when missing and we are root; never left running."""
    return _debian_tool("syncthing", "syncthing", "syncthing", ["--version"])


@pytest.fixture(scope="session")
def rsync() -> Tool:
    """rsync (Debian package `rsync`), the plain local copy the sync benchmark measures against."""
    return _debian_tool("rsync", "rsync", "rsync", ["--version"])
