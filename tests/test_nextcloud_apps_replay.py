"""The Nextcloud Android and iOS apps against `hearth up`, replayed request by request through the one
origin the apps are given: account setup, browsing, and the camera upload of a photo with its
original date, which must then be the same through /files/USER/ and on a `hearth sync` client's disk.

Each test names the client source files its requests and checks come from (nextcloud/android,
nextcloud/android-library, nextcloud/NextcloudKit for iOS, nextcloud/ios). The answers are read the
way each app reads them: Android's WebdavEntry (jackrabbit, namespace-aware; the href split on the
files DAV path, the first propstat, numbers parsed as Long), iOS's NKDataFileXML (SwiftyXMLParser,
which matches element names literally, prefixes included: `d:response`, `oc:permissions`).
The Login Flow v2 approval the iOS app waits for is done in real Chromium.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, urlencode, urlsplit
from xml.dom import minidom
from xml.etree import ElementTree as ET

import pytest

from tests.installation import ADMIN_PASSWORD, OnePort, clean_environ, running
from tests.test_nextcloud_login import ANDROID_UA, IOS_UA, OCS, discover, ocs_data
from tests.test_web_session import logged_in_as

REPO = Path(__file__).resolve().parent.parent
OC, NC = "{http://owncloud.org/ns}", "{http://nextcloud.org/ns}"
CAPTURED = 1733575200          # the photo's capture time: Sat, 07 Dec 2024 12:40:00 GMT
CAPTURED_HTTP = "Sat, 07 Dec 2024 12:40:00 GMT"
ANDROID_CHUNK = 10_240_000     # android-library ChunkedFileUploadRemoteOperation.CHUNK_SIZE_MOBILE

# android-library WebdavUtils.getAllPropSet(), serialised as jackrabbit's PropFindMethod does: DAV: names
# with the D prefix, the others in a default namespace declared on each element.
_ANDROID_DAV = ("displayname", "getcontenttype", "resourcetype", "getcontentlength", "getlastmodified",
                "creationdate", "getetag")
_ANDROID_OC_NC = (("oc", "permissions"), ("oc", "fileid"), ("oc", "id"), ("oc", "size"), ("oc", "favorite"),
                  ("nc", "is-encrypted"), ("nc", "mount-type"), ("oc", "owner-id"), ("oc", "owner-display-name"),
                  ("oc", "comments-unread"), ("nc", "has-preview"), ("nc", "note"), ("nc", "sharees"),
                  ("nc", "rich-workspace"), ("nc", "creation_time"), ("nc", "upload_time"), ("nc", "lock"),
                  ("nc", "lock-owner-type"), ("nc", "lock-owner"), ("nc", "lock-owner-displayname"),
                  ("nc", "lock-owner-editor"), ("nc", "lock-time"), ("nc", "lock-timeout"), ("nc", "lock-token"),
                  ("nc", "system-tags"), ("nc", "color"), ("nc", "file-metadata-size"),
                  ("nc", "file-metadata-gps"), ("nc", "metadata-photos-size"), ("nc", "metadata-photos-gps"),
                  ("nc", "metadata-files-live-photo"), ("nc", "hidden"), ("nc", "share-download-limits"))
_NS = {"oc": "http://owncloud.org/ns", "nc": "http://nextcloud.org/ns"}
ANDROID_PROPFIND = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?><D:propfind xmlns:D="DAV:"><D:prop>'
                    + "".join(f"<D:{name}/>" for name in _ANDROID_DAV)
                    + "".join(f'<{name} xmlns="{_NS[ns]}"/>' for ns, name in _ANDROID_OC_NC)
                    + "</D:prop></D:propfind>").encode()
# android-library WebdavUtils.getChunksPropSet(): what ChunkedFileUploadRemoteOperation lists chunks with
ANDROID_CHUNKS_PROPFIND = (b'<?xml version="1.0" encoding="UTF-8" standalone="no"?><D:propfind xmlns:D="DAV:">'
                           b'<D:prop><D:getcontenttype/><D:resourcetype/><D:getcontentlength/></D:prop></D:propfind>')
# NextcloudKit NKProperties.allCases in order, inside NKDataFileXML.getRequestBodyFile()
IOS_PROPFIND = ("""<?xml version="1.0" encoding="UTF-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
    <d:prop>""" + "".join((
    "<d:displayname />", "<nc:share-download-limits />", "<d:getlastmodified />", "<d:getetag />",
    "<d:getcontenttype />", "<d:resourcetype />", "<d:quota-available-bytes />", "<d:quota-used-bytes />",
    "<d:getcontentlength />",
    *(f'<{name} xmlns="http://owncloud.org/ns"/>' for name in (
        "permissions", "id", "fileid", "size", "favorite", "share-types", "owner-id", "owner-display-name",
        "comments-unread", "checksums", "downloadURL", "data-fingerprint")),
    *(f'<{name} xmlns="http://nextcloud.org/ns"/>' for name in (
        "creation_time", "upload_time", "is-encrypted", "has-preview", "mount-type", "rich-workspace", "note",
        "lock", "lock-owner", "lock-owner-editor", "lock-owner-displayname", "lock-owner-type", "lock-time",
        "lock-timeout", "system-tags", "file-metadata-size", "file-metadata-gps", "metadata-photos-exif",
        "metadata-photos-gps", "metadata-photos-original_date_time", "metadata-photos-place",
        "metadata-photos-size", "metadata-files-live-photo", "hidden")),
    '<share-permissions xmlns="http://open-collaboration-services.org/ns"/>',
    '<share-permissions xmlns="http://open-cloud-mesh.org/ns"/>')) + """    </d:prop>
