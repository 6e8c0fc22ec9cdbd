"""Randomised model-based test of sync: three devices, random file operations, crashes.

Three clients (devices A, B, C; user alice; folder Docs) share one real sync daemon.
A seeded generator (random.Random(seed)) drives everything: create / modify / append /
delete / rename / chmod +-x of small files (<= 64 KiB, a small name alphabet so that
names collide, directories up to depth 2), mkdir / rmdir of empty directories, `--once`
syncs of random clients (one of them sometimes while the server is SIGKILLed), long-running clients left to run a random short while (with file operations
under their feet) and then stopped with SIGTERM or killed with SIGKILL, and SIGKILL +
restart of the server (on the same home and port).

Then quiescence: with the server up, every client runs `--once --confirm-deletes` in
rounds (A, B, C) until a whole round changes nothing, and

  (a) the three replicas are identical (content, mtime, exec bit) and match the server's
      current state (every live path on the server exists here, with the same size, and
      nothing else does);
  (b) no content was lost: every content that was on a client's disk when a `--once`
      of that client ran to success (or when quiescence began) still exists in some
      replica (under its name or as a conflict copy) or as some kept server version of
      some path. Content a user overwrote or deleted before any sync could see it is
      the user's own doing and is not required.

On failure the message carries the seed, the op log (replay with the same seed) and the
tails of the client and server logs.

Environment:
  HEARTH_SYNC_MODEL_SEEDS   comma-separated seeds to run, one test each (default "1,2,3")
  HEARTH_SYNC_MODEL_STEPS   random steps per seed (default 40: the three default seeds take
                            about a minute on 2 cores; a step costs ~0.6 s). The per-test
                            timeout grows with it. A long soak:
      HEARTH_SYNC_MODEL_SEEDS=7,8 HEARTH_SYNC_MODEL_STEPS=2000 .venv/bin/pytest -s tests/test_sync_model.py
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from services.core.tree import chunk_stream
from tests.installation import clean_environ
from tests.sync_harness import REPO, Client, tree
from tests.test_sync_server import PASSWORDS, SyncDaemon

SEEDS = [int(s) for s in os.environ.get("HEARTH_SYNC_MODEL_SEEDS", "1,2,3").split(",") if s.strip()]
STEPS = int(os.environ.get("HEARTH_SYNC_MODEL_STEPS", "40"))

DEVICES = ("A", "B", "C")
FILE_NAMES = ("a.txt", "b.txt", "c.md", "e", "f.bin", "d1")  # "d1" is also a directory name: file/dir clashes
DIR_NAMES = ("d1", "d2")
MAX_SIZE = 64 * 1024
QUIESCENCE_ROUNDS = 8


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_ids(data: bytes) -> tuple[str, ...]:
    return tuple(c.id for c in chunk_stream(io.BytesIO(data)))


class Model:
    def __init__(self, seed: int, base: Path):
        self.seed = seed
        self.rng = random.Random(seed)
        self.base = base
        (base / "server").mkdir()
        self.server = SyncDaemon(base / "server")
        self.clients: dict[str, Client] = {}
        self.oplog: list[str] = []
        self.written: dict[str, tuple[str, ...]] = {}    # sha -> chunk ids, every content an op produced
        self.required: dict[str, str] = {}               # sha -> where it was seen when it had to be kept
        self.chunks_of: dict[str, tuple[str, ...]] = {}  # sha -> chunk ids, for required contents
        self.folder_id: int | None = None
        self.contents: list[bytes] = []                  # earlier contents, sometimes written again

    # --- plumbing ------------------------------------------------------------

    def log(self, line: str) -> None:
        self.oplog.append(line)

    def setup(self) -> None:
        self.server.add_user("alice")
        self.server.start()
        for device in DEVICES:
            self.clients[device] = Client(self.server, self.base / device, device=device)

    def kill_server(self) -> None:
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=30)
        self.server.stderr.close()

    def restart_server(self) -> None:
        self.server.restart()

    def launch(self, client: Client) -> None:
        """The long-running client, without waiting for its first cycle."""
        log = open(client.log_path, "a")
        client.process = subprocess.Popen(client.argv("--debounce", "20"), stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=log, cwd=REPO,
                                          env=clean_environ(), text=True)
        log.close()
        client.process.stdin.write(PASSWORDS[client.user] + "\n")
        client.process.stdin.close()

    def teardown(self) -> None:
        for client in self.clients.values():
            if client.process is not None and client.process.poll() is None:
                client.kill()
        if getattr(self.server, "process", None) is not None and self.server.process.poll() is None:
            self.server.stop()

    def snapshot(self, device: str, when: str) -> dict[str, tuple[str, tuple[str, ...]]]:
        """sha -> (where, chunk ids) of every file on this replica's disk now."""
        found = {}
        for relpath, entry in tree(self.clients[device].root).items():
            if entry[0] == "file":
                digest = sha(entry[1])
                found.setdefault(digest, (f"{device}:{relpath} ({when})",
                                          self.written.get(digest) or chunk_ids(entry[1])))
        return found

    def require(self, snapshot: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        """These contents must survive (a sync ran to success over them, or quiescence began)."""
        for digest, (where, ids) in snapshot.items():
            if digest not in self.required:
                self.required[digest] = where
                self.chunks_of[digest] = ids

    def once(self, device: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        client = self.clients[device]
        before = self.snapshot(device, f"before --once at op {len(self.oplog)}")
        result = client.once(*extra, check=False)
        if result.returncode == 0:
            self.require(before)
        if check:
            assert result.returncode == 0, f"{device} --once {' '.join(extra)}: exit {result.returncode}\n" \
                                           f"{result.stderr[-3000:]}"
        return result

    # --- file operations on one replica -------------------------------------

    def new_content(self) -> bytes:
        rng = self.rng
        if self.contents and rng.random() < 0.1:
            data = rng.choice(self.contents)
        else:
            size = rng.choice([0, rng.randint(1, 64), rng.randint(1, 4096), rng.randint(1, MAX_SIZE)])
            data = rng.randbytes(size) if rng.random() < 0.5 else \
                (rng.choice([b"hello ", b"line\n", b"xyz"]) * (size // 3 + 1))[:size]
        return data

    def record(self, data: bytes) -> None:
        digest = sha(data)
        if digest not in self.written:
            self.written[digest] = chunk_ids(data)
            self.contents.append(data)

    def entries(self, device: str) -> tuple[list[str], list[str]]:
        files, dirs = [], [""]
        for relpath, entry in sorted(tree(self.clients[device].root).items()):
            (files if entry[0] == "file" else dirs).append(relpath)
        return files, dirs

    def file_op(self, device: str) -> None:
        rng = self.rng
        root = self.clients[device].root
        files, dirs = self.entries(device)
        kinds = ["create"] * 4 + ["mkdir"]
        if files:
            kinds += ["modify"] * 3 + ["append"] * 2 + ["delete"] * 2 + ["rename"] * 2 + ["chmod"]
        empty = [d for d in dirs[1:] if not os.listdir(root / d)]
        if empty:
            kinds += ["rmdir"]
        kind = rng.choice(kinds)
        if kind == "create":
            relpath = os.path.join(rng.choice(dirs), rng.choice(FILE_NAMES))
            if (root / relpath).is_dir():
                self.log(f"{device}: create {relpath}: a directory is there (nothing)")
                return
            data = self.new_content()
            self.record(data)
            (root / relpath).write_bytes(data)
            self.log(f"{device}: create {relpath} ({len(data)} bytes, {sha(data)[:8]})")
        elif kind == "modify":
            relpath = rng.choice(files)
            path = root / relpath
            old = path.read_bytes()
            if old and rng.random() < 0.5:  # in place: same size, same inode
                offset = rng.randrange(len(old))
                patch = rng.randbytes(min(rng.randint(1, 100), len(old) - offset))
                data = old[:offset] + patch + old[offset + len(patch):]
                with open(path, "r+b") as f:
                    f.seek(offset)
                    f.write(patch)
            else:
                data = self.new_content()
                path.write_bytes(data)
            self.record(data)
            self.log(f"{device}: modify {relpath} ({len(data)} bytes, {sha(data)[:8]})")
        elif kind == "append":
            relpath = rng.choice(files)
            path = root / relpath
            extra = rng.randbytes(rng.randint(1, 2000))
            data = path.read_bytes() + extra
            if len(data) > MAX_SIZE:
                data = extra
                path.write_bytes(data)
            else:
                with open(path, "ab") as f:
                    f.write(extra)
            self.record(data)
            self.log(f"{device}: append {relpath} ({len(data)} bytes, {sha(data)[:8]})")
        elif kind == "delete":
            relpath = rng.choice(files)
            (root / relpath).unlink()
            self.log(f"{device}: delete {relpath}")
        elif kind == "rename":
            relpath = rng.choice(files)
            target = os.path.join(rng.choice(dirs), rng.choice(FILE_NAMES))
            if (root / target).is_dir():
                self.log(f"{device}: rename {relpath} onto directory {target} (nothing)")
                return
            if target == relpath:
                self.log(f"{device}: rename {relpath} onto itself (nothing)")
                return
            os.rename(root / relpath, root / target)
            self.log(f"{device}: rename {relpath} -> {target}")
        elif kind == "chmod":
            relpath = rng.choice(files)
            path = root / relpath
            mode = path.stat().st_mode & 0o777
            path.chmod(mode & ~0o111 if mode & 0o100 else mode | 0o111)
            self.log(f"{device}: chmod {relpath} {'-x' if mode & 0o100 else '+x'}")
        elif kind == "mkdir":
            parent = rng.choice([d for d in dirs if d.count("/") < 1] or [""])
            relpath = os.path.join(parent, rng.choice(DIR_NAMES))
            if (root / relpath).is_file():
                self.log(f"{device}: mkdir {relpath}: a file is there (nothing)")
                return
            (root / relpath).mkdir(exist_ok=True)
            self.log(f"{device}: mkdir {relpath}")
        elif kind == "rmdir":
            relpath = rng.choice(empty)
            (root / relpath).rmdir()
            self.log(f"{device}: rmdir {relpath}")
        time.sleep(0.02)  # no two writes of one file within one timestamp tick

    # --- the random run ------------------------------------------------------

    def step(self) -> None:
        rng = self.rng
        r = rng.random()
        device = rng.choice(DEVICES)
        if r < 0.55:
            self.file_op(device)
        elif r < 0.8:
            self.log(f"{device}: --once")
            self.once(device)
        elif r < 0.9:
            self.running_window(device)
        elif r < 0.95:
            self.once_while_server_dies(device)
        else:
            self.log("server: SIGKILL + restart")
            self.kill_server()
            if rng.random() < 0.5:
                self.file_op(device)
            self.restart_server()

    def once_while_server_dies(self, device: str) -> None:
        """`--once` in flight while the server is SIGKILLed and restarted; it may fail."""
        client = self.clients[device]
        before = self.snapshot(device, f"before --once at op {len(self.oplog)}")
        log = open(client.log_path, "a")
        process = subprocess.Popen(client.argv("--once"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=log, cwd=REPO, env=clean_environ(), text=True)
        log.close()
        process.stdin.write(PASSWORDS[client.user] + "\n")
        process.stdin.close()
        pause = self.rng.uniform(0.1, 1.5)
        time.sleep(pause)
        self.kill_server()
        down = self.rng.uniform(0.05, 1.0)
        time.sleep(down)
        self.restart_server()
        code = process.wait(timeout=120)
        if code == 0:
            self.require(before)
        self.log(f"{device}: --once, server SIGKILL after {pause:.2f}s, down {down:.2f}s: exit {code}")

    def running_window(self, device: str) -> None:
        rng = self.rng
        client = self.clients[device]
        self.launch(client)
        how = rng.choice(["SIGTERM", "SIGKILL"])
        actions = []
        server_killed = False
        for _ in range(rng.randint(0, 3)):
            pause = rng.uniform(0.05, 1.2)
            time.sleep(pause)
            actions.append(f"{pause:.2f}s")
            if rng.random() < 0.15 and not server_killed:
                self.kill_server()
                server_killed = True
                actions.append("server SIGKILL")
                time.sleep(rng.uniform(0.05, 0.5))
                self.restart_server()
                actions.append("server restarted")
            else:
                before = len(self.oplog)
                self.file_op(device)
                actions.append(self.oplog.pop(before))
        pause = rng.uniform(0.05, 1.5)
        time.sleep(pause)
        actions.append(f"{pause:.2f}s")
        exited = client.process.poll()
        if how == "SIGTERM":
            code = client.stop()
        else:
            client.kill()
            code = None
        self.log(f"{device}: run [{'; '.join(actions)}] then {how}"
                 + (f" (had exited {exited})" if exited is not None else "")
                 + (f" exit {code}" if code not in (None, 0) else ""))
        assert exited is None, f"{device}: the long-running client exited {exited} on its own"
        if how == "SIGTERM":
            # -SIGTERM: it was still starting up (before its signal handlers were installed)
            assert code in (0, -signal.SIGTERM), f"{device}: SIGTERM gave exit {code}"

    # --- the end -------------------------------------------------------------

    def server_state(self) -> tuple[dict[str, dict], int]:
        changes, since = [], 0
        while True:
            status, page = self.server.request("GET", f"/sync/v1/folders/{self.folder_id}/changes?since={since}",
                                               user="alice")
            assert status == 200, page
            changes += page["changes"]
            since = page["cursor"]
            if not page["more"]:
                break
        latest = {}
        for change in changes:
            latest[change["path"]] = change
        return latest, since

    def quiesce(self) -> None:
        self.log("--- quiescence ---")
        status, folders = self.server.request("GET", "/sync/v1/folders", user="alice")
        assert status == 200, folders
        ids = [f["id"] for f in folders if f["name"] == "Docs"]
        if not ids:  # no client ever reached the server: let one create the folder
            self.once("A", "--confirm-deletes")
            status, folders = self.server.request("GET", "/sync/v1/folders", user="alice")
            ids = [f["id"] for f in folders if f["name"] == "Docs"]
        self.folder_id = ids[0]
        for device in DEVICES:
            self.require(self.snapshot(device, "at quiescence"))
        for round_ in range(QUIESCENCE_ROUNDS):
            changed = False
            for device in DEVICES:
                before = (tree(self.clients[device].root), self.server_state()[1])
                self.once(device, "--confirm-deletes")
                after = (tree(self.clients[device].root), self.server_state()[1])
                changed |= before != after
            self.log(f"quiescence round {round_ + 1}: {'changes' if changed else 'nothing changed'}")
            if not changed:
                break
        else:
            raise AssertionError(f"no quiescence after {QUIESCENCE_ROUNDS} rounds")

    def check(self) -> None:
        trees = {d: self.clients[d].tree() for d in DEVICES}
        for device in ("B", "C"):
            if trees[device] != trees["A"]:
                raise AssertionError(f"replicas A and {device} differ:\n" + describe_diff(trees["A"], trees[device]))
        latest, _ = self.server_state()
        live = {p: c for p, c in latest.items() if not c["deleted"]}
        local = trees["A"]
        problems = []
        for relpath, change in sorted(live.items()):
            entry = local.get(relpath)
            if change["kind"] == "dir":
                if entry != ("dir",):
                    problems.append(f"server dir {relpath} is {entry and entry[0]} here")
            elif entry is None or entry[0] != "file" or len(entry[1]) != change["size"]:
                problems.append(f"server file {relpath} ({change['size']} bytes) is "
                                f"{'missing' if entry is None else entry[0] + ' of ' + str(len(entry[1]))} here")
        for relpath in sorted(set(local) - set(live)):
            problems.append(f"{relpath} is here but not live on the server")
        assert not problems, "replicas differ from the server:\n" + "\n".join(problems)

        found = {sha(e[1]) for e in local.values() if e[0] == "file"}
        server_lists = set()
        for relpath in latest:
            status, history = self.server.request(
                "GET", f"/sync/v1/folders/{self.folder_id}/versions?path={quote(relpath)}", user="alice")
            assert status == 200, history
            for version in history["versions"]:
                if not version["deleted"] and version["kind"] == "file":
                    server_lists.add(tuple(cid for cid, _ in version["chunks"]))
        lost = [f"{digest[:12]} first seen as {where}" for digest, where in self.required.items()
                if digest not in found and self.chunks_of[digest] not in server_lists]
        assert not lost, f"{len(lost)} content(s) lost:\n" + "\n".join(lost)

    def report(self) -> str:
        logs = []
        for device in DEVICES:
            logs.append(f"--- client {device} log (tail) ---\n{self.clients[device].log()[-6000:]}")
        logs.append(f"--- server log (tail) ---\n{self.server.log()[-3000:]}")
        return (f"\nseed {self.seed}, {STEPS} steps (replay: HEARTH_SYNC_MODEL_SEEDS={self.seed} "
                f"HEARTH_SYNC_MODEL_STEPS={STEPS})\n--- op log ---\n" + "\n".join(
                    f"{i:4d} {line}" for i, line in enumerate(self.oplog)) + "\n" + "\n".join(logs))


def describe_diff(a: dict, b: dict) -> str:
    lines = []
    for relpath in sorted(set(a) | set(b)):
        x, y = a.get(relpath), b.get(relpath)
        if x == y:
            continue

        def show(e):
            if e is None:
                return "absent"
            if e[0] == "dir":
                return "dir"
            return f"file {len(e[1])} bytes {sha(e[1])[:8]} mtime {e[2]} exec {e[3]}"
        lines.append(f"  {relpath}: {show(x)} vs {show(y)}")
    return "\n".join(lines)


@pytest.mark.timeout(240 + 3 * STEPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_converge_without_losing_data(seed, tmp_path):
    model = Model(seed, tmp_path)
    started = time.monotonic()
    try:
        model.setup()
        for _ in range(STEPS):
            model.step()
        model.quiesce()
        model.check()
    except Exception as error:
        raise AssertionError(f"{error.__class__.__name__}: {error}\n{model.report()}") from error
    finally:
        model.teardown()
    final = model.clients["A"].tree()
    conflicts = sum(1 for relpath in final if "(conflict from " in relpath)
    print(f"seed {seed}: {STEPS} steps, {len(model.oplog)} log lines, {len(model.required)} contents kept, "
          f"{len(final)} entries at the end ({conflicts} conflict copies), {time.monotonic() - started:.1f} s")
