"""Thumbnail listing as the Nextcloud apps do it, replayed request by request on a real files daemon
(loopback, real SQLite, real pictures made with Pillow), and the desktop's avatar address on a real
API daemon.

The sequences, from the apps' sources:
- Android opens a folder with PROPFIND Depth 1 asking WebdavUtils.getAllPropSet()
  (nextcloud/android-library: library/src/main/java/com/owncloud/android/lib/common/network/
  WebdavUtils.java), reads oc:fileid as the file's local id and nc:has-preview, a missing one being
  true (…/common/network/WebdavEntry.kt), then for each file with a preview asks
  /index.php/core/preview?fileId=ID&x=PX&y=PX&a=1&mode=cover&forceIcon=0 with the headers
  `Cookie: nc_sameSiteCookielax=true;nc_sameSiteCookiestrict=true` and `OCS-APIRequest: true`, takes
  only a 200 and crops the answer to its square itself (nextcloud/android:
  app/src/main/java/com/owncloud/android/datamodel/ThumbnailsCacheManager.java, ThumbnailGenerationTask;
  app/src/main/java/com/nextcloud/utils/extensions/OwnCloudClientExtensions.kt, getPreviewEndpoint, which
  halves x and y). Its small thumbnails come from /index.php/apps/files/api/v1/thumbnail/X/Y/PATH
  (ThumbnailsCacheManager.generateThumbnailFromOCFile).
- iOS lists with PROPFIND Depth 1 on the folder URL without a trailing slash, the body the list of
  NKProperties (nextcloud/NextcloudKit: Sources/NextcloudKit/Models/NKProperties.swift,
  NKDataFileXML.swift), reads oc:fileid and nc:has-preview, then asks
  /index.php/core/preview?fileId=ID&x=W&y=H&a=1&mode=cover&forceIcon=0&mimeFallback=0&etag=ETAG and,
  once it holds a thumbnail, sends the thumbnail's ETag back quoted in If-None-Match
  (Sources/NextcloudKit/NextcloudKit+API.swift, downloadPreview).
- The desktop app asks /remote.php/dav/avatars/USER/SIZE.png (nextcloud/desktop:
  src/libsync/networkjobs.cpp, AvatarJob, for servers from 10 on).
"""
from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from PIL import Image
from pillow_heif import register_heif_opener

from tests.daemons import LoopbackDaemon, serving
from tests.installation import listening
from tests.test_files_webdav import FilesDaemon
from tests.test_web_session import ApiDaemon

DAV = "/remote.php/dav/files/alice"
D, OC, NC = "{DAV:}", "{http://owncloud.org/ns}", "{http://nextcloud.org/ns}"
ANDROID_PROPS = ("<d:displayname/><d:getcontenttype/><d:resourcetype/><d:getcontentlength/><d:getlastmodified/>"
                 "<d:creationdate/><d:getetag/><oc:permissions/><oc:fileid/><oc:id/><oc:size/><oc:favorite/>"
                 "<nc:is-encrypted/><nc:mount-type/><oc:owner-id/><oc:owner-display-name/><oc:comments-unread/>"
                 "<nc:has-preview/><nc:note/><nc:sharees/><nc:rich-workspace/><nc:creation_time/><nc:upload_time/>"
                 "<nc:lock/><nc:system-tags/><nc:file-metadata-size/><nc:metadata-photos-size/><nc:hidden/>")
ANDROID_PROPFIND = ('<?xml version="1.0" encoding="UTF-8"?><d:propfind xmlns:d="DAV:" '
                    'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">'
                    f'<d:prop>{ANDROID_PROPS}</d:prop></d:propfind>')
