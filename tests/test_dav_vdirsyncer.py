"""vdirsyncer as a real two-way sync client of the DAV daemon: a calendar and an address book.

vdirsyncer (the `test` extra, in this venv) runs as its own process against
alice's homes: `discover` finds her default calendar and address book from
/dav/ (the pair has `implicit = "create"`, so no prompt asks whether to create
the local side), `sync` brings them down, then changes on both sides meet:
an item created locally, one changed and one deleted on the server, one deleted
locally. After every sync both sides hold the same UIDs with the same bytes.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import icalendar
import pytest
import vobject
from defusedxml import ElementTree

from tests.daemons import PASSWORDS
from tests.dav_harness import EVENT, propfind

VDIRSYNCER = Path(sys.executable).with_name("vdirsyncer")
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nFN:%s\r\nN:;%s;;;\r\nEND:VCARD\r\n"


class Kind:
    """What differs between the calendar pair and the address book pair."""

    def __init__(self, name: str, storage: str, home: str, collection: str, ext: str, content_type: str):
        self.name, self.storage, self.home, self.collection = name, storage, home, collection
        self.ext, self.content_type = ext, content_type

    @property
    def path(self) -> str:
        return f"{self.home}{self.collection}/"

    def item(self, uid: str, title: str) -> bytes:
        if self.ext == ".ics":
            return (EVENT % uid.encode()).replace(b"SUMMARY:Dentist", b"SUMMARY:" + title.encode())
        return VCARD % (uid.encode(), title.encode(), title.encode())

    def uid(self, body: bytes) -> str:
        if self.ext == ".ics":
            return str(icalendar.Calendar.from_ical(body).walk("VEVENT")[0]["UID"])
        return vobject.readOne(body.decode()).uid.value


CALENDAR = Kind("calendar", "caldav", "/dav/calendars/alice/", "calendar", ".ics", "text/calendar")
ADDRESSBOOK = Kind("addressbook", "carddav", "/dav/addressbooks/alice/", "contacts", ".vcf", "text/vcard")


def write_config(dav, kind: Kind, root: Path) -> Path:
    config = root / "config"
    config.write_text(f"""
[general]
status_path = "{root / 'status'}/"

[pair {kind.name}]
a = "{kind.name}_local"
b = "{kind.name}_remote"
collections = ["from a", "from b"]
implicit = "create"

[storage {kind.name}_local]
type = "filesystem"
path = "{root / 'local'}/"
fileext = "{kind.ext}"

[storage {kind.name}_remote]
type = "{kind.storage}"
url = "{dav.url}"
username = "alice"
password = "{PASSWORDS['alice']}"
""")
    return config


def vdirsyncer(config: Path, *argv: str) -> str:
    """Run it to completion; its output, or a failure showing that output."""
    result = subprocess.run([str(VDIRSYNCER), "--config", str(config), *argv], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"vdirsyncer {' '.join(argv)} exited {result.returncode}:\n{output}"
    return output


def server_items(dav, kind: Kind) -> dict[str, bytes]:
    """UID -> bytes of every item in the server's collection (PROPFIND Depth 1, then GET each)."""
    status, _, body = propfind(dav, kind.path, "<D:getetag/>", depth="1")
    assert status == 207, body
    items = {}
    for href in ElementTree.fromstring(body).iter("{DAV:}href"):
        path = href.text.strip()
        if unquote(path).rstrip("/") == kind.path.rstrip("/"):
            continue
        status, _, data = dav.request("GET", path, user="alice")
        assert status == 200, (path, status)
        items[kind.uid(data)] = data
    return items


def local_items(kind: Kind, root: Path) -> dict[str, bytes]:
    folder = root / "local" / kind.collection
    return {kind.uid(path.read_bytes()): path.read_bytes() for path in folder.glob("*" + kind.ext)}


def assert_same(dav, kind: Kind, root: Path, uids: set[str]) -> dict[str, bytes]:
    server, local = server_items(dav, kind), local_items(kind, root)
    assert set(server) == uids, f"server has {sorted(server)}, expected {sorted(uids)}"
    assert set(local) == uids, f"local has {sorted(local)}, expected {sorted(uids)}"
    differ = [uid for uid in uids if server[uid] != local[uid]]
    assert not differ, f"bytes differ for {differ}: server {server[differ[0]]!r} local {local[differ[0]]!r}"
    return server


def put(dav, kind: Kind, name: str, body: bytes, expect: int) -> None:
    status, _, answer = dav.request("PUT", kind.path + name, body, user="alice",
                                    headers={"Content-Type": kind.content_type})
    assert status == expect, answer


@pytest.mark.skipif(not VDIRSYNCER.exists(), reason="vdirsyncer is not installed: pip install -e '.[test]'")
@pytest.mark.parametrize("kind", [CALENDAR, ADDRESSBOOK], ids=lambda kind: kind.name)
def test_vdirsyncer_two_way_sync(dav, tmp_path, kind):
    for uid in ("server-1", "server-2"):
        put(dav, kind, uid + kind.ext, kind.item(uid, f"Made on the server {uid}"), 201)
    config = write_config(dav, kind, tmp_path)

    output = vdirsyncer(config, "discover")
    assert f"{kind.name}_remote" in output and kind.collection in output, output
    vdirsyncer(config, "sync")
    assert_same(dav, kind, tmp_path, {"server-1", "server-2"})

    # A local create and a server-side change meet in one sync.
    (tmp_path / "local" / kind.collection / ("local-1" + kind.ext)).write_bytes(kind.item("local-1", "Made locally"))
    changed = kind.item("server-1", "Changed on the server")
    put(dav, kind, "server-1" + kind.ext, changed, 204)
    vdirsyncer(config, "sync")
    both = assert_same(dav, kind, tmp_path, {"server-1", "server-2", "local-1"})
    assert both["server-1"] == changed and both["local-1"] == kind.item("local-1", "Made locally")

    # A delete on each side, no conflict: each reaches the other side.
    status, _, _ = dav.request("DELETE", kind.path + "server-2" + kind.ext, user="alice")
    assert status == 204
    local_file = next(path for path in (tmp_path / "local" / kind.collection).iterdir()
                      if kind.uid(path.read_bytes()) == "local-1")
    local_file.unlink()
    vdirsyncer(config, "sync")
    assert_same(dav, kind, tmp_path, {"server-1"})

    # Nothing left to do: a further sync changes nothing on either side.
    output = vdirsyncer(config, "sync")
    assert "Copying" not in output and "Deleting" not in output, output
    assert_same(dav, kind, tmp_path, {"server-1"})