</d:propfind>""").encode()


class Hearth(OnePort):
    """`hearth up` on a free loopback port, spoken to as the apps do: one origin, Basic auth."""

    def __init__(self, root: Path):
        super().__init__(root, "[supervisor]\nready_timeout = 30\n")
        self.password = ADMIN_PASSWORD   # the app password, once a login flow has handed one out

    def exchange(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None,
                 auth: bool = False, timeout: float = 30) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body); with `auth`, as admin with self.password."""
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{self.password}".encode()).decode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def login(self, user: str, password: str):
        """POST /api/v1/session: what the web UI's login form (in the app's web view) sends."""
        return self.exchange("POST", "/api/v1/session", json.dumps({"user": user, "password": password}),
                             headers={"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    installation = Hearth(tmp_path_factory.mktemp("apps"))
    with running(installation):
        yield installation


# --- how the apps read a multistatus -------------------------------------------------------------------------

def android_entries(body: bytes, split: str = "/remote.php/dav/files/admin") -> list[dict]:
    """What android-library's WebdavEntry makes of each response (WebdavEntry.kt init): the path after
    `split` in the href, the properties of the first propstat (the second if the first is 404), and
    getcontentlength, oc:fileid and oc:size parsed as Long, nc:creation_time and nc:upload_time as Long or
    0, getlastmodified with WebdavUtils.parseResponseDate's RFC 1123 form."""
    entries = []
    for response in ET.fromstring(body).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href")
        parts = href.split(split, 1)
        assert len(parts) == 2, f"{href} does not contain {split}: WebdavEntry's split()[1] throws"
        propstats = response.findall("{DAV:}propstat")
        chosen = propstats[0]
        if propstats[0].findtext("{DAV:}status").split()[1] == "404" and len(propstats) > 1:
            chosen = propstats[1]
        assert chosen.findtext("{DAV:}status").startswith("HTTP/1.1 200"), href
        props = {prop.tag: prop for prop in chosen.find("{DAV:}prop")}
        entry = {"path": unquote(parts[1].replace("//", "/")), "props": props,
                 "dir": props.get("{DAV:}resourcetype") is not None and len(props["{DAV:}resourcetype"]) > 0}
        for name in ("{DAV:}getcontentlength", OC + "fileid", OC + "size"):
            if name in props:
                entry[name] = int(props[name].text)   # (prop.value as String).toLong(): empty throws
        for name in (NC + "creation_time", NC + "upload_time"):
            if name in props:
                try:
                    entry[name] = int(props[name].text)
                except (TypeError, ValueError):
                    entry[name] = 0
        if "{DAV:}getlastmodified" in props:
            entry["modified"] = int(parsedate_to_datetime(props["{DAV:}getlastmodified"].text).timestamp())
        entry["permissions"] = props[OC + "permissions"].text if OC + "permissions" in props else None
        entries.append(entry)
    return entries


def ios_files(body: bytes) -> list[dict]:
    """What NextcloudKit's NKDataFileXML.convertDataFile makes of each response. SwiftyXMLParser knows no
    namespaces: it finds `d:multistatus`, `d:response`, `d:href`, `d:propstat`, `d:prop` and each
    property (`oc:id`, `nc:creation_time`…) by its literal qualified name, and takes the first propstat."""
    files = []
    root = minidom.parseString(body).documentElement
    assert root.tagName == "d:multistatus", f"NKDataFileXML looks for d:multistatus, the answer has {root.tagName}"
    for response in root.getElementsByTagName("d:response"):
        propstat = response.getElementsByTagName("d:propstat")[0]
        prop = propstat.getElementsByTagName("d:prop")[0]

        def text(name: str) -> str | None:
            found = [node for node in prop.childNodes if getattr(node, "tagName", None) == name]
            return "".join(n.data for n in found[0].childNodes if n.nodeType == n.TEXT_NODE) if found else None

        href = response.getElementsByTagName("d:href")[0].firstChild.data
        resourcetype = [node for node in prop.childNodes if getattr(node, "tagName", None) == "d:resourcetype"]
        files.append({
            "href": href, "fileName": unquote(href.rstrip("/").rsplit("/", 1)[1]),
            "directory": bool(resourcetype and resourcetype[0].getElementsByTagName("d:collection")),
            "date": text("d:getlastmodified"), "etag": (text("d:getetag") or "").replace('"', ""),
            "ocId": text("oc:id"), "fileId": text("oc:fileid"), "permissions": text("oc:permissions"),
            "size": int(text("oc:size") or 0), "creation_time": float(text("nc:creation_time") or 0),
            "upload_time": float(text("nc:upload_time") or 0)})
    return files


def basic_app(hearth: Hearth) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"admin:{hearth.password}".encode()).decode()}


# --- account setup -------------------------------------------------------------------------------------------

