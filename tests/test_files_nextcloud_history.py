"""The Nextcloud apps' trash bin (/remote.php/dav/trashbin/USER/) and versions
(/remote.php/dav/versions/USER/) on a real files daemon, onto the journal's trash and versions."""
from __future__ import annotations

import re

import pytest

from tests.daemons import serving
from tests.test_files_webdav import FilesDaemon

DAV = "/remote.php/dav/files/alice"
TRASH = "/remote.php/dav/trashbin/alice/trash"
TRASH_PROPS = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
               b'xmlns:nc="http://nextcloud.org/ns"><d:prop><d:resourcetype/><d:getcontentlength/><oc:size/>'
               b'<oc:id/><nc:trashbin-filename/><nc:trashbin-original-location/><nc:trashbin-deletion-time/>'
               b'</d:prop></d:propfind>')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving(FilesDaemon(tmp_path_factory.mktemp("files")), "alice", "bob") as daemon:
        assert daemon.exchange("MKCOL", "/files/alice/Docs/", user="alice")[0] == 201
        yield daemon
    assert "unhandled error" not in daemon.log()


def trash_listing(files) -> list[dict[str, str]]:
    status, headers, body = files.exchange("PROPFIND", f"{TRASH}/", TRASH_PROPS, user="alice",
                                           headers={"Depth": "1"})
    assert status == 207 and headers["content-type"] == "application/xml; charset=utf-8", body
    responses = re.findall(r"<d:response>(.*?)</d:response>", body.decode())
    assert re.search(r"<d:href>([^<]*)</d:href>", responses[0]).group(1) == f"{TRASH}/"
    return [dict(re.findall(r"<(?:d|oc|nc):([a-z-]+)>([^<]*)</", each)) for each in responses[1:]]


def test_a_deleted_file_is_listed_in_the_trashbin_and_restored_with_its_content(files):
    assert files.exchange("PUT", f"{DAV}/Docs/report.txt", b"the report", user="alice")[0] == 201
    assert files.exchange("PUT", f"{DAV}/loose.txt", b"at the root", user="alice")[0] == 201
    assert files.exchange("DELETE", f"{DAV}/Docs/report.txt", user="alice")[0] == 204
    assert files.exchange("DELETE", f"{DAV}/loose.txt", user="alice")[0] == 204
    listed = {item["trashbin-original-location"]: item for item in trash_listing(files)}
    assert set(listed) == {"Docs/report.txt", "loose.txt"}
    report = listed["Docs/report.txt"]
    assert report["trashbin-filename"] == "report.txt" and report["getcontentlength"] == "10"
    assert report["href"] == f"{TRASH}/report.txt.d{report['trashbin-deletion-time']}"
    assert report["id"].startswith("0")
    destination = "https://phone.example/remote.php/dav/trashbin/alice/restore/report.txt"
    assert files.exchange("MOVE", report["href"], user="alice", headers={"Destination": destination})[0] == 201
    assert files.exchange("GET", f"{DAV}/Docs/report.txt", user="alice")[2] == b"the report"
    assert [i["trashbin-original-location"] for i in trash_listing(files)] == ["loose.txt"]
    # a file made again at its path leaves the trash (its old content is one of its versions): nothing to restore
    assert files.exchange("MOVE", report["href"], user="alice", headers={"Destination": destination})[0] == 404
    root_item = listed["loose.txt"]
    assert files.exchange("MOVE", root_item["href"], user="alice",
                          headers={"Destination": "/remote.php/dav/trashbin/alice/restore/loose.txt"})[0] == 201
    assert files.exchange("GET", f"{DAV}/loose.txt", user="alice")[2] == b"at the root"


def test_the_trashbin_is_private_and_purged_by_retention_only(files):
    assert files.exchange("PROPFIND", "/remote.php/dav/trashbin/bob/trash/", TRASH_PROPS, user="alice",
                          headers={"Depth": "1"})[0] == 403
    assert files.exchange("PUT", f"{DAV}/Docs/keep.txt", b"keep", user="alice")[0] == 201
    assert files.exchange("DELETE", f"{DAV}/Docs/keep.txt", user="alice")[0] == 204
    item = next(i for i in trash_listing(files) if i["trashbin-filename"] == "keep.txt")
    assert files.exchange("DELETE", item["href"], user="alice")[0] == 403
    assert files.exchange("DELETE", f"{TRASH}/", user="alice")[0] == 403
    assert any(i["trashbin-filename"] == "keep.txt" for i in trash_listing(files))
