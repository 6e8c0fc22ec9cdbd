"""The servers `nextcloudcmd` syncs with in the Nextcloud benchmark: hearth, and two plain WebDAV servers
made just presentable enough for the client to start (see test_nextcloud_bench.py for what each is).

Every repetition gets a fresh, empty account `benchN` with PASSWORD: a new hearth user, a new home
directory under nginx, a new rclone process over a new directory. What each holds afterwards is read
back as {relative path: SHA-256}: through `/files/USER/` for hearth, from the disk for the others.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.metadata
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlsplit

from tests.bench.test_files_bench import START_TIMEOUT, _output, _stop, nginx_version, run_nginx
from tests.bench.test_front_throughput import Daemon, free_port
from tests.installation import Installation

PASSWORD = "bench's long password"
# What nextcloudcmd reads before its first listing (protocol: status.php needs `installed`; the
# capabilities turn on chunked upload v2, as hearth's do; cloud/user gives the id in the DAV path).
STATUS = {"installed": True, "maintenance": False, "needsDbUpgrade": False, "version": "31.0.0.0",
          "versionstring": "31.0.0", "edition": "", "productname": "Nextcloud", "extendedSupport": False}
CAPABILITIES = {"ocs": {"meta": {"status": "ok", "statuscode": 100, "message": "OK"}, "data": {
    "version": {"major": 31, "minor": 0, "micro": 0, "string": "31.0.0", "edition": ""},
    "capabilities": {"core": {"pollinterval": 60, "webdav-root": "remote.php/webdav"}, "dav": {"chunking": "1.0"},
                     "files": {"bigfilechunking": True}, "files_sharing": {"api_enabled": False}}}}}


def user_answer(user: str) -> dict:
    return {"ocs": {"meta": {"status": "ok", "statuscode": 100, "message": "OK"},
                    "data": {"id": user, "display-name": user}}}


@dataclass
class Account:
    url: str
    user: str
    holds: Callable[[list[str]], dict[str, str | None]]   # relative paths -> their SHA-256 on the server


@dataclass
class Target:
    name: str
    version: str
    plain: bool                                  # a plain WebDAV server, not a Nextcloud-protocol one
    account: Callable[[int], Account]            # a fresh, empty account for repetition n
    stop: Callable[[], object]
    notes: list[str] = field(default_factory=list)


def hearth_target(installation: Installation) -> Target:
    """hearth under `hearth up` (as the interop tests run it): a new user per repetition."""
    def account(n: int) -> Account:
        user = f"bench{n}"
        installation.hearth("user", "add", user, "--password-stdin", input=PASSWORD + "\n", check=True)
        return Account(installation.url, user, lambda paths: _hearth_holds(installation.url, user, paths))

    return Target("hearth", importlib.metadata.version("hearth"), False, account, lambda: None,
                  ["`hearth up`: the front end, then the files daemon (HTTP Basic, argon2 password with the "
                   "login cache, SQLite WAL, content-defined chunks)"])


def _hearth_holds(url: str, user: str, paths: list[str]) -> dict[str, str | None]:
    """Each file's SHA-256 through /files/USER/ on one kept-alive connection; None where it is missing."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    auth = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    held = {}
    try:
        for path in paths:
            connection.request("GET", quote(f"/files/{user}/{path}"), headers={"Authorization": auth})
            response = connection.getresponse()
            body = response.read()
            held[path] = hashlib.sha256(body).hexdigest() if response.status == 200 else None
    finally:
        connection.close()
    return held


def _disk_holds(home: Path) -> Callable[[list[str]], dict[str, str | None]]:
    def holds(paths: list[str]) -> dict[str, str | None]:
        return {path: hashlib.sha256((home / path).read_bytes()).hexdigest() if (home / path).is_file() else None
                for path in paths}
    return holds


def nginx_target(workdir: Path, nginx: str, accounts: int) -> Target:
    """nginx's dav and dav-ext modules on a directory per account; the discovery answers are `return`s."""
    home = workdir / "nginx"
    users = [f"bench{n}" for n in range(accounts)]
    for user in users:
        (home / "www" / "remote.php" / "dav" / "files" / user).mkdir(parents=True)
    (home / "users").write_text("".join(f"{user}:{{PLAIN}}{PASSWORD}\n" for user in users))
    port = free_port()
    answer_user = json.dumps(user_answer("$remote_user"))  # nginx puts the logged-in name in
    daemon = run_nginx(home, nginx, port, textwrap.dedent(f"""\
        map $request_method $put_etag {{ PUT "\\"$request_id\\""; default ""; }}
        server {{
            listen 127.0.0.1:{port};
            root {home / "www"};
            auth_basic "bench";
            auth_basic_user_file {home / "users"};
            default_type application/json;
            location = /status.php {{ auth_basic off; return 200 '{json.dumps(STATUS)}'; }}
            location = /ocs/v1.php/cloud/capabilities {{ return 200 '{json.dumps(CAPABILITIES)}'; }}
            location = /ocs/v1.php/cloud/user {{ return 200 '{answer_user}'; }}
            location /remote.php/dav/files/ {{
                if ($request_method = MKCOL) {{ rewrite ^(.*[^/])$ $1/ break; }}
                dav_methods PUT DELETE MKCOL COPY MOVE;
                dav_ext_methods PROPFIND OPTIONS;
                create_full_put_path on;
                add_header ETag $put_etag always;
            }}
        }}
        """))

    def account(n: int) -> Account:
        return Account(f"http://127.0.0.1:{port}", users[n],
                       _disk_holds(home / "www" / "remote.php" / "dav" / "files" / users[n]))

    return Target("nginx", nginx_version(nginx), True, account, lambda: _stop(daemon),
                  ["dav + dav-ext modules, 1 worker, auth_basic; /status.php, capabilities and cloud/user "
                   "answered by `return` in location blocks; MKCOL without a trailing slash rewritten to have "
                   "one (nginx refuses it with 409); an ETag header (the request id) added to PUT answers, "
                   "which nginx does not send and without which the client counts every upload as failed"])


def rclone_target(workdir: Path) -> Target:
    """`rclone serve webdav` over a new directory per account, the discovery answers as files in it."""
    running: list[Daemon] = []

    def account(n: int) -> Account:
        stop()
        user, home = f"bench{n}", workdir / f"rclone-{n}"
        files = home / "remote.php" / "dav" / "files" / user
        files.mkdir(parents=True)
        cloud = home / "ocs" / "v1.php" / "cloud"
        cloud.mkdir(parents=True)
        (home / "status.php").write_text(json.dumps(STATUS))
        (cloud / "capabilities").write_text(json.dumps(CAPABILITIES))
        (cloud / "user").write_text(json.dumps(user_answer(user)))
        port = free_port()
        daemon = Daemon(f"rclone-{n}", ["rclone", "--config", "/dev/null", "serve", "webdav", str(home),
                                        "--addr", f"127.0.0.1:{port}", "--user", user, "--pass", PASSWORD],
                        workdir)
        running.append(daemon)
        daemon.wait_answering(port, START_TIMEOUT)
        return Account(f"http://127.0.0.1:{port}", user, _disk_holds(files))

    def stop() -> None:
        while running:
            _stop(running.pop())

    version = _output(["rclone", "version"]).splitlines()[0].split()[-1]
    return Target("rclone", version, True, account, stop,
                  ["`rclone serve webdav` with its defaults (VFS cache off) on a local directory, --user/--pass; "
                   "status.php, capabilities and cloud/user are files in that directory (the query string is "
                   "ignored); a new process per repetition, as it serves one user"])