def test_android_account_setup_with_login_flow_v1_to_the_first_listing(hearth):
    """The Android app adding an account through its web view (Login Flow v1), then what it asks first.

    Sources: android app/src/main/java/com/owncloud/android/authentication/AuthenticatorActivity.java
    (webview_login_url /index.php/login/flow with OCS-APIREQUEST and the app's User-Agent,
    shouldOverrideUrlLoading on nc://login/, parseLoginDataUrl: split on &, server:/user:/password:,
    URLDecoder.decode); android-library resources/status/GetStatusRemoteOperation.java (status.php:
    installed, version), ConnectivityServiceImpl (GET /index.php/204 must be 204),
    resources/status/GetCapabilitiesRemoteOperation.java (v2, format=json, If-None-Match),
    resources/users/GetUserInfoRemoteOperation.java (v2 cloud/user, format=json, HTTP 200),
    resources/users/GetUserAvatarRemoteOperation (/index.php/avatar/USER/PX),
    resources/files/ReadFolderRemoteOperation.kt (PROPFIND Depth 1, WebdavUtils.getAllPropSet(),
    207 or 200; WebdavEntry.kt parses each response).
    """
    discover(hearth, ANDROID_UA)
    agent = {"User-Agent": ANDROID_UA}
    status, headers, _ = hearth.exchange("GET", "/index.php/login/flow", headers={**OCS, **agent})
    assert status == 303 and headers["location"] == "/login?next=/index.php/login/flow"
    cookie, csrf = logged_in_as(hearth, "admin", ADMIN_PASSWORD)   # the web view's login form
    status, _, page = hearth.exchange("GET", "/index.php/login/flow", headers={**cookie, **agent})
    assert status == 200 and b'content="Nextcloud Android 33.0.1"' in page
    status, _, body = hearth.exchange("POST", "/index.php/login/flow", json.dumps({"approve": True}),
                                      headers={**cookie, **agent, "X-CSRF-Token": csrf,
                                               "Content-Type": "application/json"})
    assert status == 200, body
    target = json.loads(body)["redirect"]
    assert target.startswith("nc://login/")
    values = target[len("nc://login/"):].split("&")
    assert 1 <= len(values) <= 3
    login = {key: unquote_plus(value) for key, value in (v.split(":", 1) for v in values)}
    assert login["server"] == hearth.url and login["user"] == "admin"
    hearth.password = login["password"]

    # the app checks the server it was handed, then the user, capabilities and avatar, with the app password
    status, _, body = hearth.exchange("GET", "/status.php", headers=agent)
    assert status == 200 and json.loads(body)["installed"] is True
    status, _, body = hearth.exchange("GET", "/ocs/v2.php/cloud/user?format=json", headers={**OCS, **agent},
                                      auth=True)
    assert status == 200, body
    user = ocs_data(body, 200)
    assert user["id"] == "admin" and user["display-name"] and user["enabled"] is True
    assert {"free", "used", "total", "relative", "quota"} <= set(user["quota"])
    status, _, body = hearth.exchange("GET", "/ocs/v2.php/cloud/capabilities?format=json", headers={**OCS, **agent},
                                      auth=True)
    assert status == 200 and ocs_data(body, 200)["capabilities"]["core"]["pollinterval"] > 0
    status, headers, body = hearth.exchange("GET", "/index.php/avatar/admin/128", headers=agent, auth=True)
    assert status == 200 and headers["content-type"] == "image/png" and body.startswith(b"\x89PNG")

    status, headers, body = hearth.exchange("PROPFIND", "/remote.php/dav/files/admin/", ANDROID_PROPFIND,
                                            headers={**agent, "Depth": "1", "Content-Type": "text/xml"}, auth=True)
    assert status == 207, body
    root = android_entries(body)[0]
    assert root["path"] == "/" and root["dir"] and root["permissions"] == "RGDNVCK"
    assert root["{DAV:}getcontentlength"] >= 0 and root[OC + "fileid"] > 0


