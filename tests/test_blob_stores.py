"""One BlobStore contract, run against every backend: the local directory and a real S3 gateway (SeaweedFS).

Then what only the S3 store has: its configuration through the one schema, and
one clear line (never a credential) when the bucket is missing, the
credentials are wrong or the endpoint is down.
"""
from __future__ import annotations

import asyncio
import time

import obstore
import pytest

from services.core.blobs import open_blob_store, store_problem
from services.core.config import ConfigError, load_config
from services.core.db import Database, write
from services.core.errors import BadRequest, NotFound, StoreUnavailable
from services.core.tree import collect_garbage, commit_file, create_folder
from services.core.tree.chunks import ChunkStore, chunk_id
from services.core.tree.s3store import S3Location, S3Store
from tests.installation import free_port
from services.sync.server.retention import Retention, sweep
from tests.seaweed import ACCESS_KEY, REGION, SECRET_KEY


def s3_store(seaweed, bucket: str, *, key: str = ACCESS_KEY, secret: str = SECRET_KEY,
             endpoint: str | None = None, prefix: str = "hearth/") -> S3Store:
    return S3Store(S3Location(endpoint=endpoint or seaweed.endpoint, bucket=bucket, region=REGION, prefix=prefix,
                              access_key_id=key, secret_access_key=secret), retries=1, timeout=5)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        made = ChunkStore(tmp_path / "blobs")
    else:
        seaweed = request.getfixturevalue("seaweed")
        made = s3_store(seaweed, seaweed.create_bucket())
    yield made
    made.close()


def chunk(n: int) -> tuple[str, bytes]:
    data = f"chunk number {n} ".encode() * (n + 1)
    return chunk_id(data), data


def test_put_get_open_has_many_sizes_delete(store):
    cid, data = chunk(1)
    other, _ = chunk(2)
    store.put(cid, data)
    store.put(cid, data)  # idempotent
    assert store.get(cid) == data
    with store.open(cid) as f:
        assert f.read() == data
    assert store.has_many([cid, other]) == {cid}
    assert store.sizes([cid, other]) == {cid: len(data)}
    assert list(store.stored()) == [cid]
    store.delete(cid)
    store.delete(cid)  # absent is fine
    assert store.has_many([cid]) == set()
    assert store.written_at(cid) is None
    with pytest.raises(NotFound):
        store.get(cid)
    with pytest.raises(NotFound):
        store.open(cid)


def test_a_chunk_that_does_not_match_its_id_is_refused_and_nothing_is_stored(store):
    cid, _ = chunk(3)
    for call in (lambda: store.put(cid, b"wrong"), lambda: store.stage(cid, b"wrong")):
        with pytest.raises(BadRequest):
            call()
    assert store.has_many([cid]) == set() and list(store.stored()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "a" * 63, "", "a" * 64 + "/x"])
def test_malformed_ids_are_refused_before_any_io(store, bad):
    for call in (lambda: store.get(bad), lambda: store.put(bad, b"x"), lambda: store.delete(bad),
                 lambda: store.has_many([bad]), lambda: store.sizes([bad]), lambda: store.written_at(bad)):
        with pytest.raises(BadRequest):
            call()


def test_staged_chunks_are_there_after_publish(store):
    chunks = [chunk(n) for n in range(40)]
    staged = [store.stage(cid, data) for cid, data in chunks]
    store.publish(staged)
    assert store.has_many([cid for cid, _ in chunks]) == {cid for cid, _ in chunks}
    assert all(store.get(cid) == data for cid, data in chunks)


def test_discarded_staged_chunks_are_never_referenced_and_gc_may_take_them(store):
    cid, data = chunk(5)
    store.discard([store.stage(cid, data)])
    # Whether the bytes landed (S3: the PUT may have run) or not (local: a temp file gone), nothing
    # names the chunk: it is either absent or an ordinary unreferenced chunk under its upload lease.
    assert store.has_many([cid]) in (set(), {cid})
    assert cid not in set(store.written_before(time.time() - 3600))


def test_written_at_is_the_upload_lease_and_a_re_put_renews_it(store):
    cid, data = chunk(6)
    before = time.time()
    store.put(cid, data)
    written = store.written_at(cid)
    assert before - 2 <= written <= time.time() + 2  # S3's LastModified has one-second resolution
    assert list(store.written_before(time.time() + 5)) == [cid]
    assert list(store.written_before(before - 60)) == []  # inside the grace: GC leaves it alone
    time.sleep(1.1)  # a later second: the lease must move (S3 gives LastModified in whole seconds)
    store.put(cid, data)
    assert store.written_at(cid) > written