IOS_PROPFIND = ('<?xml version="1.0" encoding="UTF-8"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
                'xmlns:nc="http://nextcloud.org/ns"><d:prop><d:displayname /><d:getlastmodified /><d:getetag />'
                '<d:getcontenttype /><d:resourcetype /><d:quota-available-bytes /><d:quota-used-bytes />'
                '<d:getcontentlength /><permissions xmlns="http://owncloud.org/ns"/>'
                '<id xmlns="http://owncloud.org/ns"/>'
                '<fileid xmlns="http://owncloud.org/ns"/><size xmlns="http://owncloud.org/ns"/>'
                '<favorite xmlns="http://owncloud.org/ns"/><share-types xmlns="http://owncloud.org/ns"/>'
                '<owner-id xmlns="http://owncloud.org/ns"/><has-preview xmlns="http://nextcloud.org/ns"/>'
                '<mount-type xmlns="http://nextcloud.org/ns"/><metadata-photos-size xmlns="http://nextcloud.org/ns"/>'
                '</d:prop></d:propfind>')
ANDROID_HEADERS = {"Cookie": "nc_sameSiteCookielax=true;nc_sameSiteCookiestrict=true", "OCS-APIRequest": "true",
                   "User-Agent": "Mozilla/5.0 (Android) Nextcloud-android/33.0.1"}
IOS_HEADERS = {"User-Agent": "Mozilla/5.0 (iOS) Nextcloud-iOS/6.1.4"}
RED, BLUE = (220, 20, 20), (20, 20, 220)

register_heif_opener()  # the tests write an iPhone photo (HEIC) and read thumbnails back


def jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    """A JPEG whose top half is red and bottom half blue, as stored (before any EXIF rotation)."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width, height // 2))
    out = BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png(width: int, height: int, mode: str = "RGBA") -> bytes:
    out = BytesIO()
    Image.new(mode, (width, height), (10, 200, 10, 128) if mode == "RGBA" else (10, 200, 10)).save(out, "PNG")
    return out.getvalue()


def heic(width: int, height: int) -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), RED).save(out, "HEIF")
    return out.getvalue()


PICTURES = {
    "beach.jpg": jpeg(4000, 3000),              # a 12-megapixel phone photo
    "sideways.jpg": jpeg(300, 200, orientation=6),  # taken with the phone turned: shown 200 × 300
    "logo.png": png(640, 320),                  # transparent: its thumbnail stays PNG
    "iphone.heic": heic(400, 300),
    "bomb.png": png(5000, 5000, "RGB"),         # 25 megapixels in a few KiB: over the limit of 20
    "notes.txt": b"not a picture",
    "fake.jpg": b"this is no JPEG at all",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    daemon = FilesDaemon(tmp_path_factory.mktemp("previews"), extra="preview_max_megapixels = 20\n", quota_mb=512)
    with serving(daemon, "alice", "bob") as running:
        assert running.exchange("MKCOL", f"{DAV}/Photos/", user="alice")[0] == 201
        for name, data in PICTURES.items():
            status = running.exchange("PUT", f"{DAV}/Photos/{name}", data, user="alice",
                                      headers={"X-OC-Mtime": "1700000000"})[0]
            assert status == 201, name
        assert running.exchange("MKCOL", "/remote.php/dav/files/bob/Private/", user="bob")[0] == 201
        secret = jpeg(64, 64)
        assert running.exchange("PUT", "/remote.php/dav/files/bob/Private/secret.jpg", secret, user="bob")[0] == 201
        yield running
    assert "unhandled error" not in daemon.log()


def listing(files, path: str, body: str, headers: dict) -> dict[str, dict[str, str]]:
    """PROPFIND Depth 1 as the app sends it: each member's name and its properties found (200 propstat)."""
    status, _, answer = files.exchange("PROPFIND", path, body, user="alice",
                                       headers={"Depth": "1", "Content-Type": "application/xml", **headers})
    assert status == 207, answer
    members = {}
    for response in ET.fromstring(answer).iter(f"{D}response"):
        href = response.findtext(f"{D}href")
        props = {}
        for propstat in response.iter(f"{D}propstat"):
            if propstat.findtext(f"{D}status").split()[1] == "200":
                for prop in propstat.find(f"{D}prop"):
                    props[prop.tag] = prop.text or ""
        members[href.rstrip("/").rpartition("/")[2]] = props
    return members


def picture(body: bytes) -> Image.Image:
    image = Image.open(BytesIO(body))
    image.load()
    return image


