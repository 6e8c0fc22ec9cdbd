"""A household's server as the disaster tests build it and compare it: real clients through the front door.

Shared by test_backup (a backup directory, a file replica) and test_backup_s3 (everything in a bucket):
`populate` makes users with app passwords, files with versions and a trash, a calendar, a contact, a share
and a link; `state_of` reads back everything that must survive; `kill_everything` is the machine dying.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.installation import ADMIN_PASSWORD, OnePort, clean_environ

USERS = {"alice": "alice's long password", "bob": "bob's long password"}
SECRET = "the mail password\n"


def hearth_in(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`hearth ARGS` in `cwd` with no --config: what a person types in a fresh clone."""
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=clean_environ(), timeout=timeout)


class Client:
    """Plain HTTP through the front door, as a user's client speaks it."""

    def __init__(self, port: int, user: str, password: str):
        self.port = port
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Authorization": self.auth, **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def ok(self, method: str, path: str, body=None, headers=None, expect=(200, 201, 204)) -> bytes:
        status, answer = self.request(method, path, body if not isinstance(body, dict) else json.dumps(body).encode(),
                                      {"Content-Type": "application/json"} if isinstance(body, dict) else headers)
        assert status in expect, f"{method} {path}: {status} {answer[:300]!r}"
        return answer

    def json(self, method: str, path: str, body=None):
        return json.loads(self.ok(method, path, body) or b"null")


def home(root: Path, extra: str = "", secret: bool = False) -> OnePort:
    """An installation in root/home (hearth.toml with `extra`); with `secret`, a mail password file that its
    [dav] names, as a file outside the data directory the backup must carry."""
    (root / "home").mkdir()
    if secret:
        (root / "home" / "smtp.secret").write_text(SECRET)
        extra = f'[dav]\nsmtp_password_file = "smtp.secret"\n{extra}'
    return OnePort(root / "home", extra)


def restore_into(where: Path, *args: str) -> subprocess.CompletedProcess:
    """`hearth restore ARGS` in the new, empty directory `where` (a fresh clone)."""
    where.mkdir(exist_ok=True)
    return hearth_in(where, "restore", *args)


def assert_consistent(where: Path) -> None:
    """`hearth sync check --verify` in `where` finds every chunk whole."""
    check = hearth_in(where, "sync", "check", "--verify")
    assert check.returncode == 0 and "consistent" in check.stdout, check.stdout + check.stderr


def write_many(h: OnePort, folder: str, count: int, size: int = 8192) -> None:
    """`count` files of random bytes (a chunk each) into the admin's `folder`, over one connection."""
    admin = Client(h.port, "admin", ADMIN_PASSWORD)
    admin.ok("MKCOL", f"/files/admin/{folder}")
    connection = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
    try:
        for n in range(count):
            connection.request("PUT", f"/files/admin/{folder}/{n}.bin", body=os.urandom(size),
                               headers={"Authorization": admin.auth})
            response = connection.getresponse()
            response.read()
            assert response.status == 201
    finally:
        connection.close()


def start_backup(h: OnePort, *args: str) -> subprocess.Popen:
    """`hearth backup ARGS` running on its own, to be killed."""
    return subprocess.Popen([sys.executable, "-m", "services.cli", "--config", str(h.config), "backup", *args],
                            env=clean_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_when(process: subprocess.Popen, started) -> None:
    """SIGKILL `process` as soon as started() says it wrote something (polled, not slept on)."""
    deadline = time.monotonic() + 60
    while not started() and time.monotonic() < deadline:
        assert process.poll() is None, f"the backup ended before it could be killed: {process.communicate()}"
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()


def kill_everything(var: Path) -> None:
    """SIGKILL every wrapper and daemon the pid files name: no shutdown of any kind."""
    pids = set()
    for pidfile in (var / "run").glob("*.pid"):
        try:
            pids.add(int(pidfile.read_text().split()[0]))
        except (ValueError, IndexError, OSError):
            continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:  # wait until each is gone, so the ports and locks are free
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)


