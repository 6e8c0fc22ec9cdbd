"""The web UI in a real browser: headless Chromium (Debian's) driven by Playwright, against `hearth up`.

Everything goes through the front end's one port, as a user's browser would.
A screenshot of each page is kept as a test artifact in test-artifacts/web-ui/
(or $HEARTH_TEST_ARTIFACTS/web-ui/), replaced at every run.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import zipfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.installation import ADMIN_PASSWORD, OnePort, running
from tests.test_web_session import NASTY_NEXT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parent.parent
QUOTA_MB = 50
FILES_DAEMON = (REPO / "services" / "files" / "app.py", REPO / "rc.d" / "hearth_files")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it as root)",
                allow_module_level=True)


class Hearth(OnePort):
    def __init__(self, root: Path):
        super().__init__(root, f"[supervisor]\nready_timeout = 30\n[sync]\nquota_mb = {QUOTA_MB}\n")

    def request(self, method: str, path: str, user: str = "admin", password: str = ADMIN_PASSWORD,
                body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers={"Authorization": f"Basic {token}", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    installation = Hearth(tmp_path_factory.mktemp("web-ui"))
    with running(installation):
        yield installation


@pytest.fixture(scope="module")
def screenshots() -> Path:
    root = Path(os.environ.get("HEARTH_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "test-artifacts")
    where = root / "web-ui"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    print(f"\nweb UI screenshots: {where}")
    return where


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, hearth):
    """A logged-in admin's tab on a fresh browser profile; fails the test on any script error."""
    context = browser.new_context(base_url=hearth.url, viewport={"width": 1100, "height": 800})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    log_in(tab)
    tab.script_errors = errors
    yield tab
    context.close()
    assert not errors, errors