def test_ios_account_setup_with_login_flow_v2_approved_in_chromium(hearth):
    """The iOS app adding an account: Login Flow v2, its user approving in a browser (real Chromium), the
    app polling with the token in the query, then capabilities, profile and the first listing.

    Sources: NextcloudKit Sources/NextcloudKit/NextcloudKit+API.swift (getServerStatus: status.php,
    getUserProfile: ocs/v2.php/cloud/user, statuscode must be 200; avatar index.php/avatar/USER/SIZE),
    NextcloudKit+Login.swift (getLoginFlowV2: POST index.php/login/v2; getLoginFlowV2Poll: POST
    endpoint?token=…), NextcloudKit+Capabilities.swift (ocs/v1.php/cloud/capabilities, no format=json but
    Accept: application/json from NKCommon.getStandardHeaders, decoded with Codable: version.string/
    major/minor/micro required), NextcloudKit+WebDAV.swift readFileOrFolder (PROPFIND, Depth, body
    NKDataFileXML.getRequestBodyFile with every NKProperties case), Models/NKDataFileXML.swift
    convertDataFile (literal d:/oc:/nc: names, first propstat, the root is the href
    /remote.php/dav/files/USER/).
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")
    if not shutil.which("chromium"):
        pytest.skip("chromium is missing: apt-get install chromium (.ci/run does it as root)")
    agent = {"User-Agent": IOS_UA}
    ios_json = {**agent, **OCS, "Accept": "application/json"}   # NKCommon.getStandardHeaders
    status, _, body = hearth.exchange("GET", "/status.php", headers=agent)
    info = json.loads(body)
    assert status == 200 and info["installed"] and not info["maintenance"] and int(info["version"].split(".")[0]) >= 20
    status, _, body = hearth.exchange("POST", "/index.php/login/v2", b"", headers=agent)
    assert status == 200, body
    flow = json.loads(body)
    poll = urlsplit(flow["poll"]["endpoint"]).path + "?" + urlencode({"token": flow["poll"]["token"]})
    assert hearth.exchange("POST", poll, b"", headers=agent)[:1] == (404,)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        tab = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        tab.goto(flow["login"])
        tab.get_by_label("User name").fill("admin")
        tab.get_by_label("Password").fill(ADMIN_PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(flow["login"])
        sync_api.expect(tab.locator("#device")).to_have_text("Nextcloud iOS 6.1.4")
        tab.get_by_role("button", name="Grant access").click()
        sync_api.expect(tab.locator("#status")).to_contain_text("You can close this window")
        browser.close()

    status, _, body = hearth.exchange("POST", poll, b"", headers=agent)
    assert status == 200, body
    credentials = json.loads(body)
    assert credentials["server"] == hearth.url and credentials["loginName"] == "admin"
    assert hearth.exchange("POST", poll, b"", headers=agent)[0] == 404
    hearth.password = credentials["appPassword"]

    status, _, body = hearth.exchange("GET", "/ocs/v1.php/cloud/capabilities", headers=ios_json, auth=True)
    assert status == 200, body
    data = json.loads(body)["ocs"]["data"]
    version = data["version"]
    assert isinstance(version["string"], str) and all(isinstance(version[k], int) for k in ("major", "minor", "micro"))
    assert isinstance(data["capabilities"]["files_sharing"]["public"]["enabled"], bool)
    status, _, body = hearth.exchange("GET", "/ocs/v2.php/cloud/user", headers=ios_json, auth=True)
    assert status == 200 and json.loads(body)["ocs"]["meta"]["statuscode"] == 200
    assert json.loads(body)["ocs"]["data"]["id"] == "admin"
    assert hearth.exchange("GET", "/index.php/avatar/admin/512", headers=agent, auth=True)[0] == 200

    # the app's home: its files root without a trailing slash
    status, headers, body = hearth.exchange("PROPFIND", "/remote.php/dav/files/admin", IOS_PROPFIND, auth=True,
                                            headers={**agent, "Depth": "1", "Content-Type": "application/xml",
                                                     "Accept": "application/xml"})
    assert status == 207, body
    files = ios_files(body)
    assert files and files[0]["href"] == "/remote.php/dav/files/admin/"   # convertDataFile's root check
    assert files[0]["directory"] and files[0]["permissions"] == "RGDNVCK" and files[0]["ocId"] and files[0]["etag"]


# --- browsing ------------------------------------------------------------------------------------------------

DAV = "/remote.php/dav/files/admin"


def android(hearth: Hearth, method: str, path: str, body: bytes | None = None, **headers) -> tuple[int, dict, bytes]:
    """One request of the Android app on the files DAV space (OwnCloudClient: Basic, its User-Agent)."""
    return hearth.exchange(method, DAV + quote(path), body, headers={"User-Agent": ANDROID_UA, **headers}, auth=True)


def ios(hearth: Hearth, method: str, path: str, body: bytes | None = None, **headers) -> tuple[int, dict, bytes]:
    """One request of the iOS app (NKCommon.getStandardHeaders: Basic, its User-Agent, OCS-APIRequest)."""
    return hearth.exchange(method, DAV + quote(path), body, auth=True,
                           headers={"User-Agent": IOS_UA, "OCS-APIRequest": "true", **headers})


def full_url(hearth: Hearth, path: str) -> str:
    """A Destination as the apps send it: the whole URL (jackrabbit MoveMethod, NextcloudKit urlEncoded)."""
    return hearth.url + DAV + quote(path)


def test_android_browses_opens_creates_renames_moves_and_deletes(hearth):
    """Browsing with the Android app.

    Sources (android-library, library/src/main/java/com/owncloud/android/lib/resources/files/):
    CreateFolderRemoteOperation.java (MKCOL; 405 = already there; OC-FileId read from the answer; 409
    sends it to create the parent first), ReadFolderRemoteOperation.kt (PROPFIND Depth 1 with
    WebdavUtils.getAllPropSet(), 207 or 200), ReadFileRemoteOperation.java (PROPFIND Depth 0 with
    getFilePropSet()), UploadFileRemoteOperation.java (PUT with OC-Total-Length, X-OC-Mtime; 200/201/204;
    the ETag header kept, quotes stripped), DownloadFileRemoteOperation.kt (GET must be 200; reads
    Last-Modified and the ETag), ExistenceCheckRemoteOperation.java (HEAD: 200 exists, 404 absent),
    RenameFileRemoteOperation.java (HEAD of the new name, then MOVE with the full Destination URL and
    Overwrite: T), MoveFileRemoteOperation.java (MOVE, Overwrite as asked; 201 or 204),
    RemoveFileRemoteOperation.java (DELETE; success or 404).
    """
    status, headers, _ = android(hearth, "MKCOL", "/Holidays")
    assert status == 201 and headers["oc-fileid"]
    assert android(hearth, "MKCOL", "/Holidays")[0] == 405          # FOLDER_ALREADY_EXISTS
    photo = os.urandom(300_000)
    status, headers, _ = android(hearth, "PUT", "/Holidays/beach.jpg", photo, **{
        "Content-Type": "image/jpeg", "OC-Total-Length": str(len(photo)), "X-OC-Mtime": str(CAPTURED)})
    assert status == 201 and headers["etag"] and headers["oc-fileid"]
    etag = headers["etag"].replace('"', "")

    status, _, body = android(hearth, "PROPFIND", "/", ANDROID_PROPFIND, Depth="1")
    assert status == 207
    listed = {entry["path"]: entry for entry in android_entries(body)}
    assert listed["/Holidays/"]["dir"] and listed["/Holidays/"][OC + "size"] == len(photo)
    status, _, body = android(hearth, "PROPFIND", "/Holidays/", ANDROID_PROPFIND, Depth="1")
    assert status == 207
    own, beach = android_entries(body)
    assert own["path"] == "/Holidays/" and own["permissions"] == "RGDNVCK"
    assert beach["path"] == "/Holidays/beach.jpg" and not beach["dir"] and beach["permissions"] == "RGDNVW"
    assert beach["{DAV:}getcontentlength"] == len(photo) and beach["modified"] == CAPTURED
    assert beach["props"]["{DAV:}getetag"].text.replace('"', "") == etag
    assert beach["props"]["{DAV:}getcontenttype"].text == "image/jpeg"
    status, _, body = android(hearth, "PROPFIND", "/Holidays/beach.jpg", ANDROID_PROPFIND, Depth="0")
    assert status == 207 and android_entries(body)[0][OC + "fileid"] == beach[OC + "fileid"]

    status, headers, content = android(hearth, "GET", "/Holidays/beach.jpg")
    assert status == 200 and content == photo
    assert parsedate_to_datetime(headers["last-modified"]).timestamp() == CAPTURED
    assert headers["etag"].replace('"', "") == etag

    assert android(hearth, "HEAD", "/Holidays/sea.jpg")[0] == 404     # the new name is free: rename
    status, _, _ = android(hearth, "MOVE", "/Holidays/beach.jpg",
                           Destination=full_url(hearth, "/Holidays/sea.jpg"), Overwrite="T")
    assert status in (201, 204)
    assert android(hearth, "HEAD", "/Holidays/sea.jpg")[0] == 200
    assert android(hearth, "MKCOL", "/Holidays/Best of")[0] == 201
    status, _, _ = android(hearth, "MOVE", "/Holidays/sea.jpg",
                           Destination=full_url(hearth, "/Holidays/Best of/sea.jpg"), Overwrite="F")
    assert status in (201, 204)
    status, _, body = android(hearth, "PROPFIND", "/Holidays/Best of/", ANDROID_PROPFIND, Depth="1")
    moved = android_entries(body)[1]
    assert moved["path"] == "/Holidays/Best of/sea.jpg" and moved["modified"] == CAPTURED
    assert android(hearth, "DELETE", "/Holidays/Best of/sea.jpg")[0] == 204
    assert android(hearth, "HEAD", "/Holidays/Best of/sea.jpg")[0] == 404
    assert android(hearth, "DELETE", "/Holidays")[0] == 204


def test_ios_browses_opens_creates_renames_and_deletes(hearth):
    """Browsing with the iOS app.

    Sources: NextcloudKit Sources/NextcloudKit/NextcloudKit+WebDAV.swift (createFolder: MKCOL, the
    answer's OC-FileId and Date; readFileOrFolder: PROPFIND with Depth and the getRequestBodyFile body;
    moveFileOrFolder: MOVE with the urlEncoded full Destination and Overwrite T or F;
    deleteFileOrFolder: DELETE, 2xx), NextcloudKit+Download.swift (GET, 2xx), Models/NKDataFileXML.swift
    convertDataFile (literal names, first propstat; getlastmodified parsed as "EEE, dd MMM y HH:mm:ss zzz").
    """
    xml = {"Content-Type": "application/xml", "Accept": "application/xml"}
    status, headers, _ = ios(hearth, "MKCOL", "/Trips", **xml)
    assert status == 201 and headers["oc-fileid"] and headers["date"]
    note = b"packing list"
    status, headers, _ = ios(hearth, "PUT", "/Trips/list.txt", note, **{
        "Content-Type": "application/octet-stream", "X-OC-MTime": f"{CAPTURED}.0"})
    assert status == 201 and headers["oc-fileid"] and headers["oc-etag"]
    status, _, body = ios(hearth, "PROPFIND", "/Trips/", IOS_PROPFIND, Depth="1", **xml)
    assert status == 207
    own, item = ios_files(body)
    assert own["directory"] and own["href"] == f"{DAV}/Trips/" and own["permissions"] == "RGDNVCK"
    assert item["fileName"] == "list.txt" and not item["directory"] and item["size"] == len(note)
    assert item["date"] == CAPTURED_HTTP and item["ocId"] == headers["oc-fileid"]
    assert item["etag"] == headers["oc-etag"].replace('"', "") and item["permissions"] == "RGDNVW"
    status, _, content = ios(hearth, "GET", "/Trips/list.txt")
    assert status == 200 and content == note
    status, _, _ = ios(hearth, "MOVE", "/Trips/list.txt", Destination=full_url(hearth, "/Trips/to pack.txt"),
                       Overwrite="F")
    assert status == 201
    status, _, body = ios(hearth, "PROPFIND", "/Trips/to pack.txt", IOS_PROPFIND, Depth="0", **xml)
    renamed = ios_files(body)[0]
    assert renamed["fileName"] == "to pack.txt" and renamed["ocId"] == item["ocId"] and renamed["date"] == CAPTURED_HTTP
    assert ios(hearth, "DELETE", "/Trips")[0] == 204
    assert ios(hearth, "PROPFIND", "/Trips/", IOS_PROPFIND, Depth="0", **xml)[0] == 404


# --- camera upload -------------------------------------------------------------------------------------------

def android_grant_folder(hearth: Hearth, folder: str) -> None:
    """UploadFileOperation.grantFolderExistence: HEAD the folder; if absent, CreateFolderRemoteOperation
    with createFullPath: MKCOL, and on 409 (no parent) the parent first, then once more."""
    if android(hearth, "HEAD", folder + "/")[0] == 200:
        return
    status, headers, _ = android(hearth, "MKCOL", folder + "/")
    if status == 409:
        android_grant_folder(hearth, folder.rsplit("/", 1)[0])
        status, headers, _ = android(hearth, "MKCOL", folder + "/")
    assert status == 201 and headers["oc-fileid"], status


def android_free_name(hearth: Hearth, path: str) -> str:
    """UploadFileOperation.checkNameCollision with the auto upload's RENAME policy: HEAD the name, then
    `name (2).ext`, `name (3).ext`… (getNewAvailableRemotePath) until one is absent."""
    if android(hearth, "HEAD", path)[0] == 404:
        return path
    stem, _, ext = path.rpartition(".")
    count = 2
    while android(hearth, "HEAD", f"{stem} ({count}).{ext}")[0] != 404:
        count += 1
    return f"{stem} ({count}).{ext}"


def android_auto_upload(hearth: Hearth, path: str, photo: bytes, taken: int) -> tuple[str, dict]:
    """One photo as the Android auto upload sends it: the folder granted, the name made free, then a PUT
    (UploadFileRemoteOperation) or, above CHUNK_SIZE_MOBILE, chunked upload v2
    (ChunkedFileUploadRemoteOperation): MKCOL uploads/USER/<md5 of the file> with Destination (its status
    ignored), PROPFIND of the chunks there (must succeed), PUT 000001… each with Destination, then MOVE
    .file with Destination, Overwrite: T, X-OC-Mtime and X-OC-Ctime. Returns (the path used, the final answer's
    headers)."""
    android_grant_folder(hearth, path.rsplit("/", 1)[0])
    path = android_free_name(hearth, path)
    times = {"X-OC-Mtime": str(taken), "X-OC-Ctime": str(taken)}
    if len(photo) <= ANDROID_CHUNK:
        status, headers, _ = android(hearth, "PUT", path, photo, **{
            "Content-Type": "image/jpeg", "OC-Total-Length": str(len(photo)), **times})
        assert status in (200, 201, 204), status
        return path, headers
    uploads = f"/remote.php/dav/uploads/admin/{hashlib.md5(photo).hexdigest()}"
    destination = {"Destination": full_url(hearth, path)}
    upload = lambda method, where, body=None, **more: hearth.exchange(  # noqa: E731
        method, where, body, headers={"User-Agent": ANDROID_UA, **destination, **more}, auth=True)
    upload("MKCOL", uploads)
    status, _, body = upload("PROPFIND", uploads, ANDROID_CHUNKS_PROPFIND, Depth="1")
    assert status == 207, body
    chunks = [e for e in android_entries(body, "/remote.php/dav/uploads") if not e["dir"]]
    assert chunks == []    # nothing received yet: it starts at 000001
    for number, start in enumerate(range(0, len(photo), ANDROID_CHUNK), 1):
        assert upload("PUT", f"{uploads}/{number:06d}", photo[start:start + ANDROID_CHUNK],
                      **{"Content-Type": "image/jpeg"})[0] == 201
    status, headers, body = upload("MOVE", f"{uploads}/.file", Overwrite="T", **times)
    assert status in (201, 204), body
    return path, headers


def hearth_sync_once(hearth: Hearth, local: Path, folder: str) -> None:
    """`hearth sync DIR --once` for one folder, as a laptop of the household runs it."""
    local.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "services.cli", "sync", str(local), "--server", hearth.url,
                             "--user", "admin", "--password-stdin", "--device", "laptop", "--folder", folder,
                             "--once"], input=ADMIN_PASSWORD + "\n", capture_output=True, text=True, cwd=REPO,
                            env=clean_environ(), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_android_auto_upload_keeps_the_photos_date_everywhere(hearth, tmp_path):
    """The Android app's auto upload of two photos with the same name and one too big for a single PUT,
    into InstantUpload/<media folder>/yyyy/MM/; their capture time must come back from PROPFIND, from
    /files/USER/ and as the mtime on a `hearth sync` client's disk.

    Sources: android app/src/main/java/com/owncloud/android/operations/UploadFileOperation.java
    (grantFolderExistence, checkNameCollision, getNewAvailableRemotePath: " (2)", the switch to chunked
    above ChunkedFileUploadRemoteOperation.CHUNK_SIZE_MOBILE, a 412 becoming SYNC_CONFLICT),
    SyncedFoldersActivity (R.string.instant_upload_path + "/" + the media folder's name), the date
    sub-folders of FileStorageUtils.getSubPathFromDate; android-library UploadFileRemoteOperation.java
    (OC-Total-Length, X-OC-Mtime, X-OC-Ctime, If-Match only with a known ETag),
    ChunkedFileUploadRemoteOperation.java (md5 upload folder, Destination on MKCOL and every chunk,
    6-digit chunk names from 1, MOVE .file with X-OC-Mtime and X-OC-Ctime),
    WebdavUtils.getChunksPropSet().
    """
    folder = "/InstantUpload/Camera/2024/12"
    first, second, big = os.urandom(2_000_000), os.urandom(1_500_000), os.urandom(ANDROID_CHUNK + 1_760_000)
    path, headers = android_auto_upload(hearth, f"{folder}/IMG_20241207_124000.jpg", first, CAPTURED)
    assert path.endswith("/IMG_20241207_124000.jpg") and headers["x-oc-mtime"] == "accepted"
    # another photo of the same second (a burst): the app finds the name taken and picks "(2)"
    path, _ = android_auto_upload(hearth, f"{folder}/IMG_20241207_124000.jpg", second, CAPTURED + 1)
    assert path.endswith("/IMG_20241207_124000 (2).jpg")
    path, headers = android_auto_upload(hearth, f"{folder}/VID_20241207_124100.jpg", big, CAPTURED + 60)
    assert headers["oc-fileid"] and headers["etag"] and headers["x-oc-mtime"] == "accepted"

    status, _, body = android(hearth, "PROPFIND", folder + "/", ANDROID_PROPFIND, Depth="1")
    assert status == 207
    listed = {e["path"].rsplit("/", 1)[1]: e for e in android_entries(body)[1:]}
    expected = {"IMG_20241207_124000.jpg": (first, CAPTURED), "IMG_20241207_124000 (2).jpg": (second, CAPTURED + 1),
                "VID_20241207_124100.jpg": (big, CAPTURED + 60)}
    assert {name: (e["{DAV:}getcontentlength"], e["modified"]) for name, e in listed.items()} == \
        {name: (len(data), taken) for name, (data, taken) in expected.items()}

    # the same files through hearth's own WebDAV and on a sync client's disk, with the same dates
    for name, (data, taken) in expected.items():
        status, headers, content = hearth.exchange("GET", quote(f"/files/admin{folder}/{name}"), auth=True)
        assert status == 200 and content == data
        assert parsedate_to_datetime(headers["last-modified"]).timestamp() == taken
    local = tmp_path / "laptop"
    hearth_sync_once(hearth, local, "InstantUpload")
    for name, (data, taken) in expected.items():
        synced = local / "Camera" / "2024" / "12" / name
        assert hashlib.sha256(synced.read_bytes()).digest() == hashlib.sha256(data).digest()
        assert synced.stat().st_mtime_ns == taken * 1_000_000_000, name


def swift_seconds(moment: float) -> str:
    """A Date's timeIntervalSince1970 as Swift's "\\(double)" writes it (1733575200.0, 1733578800.25)."""
    return repr(float(moment))


def test_ios_auto_upload_keeps_the_capture_time_and_the_edit_time(hearth, tmp_path):
    """The iOS app's auto upload into Photos/yyyy/MM/: a photo by PUT and a big one by chunked upload,
    each with X-OC-CTime (the asset's creationDate: when it was taken) and X-OC-MTime (its
    modificationDate: later when it was edited), as Swift doubles. The app reads them back as
    nc:creation_time and getlastmodified; hearth keeps both (creation time with the file, as Nextcloud).

    Sources: nextcloud/ios BackgroundUploadExtension buildDestination (the auto upload's PUT: Content-Type
    application/octet-stream, X-NC-WebDAV-Auto-Mkcol: 1, X-OC-CTime from asset.creationDate, X-OC-MTime
    from asset.modificationDate), iOSClient/Networking/NCNetworking+Upload.swift (uploadFile: autoMkcol
    true, OC-FileId, OC-ETag, X-NC-OwnerId and X-NC-Permissions read from the answer; uploadChunkFile:
    chunkFolder, no ifMatch),
    NCCameraRoll.swift (metadata.creationDate = asset.creationDate, metadata.date = asset.modificationDate),
    NCBrandOptions.swift (folderDefaultAutoUpload "Photos"); NextcloudKit
    Sources/NextcloudKit/NextcloudKit+Upload.swift (upload: X-OC-CTime, X-OC-MTime as
    "\\(timeIntervalSince1970)", Content-Type application/octet-stream, 2xx; uploadChunkAsync: PROPFIND
    Depth 0 of the chunk folder, MKCOL on 404, Destination and OC-Total-Length on MKCOL and every chunk,
    MOVE .file with Overwrite T, X-OC-CTime, X-OC-MTime and If-Match when given; OC-FileID and
    OC-ETag read from the MOVE's answer), NKCommon.swift chunkedFile (chunks named 1, 2, 3… unpadded),
    Models/NKDataFileXML.swift (nc:creation_time, nc:upload_time read as doubles).
    """
    xml = {"Content-Type": "application/xml", "Accept": "application/xml"}
    taken, edited = CAPTURED, CAPTURED + 3600.25
    times = {"X-OC-CTime": swift_seconds(taken), "X-OC-MTime": swift_seconds(edited)}
    photo = os.urandom(800_000)
    # the background upload asks the server to make Photos/2024/12 itself: no MKCOL before
    status, headers, _ = ios(hearth, "PUT", "/Photos/2024/12/IMG_0001.JPG", photo, **{
        "Content-Type": "application/octet-stream", "X-NC-WebDAV-Auto-Mkcol": "1", **times})
    assert status == 201 and headers["oc-fileid"] and headers["oc-etag"]
    assert headers["x-nc-ownerid"] == "admin" and headers["x-nc-permissions"] == "RGDNVW"
    status, _, body = ios(hearth, "PUT", "/Photos/2024/12/IMG_0009.JPG", photo, **{"X-OC-CTime": "yesterday"})
    assert status == 400 and b"X-OC-CTime" in body
    assert ios(hearth, "GET", "/Photos/2024/12/IMG_0009.JPG")[0] == 404

    big = os.urandom(11 * 300_000)    # eleven chunks: "10" and "11" must follow "9", not "1"
    target = "/Photos/2024/12/IMG_0002.MOV"
    chunks = "/remote.php/dav/uploads/admin/3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    common = {"User-Agent": IOS_UA, "OCS-APIRequest": "true", "Destination": full_url(hearth, target),
              "OC-Total-Length": str(len(big))}
    upload = lambda method, where, body=None, **more: hearth.exchange(  # noqa: E731
        method, where, body, headers={**common, **more}, auth=True)
    assert upload("PROPFIND", chunks, IOS_PROPFIND, Depth="0", **xml)[0] == 404
    assert upload("MKCOL", chunks, **xml)[0] == 201
    for number in range(1, 12):
        piece = big[(number - 1) * 300_000:number * 300_000]
        assert upload("PUT", f"{chunks}/{number}", piece, **{"Content-Type": "application/octet-stream"})[0] == 201
    status, headers, body = upload("MOVE", f"{chunks}/.file", Overwrite="T", **times)
    assert status == 201, body
    assert headers["oc-fileid"] and headers["oc-etag"] and headers["x-oc-mtime"] == "accepted"
    assert ios(hearth, "GET", target)[2] == big

    # re-uploading an edit of it with If-Match (NextcloudKit's ifMatch): a stale one is refused
    assert upload("MKCOL", chunks, **xml)[0] == 201
    assert upload("PUT", f"{chunks}/1", b"edited", **{"OC-Total-Length": "6"})[0] == 201
    stale = upload("MOVE", f"{chunks}/.file", Overwrite="T", **{"OC-Total-Length": "6", "If-Match": '"0123"'})
    assert stale[0] == 412 and ios(hearth, "GET", target)[2] == big
    current = upload("MOVE", f"{chunks}/.file", Overwrite="T", **{"OC-Total-Length": "6", **times,
                                                                 "If-Match": headers["oc-etag"]})
    assert current[0] == 204 and ios(hearth, "GET", target)[2] == b"edited"

    status, _, body = ios(hearth, "PROPFIND", "/Photos/2024/12/", IOS_PROPFIND, Depth="1", **xml)
    assert status == 207
    listed = {f["fileName"]: f for f in ios_files(body)[1:]}
    assert set(listed) == {"IMG_0001.JPG", "IMG_0002.MOV"}
    for item in listed.values():
        assert item["date"] == "Sat, 07 Dec 2024 13:40:00 GMT"       # the edit, to the second
        assert item["creation_time"] == taken                          # when it was taken
        assert item["upload_time"] > taken
    status, _, body = android(hearth, "PROPFIND", "/Photos/2024/12/IMG_0001.JPG", ANDROID_PROPFIND, Depth="0")
    assert android_entries(body)[0][NC + "creation_time"] == taken     # Android's WebdavEntry reads it too
    # the creation time stays with the file when it is renamed
    assert ios(hearth, "MOVE", "/Photos/2024/12/IMG_0001.JPG", Overwrite="F",
               Destination=full_url(hearth, "/Photos/2024/12/Beach.JPG"))[0] == 201
    status, _, body = ios(hearth, "PROPFIND", "/Photos/2024/12/Beach.JPG", IOS_PROPFIND, Depth="0", **xml)
    assert ios_files(body)[0]["creation_time"] == taken


# --- DAVx⁵'s "log in with Nextcloud" -------------------------------------------------------------------------

DAVX5_PROPFIND = {   # DavResourceFinder.checkBaseURL's properties, serialised as dav4jvm's propfind() does
    "calendar-access": ('<resourcetype /><displayname /><calendar-color xmlns="http://apple.com/ns/ical/" />'
                        "<CAL:calendar-description /><CAL:calendar-timezone /><current-user-privilege-set />"
                        "<CAL:supported-calendar-component-set /><CAL:calendar-home-set /><current-user-principal />"),
    "addressbook": ("<resourcetype /><displayname /><CARD:addressbook-description /><CARD:addressbook-home-set />"
                    "<current-user-principal />")}


def test_davx5_nextcloud_login_finds_calendars_and_contacts_from_the_remote_php_dav_address(hearth):
    """DAVx⁵ after its Nextcloud login: PROPFIND Depth 0 of SERVER/remote.php/dav (no slash), following
    redirects with the same method and body, then OPTIONS of the current-user-principal it found.

    Sources: bitfireAT/davx5-ose app/src/main/kotlin/at/bitfire/davdroid/ui/setup/LoginTypeNextcloud.kt
    (DAV_PATH "/remote.php/dav" appended to the server the login flow returns),
    servicedetection/DavResourceFinder.kt (checkBaseURL: propfind(0, …) of that URL; scanResponse:
    current-user-principal; providesService: OPTIONS, "calendar-access" / "addressbook" in DAV);
    bitfireAT/dav4jvm src/main/kotlin/at/bitfire/dav4jvm/ktor/DavResource.kt (propfind → multiStatusFlow
    → followRedirects: 301, 302, 307 and 308 are followed, the request prepared again at the Location;
    the OkHttp DavResource before it did the same with Response.isRedirect).
    """
    for capability, props in DAVX5_PROPFIND.items():
        body = ("<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns=\"DAV:\" "
                'xmlns:CAL="urn:ietf:params:xml:ns:caldav" xmlns:CARD="urn:ietf:params:xml:ns:carddav">'
                f"<prop>{props}</prop></propfind>").encode()
        path, hops = "/remote.php/dav", 0
        while True:
            status, headers, answer = hearth.exchange("PROPFIND", path, body, auth=True, headers={
                "Depth": "0", "Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml, text/xml"})
            if status not in (301, 302, 307, 308):
                break
            path, hops = urlsplit(headers["location"]).path, hops + 1
            assert hops < 5     # dav4jvm's MAX_REDIRECTS
        assert status == 207, (path, answer)
        principal = ET.fromstring(answer).find(".//{DAV:}current-user-principal/{DAV:}href").text
        status, headers, _ = hearth.exchange("OPTIONS", principal, auth=True)
        assert status == 200 and capability in headers["dav"], (principal, headers.get("dav"))


def test_ios_auto_mkcol_makes_the_missing_folders_and_nothing_else(hearth):
    """X-NC-WebDAV-Auto-Mkcol: 1 on a PUT (Nextcloud 32, sent by the iOS app's uploads: NextcloudKit
    NextcloudKit+Upload.swift `autoMkcol`, nextcloud/ios NCNetworking+Upload.swift and the background
    upload extension) makes the folders above the file; without it a missing parent is a 409 as in
    RFC 4918, and a file standing where a folder should be is a 409 either way, with nothing made."""
    auto = {"X-NC-WebDAV-Auto-Mkcol": "1"}
    assert ios(hearth, "PUT", "/Scans/2025/01/receipt.pdf", b"%PDF")[0] == 409
    assert ios(hearth, "PROPFIND", "/Scans/", IOS_PROPFIND, Depth="0")[0] == 404
    status, _, _ = ios(hearth, "PUT", "/Scans/2025/01/receipt.pdf", b"%PDF", **auto)   # a new top folder too
    assert status == 201 and ios(hearth, "GET", "/Scans/2025/01/receipt.pdf")[2] == b"%PDF"
    status, _, body = ios(hearth, "PROPFIND", "/Scans/2025/", IOS_PROPFIND, Depth="1")
    assert [f["fileName"] for f in ios_files(body)] == ["2025", "01"] and ios_files(body)[1]["directory"]
    assert ios(hearth, "PUT", "/Scans/2025/01/receipt.pdf/page.png", b"png", **auto)[0] == 409
    assert ios(hearth, "PUT", "/Scans/2025/01/x/y.txt", b"y", **{"X-NC-WebDAV-Auto-Mkcol": "enable"})[0] == 409
    assert ios(hearth, "PROPFIND", "/Scans/2025/01/x/", IOS_PROPFIND, Depth="0")[0] == 404
    assert ios(hearth, "DELETE", "/Scans")[0] == 204
