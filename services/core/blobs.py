"""The one place a blob store is built: `[storage] blobs` picks the backend, every daemon and command asks here.

`open_blob_store(config)` returns a BlobStore; nothing else in hearth knows
which kind. S3 credentials come only from the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN if set; the
supervisor passes them to the daemons), never from hearth.toml, and no message
names them. `blob_store_context(config)` gives a daemon its store (http.BLOB_STORE) for its lifetime.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, AsyncIterator, Mapping

from aiohttp import web

from .config import Config
from .errors import ConfigError, StoreUnavailable
from .http import BLOB_STORE
from .tree.chunks import BlobStore, ChunkStore

log = logging.getLogger("storage")

BACKENDS = ("local", "s3")
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Where a daemon keeps a store that /healthz leaves alone (one it uses only on the side).
SIDE_BLOB_STORE = web.AppKey("side_blob_store", BlobStore)


S3_KEYS = ("s3_endpoint", "s3_bucket", "s3_region", "s3_prefix")


def store_settings(config: Config) -> dict[str, str]:
    """Which store the config names, as the keys that say it: {"blobs": "local"} or the blobs and s3_* keys."""
    storage = config.values["storage"]
    if storage["blobs"] != "s3":
        return {"blobs": storage["blobs"]}
    return {"blobs": "s3", **{key: storage[key] for key in S3_KEYS}}


def open_blob_store(config: Config, environ: Mapping[str, str] = os.environ) -> BlobStore:
    """The configured store; ConfigError (exit 2) naming the key or variable that is wrong or missing.

    It follows a storage migration (`hearth storage migrate`) while one runs or after it switched the
    config under a running daemon: see services.core.blob_migration."""
    from .blob_migration import MigratingStore

    settings = store_settings(config)
    home = build_store(settings, config, environ)
    return MigratingStore(home, settings, config.data_dir, lambda other: build_store(other, config, environ))


def build_store(settings: Mapping[str, str], config: Config, environ: Mapping[str, str] = os.environ) -> BlobStore:
    """The store `settings` (as store_settings gives them) name, without following a migration."""
    where = config.path or "environment"
    backend = settings["blobs"]
    if backend == "local":
        return ChunkStore(config.data_path("blobs"))
    if backend != "s3":
        raise ConfigError(f"{where}: [storage] blobs: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    from .tree.s3store import S3Store  # obstore loads only where S3 is used

    return S3Store(s3_location(settings, where, environ))


def s3_location(settings: Mapping[str, Any], where: object, environ: Mapping[str, str] = os.environ):
    """The S3Location that the [storage] s3_* keys (here `settings`) and the AWS_* variables describe;
    ConfigError naming what is wrong or missing. Also where the Litestream replica and the backed-up
    config go when they share the blobs' bucket."""
    from .tree.s3store import S3Location

    for key in ("s3_endpoint", "s3_bucket"):
        if not settings[key]:
            raise ConfigError(f"{where}: [storage] {key}: needed with blobs = \"s3\"")
    if not settings["s3_endpoint"].startswith(("http://", "https://")):
        raise ConfigError(f"{where}: [storage] s3_endpoint: expected an http:// or https:// URL")
    missing = [name for name in CREDENTIAL_VARIABLES[:2] if not environ.get(name)]
    if missing:
        raise ConfigError(f"blobs = \"s3\" needs {' and '.join(missing)} in the environment")
    prefix = settings["s3_prefix"].strip("/")
    return S3Location(
        endpoint=settings["s3_endpoint"].rstrip("/"), bucket=settings["s3_bucket"], region=settings["s3_region"],
        prefix=f"{prefix}/" if prefix else "", access_key_id=environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=environ["AWS_SECRET_ACCESS_KEY"], session_token=environ.get("AWS_SESSION_TOKEN"))


def store_problem(store: BlobStore) -> str | None:
    """Why the store cannot be used now, in one line, or None when it can."""
    try:
        store.check()
    except StoreUnavailable as error:
        return error.reason
    return None


def status_line(config: Config) -> str | None:
    """`hearth status`'s line on an object store or a migration, "blobs: WHERE: ok" or the problem; None for
    local blobs (the disk is the data directory's, which the daemons' own rows already vouch for)."""
    from .blob_migration import copy_progress

    progress = copy_progress(config.data_dir)
    if config.storage.blobs == "local" and progress is None:
        return None
    try:
        store = open_blob_store(config)
    except ConfigError as error:
        return f"blobs: {error}"
    try:
        where = store.describe() + (f", {progress}" if progress else "")
        return f"blobs: {where}: {store_problem(store) or 'ok'}"
    except StoreUnavailable as error:  # the migration's other store cannot be built here (credentials)
        return f"blobs: {error.reason}"
    finally:
        store.close()


def blob_store_context(config: Config, key: web.AppKey = BLOB_STORE):
    """A cleanup_ctx entry: the configured store under `key` from startup to shutdown. /healthz reports
    the store under BLOB_STORE; a daemon for which the store is a side matter keeps it under its own key.

    The store is built now, so a configuration mistake stops the daemon before it serves (exit 2).
    A store that cannot be reached at start is logged, not fatal: /healthz reports it and requests
    answer 503 until it comes back."""
    store = open_blob_store(config)

    async def context(app: web.Application) -> AsyncIterator[None]:
        app[key] = store
        problem = await asyncio.to_thread(store_problem, store)
        if problem:
            log.error("blob store: %s", problem)
        yield
        await asyncio.to_thread(store.close)

    return context
