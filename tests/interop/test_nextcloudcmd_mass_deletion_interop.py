"""The real `nextcloudcmd` deleting most of a folder on a laptop: hearth lets every DELETE through, records the
spree as a mass deletion of that device (services/core/tree/deletion_runs.py), and `hearth trash undo` brings
every file back, which the next run of the client puts on the laptop again, byte for byte."""
from __future__ import annotations

import hashlib
import re

import pytest

from tests.interop.test_nextcloud_login_interop import hearth_for_nextcloudcmd
from tests.interop.test_nextcloudcmd_sync_interop import local_files, server_bytes, sync

FILES = 40
DELETED = 30
DEVICE = "laptop (nextcloudcmd)"


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    with hearth_for_nextcloudcmd(tmp_path_factory, "nextcloudcmd-mass-deletion") as installation:
        yield installation


def test_a_folder_mostly_deleted_on_a_laptop_is_recorded_and_undone_in_one_step(hearth, tmp_path):
    password = hearth.ok("token", "add", "admin", "--label", DEVICE).stdout.splitlines()[0]
    local = tmp_path / "laptop"
    (local / "Camera").mkdir(parents=True)
    for n in range(FILES):
        (local / "Camera" / f"IMG_{n:04}.jpg").write_bytes(f"photo {n}\n".encode() * (n + 1))
    synced = local_files(local)
    sync(hearth, local, password=password)
    assert {path: hashlib.sha256(server_bytes(hearth, path) or b"").hexdigest() for path in synced} == synced

    for n in range(DELETED):
        (local / "Camera" / f"IMG_{n:04}.jpg").unlink()
    sync(hearth, local, password=password)
    assert server_bytes(hearth, "Camera/IMG_0000.jpg") is None  # the deletes went through, none refused

    listed = hearth.ok("trash", "list", "admin").stdout
    assert "Camera" in listed and f"{DELETED} of {FILES}" in listed and DEVICE in listed, listed
    warnings = [line for line in (hearth.var / "log" / "files.log").read_text().splitlines() if "mass deletion" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and DEVICE in warnings[0], warnings
    run_id = re.search(r"hearth trash undo admin (\d+)", listed).group(1)
    undone = hearth.ok("trash", "undo", "admin", run_id)
    assert f"restored {DELETED} files" in undone.stdout

    sync(hearth, local, password=password)
    assert local_files(local) == synced
