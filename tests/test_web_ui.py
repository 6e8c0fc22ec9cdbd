"""The web UI in a real browser: headless Chromium (Debian's) driven by Playwright, against `hearth up`.

Everything goes through the front end's one port, as a user's browser would.
A screenshot of each page is saved under the pytest temp dir (the path is
printed with -s and listed in the test's report section).
"""
from __future__ import annotations

import base64
import http.client
import re
import shutil
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.installation import ADMIN_PASSWORD, Installation, free_port, running

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parent.parent
FILES_DAEMON = (REPO / "services" / "files" / "app.py", REPO / "rc.d" / "hearth_files")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it as root)",
                allow_module_level=True)


class Hearth(Installation):
    def __init__(self, root: Path):
        self.port = free_port()
        super().__init__(root, textwrap.dedent(f"""\
            data_dir = "var"
            [front]
            listen = "127.0.0.1:{self.port}"
            [supervisor]
            ready_timeout = 30
            """))
        self.url = f"http://127.0.0.1:{self.port}"

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
def screenshots(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("web-ui-screenshots")
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