def cache_files(files) -> dict[Path, bytes]:
    root = files.home / "var" / "previews"
    return {path: path.read_bytes() for path in root.glob("??/*/*")}


def test_android_opens_a_photo_folder_and_fetches_each_thumbnail(files):
    entries = listing(files, f"{DAV}/Photos/", ANDROID_PROPFIND, ANDROID_HEADERS)
    has_preview = {name: props[f"{NC}has-preview"] for name, props in entries.items() if name != "Photos"}
    assert has_preview == {"beach.jpg": "true", "sideways.jpg": "true", "logo.png": "true", "iphone.heic": "true",
                           "bomb.png": "true", "notes.txt": "false", "fake.jpg": "true"}
    assert entries["Photos"][f"{NC}has-preview"] == "false"  # a folder has none
    assert entries["beach.jpg"][f"{D}getcontenttype"] == "image/jpeg"
    px = 128
    sizes = {}
    for name, props in entries.items():
        if props[f"{NC}has-preview"] != "true":
            continue
        file_id = props[f"{OC}fileid"]
        status, headers, body = files.exchange(
            "GET", f"/index.php/core/preview?fileId={file_id}&x={px}&y={px}&a=1&mode=cover&forceIcon=0",
            user="alice", headers=ANDROID_HEADERS)
        if status == 200:
            image = picture(body)
            assert headers["content-type"] == Image.MIME[image.format]
            assert headers["x-content-type-options"] == "nosniff" and headers["etag"].startswith('"')
            sizes[name] = image.size
        else:
            sizes[name] = status
    # cover: the smaller side fills the box and the aspect ratio is kept; nothing is enlarged
    assert sizes == {"beach.jpg": (171, 128), "sideways.jpg": (128, 192), "logo.png": (256, 128),
                     "iphone.heic": (171, 128), "bomb.png": 404, "fake.jpg": 404}
    # Android's small thumbnails, by path: fitted inside the box
    status, headers, body = files.exchange("GET", "/index.php/apps/files/api/v1/thumbnail/64/64/Photos/beach.jpg",
                                           user="alice", headers=ANDROID_HEADERS)
    assert status == 200 and picture(body).size == (64, 48)
    # a file the listing said has no preview has none when asked all the same
    status, _, _ = files.exchange("GET", f"/index.php/core/preview?fileId={entries['notes.txt'][f'{OC}fileid']}"
                                         f"&x=64&y=64&a=1", user="alice")
    assert status == 404


def test_ios_lists_without_a_slash_and_revalidates_with_the_thumbnails_etag(files):
    entries = listing(files, f"{DAV}/Photos", IOS_PROPFIND, IOS_HEADERS)
    beach = entries["beach.jpg"]
    assert beach[f"{NC}has-preview"] == "true"
    url = (f"/index.php/core/preview?fileId={beach[f'{OC}fileid']}&x=1024&y=1024&a=1&mode=cover&forceIcon=0"
           f"&mimeFallback=0&etag={beach[f'{D}getetag'].strip(chr(34))}")
    status, headers, body = files.exchange("GET", url, user="alice", headers=IOS_HEADERS)
    assert status == 200 and picture(body).size == (1365, 1024)
    kept = headers["etag"].strip('"')  # NextcloudKit keeps it without quotes and quotes it again
    status, headers, body = files.exchange("GET", url, user="alice", headers={**IOS_HEADERS,
                                                                               "If-None-Match": f'"{kept}"'})
    assert status == 304 and body == b"" and headers["etag"] == f'"{kept}"'
    # by path, as preview.png: the same thumbnail and the same ETag
    status, headers, _ = files.exchange("GET", "/index.php/core/preview.png?file=/Photos/beach.jpg&x=1024&y=1024"
                                               "&a=1&mode=cover", user="alice")
    assert status == 200 and headers["etag"] == f'"{kept}"'


