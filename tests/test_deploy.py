"""deploy/install.sh into a scratch root, and the generated cloudflared and Caddy front doors."""
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from services.core.config import SCHEMA, ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PREFIX = "/usr/local"


def documented_files(os_name: str) -> list[str]:
    """The list deploy/README.md gives for one system, after its `<!-- install-files: OS -->` marker."""
    readme = (DEPLOY / "README.md").read_text()
    marker = f"<!-- install-files: {os_name} -->"
    assert marker in readme, f"deploy/README.md lacks {marker}"
    block = readme.split(marker, 1)[1].split("```text", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def checkout_copy(directory: str) -> set[str]:
    """What install.sh copies of a checkout directory: every file, no bytecode."""
    return {str(path.relative_to(REPO)) for path in (REPO / directory).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def install(root: Path, os_name: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["sh", str(DEPLOY / "install.sh"), "--os", os_name, "--destdir", str(root), "--no-venv"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("os_name", ["freebsd", "linux"])
def test_install_into_a_scratch_root_makes_exactly_the_documented_files(tmp_path, os_name):
    result = install(tmp_path, os_name)
    expected_files, expected_dirs = set(), set()
    for entry in documented_files(os_name):
        if entry.endswith("/**"):
            directory = entry[:-3]
            expected_files |= {f"{PREFIX}/lib/hearth/{rel}" for rel in checkout_copy(Path(directory).name)}
        elif entry.endswith("/"):
            expected_dirs.add(entry.rstrip("/"))
        else:
            expected_files.add(entry)
    installed = {"/" + str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir()}
    assert installed == expected_files, (sorted(installed - expected_files), sorted(expected_files - installed))
    for directory in expected_dirs:
        assert (tmp_path / directory.lstrip("/")).is_dir()
        assert not any((tmp_path / directory.lstrip("/")).iterdir())
    # Staged: no user was created; the next steps say how.
    assert "useradd" in result.stdout and "hearth init" in result.stdout


@pytest.mark.parametrize("os_name", ["freebsd", "linux"])
def test_installed_config_loads_lists_every_key_and_points_at_the_system_data_dir(tmp_path, os_name):
    install(tmp_path, os_name)
    etc = tmp_path / ("usr/local/etc/hearth" if os_name == "freebsd" else "etc/hearth")
    example = tomllib.loads((etc / "hearth.toml.example").read_text())
    config_text = (etc / "hearth.toml").read_text()
    config = tomllib.loads(config_text)
    for option in SCHEMA:
        section, key = option.section, option.key
        for table in (example, config):
            assert key in (table[section] if section else table), f"{section}.{key}"
    assert config["data_dir"] == ("/var/db/hearth" if os_name == "freebsd" else "/var/lib/hearth")
    assert config["supervisor"]["user"] == "hearth"
    assert load_config(etc / "hearth.toml").supervisor.user == "hearth"
    assert oct((etc / "hearth.toml").stat().st_mode & 0o777) == "0o640"


def test_install_keeps_an_existing_config(tmp_path):
    config = tmp_path / "etc" / "hearth" / "hearth.toml"
    config.parent.mkdir(parents=True)
    config.write_text('data_dir = "/srv/mine"\n')
    result = install(tmp_path, "linux")
    assert config.read_text() == 'data_dir = "/srv/mine"\n'
    assert "kept /etc/hearth/hearth.toml" in result.stdout


def test_freebsd_rc_scripts_parse_and_carry_the_installation_paths(tmp_path):
    install(tmp_path, "freebsd")
    scripts = sorted((tmp_path / "usr/local/etc/rc.d").iterdir())
    assert [s.name for s in scripts] == sorted(p.name for p in (REPO / "rc.d").glob("hearth_*"))
    for script in scripts:
        check = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, f"{script.name}: {check.stderr}"
        text = script.read_text()
        assert os.access(script, os.X_OK)
        if script.name == "hearth_relay":   # the public server's: relay.toml, no hearth.toml
            assert ': "${hearth_relay_config:=/usr/local/etc/hearth/relay.toml}"' in text
        else:
            assert ': "${hearth_config:=/usr/local/etc/hearth/hearth.toml}"' in text
        if "hearth_python:=" in text:
            assert ': "${hearth_python:=/usr/local/lib/hearth/venv/bin/python}"' in text
    newsyslog = (tmp_path / "usr/local/etc/newsyslog.conf.d/hearth.conf").read_text()
    assert "/var/db/hearth/log/front.log" in newsyslog


def test_linux_rotation_renames_and_signals_with_the_linux_paths(tmp_path):
    install(tmp_path, "linux")
    conf = (tmp_path / "usr/local/share/hearth/logrotate.conf").read_text()
    rules = re.sub(r"#.*", "", conf)
    assert "copytruncate" not in rules
    assert "/var/lib/hearth/log/*.log" in rules and "/var/db/" not in rules
    assert "create 0640 hearth hearth" in rules and "kill -HUP" in rules


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (Debian package systemd)")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    install(tmp_path / "root", "linux")
    unit = (tmp_path / "root/etc/systemd/system/hearth.service").read_text()
    assert "ExecStart=/usr/local/bin/hearth up" in unit and "User=hearth" in unit
    assert "Environment=HEARTH_CONFIG=/etc/hearth/hearth.toml" in unit
    # verify insists the commands exist: point them at the staged hearth command.
    staged = unit.replace("/usr/local/bin/hearth", str(tmp_path / "root/usr/local/bin/hearth"))
    (tmp_path / "hearth.service").write_text(staged)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "hearth.service")],
                            capture_output=True, text=True, timeout=60)
    # Unknown keys or values are only warnings: any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_install_help_and_bad_os():
    ok = subprocess.run(["sh", str(DEPLOY / "install.sh"), "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "--destdir" in ok.stdout and "--no-venv" in ok.stdout
    bad = subprocess.run(["sh", str(DEPLOY / "install.sh"), "--os", "windows", "--destdir", "/nonexistent"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "freebsd or linux" in bad.stderr


CONFIG = """
[front]
listen = "0.0.0.0:8080"

[[route]]
host = "hooks.example.org"
path = "/hooks/"
upstream = "127.0.0.1:9100"

[[route]]
host = "*.apps.example.org"
upstream = "127.0.0.1:9200"

[[service]]
name = "hello"
command = ["true"]
listen = "127.0.0.1:9001"
route = "/hello/"
"""


def hearth(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(tmp_path / "hearth.toml"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "hearth.toml").write_text(CONFIG)
    return tmp_path


def test_cloudflared_config_has_a_rule_per_route_in_front_end_order_and_the_catch_all_last(site):
    result = hearth(site, "deploy", "cloudflared", "--hostname", "Home.Example.net")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config) == {"tunnel", "credentials-file", "ingress"}
    rules = config["ingress"]
    assert rules[-1] == {"service": "http_status:404"}
    assert all(rule["service"] == "http://127.0.0.1:8080" for rule in rules[:-1])
    home = "home.example.net"
    assert [(r["hostname"], r.get("path")) for r in rules[:-1]] == [
        (home, "^/healthz(/|$)"),
        ("hooks.example.org", "^/hooks(/|$)"),
        ("*.apps.example.org", None),
        (home, "^/hello(/|$)"),
        (home, "^/api(/|$)"), (home, "^/sync(/|$)"), (home, "^/dav(/|$)"), (home, "^/files(/|$)"),
        (home, "^/s(/|$)"),
        # the Nextcloud apps' file tree, uploads, trash and versions (files), then discovery and login (api)
        *[(home, rf"^/remote\.php/{p}(/|$)") for p in ("dav/files", "dav/uploads", "dav/trashbin",
                                                        "dav/versions", "webdav")],
        # their thumbnails (files), before the rest of /index.php/
        (home, r"^/index\.php/core/preview(/|$)"), (home, r"^/index\.php/core/preview\.png(/|$)"),
        (home, r"^/index\.php/apps/files/api/v1/thumbnail(/|$)"),
        (home, r"^/status\.php(/|$)"), (home, r"^/index\.php(/|$)"), (home, "^/ocs(/|$)"),
        (home, r"^/remote\.php/dav/avatars(/|$)"),
        (home, r"^/\.well\-known/caldav(/|$)"), (home, r"^/\.well\-known/carddav(/|$)"),
        *[(home, rf"^/remote\.php/dav/{p}(/|$)") for p in ("calendars", "addressbooks", "principals")],
        (home, None),
    ]
    # The regexes match what the front end's prefixes match, on segment boundaries.
    hello = re.compile(rules[3]["path"])
    assert all(hello.search(p) for p in ("/hello", "/hello/", "/hello/x"))
    assert not hello.search("/helloworld") and not hello.search("/x/hello")
    # What to set for CORS and TLS, kept as comments in the file.
    assert "CORS" in result.stdout and "terminates TLS" in result.stdout and "trusted_proxies" in result.stdout


def test_cloudflared_needs_a_hostname_and_refuses_a_bad_one(site):
    assert hearth(site, "deploy", "cloudflared").returncode == 2
    bad = hearth(site, "deploy", "cloudflared", "--hostname", "home example")
    assert bad.returncode == 2 and "not a DNS name" in bad.stderr and not bad.stdout


def test_caddyfile_has_a_site_per_hostname(site, tmp_path):
    result = hearth(site, "deploy", "caddy", "--hostname", "home.example.net")
    assert result.returncode == 0, result.stderr
    sites = re.findall(r"^(\S+) \{$", result.stdout, re.MULTILINE)
    assert sites == ["home.example.net", "hooks.example.org", "*.apps.example.org"]
    assert result.stdout.count("reverse_proxy 127.0.0.1:8080 {") == 3
    if not shutil.which("caddy"):
        pytest.skip("caddy (Debian package caddy) is not installed: checked structurally only")
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(result.stdout)
    adapted = subprocess.run(["caddy", "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
                             capture_output=True, text=True, timeout=60)
    assert adapted.returncode == 0, adapted.stderr
    assert '"dial":"127.0.0.1:8080"' in adapted.stdout.replace(" ", "")
    for host in sites:
        assert f'"{host}"' in adapted.stdout


@pytest.mark.parametrize("name", ["cloudflared", "caddy"])
def test_front_door_words_cannot_name_a_service(tmp_path, name):
    (tmp_path / "hearth.toml").write_text(f'[[service]]\nname = "{name}"\ncommand = ["true"]\n')
    with pytest.raises(ConfigError, match="already taken"):
        load_config(tmp_path / "hearth.toml")


@pytest.mark.skipif(os.geteuid() != 0, reason="handing the data to the daemon user needs root")
def test_init_as_root_hands_what_the_daemons_write_to_the_daemon_user(tmp_path):
    import pwd

    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}

    def init(user: str) -> subprocess.CompletedProcess:
        (tmp_path / "hearth.toml").write_text(f'data_dir = "var"\n[supervisor]\nuser = "{user}"\n')
        return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(tmp_path / "hearth.toml"),
                               "init"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    result = init("nobody")
    assert result.returncode == 0, result.stderr
    nobody = pwd.getpwnam("nobody").pw_uid
    for path in ("var/db", "var/db/hearth.sqlite3", "var/blobs", "var/run"):
        assert (tmp_path / path).stat().st_uid == nobody, path
    assert (tmp_path / "var" / "log").stat().st_uid == 0  # the wrappers, which stay root, write the logs
    result = init("no-such-user-here")
    assert result.returncode != 0 and "no-such-user-here" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