def log_in(tab, user: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    tab.goto("/browse")
    tab.wait_for_url(re.compile(r"/login\?next=(/|%2F)browse$"))  # no session yet: sent to the form
    tab.get_by_label("User name").fill(user)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(lambda url: urlsplit(url).path == "/browse")


def test_login_form_refuses_a_wrong_password_and_keeps_the_cookie_from_scripts(browser, hearth, screenshots):
    context = browser.new_context(base_url=hearth.url, viewport={"width": 390, "height": 844})  # a phone
    tab = context.new_page()
    tab.goto("/login")
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.id") in ("password", "user")
    tab.get_by_label("User name").fill("admin")
    tab.get_by_label("Password").fill("not the password")
    tab.get_by_role("button", name="Log in").click()
    playwright_api.expect(tab.locator("#status")).to_have_text("wrong user name or password")
    tab.screenshot(path=screenshots / "login-failed-phone.png", full_page=True)
    tab.get_by_label("Password").fill(ADMIN_PASSWORD)
    tab.get_by_label("Password").press("Enter")      # the keyboard alone logs in
    tab.wait_for_url(lambda url: urlsplit(url).path == "/browse")
    assert tab.evaluate("document.cookie") == ""      # HttpOnly: no script can read the session
    cookie = next(c for c in context.cookies() if c["name"] == "hearth_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    context.close()


def test_login_never_leads_off_site_whatever_next_says(browser, hearth):
    """Chromium reads every nasty ?next= the way an attacker hopes; each must still land on this origin."""
    context = browser.new_context(base_url=hearth.url)
    context.route(re.compile(r"^https?://evil\.example/"), lambda route: route.fulfill(body="you were led away"))
    tab = context.new_page()
    for value in NASTY_NEXT:
        tab.goto(f"/login?next={quote(value, safe='')}")
        target = tab.evaluate("new URL(document.querySelector('meta[name=next]').content, location.origin).href")
        assert urlsplit(target).netloc == urlsplit(hearth.url).netloc, (value, target)
    for value in ("/\t/evil.example/x", "/\\evil.example", "/..//evil.example"):  # and really logged in
        tab.goto(f"/login?next={quote(value, safe='')}")
        tab.get_by_label("User name").fill("admin")
        tab.get_by_label("Password").fill(ADMIN_PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(lambda url: urlsplit(url).path != "/login")
        assert urlsplit(tab.url).netloc == urlsplit(hearth.url).netloc, (value, tab.url)
    context.close()


def test_devices_create_an_app_password_with_a_qr_code_and_revoke_it(page, hearth, screenshots):
    page.get_by_role("link", name="Devices").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/devices")
    page.get_by_label("Device name").fill("Ann's <b>phone</b>")
    page.get_by_role("button", name="Create app password").click()
    password = page.locator("#created-password")
    playwright_api.expect(password).to_have_text(re.compile(r"^hearth-\S+$"))
    qr = page.locator("#created-qr")
    playwright_api.expect(qr).to_be_visible()
    assert page.evaluate("document.getElementById('created-qr').naturalWidth") > 0   # the SVG really decoded
    assert page.locator("#created-label").inner_text() == "Ann's <b>phone</b>"       # shown as text, not markup
    assert page.locator("#devices b").count() == 0
    secret = password.inner_text()
    assert hearth.request("GET", "/api/v1/me", password=secret)[0] == 200
    page.screenshot(path=screenshots / "devices.png", full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Ann's <b>phone</b>").click()
    playwright_api.expect(page.locator("#devices tbody")).not_to_contain_text("Ann's")
    assert hearth.request("GET", "/api/v1/me", password=secret)[0] == 401


def test_a_nextcloud_app_is_granted_access_from_the_browser_it_opens(browser, hearth, screenshots):
    """Login Flow v2 as the Android app starts it, through the front end; the user approves in Chromium."""
    agent = {"User-Agent": "Mozilla/5.0 (Android) Nextcloud-android/33.0.1"}
    status, body = hearth.request("POST", "/index.php/login/v2", headers=agent)
    assert status == 200, body
    flow = json.loads(body)
    form = {"Content-Type": "application/x-www-form-urlencoded", **agent}
    poll = urlencode({"token": flow["poll"]["token"]}).encode()
    assert hearth.request("POST", urlsplit(flow["poll"]["endpoint"]).path, body=poll, headers=form)[0] == 404

    context = browser.new_context(viewport={"width": 390, "height": 844})
    tab = context.new_page()
    tab.goto(flow["login"])
    tab.get_by_label("User name").fill("admin")   # the web UI's own login first
    tab.get_by_label("Password").fill(ADMIN_PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(flow["login"])
    playwright_api.expect(tab.locator("#device")).to_have_text("Nextcloud Android 33.0.1")
    tab.screenshot(path=screenshots / "nextcloud-login-approve.png", full_page=True)
    tab.get_by_role("button", name="Grant access").click()
    playwright_api.expect(tab.locator("#status")).to_contain_text("You can close this window")
    context.close()

    status, body = hearth.request("POST", urlsplit(flow["poll"]["endpoint"]).path, body=poll, headers=form)
    assert status == 200, body
    credentials = json.loads(body)
    assert credentials["server"] == hearth.url and credentials["loginName"] == "admin"
    status, body = hearth.request("GET", "/ocs/v2.php/cloud/user?format=json", user="admin",
                                  password=credentials["appPassword"], headers={"OCS-APIRequest": "true"})
    assert status == 200 and json.loads(body)["ocs"]["data"]["id"] == "admin"


def test_calendars_page_shows_the_urls_to_paste(page, hearth, screenshots):
    status, body = hearth.request("MKCALENDAR", "/dav/calendars/admin/family/")
    assert status == 201, body
    page.get_by_role("link", name="Calendars & contacts").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/calendars")
    calendars = page.locator("#calendars")
    playwright_api.expect(calendars).to_contain_text(f"{hearth.url}/dav/calendars/admin/family/")
    setup = page.locator("#setup")
    playwright_api.expect(setup).to_contain_text(f"{hearth.url}/dav/principals/admin/")
    playwright_api.expect(setup).to_contain_text(f"{hearth.url}/")
    playwright_api.expect(page.locator("#addressbooks")).to_contain_text(f"{hearth.url}/dav/addressbooks/admin/contacts/")
    playwright_api.expect(page.locator("#no-shares")).to_be_visible()
    page.screenshot(path=screenshots / "calendars.png", full_page=True)
    # The URL shown is the one a CalDAV client really uses.
    assert hearth.request("PROPFIND", "/dav/calendars/admin/family/", headers={"Depth": "0"})[0] == 207


def test_admin_page_shows_users_and_service_states(page, hearth, screenshots):
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/admin")
    for name in ("api", "sync", "dav", "front"):
        service = page.locator(f"article.service:has(h3#service-{name})")
        playwright_api.expect(service).to_have_class(re.compile(r"\bup\b"))
        playwright_api.expect(service.locator(".state")).to_have_text("running")
    api_log = page.locator("article.service:has(h3#service-api) pre.log")
    page.locator("article.service:has(h3#service-api) summary").click()
    playwright_api.expect(api_log).to_be_visible()
    assert api_log.inner_text().strip() not in ("", "(empty)")   # the API daemon's own last log lines

    page.get_by_label("User name", exact=True).fill("bea")
    page.get_by_label("Password (at least 8 characters)").fill("bea password")
    page.get_by_role("button", name="Add user").click()
    playwright_api.expect(page.locator("#users tbody")).to_contain_text("bea")
    page.screenshot(path=screenshots / "admin.png", full_page=True)
    page.get_by_role("button", name="Delete user bea").click()
    confirm = page.get_by_role("button", name="Delete", exact=True)
    playwright_api.expect(confirm).to_be_disabled()
    page.get_by_label("Type the user name to confirm").fill("be")
    playwright_api.expect(confirm).to_be_disabled()
    page.get_by_label("Type the user name to confirm").fill("bea")
    confirm.click()
    playwright_api.expect(page.locator("#users tbody")).not_to_contain_text("bea")
    assert hearth.request("GET", "/api/v1/me", user="bea", password="bea password")[0] == 401


def test_a_user_who_is_not_an_admin_gets_no_admin_page(browser, hearth):
    assert hearth.request("POST", "/api/v1/users", body=b'{"name": "cy", "password": "cy password"}',
                          headers={"Content-Type": "application/json"})[0] == 201
    context = browser.new_context(base_url=hearth.url)
    tab = context.new_page()
    log_in(tab, "cy", "cy password")
    assert tab.get_by_role("link", name="Admin").count() == 0
    assert tab.goto("/admin").status == 403
    context.close()


def test_files_upload_list_delete_and_restore_from_trash(page, hearth, screenshots, tmp_path):
    missing = [str(path.relative_to(REPO)) for path in FILES_DAEMON if not path.exists()]
    if missing:
        pytest.skip(f"the WebDAV files daemon is not in this tree yet ({', '.join(missing)} missing)")
    status, body = hearth.request("POST", "/sync/v1/folders", body=b'{"name": "docs"}',
                                  headers={"Content-Type": "application/json"})
    assert status in (200, 201), body
    page.goto("/browse?path=%2Fdocs%2F")
    upload = tmp_path / "notes.txt"
    upload.write_text("kept safe\n")
    page.get_by_label("Upload files").set_input_files(str(upload))
    listing = page.locator("#listing tbody")
    playwright_api.expect(listing).to_contain_text("notes.txt")
    page.screenshot(path=screenshots / "files.png", full_page=True)
    assert hearth.request("GET", "/files/admin/docs/notes.txt") == (200, b"kept safe\n")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete notes.txt").click()
    playwright_api.expect(listing).not_to_contain_text("notes.txt")
    page.get_by_role("button", name="Restore notes.txt").click()
    playwright_api.expect(listing).to_contain_text("notes.txt")
    page.screenshot(path=screenshots / "files-restored.png", full_page=True)
    assert hearth.request("GET", "/files/admin/docs/notes.txt") == (200, b"kept safe\n")


def test_a_mass_deletion_is_shown_in_the_folders_trash_and_restored_in_one_step(page, hearth, screenshots):
    needs_files_daemon()
    status, body = hearth.request("POST", "/sync/v1/folders", body=b'{"name": "camera"}',
                                  headers={"Content-Type": "application/json"})
    assert status in (200, 201), body
    names = [f"IMG_{n:04d}.jpg" for n in range(12)]
    for name in names:
        assert hearth.request("PUT", f"/remote.php/dav/files/admin/camera/{name}", body=name.encode())[0] == 201
    for name in names:  # an app emptying the folder, one DELETE a file
        assert hearth.request("DELETE", f"/remote.php/dav/files/admin/camera/{name}")[0] == 204
    page.goto("/browse?path=%2Fcamera%2F")
    sprees = page.locator("#mass-deletions")
    playwright_api.expect(sprees).to_contain_text("Mass deletion: 12 of 12 files deleted at once")
    page.screenshot(path=screenshots / "files-mass-deletion.png", full_page=True)
    page.get_by_role("button", name="Restore the 12 files of this mass deletion").click()
    playwright_api.expect(page.locator("#listing tbody")).to_contain_text(names[-1])
    playwright_api.expect(sprees).to_be_empty()
    assert all(hearth.request("GET", f"/files/admin/camera/{name}") == (200, name.encode()) for name in names)


def needs_files_daemon() -> None:
    missing = [str(path.relative_to(REPO)) for path in FILES_DAEMON if not path.exists()]
    if missing:
        pytest.skip(f"the WebDAV files daemon is not in this tree yet ({', '.join(missing)} missing)")


def upload_in_ui(page, hearth, folder: str, upload: Path) -> None:
    """Make `folder` (sync API) and upload `upload` into it with the Files page's file picker."""
    status, body = hearth.request("POST", "/sync/v1/folders", body=json.dumps({"name": folder}).encode(),
                                  headers={"Content-Type": "application/json"})
    assert status in (200, 201), body
    page.goto(f"/browse?path=%2F{folder}%2F")
    page.get_by_label("Upload files").set_input_files(str(upload))
    playwright_api.expect(page.locator("#listing tbody")).to_contain_text(upload.name)
    playwright_api.expect(page.locator("#uploads")).to_contain_text("uploaded")


def test_a_whole_folder_is_renamed_deleted_and_restored_and_a_refusal_is_shown_on_screen(page, hearth, screenshots):
    needs_files_daemon()
    for name in ("Typo", "Taken", *(f"zz{n:02}" for n in range(12))):  # a listing taller than the window
        status, body = hearth.request("POST", "/sync/v1/folders", body=json.dumps({"name": name}).encode(),
                                      headers={"Content-Type": "application/json"})
        assert status in (200, 201), body
    page.set_viewport_size({"width": 800, "height": 480})
    page.goto("/browse")
    listing, status_line = page.locator("#listing tbody"), page.locator("#status")
    playwright_api.expect(listing).to_contain_text("Typo/")
    page.once("dialog", lambda dialog: dialog.accept("Taken"))
    page.get_by_role("button", name="Rename folder Typo").click()
    playwright_api.expect(status_line).to_contain_text("You already have a folder named Taken")
    playwright_api.expect(status_line).to_be_in_viewport()
    page.once("dialog", lambda dialog: dialog.accept("Fixed"))
    page.get_by_role("button", name="Rename folder Typo").click()
    playwright_api.expect(listing).to_contain_text("Fixed/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Fixed").click()
    playwright_api.expect(listing).not_to_contain_text("Fixed/")
    page.screenshot(path=screenshots / "files-deleted-folder.png", full_page=True)
    page.get_by_role("button", name="Restore folder Fixed").click()
    playwright_api.expect(listing).to_contain_text("Fixed/")
    assert hearth.request("PROPFIND", "/files/admin/Fixed/", headers={"Depth": "0"})[0] == 207


def test_a_share_link_made_in_the_ui_serves_a_stranger_until_it_is_revoked(page, browser, hearth, screenshots,
                                                                           tmp_path):
    needs_files_daemon()
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(os.urandom(300_000))
    upload_in_ui(page, hearth, "holiday", photo)

    page.get_by_role("button", name="Share link for beach.jpg").click()
    dialog = page.get_by_role("dialog", name="Share link for beach.jpg")
    playwright_api.expect(dialog).to_be_visible()
    playwright_api.expect(dialog.get_by_role("group", name="Anyone with the link can")).to_be_hidden()  # a file
    playwright_api.expect(dialog.get_by_label("Password (optional)")).to_be_focused()  # keyboard users start here
    dialog.get_by_label("Password (optional)").fill("sand castle")
    dialog.get_by_label("Valid until (optional)").fill((date.today() + timedelta(days=7)).isoformat())
    dialog.get_by_label("Label (optional)").fill("Beach, for Ann")
    page.screenshot(path=screenshots / "share-link-dialog.png", full_page=True)
    dialog.get_by_label("Label (optional)").press("Enter")  # the keyboard alone creates it
    url_field = dialog.get_by_label("Link", exact=True)
    playwright_api.expect(url_field).to_have_value(re.compile(rf"^{re.escape(hearth.url)}/s/[\w-]{{20,}}$"))
    url = url_field.input_value()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hearth.url)
    dialog.get_by_role("button", name="Copy link").click()
    playwright_api.expect(page.locator("#status")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.screenshot(path=screenshots / "share-link-created.png", full_page=True)
    dialog.get_by_role("button", name="Done").click()
    playwright_api.expect(dialog).to_be_hidden()

    stranger = browser.new_context(base_url=hearth.url)  # logged out: no session, no Basic
    tab = stranger.new_page()
    tab.goto(url)
    tab.get_by_label("Password").fill("sand castle")
    tab.get_by_role("button", name="Open").click()
    playwright_api.expect(tab.get_by_text("Beach, for Ann")).to_be_visible()
    tab.screenshot(path=screenshots / "share-link-public.png", full_page=True)
    with tab.expect_download() as downloading:
        tab.get_by_role("link", name="Download").click()
    assert Path(downloading.value.path()).read_bytes() == photo.read_bytes()

    page.get_by_role("link", name="Share links").click()
    page.wait_for_url(lambda address: urlsplit(address).path == "/links")
    row = page.locator("#links tbody tr", has_text="holiday/beach.jpg")
    cells = row.locator("td")
    playwright_api.expect(cells.nth(0)).to_have_text("view and download")
    playwright_api.expect(cells.nth(1)).to_have_text("yes")           # password
    playwright_api.expect(cells.nth(2)).not_to_have_text("never")     # expiry
    playwright_api.expect(cells.nth(3)).to_have_text("1")             # the stranger's download
    playwright_api.expect(cells.nth(4)).to_have_text("Beach, for Ann")
    playwright_api.expect(cells.nth(5)).to_have_text(url[:url.index("/s/") + 7] + "…")  # never the whole token
    page.screenshot(path=screenshots / "links.png", full_page=True)
    page.once("dialog", lambda confirm: confirm.accept())
    page.get_by_role("button", name="Revoke the link to holiday/beach.jpg").click()
    playwright_api.expect(page.locator("#links tbody")).not_to_contain_text("beach.jpg")

    assert tab.goto(url).status == 410  # even with the unlock cookie the stranger still holds
    stranger.close()


def test_download_my_data_gives_one_zip_with_my_files_and_calendars(page, hearth, screenshots, tmp_path):
    needs_files_daemon()
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear Ann,\nthe export keeps this.\n")
    upload_in_ui(page, hearth, "papers", letter)
    assert hearth.request("MKCALENDAR", "/dav/calendars/admin/trips/")[0] == 201
    event = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:lisbon@test\r\n"
             b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260601T080000Z\r\nSUMMARY:Lisbon\r\nEND:VEVENT\r\n"
             b"END:VCALENDAR\r\n")
    status, body = hearth.request("PUT", "/dav/calendars/admin/trips/lisbon.ics", body=event,
                                  headers={"Content-Type": "text/calendar"})
    assert status == 201, body

    page.get_by_role("link", name="Account").click()
    page.wait_for_url(lambda address: urlsplit(address).path == "/account")
    playwright_api.expect(page.locator("#usage")).to_have_text(re.compile(r"^You use .+ of 52\.4 MB \("))
    page.screenshot(path=screenshots / "account.png", full_page=True)
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download my data").click()
    download = downloading.value
    assert re.fullmatch(r"hearth-export-admin-\d{4}-\d{2}-\d{2}\.zip", download.suggested_filename)
    with zipfile.ZipFile(download.path()) as archive:
        assert archive.testzip() is None
        assert archive.read("files/papers/letter.txt") == letter.read_bytes()
        calendars = [name for name in archive.namelist() if re.fullmatch(r"calendars/[^/]+\.ics", name)]
        assert "calendars/trips.ics" in calendars
        assert b"UID:lisbon@test" in archive.read("calendars/trips.ics")
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["user"] == "admin" and manifest["counts"]["files"] >= 1


def test_account_page_adds_an_email_address_invitations_then_reach(page, hearth, screenshots):
    assert hearth.request("POST", "/api/v1/users", body=b'{"name": "eve", "password": "eve password"}',
                          headers={"Content-Type": "application/json"})[0] == 201
    assert hearth.request("POST", "/api/v1/users/eve/addresses", body=b'{"address": "eve@example.net"}',
                          headers={"Content-Type": "application/json"})[0] == 201
    page.goto("/account")
    addresses = page.locator("#addresses")
    playwright_api.expect(addresses).to_contain_text("admin@localhost")
    page.get_by_label("Add an address").fill("Admin@Example.NET")
    page.get_by_role("button", name="Add", exact=True).click()
    playwright_api.expect(addresses.locator("li").first).to_contain_text("admin@example.net")
    page.screenshot(path=screenshots / "account-addresses.png", full_page=True)
    # Another member's address is refused with the reason on screen.
    page.get_by_label("Add an address").fill("eve@example.net")
    page.get_by_role("button", name="Add", exact=True).click()
    playwright_api.expect(page.locator("#status")).to_have_text(
        "eve@example.net is already an address of eve; an address belongs to one user only")
    # The calendar server lists it at once: clients invite and search by it.
    status, body = hearth.request("PROPFIND", "/dav/principals/admin/", headers={"Depth": "0"},
                                  body=b'<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                                       b'<D:prop><C:calendar-user-address-set/></D:prop></D:propfind>')
    assert status == 207 and b"mailto:admin@example.net" in body
    page.get_by_role("button", name="Remove admin@example.net").click()
    playwright_api.expect(addresses).not_to_contain_text("admin@example.net")
    playwright_api.expect(addresses).to_contain_text("admin@localhost")


def test_admin_page_shows_each_users_storage_against_the_quota(page, hearth, screenshots):
    assert hearth.request("POST", "/api/v1/users", body=b'{"name": "dee", "password": "dee password"}',
                          headers={"Content-Type": "application/json"})[0] == 201
    status, body = hearth.request("GET", "/api/v1/admin/usage")
    assert status == 200, body
    used = {row["user"]: row["used_bytes"] for row in json.loads(body)}
    assert used["dee"] == 0
    page.goto("/admin")
    users = page.locator("#users tbody")
    playwright_api.expect(users.locator("tr", has_text="dee").locator("td").nth(3)).to_have_text("0 B of 52.4 MB (0%)")
    playwright_api.expect(users.locator("tr", has=page.locator("th", has_text=re.compile("^admin$"))).locator("td").nth(3)
                          ).to_have_text(re.compile(r"^\S+ \S+ of 52\.4 MB \([\d.]+%\)$"))
    playwright_api.expect(page.locator("#quota")).to_contain_text("read-only")
    page.screenshot(path=screenshots / "admin-storage.png", full_page=True)
    assert hearth.request("GET", "/api/v1/admin/usage", user="dee", password="dee password")[0] == 403


# An HTML file as someone with write access could leave in a user's folder: when its owner opens it,
# its script reads the CSRF token from a UI page, creates an app password and writes down what it stole.
# Synchronous requests, so that whatever it does is done by the page's load event.
STEALING_PAGE = """<!doctype html><title>holiday photos</title><script>
function send(method, url, body, headers) {
  const request = new XMLHttpRequest();
  request.open(method, url, false);
  for (const [name, value] of Object.entries(headers || {})) request.setRequestHeader(name, value);
  request.send(body);
  return request.responseText;
}
const csrf = send("GET", "/browse").match(/name="csrf-token" content="([^"]*)"/)[1];
const created = send("POST", "/api/v1/me/app-passwords", JSON.stringify({label: "stolen"}),
                     {"Content-Type": "application/json", "X-CSRF-Token": csrf});
send("PUT", "/files/admin/traps/loot.txt", csrf + " " + document.cookie + " " + created);
document.title = "stolen";
</script><p>nothing to see</p>"""


def test_an_html_file_in_a_users_folder_cannot_act_as_them_when_they_open_it(page, hearth, tmp_path):
    """User content never runs as the UI's origin (core.user_content): the file is not run, so no
    app password is made, no CSRF token or cookie leaves the page."""
    needs_files_daemon()
    status, body = hearth.request("POST", "/sync/v1/folders", body=b'{"name": "traps"}',
                                  headers={"Content-Type": "application/json"})
    assert status in (200, 201), body
    assert hearth.request("PUT", "/files/admin/traps/photos.html", body=STEALING_PAGE.encode())[0] == 201
    before = json.loads(hearth.request("GET", "/api/v1/me/app-passwords")[1])

    try:
        page.goto("/files/admin/traps/photos.html", wait_until="load")
        title = page.title()
    except playwright_api.Error as error:  # the browser saved it instead of showing it: fine too
        assert "Download is starting" in error.message, error.message
        title = None
    after = json.loads(hearth.request("GET", "/api/v1/me/app-passwords")[1])
    assert [p["label"] for p in after] == [p["label"] for p in before]  # no "stolen" app password
    assert hearth.request("GET", "/files/admin/traps/loot.txt")[0] == 404  # nothing read was written down
    assert title in (None, "holiday photos")
