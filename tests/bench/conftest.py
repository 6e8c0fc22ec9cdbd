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
