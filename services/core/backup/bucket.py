"""A server's home in an S3 bucket: s3://BUCKET/PREFIX holds everything a new machine needs.

    PREFIX/chunks/ID              the blob store ([storage] blobs = "s3" with s3_prefix = PREFIX)
    PREFIX/db/…                   the Litestream replica of the database ([backup] replica = "s3")
    PREFIX/server/hearth.toml     the config file
    PREFIX/server/files/N         the files hearth.toml names (TLS key, secrets), as in a backup directory
    PREFIX/server/backup.json     the list of those, with their SHA-256, uploaded last

The config set is uploaded by `hearth backup replicate` (what the
hearth_litestream service runs) each time it starts, before Litestream takes
over: `hearth up`, and `hearth service litestream restart` after an edit of
hearth.toml or a renewed key. `hearth restore --from s3://BUCKET/PREFIX` reads
it back, then the database from the replica, and finds the chunks in place.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..config import Config
from ..errors import BadRequest, CommandError, ConfigError
from ..private import private_dir
from ..tree.s3store import S3Files, S3Location
from .layout import CONFIG, FORMAT
from .named_files import save_named_files

SERVER = "server/"
MANIFEST = SERVER + "backup.json"
DATABASE = "db"


@dataclass(frozen=True)
class BucketHome:
    """s3://BUCKET/PREFIX: the chunks, the database replica and the config set of one server."""

    location: S3Location  # its prefix is "PREFIX/" (or "" for a whole bucket)

    @property
    def url(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"

    @property
    def replica_url(self) -> str:
        return self.url + DATABASE

    def litestream_replica(self) -> dict[str, Any]:
        """The replica entry of litestream.yml. Path-style requests, like hearth's own S3 client: what
        SeaweedFS, Garage and Ceph RGW serve without a DNS name per bucket. Credentials are not in it:
        Litestream reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from its environment."""
        return {"type": "s3", "bucket": self.location.bucket, "path": self.location.prefix + DATABASE,
                "endpoint": self.location.endpoint, "region": self.location.region, "force-path-style": True}


def home_at(url: str, storage: Mapping[str, Any], where: object, environ: Mapping[str, str] = os.environ) -> BucketHome:
    """The home s3://BUCKET/PREFIX names, reached at [storage] s3_endpoint in s3_region (`storage`)."""
    from ..blobs import s3_location

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket:
        raise ConfigError(f"{where}: {url!r}: expected s3://BUCKET/PREFIX")
    return BucketHome(s3_location({**storage, "s3_bucket": bucket, "s3_prefix": prefix}, where, environ))


def home_from(url: str, config: Config, endpoint: str | None, region: str | None, flag: str) -> BucketHome:
    """The home s3://BUCKET/PREFIX a command names (`flag`), reached at `endpoint` in `region`, each
    defaulting to [storage] s3_endpoint and s3_region; BadRequest when no endpoint is known."""
    storage = dict(config.values["storage"])
    storage.update({key: value for key, value in (("s3_endpoint", endpoint), ("s3_region", region)) if value})
    if not storage["s3_endpoint"]:
        raise BadRequest(f"{url}: name the S3 endpoint with --endpoint URL (or HEARTH_STORAGE_S3_ENDPOINT)")
    return home_at(url, storage, flag)


def configured_home(config: Config, environ: Mapping[str, str] = os.environ) -> BucketHome | None:
    """Where [backup] replica puts the server in a bucket: "s3" is the blobs' own bucket and prefix,
    s3://BUCKET/PREFIX another one on the same endpoint; None for a directory replica or none."""
    from ..blobs import s3_location

    value = config.backup.replica
    where = f"{config.path or 'environment'}: [backup] replica"
    if value == "s3":
        return BucketHome(s3_location(config.values["storage"], where, environ))
    if value.startswith("s3://"):
        return home_at(value, config.values["storage"], where, environ)
    return None


def upload_server_files(config: Config, home: BucketHome) -> dict[str, Any]:
    """Put hearth.toml and the files it names into the home's server/, the manifest last; returns it."""
    files = S3Files(home.location)
    with tempfile.TemporaryDirectory(prefix="hearth-server-") as scratch:
        named = save_named_files(config, Path(scratch))
        for entry in named:
            files.put(SERVER + entry["stored"], (Path(scratch) / entry["stored"]).read_bytes())
    manifest: dict[str, Any] = {"format": FORMAT, "uploaded_at": time.time(), "config": None, "named_files": named}
    if config.path is not None and config.path.exists():
        data = config.path.read_bytes()
        files.put(SERVER + CONFIG, data)
        manifest["config"] = {"file": CONFIG, "sha256": hashlib.sha256(data).hexdigest()}
    files.put(MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    return manifest


def download_server_files(home: BucketHome, into: Path) -> dict[str, Any]:
    """The config set into `into` (hearth.toml, files/N), each file checked against its SHA-256; the manifest."""
    files = S3Files(home.location)
    raw = files.get(MANIFEST)
    if raw is None:
        raise CommandError(f"{home.url} holds no hearth server ({MANIFEST} is missing): the config is uploaded "
                           "there by the hearth_litestream service when [backup] replica is set, and a backup by "
                           "`hearth backup --to s3://…` (nothing was changed)")
    manifest = json.loads(raw)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CommandError(f"{home.url}{MANIFEST}: not a hearth manifest of format {FORMAT}")
    wanted = [(entry["stored"], entry["sha256"]) for entry in manifest["named_files"]]
    if manifest["config"]:
        wanted.append((manifest["config"]["file"], manifest["config"]["sha256"]))
    private_dir(into)
    for name, sha256 in wanted:
        data = files.get(SERVER + name)
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            raise CommandError(f"{home.url}{SERVER}{name} is missing or does not match the SHA-256 in "
                               f"{MANIFEST} (nothing was changed)")
        private_dir((into / name).parent)
        fd = os.open(into / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    return manifest