def test_the_exif_orientation_is_applied(files):
    entries = listing(files, f"{DAV}/Photos/", ANDROID_PROPFIND, ANDROID_HEADERS)
    status, _, body = files.exchange("GET", f"/index.php/core/preview?fileId={entries['sideways.jpg'][f'{OC}fileid']}"
                                            "&x=300&y=300&a=1", user="alice")
    image = picture(body).convert("RGB")
    assert status == 200 and image.size == (200, 300)  # upright: taller than wide, as the phone showed it
    # Orientation 6: the stored top row is the picture's right-hand side
    left, right = image.getpixel((20, 150)), image.getpixel((180, 150))
    assert right[0] > 150 > right[2] and left[2] > 150 > left[0], (left, right)


def test_a_second_fetch_is_served_from_the_cache_file(files):
    entries = listing(files, f"{DAV}/Photos/", ANDROID_PROPFIND, ANDROID_HEADERS)
    url = f"/index.php/core/preview?fileId={entries['logo.png'][f'{OC}fileid']}&x=96&y=96&a=1"
    before = cache_files(files)
    status, _, first = files.exchange("GET", url, user="alice")
    made = {path: data for path, data in cache_files(files).items() if path not in before}
    assert status == 200 and list(made.values()) == [first]
    [path] = made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(stat.S_IMODE(directory.stat().st_mode) == 0o700
               for directory in (path.parent, path.parent.parent, files.home / "var" / "previews"))
    # Whatever the cache file holds is what the next request gets: it is not drawn again
    marker = png(7, 7)
    path.write_bytes(marker)
    os.utime(path, (1, 1))
    status, headers, second = files.exchange("GET", url, user="alice")
    assert status == 200 and second == marker and headers["content-type"] == "image/png"
    assert path.stat().st_mtime > 1  # the hit was recorded: the sweep keeps recently used thumbnails
    # A picture over the limit is remembered as having none, and answered 404 again with the reason
    bomb = f"/index.php/core/preview?fileId={entries['bomb.png'][f'{OC}fileid']}&x=96&y=96&a=1"
    status, _, body = files.exchange("GET", bomb, user="alice")
    assert status == 404 and b"preview_max_megapixels" in body
    assert any(data.startswith(b"\0") and b"5000" in data for data in cache_files(files).values())
    assert files.exchange("GET", bomb, user="alice")[:3:2] == (404, body)


def test_a_changed_file_gets_a_new_thumbnail(files):
    assert files.exchange("PUT", f"{DAV}/Photos/changing.jpg", jpeg(400, 200), user="alice")[0] == 201
    file_id = listing(files, f"{DAV}/Photos/", ANDROID_PROPFIND, ANDROID_HEADERS)["changing.jpg"][f"{OC}fileid"]
    url = f"/index.php/core/preview?fileId={file_id}&x=100&y=100&a=1"
    status, first_headers, body = files.exchange("GET", url, user="alice")
    assert status == 200 and picture(body).size == (100, 50)
    assert files.exchange("PUT", f"{DAV}/Photos/changing.jpg", jpeg(200, 400), user="alice")[0] == 204
    status, headers, body = files.exchange("GET", url, user="alice",
                                           headers={"If-None-Match": first_headers["etag"]})
    assert status == 200 and picture(body).size == (50, 100) and headers["etag"] != first_headers["etag"]


def test_only_files_the_user_can_read_have_thumbnails(files):
    with files.db() as db:
        secret_id, = db.execute("SELECT file_id FROM entries WHERE path = 'secret.jpg'").fetchone()
        last_id, = db.execute("SELECT MAX(file_id) FROM entries").fetchone()
    query = "&x=64&y=64&a=1"
    others = files.exchange("GET", f"/index.php/core/preview?fileId={secret_id}{query}", user="alice")
    missing = files.exchange("GET", f"/index.php/core/preview?fileId={last_id + 1000}{query}", user="alice")
    assert others[0] == missing[0] == 404
    assert others[2].replace(str(secret_id).encode(), b"N") == missing[2].replace(str(last_id + 1000).encode(), b"N")
    assert files.exchange("GET", f"/index.php/core/preview?fileId={secret_id}{query}", user="bob")[0] == 200
    assert files.exchange("GET", f"/index.php/core/preview.png?file=/Private/secret.jpg{query}",
                          user="alice")[0] == 404
    assert files.exchange("GET", f"/index.php/core/preview?fileId={secret_id}{query}")[0] == 401
    # Shared with alice (read-only), the same file has a thumbnail for her too
    with files.db() as db:
        folder, = db.execute("SELECT id FROM folders WHERE owner = 'bob' AND name = 'Private'").fetchone()
        db.execute("INSERT INTO folder_shares VALUES (?, 'alice', 'ro')", [folder])
    try:
        assert files.exchange("GET", f"/index.php/core/preview?fileId={secret_id}{query}", user="alice")[0] == 200
        assert files.exchange("GET", f"/index.php/core/preview.png?file=/Private%20(bob)/secret.jpg{query}",
                              user="alice")[0] == 200
    finally:
        with files.db() as db:
            db.execute("DELETE FROM folder_shares WHERE folder_id = ?", [folder])


