"""The OCS share API the Nextcloud apps use (`/ocs/v{1,2}.php/apps/files_sharing/api/v1/shares`).

Two kinds of hearth sharing stand behind it: share links (share type 3, public
link) and folder shares between users (share type 0, only a top-level folder,
read-only or read-write). Share ids are one number space for both: a link's
id doubled, a folder share's row id doubled plus one. Anything hearth cannot
do (groups, email, federation, a user share of a sub-path, resharing) is an
OCS error with the reason, never a half-made share.

A link's token is stored hashed, so `token` and `url` are only in the answer
that created it; listings carry empty strings there (the apps then show the
share without its address).
"""
from __future__ import annotations

import mimetypes
from datetime import datetime, timedelta
from urllib.parse import quote

from aiohttp import web

from services.core.accounts import get_user
from services.core.auth import AUTHENTICATOR, require_user
from services.core.errors import BadRequest, HTTPError
from services.core.http import DATABASE
from services.core.previews import can_preview
from services.core.share_links import Link, create_link, entry_kind, find_link, list_links, parse_expiry, \
    revoke_link, update_link
from services.core.tree import ROOT_FILES, normalize_path, share_folder

from ..session import came_over_https
from .ocs import ocs_error, ocs_response

USER, LINK = 0, 3
READ, UPDATE, CREATE, DELETE = 1, 2, 4, 8
LINK_PERMISSIONS = {"read": READ, "read-write": READ | UPDATE | CREATE | DELETE, "upload-only": CREATE}
CANNOT = {1: "hearth has no groups to share with", 4: "hearth does not share by email",
          6: "hearth does not share with other servers"}


class OcsFailure(Exception):
    def __init__(self, statuscode: int, message: str):
        super().__init__(message)
        self.statuscode, self.message = statuscode, message


def answering(handler):
    """Turn hearth's errors (and OcsFailure) into OCS failures the apps read, with the reason."""
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except OcsFailure as failure:
            return ocs_error(request, failure.statuscode, failure.message)
        except HTTPError as error:
            if error.status == 401:  # a missing login stays a plain 401, as Nextcloud answers it
                raise
            return ocs_error(request, error.status, error.reason)
    return wrapped


def link_share_id(link_id: int) -> int:
    return 2 * link_id


def user_share_id(rowid: int) -> int:
    return 2 * rowid + 1


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _expiration(expires_at: str | None) -> str | None:
    """hearth keeps the moment a link stops working; the apps show the last day it works."""
    if expires_at is None:
        return None
    moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - timedelta(seconds=1)
    return moment.strftime("%Y-%m-%d 00:00:00")


def _origin(request: web.Request) -> str:
    host = request.headers.get("X-Forwarded-Host") or request.host
    return f"{'https' if came_over_https(request) else 'http'}://{host}"


