"""Several processes of the sync, files and DAV daemons behind the front end (`[NAME] instances = 2`).

`hearth up` starts every instance under the supervisor; the front end spreads
requests over them (each answer names its instance in X-Hearth-Instance); a
long poll waiting on one sync instance wakes when another commits; and kill -9
of one instance during a stream of GETs and PROPFINDs fails none of them while
the supervisor brings it back.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from services.core.config import ConfigError, load_config
from services.core.instances import DaemonInstance, extra_instances, find, listen
from services.core.tree import ChunkStore, chunk_stream
from tests.installation import ADMIN_PASSWORD, OnePort, running
from tests.stores import backend, home_store

AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
SCALED = ("sync", "files", "dav")
PROPFIND = b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
PROPFIND_SIZES = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontentlength/>'
                  b'</d:prop></d:propfind>')


class UnixConnection(http.client.HTTPConnection):
    """HTTP over one instance's own Unix socket, past the front end."""

    def __init__(self, path: Path, timeout: float = 10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


def ask(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
        headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    try:
        connection.request(method, path, body=body, headers={**AUTH, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    root = tmp_path_factory.mktemp("instances")
    h = OnePort(root, textwrap.dedent("""\
        [supervisor]
        restart_delay = 0.2
        ready_timeout = 30
        [sync]
        instances = 2
        [files]
        instances = 2
        [dav]
        instances = 2
        """))
    with running(h) as up:
        h.up_output = up.stdout
        yield h


def front(hearth) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", hearth.port, timeout=15)


def test_up_starts_and_status_shows_every_instance(hearth):
    for daemon in SCALED:
        assert f"{daemon}_2: ready" in hearth.up_output
    rows = hearth.status_rows()
    for name in (*SCALED, *(f"{daemon}_2" for daemon in SCALED)):
        assert rows[name][1] == "running", rows[name]
    pids = {hearth.state(name)["child_pid"] for name in (*SCALED, *(f"{d}_2" for d in SCALED))}
    assert len(pids) == 6  # six processes, each with its own pid, log and socket
    for daemon in SCALED:
        assert (hearth.var / "run" / f"{daemon}_2.sock").is_socket()
        assert (hearth.var / "log" / f"{daemon}_2.log").exists()


@pytest.mark.parametrize("method, path, body, daemon", [
    ("GET", "/sync/v1/folders", None, "sync"),
    ("PROPFIND", "/files/admin/", PROPFIND, "files"),
    ("PROPFIND", "/dav/", PROPFIND, "dav"),
])
def test_the_front_spreads_requests_over_both_instances(hearth, method, path, body, daemon):
    served = Counter()
    for _ in range(6):
        status, headers, _ = ask(front(hearth), method, path, body, {"Depth": "0"})
        assert status in (200, 207)
        served[headers["X-Hearth-Instance"]] += 1
    assert served == {daemon: 3, f"{daemon}_2": 3}  # round robin


def _long_poll(instance: Path, folder: int, since: int, result: dict) -> None:
    status, _, body = ask(UnixConnection(instance, timeout=30), "GET",
                          f"/sync/v1/folders/{folder}/changes?since={since}&wait=20")
    result.update(status=status, body=json.loads(body), at=time.monotonic())


def _wake_latency(hearth, poll_on: str, commit_on: str, folder: int, path: str) -> float:
    """Seconds from sending a change to `commit_on` (a sync mkdir, or a WebDAV PUT to a files instance) to
    the answer of the long poll waiting on `poll_on`."""
    run = hearth.var / "run"
    _, _, body = ask(UnixConnection(run / f"{poll_on}.sock"), "GET", f"/sync/v1/folders/{folder}/changes")
    cursor = json.loads(body)["cursor"]
    result: dict = {}
    poll = threading.Thread(target=_long_poll, args=(run / f"{poll_on}.sock", folder, cursor, result))
    poll.start()
    time.sleep(0.5)  # not a synchronisation: the poll must be waiting, else it would answer at once anyway
    assert not result, "the poll answered before any change"
    sent = time.monotonic()
    if commit_on.startswith("files"):
        status, headers, _ = ask(UnixConnection(run / f"{commit_on}.sock"), "PUT", f"/files/admin/photos/{path}",
                                 b"taken on the phone")
    else:
        status, headers, _ = ask(UnixConnection(run / f"{commit_on}.sock"), "POST",
                                 f"/sync/v1/folders/{folder}/mkdir",
                                 json.dumps({"path": path, "device": "laptop"}).encode(),
                                 {"Content-Type": "application/json"})
    assert status in (200, 201) and headers["X-Hearth-Instance"] == commit_on
    poll.join(25)
    assert result["status"] == 200
    assert [change["path"] for change in result["body"]["changes"]] == [path]
    return result["at"] - sent


def test_a_commit_on_one_sync_instance_wakes_a_long_poll_on_the_other(hearth):
    status, _, body = ask(front(hearth), "POST", "/sync/v1/folders", json.dumps({"name": "photos"}).encode(),
                          {"Content-Type": "application/json"})
    assert status in (200, 201)
    folder = json.loads(body)["id"]
    same = _wake_latency(hearth, "sync", "sync", folder, "same-instance")
    across = _wake_latency(hearth, "sync", "sync_2", folder, "other-instance")
    back = _wake_latency(hearth, "sync_2", "sync", folder, "and-back")
    webdav = _wake_latency(hearth, "sync_2", "files_2", folder, "from-webdav.txt")
    print(f"long poll wake after a commit: same instance {same * 1000:.0f} ms, other instance "
          f"{across * 1000:.0f} ms and {back * 1000:.0f} ms, a WebDAV PUT {webdav * 1000:.0f} ms")
    # The poll's own re-read of the journal comes only every 5 s: well under that is the watcher's wake.
    assert across < 1.0 and back < 1.0 and webdav < 1.0


class Stream(threading.Thread):
    """GETs and PROPFINDs through the front end, one after another, until stopped; every answer kept."""

    def __init__(self, hearth, method: str, path: str, body: bytes | None):
        super().__init__(daemon=True)
        self.hearth, self.method, self.path, self.body = hearth, method, path, body
        self.answers: list[tuple[int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        connection = front(self.hearth)  # kept alive, as clients do
        while not self.stop.is_set():
            try:
                connection.request(self.method, self.path, body=self.body, headers={**AUTH, "Depth": "1"})
                response = connection.getresponse()
                response.read()
                self.answers.append((response.status, response.headers.get("X-Hearth-Instance", "")))
            except (OSError, http.client.HTTPException) as error:
                self.answers.append((0, repr(error)))
                connection.close()
                connection = front(self.hearth)


def test_kill_9_of_one_instance_fails_no_request_and_it_is_restarted(hearth):
    streams = [Stream(hearth, "GET", "/sync/v1/folders", None),
               Stream(hearth, "PROPFIND", "/files/admin/", PROPFIND),
               Stream(hearth, "PROPFIND", "/dav/", PROPFIND)]
    for stream in streams:
        stream.start()
    try:
        hearth.wait_for(lambda: all(len(s.answers) >= 20 for s in streams), 30, "the streams to get going")
        killed = {name: hearth.state(name)["child_pid"] for name in ("sync_2", "files_2", "dav_2")}
        counts = [len(s.answers) for s in streams]
        for pid in killed.values():
            os.kill(pid, signal.SIGKILL)

        def restarted() -> bool:
            states = {name: hearth.state(name) for name in killed}
            return all(s["state"] == "running" and s.get("child_pid") not in (None, killed[n])
                       for n, s in states.items())

        hearth.wait_for(restarted, 30, "the supervisor to restart the killed instances")
        # ... and until each restarted instance answers through the front end again
        hearth.wait_for(lambda: all(f"{daemon}_2" in {i for _, i in s.answers[count:][-20:]}
                                    for daemon, s, count in zip(SCALED, streams, counts)), 30,
                        "the restarted instances to serve again")
    finally:
        for stream in streams:
            stream.stop.set()
        for stream in streams:
            stream.join(20)
    for daemon, stream, count in zip(SCALED, streams, counts):
        failed = [answer for answer in stream.answers if answer[0] not in (200, 207)]
        assert not failed, f"{daemon}: {failed[:3]}"
        during = Counter(instance for _, instance in stream.answers[count:])
        print(f"{daemon}: {len(stream.answers)} requests, none failed; from the kill on: {dict(during)}")
        assert during[daemon] > 0 and during[f"{daemon}_2"] > 0, during
    for name, pid in killed.items():
        assert hearth.state(name)["restarts"] >= 1


def _propfind_listing(hearth) -> dict[str, bytes]:
    """Each resource under /files/admin/ with its propstat, as a Depth: 1 PROPFIND through the front end shows it."""
    status, _, body = ask(front(hearth), "PROPFIND", "/files/admin/", PROPFIND_SIZES, {"Depth": "1"})
    assert status == 207, body
    return {response.findtext("{DAV:}href"): ET.tostring(response.find("{DAV:}propstat"))
            for response in ET.fromstring(body).iter("{DAV:}response")}


def _staged(hearth, chunk_id: str) -> bool:
    """Whether an upload still being received has staged `chunk_id`: on local disk as a temp file beside the
    chunk's place, in a bucket as the object itself (an object store stages by writing it)."""
    store = home_store(hearth.config)
    try:
        if isinstance(backend(store), ChunkStore):
            target = backend(store).path(chunk_id)
            return any(target.parent.glob(f".{chunk_id}.*.tmp"))
        return bool(store.has_many([chunk_id]))
    finally:
        store.close()


def test_kill_9_mid_put_answers_503_writes_nothing_and_the_retry_lands(hearth):
    """A PUT is not replayed (its instance may have carried part of it out): the instance receiving one dies
    mid-body, the client gets 503 with Retry-After, the file keeps its old content, and the client's own
    retry succeeds on the other instance while the supervisor brings the killed one back."""
    path = "/files/admin/film.mkv"
    status, _, _ = ask(front(hearth), "PUT", path, b"the old cut")
    assert status in (201, 204)
    before = _propfind_listing(hearth)
    body = os.urandom(24 * 1024 * 1024)
    first_chunk = next(chunk_stream(io.BytesIO(body))).id
    # The front end takes turns: the instance after the one that answers this PROPFIND receives the PUT.
    _, headers, _ = ask(front(hearth), "PROPFIND", "/files/admin/", PROPFIND, {"Depth": "0"})
    receiver = "files" if headers["X-Hearth-Instance"] == "files_2" else "files_2"
    survivor = "files_2" if receiver == "files" else "files"
    victim = hearth.state(receiver)
    half_sent = threading.Event()

    def halves():
        yield body[:len(body) // 2]
        assert half_sent.wait(30)
        yield body[len(body) // 2:]

    answer: dict = {}

    def upload() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", hearth.port, timeout=30)
        try:
            connection.request("PUT", path, body=halves(), headers={**AUTH, "Content-Length": str(len(body))})
            response = connection.getresponse()
            answer.update(status=response.status, headers=response.headers, body=response.read())
        except (OSError, http.client.HTTPException) as error:
            answer.update(status=0, error=repr(error))
        finally:
            connection.close()

    client = threading.Thread(target=upload, daemon=True)
    client.start()
    try:
        hearth.wait_for(lambda: _staged(hearth, first_chunk), 30, f"{receiver} to stage the upload's first chunk")
        os.kill(victim["child_pid"], signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        half_sent.set()
    client.join(40)
    assert not client.is_alive(), "the client got no answer"
    print(f"PUT cut off by kill -9 of {receiver}: {answer.get('status')} {time.monotonic() - killed_at:.2f} s "
          f"after the kill: {answer.get('body', answer.get('error'))!r}")
    assert answer["status"] == 503, answer
    assert int(answer["headers"]["Retry-After"]) >= 1
    assert receiver in json.loads(answer["body"])["reason"], answer["body"]

    status, _, content = ask(front(hearth), "GET", path)
    assert (status, content) == (200, b"the old cut")
    assert _propfind_listing(hearth) == before  # no partial file, no new name beside it

    status, headers, _ = ask(front(hearth), "PUT", path, body)  # the client's retry
    assert status == 204 and headers["X-Hearth-Instance"] == survivor, (status, headers)
    status, _, content = ask(front(hearth), "GET", path)
    assert status == 200 and content == body

    def serving_again() -> bool:
        try:
            status, headers, _ = ask(UnixConnection(hearth.var / "run" / f"{receiver}.sock"), "GET", "/healthz")
        except OSError:  # not listening yet
            return False
        return status == 200 and headers["X-Hearth-Instance"] == receiver

    hearth.wait_for(serving_again, 30, f"the supervisor to bring {receiver} back")
    state = hearth.state(receiver)
    assert state["restarts"] == victim["restarts"] + 1 and state["child_pid"] != victim["child_pid"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fewer_instances_stop_the_ones_no_longer_configured(hearth):
    """Runs last of the module's `hearth up` tests: it takes the installation back to one instance each."""
    extra = [f"{daemon}_2" for daemon in SCALED]
    pids = {name: hearth.state(name)["child_pid"] for name in extra}
    hearth.config.write_text(hearth.config.read_text().replace("instances = 2", "instances = 1"))
    up = hearth.hearth("up")
    assert up.returncode == 0, up.stdout + up.stderr
    for name in extra:
        assert f"{name}: stopped" in up.stdout
        assert not (hearth.var / "run" / "rc.d" / f"hearth_{name}").exists()
    hearth.wait_for(lambda: not any(_alive(pid) for pid in pids.values()), 20, "the extra instances to exit")
    assert not set(extra) & set(hearth.status_rows())


def test_instances_are_named_beside_the_first(tmp_path):
    config_file = tmp_path / "hearth.toml"
    config_file.write_text('[sync]\ninstances = 3\nlisten = "127.0.0.1:9100"\n[dav]\ninstances = 2\n')
    config = load_config(config_file, environ={})
    assert [i.name for i in extra_instances(config)] == ["sync_2", "sync_3", "dav_2"]
    assert listen(config, DaemonInstance("sync", 3)) == "127.0.0.1:9102"
    assert listen(config, DaemonInstance("dav", 2)) == "unix:run/dav_2.sock"
    assert listen(config, DaemonInstance("dav", 1)) == "unix:run/dav.sock"
    assert find(config, "sync_3") == DaemonInstance("sync", 3)
    assert find(config, "sync_4") is None and find(config, "files_2") is None and find(config, "api") is None


@pytest.mark.parametrize("text, error", [
    ("[sync]\ninstances = 0\n", "[sync] instances: expected 1 to 16, got 0"),
    ("[files]\ninstances = 17\n", "[files] instances: expected 1 to 16, got 17"),
    ("[api]\ninstances = 2\n", "[api] instances: unknown key"),
    ('[[service]]\nname = "sync_2"\ncommand = "true"\n', "name: 'sync_2' is already taken"),
])
def test_a_wrong_instances_setting_is_refused_at_start(tmp_path, text, error):
    config_file = tmp_path / "hearth.toml"
    config_file.write_text(text)
    with pytest.raises(ConfigError, match=error.replace("[", r"\[").replace("]", r"\]")):
        load_config(config_file, environ={})


def test_the_change_feed_wakes_on_another_connections_commit_and_only_for_its_folder(tmp_path):
    """The watcher alone (the long poll's own re-read comes only every 5 s): a commit by another process
    wakes the folder it changed within a few WATCH_INTERVALs, and not a folder it did not touch."""
    import asyncio

    from services.core.db import migrate, open_db
    from services.core.schema import MIGRATION_SETS
    from services.sync.server.feed import ChangeFeed

    path = tmp_path / "hearth.sqlite3"
    migrate(path, MIGRATION_SETS)
    other = open_db(path)  # another process's connection, as far as SQLite can tell
    for name in ("photos", "music"):
        other.execute("INSERT INTO folders (owner, name, created_at) VALUES ('alice', ?, '2026-01-01')", [name])

    async def main() -> tuple[float, bool]:
        feed = ChangeFeed(path)
        photos, music = feed.event(1), feed.event(2)
        await asyncio.sleep(0.2)  # the watcher's first look woke both once: a poll then reads again
        photos, music = feed.event(1), feed.event(2)
        await asyncio.sleep(0.2)
        assert not photos.is_set() and not music.is_set()
        began = time.monotonic()
        await asyncio.to_thread(other.execute, "UPDATE folders SET seq = seq + 1 WHERE id = 1")
        await asyncio.wait_for(photos.wait(), 2)
        woke = time.monotonic() - began
        await asyncio.sleep(0.2)
        quiet = not music.is_set()
        await feed.close()
        return woke, quiet

    woke, quiet = asyncio.run(main())
    assert woke < 0.5 and quiet, (woke, quiet)