@pytest.mark.parametrize("query", [
    "fileId=abc&x=64&y=64", "x=64&y=64", "fileId=-3&x=64", "fileId=%C2%B2&x=64",  # ² is a digit to Python
    "fileId={id}&x=zero", "fileId={id}&x=0&y=64",
    "fileId={id}&y=-5", "fileId={id}&a=2", "fileId={id}&mode=zoom",
])
def test_bad_parameters_are_400_with_a_reason(files, query):
    file_id = listing(files, f"{DAV}/Photos/", ANDROID_PROPFIND, ANDROID_HEADERS)["beach.jpg"][f"{OC}fileid"]
    status, _, body = files.exchange("GET", "/index.php/core/preview?" + query.format(id=file_id), user="alice")
    assert status == 400 and body


def test_bad_paths_and_oversized_boxes(files):
    for path in ("", "/", "/Photos/../Photos/beach.jpg", "/Photos/%5Cbeach.jpg"):
        assert files.exchange("GET", f"/index.php/core/preview.png?file={path}&x=64", user="alice")[0] == 400, path
    assert files.exchange("GET", "/index.php/apps/files/api/v1/thumbnail/x/64/Photos/beach.jpg",
                          user="alice")[0] == 400
    # A box beyond the largest thumbnail is clamped to it, and a picture is never enlarged
    status, _, body = files.exchange("GET", "/index.php/core/preview.png?file=/Photos/beach.jpg&x=99999&y=99999&a=1",
                                     user="alice")
    assert status == 200 and picture(body).size == (2048, 1536)
    status, _, body = files.exchange("GET", "/index.php/core/preview.png?file=/Photos/logo.png&x=-1&y=-1&a=1",
                                     user="alice")
    assert status == 200 and picture(body).size == (640, 320)
    # a=0: cropped to exactly the box
    status, _, body = files.exchange("GET", "/index.php/core/preview.png?file=/Photos/beach.jpg&x=50&y=80&a=0",
                                     user="alice")
    assert status == 200 and picture(body).size == (50, 80)


class FrontDaemon(LoopbackDaemon):
    """The one door the apps are given, routing to the files and API daemons on loopback."""

    module, section = "services.front", "front"

    def healthy(self) -> bool:
        return listening(self.port)  # its /healthz would wait for every suite daemon, not only these two


@pytest.fixture(scope="module")
def api(files, tmp_path_factory):
    """The API daemon on the files daemon's data (the same accounts)."""
    with serving(ApiDaemon(tmp_path_factory.mktemp("avatars")).on_data_of(files.home)) as running:
        yield running


@pytest.fixture(scope="module")
def front(files, api, tmp_path_factory):
    daemon = FrontDaemon(tmp_path_factory.mktemp("front")).on_data_of(files.home)
    with open(daemon.config, "a") as config:
        config.write(f'[files]\nlisten = "127.0.0.1:{files.port}"\n[api]\nlisten = "127.0.0.1:{api.port}"\n')
    with serving(daemon) as running:
        yield running


