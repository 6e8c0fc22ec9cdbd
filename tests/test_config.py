"""hearth.toml and HEARTH_… overrides: good values load, bad ones fail with one line and exit 2."""
import os
import subprocess
import sys

import pytest

from services.core.config import SCHEMA, ConfigError, load_config
from services.core.exitcodes import ExitStatus


def hearth(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=60)


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEARTH_CONFIG", raising=False)
    config = load_config(environ={})
    assert config.path is None
    assert config.data_dir == tmp_path / "var"
    for option in SCHEMA:
        assert config.values[option.section][option.key] == option.default


def test_file_and_environment_override(tmp_path):
    path = tmp_path / "hearth.toml"
    path.write_text('data_dir = "data"\n[api]\nlisten = "unix:run/api.sock"\n[supervisor]\nmax_restarts = 9\n')
    config = load_config(path, environ={"HEARTH_SUPERVISOR_MAX_RESTARTS": "3", "HEARTH_AUTH_FAILURE_WINDOW": "7"})
    assert config.data_dir == tmp_path / "data"
    assert config.api.listen == "unix:run/api.sock"
    assert config.supervisor.max_restarts == 3
    assert config.auth.failure_window == 7
    assert config.supervisor.restart_delay == 1.0


def test_int_accepted_where_a_number_is_expected(tmp_path):
    path = tmp_path / "hearth.toml"
    path.write_text("[supervisor]\nstop_timeout = 3\n")
    assert load_config(path, environ={}).supervisor.stop_timeout == 3.0


@pytest.mark.parametrize("text, named", [
    ("[api]\nlisten_on = 'x'\n", "[api] listen_on: unknown key"),
    ("[supervisor]\nmax_restarts = 'five'\n", "supervisor.max_restarts: expected an integer"),
    ("[auth]\nmax_failures = true\n", "auth.max_failures: expected an integer"),
    ("colour = 'blue'\n", "colour: unknown key"),
    ("api = 3\n", "api: expected a [api] table"),
    ("[[service]]\nname = 'x'\n", "service 'x': command"),
    ("[[service]]\nname = 'api'\ncommand = 'true'\n", "service 'api': name"),
    ("[[service]]\nname = 'x'\ncommand = 'true'\nport = 3\n", "unknown key 'port'"),
    ("log_level = 'loud'\n", "log_level: expected debug"),
    ("[api\n", "invalid TOML"),
    ("[front]\nrate_limit = 'fast'\n", "front.rate_limit: expected a number"),
    ("[[route]]\npath = '/x/'\n", "[[route]] #1: needs exactly one of upstream, service or redirect"),
    ("[[route]]\nupstream = 'a:1'\nservice = 'api'\n", "[[route]] #1: needs exactly one of"),
    ("[[route]]\npath = 'x'\nupstream = 'a:1'\n", "[[route]] #1: path: must start with /"),
    ("[[route]]\nupstream = 'a:1'\nweight = 3\n", "[[route]] #1: unknown key 'weight'"),
    ("[[route]]\nservice = 'nope'\n", "[[route]] #1: service: no service named 'nope'"),
    ("[[route]]\nupstream = 'a:1'\ncors = { origins = ['*'], credentials = true }\n", "cannot be combined with credentials"),
    ("[[route]]\nupstream = 'a:1'\ncors = { origin = ['x'] }\n", "cors.origin: unknown key"),
    ("[[route]]\nupstream = 'a:1'\nhost = 'a.*.org'\n", "host: expected example.org or *.example.org"),
    ("[[service]]\nname = 'x'\ncommand = 'true'\nroute = '/x/'\n", "service 'x': route: needs listen"),
])
def test_bad_file_exits_2_with_one_line_naming_file_and_key(tmp_path, text, named):
    path = tmp_path / "hearth.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.status == ExitStatus.CONFIG
    assert str(path) in str(caught.value) and named in str(caught.value)
    result = hearth("--config", str(path), "config")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and named in lines[0], result.stderr
    assert result.stdout == ""


def test_bad_environment_value_names_the_variable(tmp_path):
    result = hearth("--config", str(tmp_path / "missing.toml"), "config")
    assert result.returncode == 2 and "missing.toml: cannot read" in result.stderr
    (tmp_path / "hearth.toml").write_text("")
    result = hearth("--config", str(tmp_path / "hearth.toml"), "config", env={"HEARTH_SUPERVISOR_STOP_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert result.stderr.strip() == "hearth: $HEARTH_SUPERVISOR_STOP_TIMEOUT: expected a number, got 'soon'"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file; unreadable needs an unprivileged user")
def test_unreadable_file(tmp_path):
    path = tmp_path / "hearth.toml"
    path.write_text("")
    path.chmod(0)
    result = hearth("--config", str(path), "config")
    assert result.returncode == 2 and f"{path}: cannot read: Permission denied" in result.stderr


def test_unreadable_file_as_root_uses_a_directory(tmp_path):
    # Even root cannot read a directory as a file: the same "cannot read" path.
    result = hearth("--config", str(tmp_path), "config")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"hearth: {tmp_path}: cannot read:")


def test_hearth_config_shows_effective_values_and_hides_secrets(tmp_path):
    path = tmp_path / "hearth.toml"
    path.write_text("[[service]]\nname = 'hello'\ncommand = ['true']\nenv = { TOKEN = 'sekrit' }\n")
    result = hearth("--config", str(path), "config", env={"HEARTH_API_LISTEN": "127.0.0.1:9999"})
    assert result.returncode == 0, result.stderr
    assert 'listen = "127.0.0.1:9999"' in result.stdout
    assert "TOKEN" in result.stdout and "sekrit" not in result.stdout


def test_set_keys_rewrites_one_table_and_keeps_comments_and_the_rest(tmp_path):
    from services.core.config_edit import set_keys

    path = tmp_path / "hearth.toml"
    path.write_text('# my server\ndata_dir = "var"\n\n[storage]\n# was local until 2026\nblobs = "local"  # here\n'
                    's3_region = "eu-west-1"\n\n[sync]\nquota_mb = 5\n')
    path.chmod(0o640)
    set_keys(path, "storage", {"blobs": "s3", "s3_bucket": "hearth"})
    assert path.read_text() == ('# my server\ndata_dir = "var"\n\n[storage]\ns3_bucket = "hearth"\n'
                                '# was local until 2026\nblobs = "s3"  # here\ns3_region = "eu-west-1"\n\n[sync]\nquota_mb = 5\n')
    assert path.stat().st_mode & 0o777 == 0o640 and [p.name for p in tmp_path.iterdir()] == ["hearth.toml"]
    set_keys(path, "backup", {"replica": "/mnt/x"})  # a table the file lacks is added at its end
    assert path.read_text().endswith('quota_mb = 5\n\n[backup]\nreplica = "/mnt/x"\n')
