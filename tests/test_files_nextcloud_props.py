"""The properties Nextcloud-protocol apps read in a PROPFIND (services/files/ncprops.py), and folder ETags
that change with anything below them, through a real files daemon on loopback."""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest

from tests.daemons import serving
from tests.test_files_webdav import PROPFIND_ALL, FilesDaemon, share_with_alice

OC, NC = "{http://owncloud.org/ns}", "{http://nextcloud.org/ns}"
DESKTOP_PROPS = b"""<?xml version="1.0" ?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"><d:prop>
<d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/><oc:size/><oc:id/><oc:fileid/>
<oc:downloadURL/><oc:dDC/><oc:permissions/><oc:checksums/><oc:data-fingerprint/><oc:share-types/>
<oc:owner-id/><oc:owner-display-name/><nc:has-preview/><nc:is-encrypted/></d:prop></d:propfind>"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving(FilesDaemon(tmp_path_factory.mktemp("ncprops"), quota_mb=10), "alice", "bob") as daemon:
        for user, folder in (("alice", "Docs"), ("alice", "Other"), ("bob", "Shared"), ("bob", "Open")):
            assert daemon.exchange("MKCOL", f"/files/{user}/{folder}/", user=user)[0] == 201
        daemon.exchange("PUT", "/files/bob/Shared/read.txt", b"read me", user="bob")
        share_with_alice(daemon)
        yield daemon
    assert "unhandled error" not in daemon.log()


def propfind(files, path: str, user: str = "alice", depth: str = "1", body: bytes = DESKTOP_PROPS):
    """{href path: {property Clark name: its 200 element}}, in answer order, and the raw answer."""
    status, headers, raw = files.exchange("PROPFIND", path, body, user=user, headers={"Depth": depth})
    assert status == 207, raw
    assert headers["content-type"] == "application/xml; charset=utf-8"  # exactly: the desktop's check
    found = {}
    for response in ET.fromstring(raw).iter("{DAV:}response"):
        props = {}
        for propstat in response.iter("{DAV:}propstat"):
            if propstat.findtext("{DAV:}status").startswith("HTTP/1.1 200"):
                props.update({prop.tag: prop for prop in propstat.find("{DAV:}prop")})
        found[unquote(response.findtext("{DAV:}href"))] = props
    return found


def put(files, path: str, data: bytes, user: str = "alice") -> None:
    """PUT, making the missing directories above first (WebDAV makes no parents)."""
    parts = path.split("/")
    for depth in range(5, len(parts)):
        files.exchange("MKCOL", "/".join(parts[:depth]) + "/", user=user)
    assert files.exchange("PUT", path, data, user=user)[0] in (201, 204)


def etag(files, path: str, user: str = "alice") -> str:
    return propfind(files, path, user, depth="0")[unquote(path)]["{DAV:}getetag"].text


def test_every_resource_has_an_etag_id_permissions_and_numeric_length(files):
    put(files, "/files/alice/Docs/a/b.txt", b"12345", "alice")
    for path in ("/files/alice/", "/files/alice/Docs/"):
        listing = propfind(files, path)
        assert list(listing)[0] == path  # the collection itself first
        for href, props in listing.items():
            assert re.fullmatch(r'"[^"]+"', props["{DAV:}getetag"].text), href
            assert re.fullmatch(r"\d{8}oc[a-z0-9]{10}", props[OC + "id"].text), href
            assert props[OC + "id"].text.startswith(f"{int(props[OC + 'fileid'].text):08d}")
            assert props[OC + "permissions"].text, href
            assert int(props["{DAV:}getcontentlength"].text) == int(props[OC + "size"].text), href
            assert props[NC + "has-preview"].text == "false" and props[NC + "is-encrypted"].text == "0"
    root = propfind(files, "/files/alice/", depth="0")["/files/alice/"]
    assert root[OC + "permissions"].text == "RGDNVCK"
    assert OC + "data-fingerprint" in root and root[OC + "owner-id"].text == "alice"
    docs = propfind(files, "/files/alice/Docs/")
    assert docs["/files/alice/Docs/"][OC + "permissions"].text == "RGDNVCK"
    assert docs["/files/alice/Docs/a/"][OC + "size"].text == "5"
    assert propfind(files, "/files/alice/Docs/a/")["/files/alice/Docs/a/b.txt"][OC + "permissions"].text == "RGDNVW"
    ids = [props[OC + "fileid"].text for props in propfind(files, "/files/alice/").values()]
    assert len(set(ids)) == len(ids)


def test_shared_folders_permissions_follow_the_share_mode(files):
    top = propfind(files, "/files/alice/")
    assert top["/files/alice/Shared (bob)/"][OC + "permissions"].text == "SG"
    assert top["/files/alice/Open (bob)/"][OC + "permissions"].text == "SGCK"
    assert top["/files/alice/Shared (bob)/"][OC + "owner-id"].text == "bob"
    inside = propfind(files, "/files/alice/Shared%20(bob)/")
    assert inside["/files/alice/Shared (bob)/read.txt"][OC + "permissions"].text == "SG"  # no W, D, N, V
    files.exchange("MKCOL", "/files/alice/Open%20(bob)/sub/", user="alice")
    put(files, "/files/alice/Open%20(bob)/w.txt", b"w", "alice")
    inside = propfind(files, "/files/alice/Open%20(bob)/")
    assert inside["/files/alice/Open (bob)/w.txt"][OC + "permissions"].text == "SGDNVW"
    assert inside["/files/alice/Open (bob)/sub/"][OC + "permissions"].text == "SGDNVCK"


def test_share_types_show_folder_shares_and_links(files):
    top = propfind(files, "/files/bob/", user="bob")
    assert [t.text for t in top["/files/bob/Shared/"][OC + "share-types"]] == ["0"]
    with files.db() as db:
        folder = db.execute("SELECT id FROM folders WHERE owner = 'bob' AND name = 'Shared'").fetchone()[0]
        db.execute("""INSERT INTO share_links (token_hash, owner, folder_id, path, is_dir, mode, created_at)
                      VALUES ('x', 'bob', ?, 'read.txt', 0, 'read', '2026-01-01T00:00:00Z')""", [folder])
    inside = propfind(files, "/files/bob/Shared/", user="bob")
    assert [t.text for t in inside["/files/bob/Shared/read.txt"][OC + "share-types"]] == ["3"]
    assert list(propfind(files, "/files/alice/")["/files/alice/Shared (bob)/"][OC + "share-types"]) == []


def test_a_deep_write_changes_every_ancestors_etag_and_no_siblings(files):
    put(files, "/files/alice/Docs/x/y/z/old.txt", b"1", "alice")
    put(files, "/files/alice/Docs/x/side/s.txt", b"1", "alice")
    chain = ["/files/alice/", "/files/alice/Docs/", "/files/alice/Docs/x/", "/files/alice/Docs/x/y/",
             "/files/alice/Docs/x/y/z/"]
    siblings = ["/files/alice/Docs/x/side/", "/files/alice/Other/", "/files/alice/Docs/x/y/z/old.txt"]
    before = {path: etag(files, path) for path in chain + siblings}
    put(files, "/files/alice/Docs/x/y/z/new.txt", b"22")
    after = {path: etag(files, path) for path in chain + siblings}
    assert all(after[p] != before[p] for p in chain) and all(after[p] == before[p] for p in siblings)
    assert propfind(files, "/files/alice/Docs/x/", depth="0")["/files/alice/Docs/x/"][OC + "size"].text == "4"


def test_move_delete_and_folder_changes_change_etags_and_ids_follow_the_move(files):
    put(files, "/files/alice/Docs/m/sub/f.txt", b"f", "alice")
    ids = {path: props[OC + "fileid"].text for path, props in propfind(files, "/files/alice/Docs/m/").items()}
    file_id = propfind(files, "/files/alice/Docs/m/sub/")["/files/alice/Docs/m/sub/f.txt"][OC + "fileid"].text
    watched = ["/files/alice/", "/files/alice/Docs/", "/files/alice/Docs/m/"]
    files.exchange("MKCOL", "/files/alice/Docs/n/", user="alice")
    before = {path: etag(files, path) for path in watched}
    assert files.exchange("MOVE", "/files/alice/Docs/m/sub/", user="alice",
                          headers={"Destination": "/files/alice/Docs/n/renamed/"})[0] == 201
    moved = propfind(files, "/files/alice/Docs/n/renamed/")
    assert moved["/files/alice/Docs/n/renamed/"][OC + "fileid"].text == ids["/files/alice/Docs/m/sub/"]
    assert moved["/files/alice/Docs/n/renamed/f.txt"][OC + "fileid"].text == file_id
    assert files.exchange("MOVE", "/files/alice/Docs/n/renamed/f.txt", user="alice",
                          headers={"Destination": "/files/alice/Docs/n/g.txt"})[0] == 201
    assert propfind(files, "/files/alice/Docs/n/")["/files/alice/Docs/n/g.txt"][OC + "fileid"].text == file_id
    after = {path: etag(files, path) for path in watched}
    assert all(after[p] != before[p] for p in watched)
    n = etag(files, "/files/alice/Docs/n/")
    assert files.exchange("DELETE", "/files/alice/Docs/n/g.txt", user="alice")[0] == 204
    assert etag(files, "/files/alice/Docs/n/") != n and etag(files, "/files/alice/") != after["/files/alice/"]
    root = etag(files, "/files/alice/")
    status, headers, _ = files.exchange("MKCOL", "/files/alice/Brand%20new/", user="alice")
    assert status == 201 and etag(files, "/files/alice/") != root
    assert headers["oc-fileid"] == propfind(files, "/files/alice/")["/files/alice/Brand new/"][OC + "id"].text
    status, headers, _ = files.exchange("MKCOL", "/files/alice/Brand%20new/inner/", user="alice")
    assert headers["oc-fileid"] == propfind(files, "/files/alice/Brand%20new/inner/", depth="0")[
        "/files/alice/Brand new/inner/"][OC + "id"].text
    root = etag(files, "/files/alice/")
    assert files.exchange("MOVE", "/files/alice/Brand%20new/", user="alice",
                          headers={"Destination": "/files/alice/Renamed/"})[0] == 201
    assert etag(files, "/files/alice/") != root
    root = etag(files, "/files/alice/")
    assert files.exchange("DELETE", "/files/alice/Renamed/", user="alice")[0] == 204
    assert etag(files, "/files/alice/") != root
    root = etag(files, "/files/alice/")
    put(files, "/files/bob/Open/from-bob.txt", b"b", "bob")  # a folder shared with alice
    assert etag(files, "/files/alice/") != root


def test_conditions_still_hold_with_folder_etags(files):
    put(files, "/files/alice/Docs/c.txt", b"c", "alice")
    tag = etag(files, "/files/alice/Docs/c.txt")
    assert files.exchange("GET", "/files/alice/Docs/c.txt", user="alice", headers={"If-None-Match": tag})[0] == 304
    folder = etag(files, "/files/alice/Docs/")
    patch = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop>'
             b'<Z:colour>red</Z:colour></D:prop></D:set></D:propertyupdate>')
    assert files.exchange("PROPPATCH", "/files/alice/Docs/", patch, user="alice",
                          headers={"If": f"([{folder}])"})[0] == 207  # the If header sees folder ETags
    put(files, "/files/alice/Docs/c2.txt", b"c", "alice")
    assert files.exchange("PROPPATCH", "/files/alice/Docs/", patch, user="alice",
                          headers={"If": f"([{folder}])"})[0] == 412
    assert files.exchange("GET", "/files/alice/Docs/c.txt", user="alice", headers={"If-None-Match": tag})[0] == 304


def test_allprop_lists_the_ids_and_permissions(files):
    props = propfind(files, "/files/alice/Docs/", depth="0", body=PROPFIND_ALL)["/files/alice/Docs/"]
    assert {OC + "id", OC + "fileid", OC + "permissions", OC + "size", "{DAV:}getetag"} <= props.keys()


def test_an_uploads_oc_fileid_is_the_oc_id_the_listing_shows_and_survives_a_move(files):
    """The desktop client stores the OC-FileId of its PUT and compares it with oc:id later: they must agree,
    and a MOVE within the folder keeps it."""
    status, headers, _ = files.exchange("PUT", "/files/alice/Docs/ids.txt", b"id", user="alice")
    assert status == 201
    listed = propfind(files, "/files/alice/Docs/ids.txt", depth="0")["/files/alice/Docs/ids.txt"]
    assert headers["oc-fileid"] == listed[OC + "id"].text
    assert files.exchange("MOVE", "/files/alice/Docs/ids.txt", user="alice",
                          headers={"Destination": "/files/alice/Docs/moved.txt"})[0] == 201
    moved = propfind(files, "/files/alice/Docs/moved.txt", depth="0")["/files/alice/Docs/moved.txt"]
    assert moved[OC + "id"].text == headers["oc-fileid"]


def checksums(files, path: str) -> list[str]:
    """The oc:checksums of `path`, each as the desktop client reads it (TYPE:hex)."""
    found = propfind(files, path, depth="0")[unquote(path)][f"{OC}checksums"]
    return [each.text for each in found.iter(f"{OC}checksum")]


def test_an_uploads_checksum_is_answered_and_follows_its_bytes_through_move_and_copy(files):
    dav = "/remote.php/dav/files/alice"
    data = b"photo bytes " * 500
    sha1 = "SHA1:" + hashlib.sha1(data).hexdigest()
    assert files.exchange("PUT", f"{dav}/Docs/sum.jpg", data, user="alice", headers={"OC-Checksum": sha1})[0] == 201
    assert checksums(files, f"{dav}/Docs/sum.jpg") == [sha1]
    file_id = propfind(files, f"{dav}/Docs/sum.jpg", depth="0")[f"{dav}/Docs/sum.jpg"][f"{OC}fileid"].text
    # a rename and a move into a directory, inside the folder: same bytes, same id, same checksum
    assert files.exchange("MKCOL", f"{dav}/Docs/album", user="alice")[0] == 201
    assert files.exchange("MOVE", f"{dav}/Docs/sum.jpg", user="alice",
                          headers={"Destination": f"{dav}/Docs/album/moved.jpg"})[0] == 201
    moved = propfind(files, f"{dav}/Docs/album/moved.jpg", depth="0")[f"{dav}/Docs/album/moved.jpg"]
    assert moved[f"{OC}fileid"].text == file_id
    assert checksums(files, f"{dav}/Docs/album/moved.jpg") == [sha1]
    # a directory moved to another folder: its files are committed anew there, with their checksums
    assert files.exchange("MOVE", f"{dav}/Docs/album", user="alice",
                          headers={"Destination": f"{dav}/Other/album"})[0] == 201
    assert checksums(files, f"{dav}/Other/album/moved.jpg") == [sha1]
    # a copy: a new file with a new id, the same bytes and so the same checksum
    assert files.exchange("COPY", f"{dav}/Other/album/moved.jpg", user="alice",
                          headers={"Destination": f"{dav}/Docs/copy.jpg"})[0] == 201
    copy = propfind(files, f"{dav}/Docs/copy.jpg", depth="0")[f"{dav}/Docs/copy.jpg"]
    assert copy[f"{OC}fileid"].text != file_id
    assert checksums(files, f"{dav}/Docs/copy.jpg") == [sha1]
    # changed content never shows the old checksum
    assert files.exchange("PUT", f"{dav}/Docs/copy.jpg", b"edited", user="alice")[0] == 204
    assert checksums(files, f"{dav}/Docs/copy.jpg") == []
    assert checksums(files, f"{dav}/Other/album/moved.jpg") == [sha1]