def _file_id(db, folder_id: int, path: str, is_dir: bool) -> int:
    if is_dir:
        row = db.execute("SELECT file_id FROM tree_dirs WHERE folder_id = ? AND path = ?", [folder_id, path]).fetchone()
    else:
        row = db.execute("SELECT file_id FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                         [folder_id, path]).fetchone()
    return row[0] if row and row[0] is not None else 0


def _common(owner: str, path: str, is_dir: bool, file_id: int) -> dict:
    name = path.rsplit("/", 1)[-1]
    return {"uid_owner": owner, "displayname_owner": owner, "uid_file_owner": owner,
            "displayname_file_owner": owner, "parent": None, "note": "", "label": "", "path": path,
            "item_type": "folder" if is_dir else "file",
            "mimetype": "httpd/unix-directory" if is_dir
            else mimetypes.guess_type(name)[0] or "application/octet-stream",
            "has_preview": not is_dir and can_preview(name), "storage_id": f"home::{owner}", "storage": 1, "item_source": file_id,
            "file_source": file_id, "file_parent": 0, "file_target": "/" + name, "mail_send": 0,
            "hide_download": 0, "attributes": None, "send_password_by_talk": False, "tags": []}


def link_share(request: web.Request, db, link: Link) -> dict:
    share = _common(link.owner, app_path(link.folder_name, link.path), link.is_dir,
                    _file_id(db, link.folder_id, link.path, link.is_dir))
    share.update(id=str(link_share_id(link.id)), share_type=LINK, permissions=LINK_PERMISSIONS[link.mode],
                 stime=_epoch(link.created_at), expiration=_expiration(link.expires_at), label=link.label,
                 token=link.token or "", url=f"{_origin(request)}/s/{quote(link.token)}" if link.token else "",
                 share_with=None, share_with_displayname="")
    if link.has_password:  # the apps show "password set" when these are filled; the hash stays private
        share.update(share_with="(password)", password="(password)")
    return share


def user_share(db, row: dict) -> dict:
    share = _common(row["owner"], app_path(row["name"], ""), True, _file_id(db, row["folder_id"], "", True))
    share.update(id=str(user_share_id(row["rowid"])), share_type=USER,
                 permissions=READ if row["mode"] == "ro" else READ | UPDATE | CREATE | DELETE,
                 stime=_epoch(row["created_at"]), expiration=None, token=None, url=None,
                 share_with=row["grantee"], share_with_displayname=row["grantee"])
    return share


_USER_SHARES = """SELECT s.rowid, s.folder_id, s.grantee, s.mode, f.owner, f.name, f.created_at
                  FROM folder_shares s JOIN folders f ON f.id = s.folder_id WHERE f.deleted_at IS NULL"""


def _user_share_rows(db, where: str, args: list) -> list[dict]:
    return list(db.query(f"{_USER_SHARES} AND {where} ORDER BY s.rowid", args))


def resolve(db, user: str, path: str) -> tuple[dict, str, bool]:
    """(the user's own folder, the path inside it, is a directory) for an app's `/Folder/a/b`, or for a
    root-level `/photo.jpg` (kept in ROOT_FILES; a folder by that name wins, as in the file tree); 404
    like Nextcloud's "Wrong path" otherwise (a folder shared with the user cannot be shared on)."""
    path = path.strip("/")
    top = path.split("/", 1)[0]
    folder = _own_folder(db, user, top) if top and top != ROOT_FILES else None
    if folder is not None:
        inside = path[len(top):].strip("/")
    else:
        folder, inside = _own_folder(db, user, ROOT_FILES), path
    if folder is None or (folder["name"] == ROOT_FILES and not inside):  # the root itself is not shared
        raise OcsFailure(404, "Wrong path, file/folder doesn't exist")
    inside = normalize_path(inside) if inside else ""
    kind = entry_kind(db, folder["id"], inside) if inside else "dir"
    if kind is None:
        raise OcsFailure(404, "Wrong path, file/folder doesn't exist")
    return folder, inside, kind == "dir"


def _own_folder(db, user: str, name: str) -> dict | None:
    row = db.execute("SELECT id, name FROM folders WHERE owner = ? AND name = ? AND deleted_at IS NULL",
                     [user, name]).fetchone()
    return None if row is None else {"id": row[0], "name": row[1]}


def app_path(folder_name: str, inside: str) -> str:
    """The path the apps see: root-level files sit at the top, not in ROOT_FILES."""
    if folder_name == ROOT_FILES:
        return "/" + inside
    return "/" + folder_name + (f"/{inside}" if inside else "")


def _listed(request: web.Request, db, user: str) -> list[dict]:
    query = request.query
    if query.get("shared_with_me") == "true":
        return [user_share(db, row) for row in _user_share_rows(db, "s.grantee = ?", [user])]
    links = list_links(db, user)
    users = _user_share_rows(db, "f.owner = ?", [user])
    if "path" in query:
        folder, inside, _ = resolve(db, user, query["path"])
        subfiles = query.get("subfiles") == "true"
        def wanted(folder_id: int, path: str) -> bool:
            if folder_id != folder["id"]:
                return False
            if subfiles:
                return path != inside and path.rpartition("/")[0] == inside
            return path == inside
        links = [link for link in links if wanted(link.folder_id, link.path)]
        users = [row for row in users if wanted(row["folder_id"], "")]
    return [link_share(request, db, link) for link in links] + [user_share(db, row) for row in users]


async def list_shares(request: web.Request) -> web.Response:
    identity = await require_user(request)
    return ocs_response(request, await request.app[DATABASE].read(lambda db: _listed(request, db, identity.user)))


def _share_by_id(request: web.Request, db, user: str, share_id: int) -> dict:
    if share_id % 2 == 0:
        return link_share(request, db, find_link(db, user, share_id // 2))
    rows = _user_share_rows(db, "s.rowid = ? AND f.owner = ?", [share_id // 2, user])
    if not rows:
        raise OcsFailure(404, "Wrong share ID, share doesn't exist")
    return user_share(db, rows[0])


def _share_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise OcsFailure(404, "Wrong share ID, share doesn't exist")
    return int(text)


async def get_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    share_id = _share_id(request)
    share = await request.app[DATABASE].read(lambda db: _share_by_id(request, db, identity.user, share_id))
    return ocs_response(request, [share])


def _permissions(form, default: int) -> int:
    text = form.get("permissions", "")
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) <= 31:
        raise OcsFailure(400, "permissions must be a number from 1 to 31")
    return int(text)


def _folder_mode(permissions: int) -> str:
    """Read-write as soon as any writing bit is asked for; the share bit (16) alone changes nothing."""
    return "rw" if permissions & (UPDATE | CREATE | DELETE) else "ro"


def _link_mode(permissions: int, public_upload: bool) -> str:
    if permissions == CREATE:
        return "upload-only"
    if public_upload or permissions & (UPDATE | CREATE | DELETE):
        return "read-write"
    return "read"


def _expiry(text: str) -> str | None:
    try:
        return parse_expiry(text[:10] if text else None)  # the apps send YYYY-MM-DD, some with a time
    except BadRequest as error:
        raise OcsFailure(400, error.reason) from None


async def _password_hash(request: web.Request, password: str) -> str | None:
    return await request.app[AUTHENTICATOR].hash_password(password) if password else None


async def create_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    form = await request.post()
    share_type = form.get("shareType", "")
    if share_type.isdigit() and int(share_type) in CANNOT:
        raise OcsFailure(403, CANNOT[int(share_type)])
    if share_type not in (str(USER), str(LINK)):
        raise OcsFailure(400, "Unknown share type")
    path = form.get("path", "")
    if not path.strip("/"):
        raise OcsFailure(404, "Please specify a file or folder path")
    database = request.app[DATABASE]
    if share_type == str(LINK):
        expires_at = _expiry(form.get("expireDate", ""))
        password_hash = await _password_hash(request, form.get("password", ""))
        permissions = _permissions(form, READ)
        def create(db):
            folder, inside, _ = resolve(db, identity.user, path)
            link = create_link(db, identity.user, folder["id"], inside,
                               mode=_link_mode(permissions, form.get("publicUpload") == "true"),
                               password_hash=password_hash, expires_at=expires_at, label=form.get("label", ""))
            return link_share(request, db, link)
        return ocs_response(request, await database.write(create))
    grantee = form.get("shareWith", "")
    mode = _folder_mode(_permissions(form, READ))
    def grant(db):
        folder, inside, _ = resolve(db, identity.user, path)
        if inside:
            raise OcsFailure(403, "hearth shares only top-level folders with other users; "
                                  "share a link to a file or sub-folder instead")
        if not grantee or get_user(db, grantee) is None:
            raise OcsFailure(404, "Please specify a valid user")
        share_folder(db, identity.user, folder["id"], grantee, mode)
        return user_share(db, _user_share_rows(db, "s.folder_id = ? AND s.grantee = ?", [folder["id"], grantee])[0])
    return ocs_response(request, await database.write(grant))


async def change_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    share_id = _share_id(request)
    form = await request.post()
    database = request.app[DATABASE]
    if share_id % 2:
        if "permissions" not in form:
            raise OcsFailure(400, "a user share can only change its permissions")
        mode = _folder_mode(_permissions(form, READ))
        def regrant(db):
            _share_by_id(request, db, identity.user, share_id)  # 404 unless it is the user's
            row = _user_share_rows(db, "s.rowid = ?", [share_id // 2])[0]
            share_folder(db, identity.user, row["folder_id"], row["grantee"], mode)
            return user_share(db, _user_share_rows(db, "s.rowid = ?", [share_id // 2])[0])
        return ocs_response(request, await database.write(regrant))
    changes: dict = {}
    if "expireDate" in form:
        changes["expires_at"] = _expiry(form["expireDate"])
    if "password" in form:
        changes["password_hash"] = await _password_hash(request, form["password"])
    if "permissions" in form or "publicUpload" in form:
        changes["mode"] = _link_mode(_permissions(form, READ), form.get("publicUpload") == "true")
    link = await database.write(lambda db: update_link(db, identity.user, share_id // 2, **changes))
    return ocs_response(request, await database.read(lambda db: link_share(request, db, link)))


async def delete_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    share_id = _share_id(request)
    def remove(db):
        if share_id % 2 == 0:
            revoke_link(db, identity.user, share_id // 2)
            return
        rows = _user_share_rows(db, "s.rowid = ? AND f.owner = ?", [share_id // 2, identity.user])
        if not rows:
            raise OcsFailure(404, "Wrong share ID, share doesn't exist")
        share_folder(db, identity.user, rows[0]["folder_id"], rows[0]["grantee"], None)
    await request.app[DATABASE].write(remove)
    return ocs_response(request, [])


async def find_sharees(request: web.Request) -> web.Response:
    """GET …/sharees?search=NAME: the share dialog's user picker. Only an exact user name is found,
    so the picker never lists the household's accounts to whoever asks."""
    identity = await require_user(request)
    search = request.query.get("search", "").strip()
    found = await request.app[DATABASE].read(lambda db: get_user(db, search) if search else None)
    exact = [] if found is None or found["name"] == identity.user else [
        {"label": found["name"], "value": {"shareType": USER, "shareWith": found["name"]}}]
    nobody = {"users": [], "groups": [], "remotes": [], "emails": [], "circles": [], "rooms": []}
    return ocs_response(request, {"exact": {**nobody, "users": exact}, **nobody, "lookup": [],
                                  "lookupEnabled": False})


ROUTES = tuple((method, f"/ocs/v{version}.php/apps/files_sharing/api/v1{suffix}", answering(handler))
               for version in (1, 2)
               for method, suffix, handler in (("GET", "/shares", list_shares), ("POST", "/shares", create_share),
                                               ("GET", "/shares/{id}", get_share),
                                               ("PUT", "/shares/{id}", change_share),
                                               ("DELETE", "/shares/{id}", delete_share),
                                               ("GET", "/sharees", find_sharees)))