def populate(h: OnePort) -> dict[str, str]:
    """Users with app passwords, files with versions and a trash, a calendar, a contact, a share and a link,
    all made through the front door. Returns each user's app password."""
    admin = Client(h.port, "admin", ADMIN_PASSWORD)
    for name, password in USERS.items():
        admin.ok("POST", "/api/v1/users", {"name": name, "password": password})
    tokens = {}
    for name, password in USERS.items():
        tokens[name] = Client(h.port, name, password).json(
            "POST", "/api/v1/me/app-passwords", {"label": "phone"})["password"]
    alice = Client(h.port, "alice", tokens["alice"])
    alice.ok("MKCOL", "/files/alice/Documents")
    for n in range(3):  # three revisions: two kept versions
        alice.ok("PUT", "/files/alice/Documents/notes.txt", f"notes, take {n}\n".encode() * 1000)
    alice.ok("PUT", "/files/alice/Documents/photo.bin", os.urandom(3 << 20))  # several chunks
    alice.ok("PUT", "/files/alice/Documents/old.txt", b"soon in the trash\n")
    alice.ok("DELETE", "/files/alice/Documents/old.txt")
    alice.ok("PUT", "/dav/calendars/alice/calendar/dentist.ics", DENTIST, {"Content-Type": "text/calendar"})
    alice.ok("PUT", "/dav/addressbooks/alice/contacts/ann.vcf", CARD, {"Content-Type": "text/vcard"})
    folder = next(f for f in alice.json("GET", "/sync/v1/folders") if f["name"] == "Documents")
    alice.ok("POST", f"/sync/v1/folders/{folder['id']}/shares", {"user": "bob", "mode": "rw"})
    alice.json("POST", "/files/api/v1/links", {"folder": folder["id"], "path": "notes.txt", "label": "notes"})
    bob = Client(h.port, "bob", tokens["bob"])
    bob.ok("MKCOL", "/files/bob/Music")
    bob.ok("PUT", "/files/bob/Music/song.ogg", os.urandom(100_000))
    return tokens


def state_of(h, tokens: dict[str, str], where: Path) -> dict:
    """What must survive: every user's export, trash, versions and links; whether each app password works."""
    state = {}
    for name in ["admin", *USERS]:
        result = h.hearth("export", name, str(where / name))
        assert result.returncode == 0, result.stderr
        manifest = json.loads((where / name / "manifest.json").read_text())
        del manifest["exported_at"]
        state[name] = manifest  # every file's path, size and SHA-256, calendars, contacts, shares, counts
    alice = Client(h.port, "alice", tokens["alice"])
    folder = next(f for f in alice.json("GET", "/sync/v1/folders") if f["name"] == "Documents")
    state["trash"] = alice.json("GET", f"/sync/v1/folders/{folder['id']}/trash")
    state["versions"] = alice.json("GET", f"/sync/v1/folders/{folder['id']}/versions?path=notes.txt")
    state["links"] = alice.json("GET", "/files/api/v1/links")
    state["bob's folders"] = sorted(f["name"] for f in Client(h.port, "bob", tokens["bob"]).json(
        "GET", "/sync/v1/folders"))
    state["app passwords"] = {name: Client(h.port, name, token).request("GET", "/api/v1/me")[0]
                              for name, token in tokens.items()}
    state["wrong password"] = Client(h.port, "alice", "not it").request("GET", "/api/v1/me")[0]
    return state


class Restored(OnePort):
    """An installation in a fresh directory whose hearth.toml came from the backup (nothing written here)."""

    def __init__(self, root: Path, port: int):
        self.root, self.port, self.url = root, port, f"http://127.0.0.1:{port}"
        self.config, self.var = root / "hearth.toml", root / "var"


DENTIST = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\nUID:dentist\r\n"
           b"DTSTAMP:20250101T000000Z\r\nDTSTART;VALUE=DATE:20250320\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\n"
           b"END:VCALENDAR\r\n")
CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Example\r\nEMAIL:ann@example.org\r\nEND:VCARD\r\n"
