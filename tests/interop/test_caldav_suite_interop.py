"""python-caldav's own functional suite against `hearth up` with its default configuration.

The suite is the one published with the library (the `tests/` of the caldav sdist, at the version pinned
below), run as its authors run it against an "external" server: one test user, three scheduling users,
and no compatibility hints, so every feature is expected to work as the RFCs say. Its library is the
sdist's own (`python -m pytest` in the unpacked sdist imports `caldav/` from there), so the suite and the
client it tests always match whatever version of caldav this venv holds.

The front keeps its default limits: a household member's client with valid credentials is never throttled.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.installation import OnePort, running

SUITE_VERSION = "3.6.0"
SUITE_TESTS = 148  # what its test_caldav.py and test_async_integration.py hold for one server with scheduling users
USERS = {"suite": "suite's long password", "sched1": "sched1's long password",
         "sched2": "sched2's long password", "sched3": "sched3's long password"}
# Skips the suite decides by itself, whatever the server does: an optional checker package, a fallback
# for servers with an empty calendar-user-address-set, and tests needing a login name that is an email
# address (hearth's user names are not).
EXPECTED_SKIPS = ("caldav_server_tester is not installed", "server populates calendar-user-address-set",
                  "is not an email address")


def suite_source() -> Path:
    """The caldav sdist of SUITE_VERSION, unpacked once into this venv (pip download, so pip's index
    and cache settings apply); skipped with the reason when it cannot be fetched."""
    home = Path(sys.prefix) / "src"
    unpacked = home / f"caldav-{SUITE_VERSION}"
    if (unpacked / "tests" / "test_caldav.py").exists():
        return unpacked
    home.mkdir(parents=True, exist_ok=True)
    download = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                               ":all:", "--dest", str(home), f"caldav=={SUITE_VERSION}"],
                              capture_output=True, text=True, timeout=600)
    archive = home / f"caldav-{SUITE_VERSION}.tar.gz"
    if download.returncode != 0 or not archive.exists():
        pytest.skip(f"caldav {SUITE_VERSION}'s sdist could not be downloaded: {download.stderr[-500:]}")
    partial = Path(tempfile.mkdtemp(dir=home))  # renamed into place whole, so a cut-short unpack is never used
    with tarfile.open(archive) as sdist:
        # The "data" filter refuses links and paths out of `partial`; Pythons before 3.11.4 lack it.
        sdist.extractall(partial, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (partial / unpacked.name).rename(unpacked)
    shutil.rmtree(partial)
    return unpacked


def server_config(url: str) -> str:
    """The suite's tests/caldav_test_servers.yaml for one hearth.

    `features` only restates the library's own default for `scheduling` (full support): the suite's
    scheduling tests skip when a server declares no features at all, and this makes them run.
    """
    scheduling = "".join(f"      - url: {url}\n        username: {name}\n        password: \"{USERS[name]}\"\n"
                         for name in ("sched1", "sched2", "sched3"))
    return textwrap.dedent(f"""\
        test-servers:
          hearth:
            type: external
            enabled: true
            url: {url}
            username: suite
            password: "{USERS['suite']}"
            features:
              scheduling:
                support: full
            scheduling_users:
        """) + scheduling


def outcomes(junit: Path) -> dict[str, list[tuple[str, str]]]:
    """Each test's (name, first line of its message) from a junit XML report, by outcome."""
    found: dict[str, list[tuple[str, str]]] = {"passed": [], "failed": [], "skipped": []}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if problem is None:
            found["passed"].append((name, ""))
            continue
        message = (problem.get("message") or problem.text or "").strip().splitlines()
        outcome = "skipped" if problem.tag == "skipped" else "failed"
        found[outcome].append((name, message[0] if message else problem.tag))
    return found


@pytest.mark.timeout(3600)
def test_python_caldav_functional_suite_passes_against_hearth_up(tmp_path):
    source = suite_source()
    suite = tmp_path / "caldav-suite"
    shutil.copytree(source, suite)  # the config file goes into its tests/; the cached copy stays pristine
    (tmp_path / "hearth").mkdir()
    installation = OnePort(tmp_path / "hearth")
    with running(installation):
        for name, password in USERS.items():
            installation.hearth("user", "add", name, "--password-stdin", input=password + "\n", check=True)
        (suite / "tests" / "caldav_test_servers.yaml").write_text(server_config(installation.url + "/dav/"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CALDAV_", "PYTHON_CALDAV_", "HEARTH_"))}
        env.update(PYTHON_CALDAV_TEST_EMBEDDED="0", PYTHON_CALDAV_TEST_DOCKER="0", TMPDIR=str(tmp_path))
        junit = tmp_path / "suite.xml"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_caldav.py", "tests/test_async_integration.py",
             "-k", "hearth", "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function",
             # The suite turns warnings into errors, and its own testPrincipals still calls the
             # principals() it deprecated; the server is not what that warning is about.
             "-W", "ignore:principals() is deprecated:DeprecationWarning",
             "-q", "-rfEs", "--tb=line", f"--junitxml={junit}"],
            cwd=suite, env=env, capture_output=True, text=True, timeout=3500)
        access_log = (installation.var / "log" / "front.log").read_text(errors="replace")
    print(result.stdout[-3000:])
    assert junit.exists(), result.stdout[-4000:] + result.stderr[-4000:]
    found = outcomes(junit)
    total = sum(map(len, found.values()))
    print(f"python-caldav {SUITE_VERSION} against hearth: {len(found['passed'])} passed of {total}, "
          f"{len(found['failed'])} failed, {len(found['skipped'])} skipped")
    failures = "\n".join(f"{name}: {line}" for name, line in found["failed"])
    assert not found["failed"], f"{len(found['failed'])} of {total} failed:\n{failures}"
    unexpected = [(name, why) for name, why in found["skipped"] if not any(s in why for s in EXPECTED_SKIPS)]
    assert not unexpected, unexpected
    assert total == SUITE_TESTS, f"{total} tests ran, not the suite's {SUITE_TESTS}"
    assert '" 429 ' not in access_log  # the door never throttled the members' clients