def test_free_bytes_is_the_disk_or_unknown(store):
    free = store.free_bytes()
    assert free is None if isinstance(store, S3Store) else free > 0


# --- S3 only -------------------------------------------------------------------------------------


def test_chunks_live_under_the_prefix_and_nothing_else_is_listed(seaweed):
    bucket = seaweed.create_bucket()
    store = s3_store(seaweed, bucket, prefix="home/")
    cid, data = chunk(7)
    store.put(cid, data)
    obstore.put(seaweed.client(bucket), "home/chunks/not-a-chunk", b"x")
    obstore.put(seaweed.client(bucket), "elsewhere/chunks/" + cid, data)
    assert seaweed.keys(bucket, "home/chunks/") == [f"home/chunks/{cid}", "home/chunks/not-a-chunk"]
    assert list(store.stored()) == [cid]
    assert list(store.written_before(time.time() + 5)) == [cid]


def test_a_missing_bucket_is_one_clear_line(seaweed):
    store = s3_store(seaweed, "no-such-bucket-here")
    problem = store_problem(store)
    assert problem == f"S3 bucket 'no-such-bucket-here' does not exist at {seaweed.endpoint}"
    with pytest.raises(StoreUnavailable, match="does not exist"):
        store.get(chunk(8)[0])


@pytest.mark.parametrize("key,secret", [("not-a-key", SECRET_KEY), (ACCESS_KEY, "a-wrong-secret")])
def test_wrong_credentials_are_one_clear_line_without_the_secret(seaweed, key, secret):
    store = s3_store(seaweed, seaweed.create_bucket(), key=key, secret=secret)
    problem = store_problem(store)
    assert problem.startswith(f"S3 at {seaweed.endpoint} refused the credentials")
    cid, data = chunk(9)
    with pytest.raises(StoreUnavailable) as raised:
        store.put(cid, data)
    for text in (problem, raised.value.reason, repr(store.location)):
        assert secret not in text and "\n" not in text


def test_an_endpoint_that_is_down_is_one_clear_line(seaweed):
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = s3_store(seaweed, "any-bucket", endpoint=endpoint)
    started = time.monotonic()
    assert store_problem(store) == f"S3 endpoint {endpoint} does not answer"
    assert time.monotonic() - started < 10  # retried with backoff, then given up
    with pytest.raises(StoreUnavailable, match="does not answer"):
        store.has_many([chunk(10)[0]])


def write_config(tmp_path, text: str):
    (tmp_path / "hearth.toml").write_text(f'data_dir = "var"\n{text}')
    return load_config(tmp_path / "hearth.toml", environ={})


def test_the_factory_builds_the_configured_backend(seaweed, tmp_path):
    config = write_config(tmp_path, seaweed.storage_toml("a-bucket", "p"))
    configured = open_blob_store(config, seaweed.environ())
    store = configured.home  # the configured store (a migration is followed around it)
    assert isinstance(store, S3Store) and store.location.prefix == "p/"
    assert configured.read_ahead == store.read_ahead > 1  # downloads overlap the bucket's round trips
    assert isinstance(open_blob_store(write_config(tmp_path, "")).home, ChunkStore)


@pytest.mark.parametrize("storage,environ,message", [
    ('[storage]\nblobs = "nfs"\n', {}, "blobs: expected one of local, s3"),
    ('[storage]\nblobs = "s3"\ns3_bucket = "b"\n', {}, "s3_endpoint: needed"),
    ('[storage]\nblobs = "s3"\ns3_endpoint = "http://127.0.0.1:1"\n', {}, "s3_bucket: needed"),
    ('[storage]\nblobs = "s3"\ns3_endpoint = "127.0.0.1:1"\ns3_bucket = "b"\n', {}, "http:// or https://"),
    ('[storage]\nblobs = "s3"\ns3_endpoint = "http://127.0.0.1:1"\ns3_bucket = "b"\n', {},
     "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"),
])
def test_a_wrong_storage_config_is_a_config_error(tmp_path, storage, environ, message):
    with pytest.raises(ConfigError, match=message):
        open_blob_store(write_config(tmp_path, storage), environ)


