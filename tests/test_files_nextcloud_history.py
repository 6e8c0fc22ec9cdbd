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


VERSION_PROPS = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getcontentlength/>'
                 b'<d:getlastmodified/><d:getetag/></d:prop></d:propfind>')


def file_id(files, path: str) -> str:
    body = files.exchange("PROPFIND", path, b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" '
                          b'xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>',
                          user="alice", headers={"Depth": "0"})[2]
    return re.search(r"<oc:fileid>(\d+)</oc:fileid>", body.decode()).group(1)


def version_listing(files, versions: str) -> list[dict[str, str]]:
    status, _, body = files.exchange("PROPFIND", versions, VERSION_PROPS, user="alice", headers={"Depth": "1"})
    assert status == 207, body
    responses = re.findall(r"<d:response>(.*?)</d:response>", body.decode())
    assert re.search(r"<d:href>([^<]*)</d:href>", responses[0]).group(1) == versions
    return [dict(re.findall(r"<d:([a-z-]+)>([^<]*)</", each)) for each in responses[1:]]


def test_an_overwritten_files_versions_are_listed_downloaded_and_restored(files):
    path = f"{DAV}/Docs/notes.md"
    for mtime, text in (("1700000000", b"first draft"), ("1700000100", b"second"), ("1700000200", b"final")):
        assert files.exchange("PUT", path, text, user="alice", headers={"X-OC-Mtime": mtime})[0] in (201, 204)
    fid = file_id(files, path)
    versions = f"/remote.php/dav/versions/alice/versions/{fid}/"
    listed = {v["href"].rsplit("/", 1)[1]: v for v in version_listing(files, versions)}
    assert sorted(listed) == ["1700000000", "1700000100"]  # the current content is not a version
    assert listed["1700000000"]["getcontentlength"] == "11"
    assert listed["1700000000"]["getlastmodified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    status, headers, body = files.exchange("GET", f"{versions}1700000000", user="alice")
    assert status == 200 and body == b"first draft"
    assert headers["content-security-policy"] == "sandbox" and headers["x-content-type-options"] == "nosniff"
    # Android moves the version to restore/<fileid>; the file keeps its id and the replaced content stays a version
    assert files.exchange("MOVE", f"{versions}1700000000", user="alice", headers={
        "Destination": f"https://phone.example/remote.php/dav/versions/alice/restore/{fid}"})[0] == 204
    assert files.exchange("GET", path, user="alice")[2] == b"first draft"
    assert file_id(files, path) == fid
    assert sorted(v["href"].rsplit("/", 1)[1] for v in version_listing(files, versions)) == [
        "1700000000", "1700000100", "1700000200"]
    assert files.exchange("COPY", f"{versions}1700000200", user="alice", headers={
        "Destination": "/remote.php/dav/versions/alice/restore/target"})[0] == 204
    assert files.exchange("GET", path, user="alice")[2] == b"final"
    assert files.exchange("MOVE", f"{versions}1700000100", user="alice", headers={
        "Destination": f"{DAV}/Docs/elsewhere.md"})[0] == 400
    assert files.exchange("PROPFIND", f"/remote.php/dav/versions/bob/versions/{fid}/", VERSION_PROPS,
                          user="alice", headers={"Depth": "1"})[0] == 403
    assert files.exchange("PROPFIND", "/remote.php/dav/versions/alice/versions/999999/", VERSION_PROPS,
                          user="alice", headers={"Depth": "1"})[0] == 404


def test_a_file_of_a_deleted_directory_comes_back_with_its_directory(files):
    assert files.exchange("MKCOL", f"{DAV}/Docs/Old%20stuff", user="alice")[0] == 201
    assert files.exchange("PUT", f"{DAV}/Docs/Old%20stuff/100%2541%20done.txt", b"done", user="alice")[0] == 201
    assert files.exchange("DELETE", f"{DAV}/Docs/Old%20stuff", user="alice")[0] == 204
    item = next(i for i in trash_listing(files) if i["trashbin-original-location"] == "Docs/Old stuff/100%41 done.txt")
    assert item["href"].startswith(f"{TRASH}/100%2541%20done.txt.d")
    assert files.exchange("MOVE", item["href"], user="alice", headers={
        "Destination": "/remote.php/dav/trashbin/alice/restore/100%2541%20done.txt"})[0] == 201
    assert files.exchange("GET", f"{DAV}/Docs/Old%20stuff/100%2541%20done.txt", user="alice")[2] == b"done"
    status, _, body = files.exchange("PROPFIND", f"{DAV}/Docs/", TRASH_PROPS, user="alice", headers={"Depth": "1"})
    assert f"{DAV}/Docs/Old%20stuff/" in body.decode()


def test_a_version_listing_finds_its_file_by_id_through_the_index(files):
    """The versions view names a file by oc:fileid: one index lookup, never a scan of every entry."""
    from services.files.versions import LIVE_FILE_BY_ID

    with files.db() as db:
        plan = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {LIVE_FILE_BY_ID}", [1]))
    assert "USING INDEX entries_file_id" in plan, plan


def test_a_file_restored_from_the_trashbin_keeps_its_file_id(files):
    assert files.exchange("PUT", f"{DAV}/Docs/photo.jpg", b"a photo", user="alice")[0] == 201
    before = file_id(files, f"{DAV}/Docs/photo.jpg")
    assert files.exchange("DELETE", f"{DAV}/Docs/photo.jpg", user="alice")[0] == 204
    item = next(i for i in trash_listing(files) if i["trashbin-original-location"] == "Docs/photo.jpg")
    assert files.exchange("MOVE", item["href"], user="alice", headers={
        "Destination": "/remote.php/dav/trashbin/alice/restore/photo.jpg"})[0] == 201
    assert file_id(files, f"{DAV}/Docs/photo.jpg") == before