def test_through_the_front_door_the_apps_reach_thumbnails_and_avatars(front):
    entries = listing(front, f"{DAV}/Photos/", ANDROID_PROPFIND, ANDROID_HEADERS)
    file_id = entries["beach.jpg"][f"{OC}fileid"]
    status, _, body = front.exchange("GET", f"/index.php/core/preview?fileId={file_id}&x=64&y=64&a=1&mode=cover"
                                            "&forceIcon=0", user="alice", headers=ANDROID_HEADERS)
    assert status == 200 and picture(body).size == (85, 64)
    status, _, body = front.exchange("GET", "/index.php/core/preview.png?file=/Photos/beach.jpg&x=64&y=64&a=1",
                                     user="alice", headers=IOS_HEADERS)
    assert status == 200 and picture(body).size == (64, 48)
    status, _, body = front.exchange("GET", "/index.php/apps/files/api/v1/thumbnail/32/32/Photos/beach.jpg",
                                     user="alice", headers=ANDROID_HEADERS)
    assert status == 200 and picture(body).size == (32, 24)
    status, headers, body = front.exchange("GET", "/remote.php/dav/avatars/alice/64.png", user="alice")
    assert status == 200 and headers["content-type"] == "image/png" and picture(body).size == (64, 64)
    assert front.exchange("GET", "/index.php/avatar/alice/64", user="alice")[2] == body


def test_the_desktop_avatar_address_serves_the_same_avatar(api):
    status, headers, body = api.exchange("GET", "/remote.php/dav/avatars/alice/64.png", user="alice")
    assert status == 200 and headers["content-type"] == "image/png" and picture(body).size == (64, 64)
    same = api.exchange("GET", "/index.php/avatar/alice/64", user="alice")
    assert same[2] == body and same[1]["etag"] == headers["etag"]
    assert api.exchange("GET", "/remote.php/dav/avatars/alice/64.png", user="alice",
                        headers={"If-None-Match": headers["etag"]})[0] == 304
    assert api.exchange("GET", "/remote.php/dav/avatars/bob/64.png", user="alice")[0] == 404
    assert api.exchange("GET", "/remote.php/dav/avatars/alice/huge.png", user="alice")[0] == 400


def test_thumbnails_of_deleted_and_replaced_files_are_pruned(files):
    from services.core.preview_cache import Previews  # here: the other tests run against any version
    from services.files.previews import current_contents

    content_dirs = {}  # each file's directory of thumbnails in the cache
    for name, data in (("gone.jpg", jpeg(120, 80)), ("edited.jpg", jpeg(80, 120)), ("stays.jpg", jpeg(90, 90))):
        assert files.exchange("PUT", f"{DAV}/Photos/{name}", data, user="alice")[0] == 201
        before = {path.parent for path in cache_files(files)}
        assert files.exchange("GET", f"/index.php/core/preview.png?file=/Photos/{name}&x=32&y=32&a=1",
                              user="alice")[0] == 200
        [content_dirs[name]] = {path.parent for path in cache_files(files)} - before
    assert files.exchange("DELETE", f"{DAV}/Photos/gone.jpg", user="alice")[0] == 204
    assert files.exchange("PUT", f"{DAV}/Photos/edited.jpg", jpeg(81, 120), user="alice")[0] == 204
    # the daemon's daily pass, run now on its data with the same two functions
    previews = Previews(files.home / "var" / "previews", files.store,
                        max_pixels=20_000_000, cache_bytes=0)
    try:
        with sqlite3.connect(files.home / "var" / "db" / "hearth.sqlite3") as db:
            assert previews.prune(current_contents(db)) >= 2  # (and any an earlier test replaced)
    finally:
        previews.close()
    assert not content_dirs["gone.jpg"].exists() and not content_dirs["edited.jpg"].exists()
    assert content_dirs["stays.jpg"].exists()


def test_a_negative_limit_stops_the_files_daemon_at_start(tmp_path):
    daemon = FilesDaemon(tmp_path, extra="preview_cache_mb = -1\n")
    result = subprocess.run([sys.executable, "-m", daemon.module, "--config", str(daemon.config)], cwd=tmp_path,
                            env=daemon.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "[files] preview_cache_mb: expected 0 or more, got -1" in result.stderr