def test_every_storage_key_has_its_environment_override(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    config = load_config(tmp_path / "hearth.toml", environ={
        "HEARTH_STORAGE_BLOBS": "s3", "HEARTH_STORAGE_S3_ENDPOINT": "http://127.0.0.1:9",
        "HEARTH_STORAGE_S3_BUCKET": "b", "HEARTH_STORAGE_S3_REGION": "eu-west-1", "HEARTH_STORAGE_S3_PREFIX": "x"})
    store = open_blob_store(config, {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}).home
    assert store.location == S3Location("http://127.0.0.1:9", "b", "eu-west-1", "x/", "k", "s")
    assert "s" not in repr(store.location).replace("s3://", "").replace("http", "")


def test_credentials_never_come_from_the_config_file(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n[storage]\naws_secret_access_key = "x"\n')
    with pytest.raises(ConfigError):
        load_config(tmp_path / "hearth.toml", environ={})


def test_the_environment_is_not_needed_for_local_blobs(tmp_path):
    assert isinstance(open_blob_store(write_config(tmp_path, '[storage]\nblobs = "local"\n'), {}).home, ChunkStore)


# --- garbage collection on either backend: the upload lease without file mtimes ---------------------


def commit_chunk(db, store, folder: int, path: str, data: bytes):
    cid = chunk_id(data)
    store.put(cid, data)
    return write(db, lambda d: commit_file(d, folder, path, None, [(cid, len(data))], len(data), 1, False, "pc",
                                           store=store))


def lease_aged(store, cid: str) -> None:
    """Returns once the chunk's lease is 0.2 s in the past, so a grace of 0.1 s has run out on it."""
    deadline = time.monotonic() + 10
    while store.written_at(cid) + 0.2 > time.time():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_gc_takes_only_unreferenced_chunks_whose_lease_ran_out(db, store):
    folder = write(db, lambda d: create_folder(d, "alice", "Docs")).id
    kept = commit_chunk(db, store, folder, "kept.txt", b"referenced").chunks[0][0]
    orphan, data = chunk(11)  # a failed upload: stored, never committed
    store.discard([store.stage(orphan, data)])
    store.put(orphan, data)
    assert write(db, lambda d: collect_garbage(d, store, 3600)) == []  # in flight: inside the grace
    later = time.time() + 3600 + 5
    assert write(db, lambda d: collect_garbage(d, store, 3600, now=later)) == [orphan]
    assert store.has_many([kept, orphan]) == {kept}


def test_gc_spares_a_chunk_re_put_between_listing_and_deleting(db, store):
    cid, data = chunk(12)
    store.put(cid, data)
    lease_aged(store, cid)
    original = store.written_before

    def listing_then_reupload(cutoff):
        for found in original(cutoff):
            store.put(cid, data)  # an upload lands between GC's listing and its delete
            yield found

    store.written_before = listing_then_reupload
    assert write(db, lambda d: collect_garbage(d, store, 0.1)) == []
    assert store.has_many([cid]) == {cid}


async def test_the_sync_daemons_scheduled_sweep_collects_orphans_on_either_backend(db, store, tmp_path):
    folder = write(db, lambda d: create_folder(d, "alice", "Docs")).id
    kept = commit_chunk(db, store, folder, "kept.txt", b"kept by a commit").chunks[0][0]
    orphan, data = chunk(13)
    store.put(orphan, data)
    database = Database(tmp_path / "db" / "hearth.sqlite3")  # the db fixture's file
    try:
        assert await sweep(database, store, Retention(0, 0, 3600)) == (0, 0)  # young: an upload in flight
        await asyncio.to_thread(lease_aged, store, orphan)
        assert await sweep(database, store, Retention(0, 0, 0)) == (0, 1)
        assert store.has_many([kept, orphan]) == {kept}
    finally:
        database.close()


def test_a_download_reads_ahead_in_order_and_stops_at_a_missing_chunk(store):
    import asyncio

    from services.core.errors import NotFound
    from services.core.tree.read_ahead import chunks_in_order

    chunks = [chunk(n) for n in range(10)]
    for cid, data in chunks:
        store.put(cid, data)
    absent = (chunk(99)[0], len(chunk(99)[1]))

    async def read(ids):
        got = []
        try:
            async for data in chunks_in_order(store, ids):
                got.append(data)
        except NotFound:
            got.append("missing")
        return got

    ids = [(cid, len(data)) for cid, data in chunks]
    assert asyncio.run(read(ids)) == [data for _, data in chunks]
    assert asyncio.run(read([*ids[:6], absent, *ids[6:]])) == [data for _, data in chunks[:6]] + ["missing"]
