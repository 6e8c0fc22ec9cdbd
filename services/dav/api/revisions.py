"""Kept revisions of events, tasks and contacts: GET /dav/api/v1/revisions, POST …/revisions/{id}/restore.

A user sees and restores only the revisions of collections they own (who
made the change does not matter: a grantee's edit of a shared calendar is
the owner's to undo). Someone else's revision id answers 404, as if it did
not exist.
"""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.errors import BadRequest
from services.core.http import DATABASE
from services.core.routing import Route, int_param, int_query, respond

from ..http.paths import HOME_OF, ITEM, Target
from ..store import Restored, Revision, list_revisions, restore_revision

PREFIX = "/dav/api/v1"
DEFAULT_LIMIT, MAX_LIMIT = 1000, 10000
Home = Literal["calendars", "addressbooks"]


class RevisionOut(BaseModel):
    id: int
    home: Home
    collection: str = Field(description="the collection's name in your home (it may have been deleted since)")
    item: str = Field(description="the item's name in that collection")
    uid: str
    component: str = Field(description="VEVENT, VTODO, VJOURNAL or VCARD")
    summary: str = Field(description="its SUMMARY (events, tasks) or FN (contacts); empty if it has none")
    reason: Literal["overwritten", "deleted", "collection-deleted"]
    replaced_at: str = Field(description="when it stopped being current (UTC)")
    size: int = Field(description="bytes")

    @classmethod
    def of(cls, revision: Revision) -> "RevisionOut":
        return cls(id=revision.id, home=HOME_OF[revision.kind], collection=revision.collection_name,
                   item=revision.name, uid=revision.uid, component=revision.component, summary=revision.summary,
                   reason=revision.reason, replaced_at=revision.replaced_at, size=revision.size)


class RestoredOut(BaseModel):
    revision: int
    href: str = Field(description="where the restored item is now")
    etag: str
    outcome: Literal["created", "replaced", "unchanged"] = Field(
        description="created: a new item; replaced: it became the current version of the same object (the "
                    "version it replaced is kept as a revision); unchanged: it already was current")
    collection_recreated: bool = Field(description="its collection had been deleted and was created again")

    @classmethod
    def of(cls, restored: Restored) -> "RestoredOut":
        return cls(revision=restored.revision.id, href=href_of(restored), etag=restored.item.etag,
                   outcome=restored.outcome, collection_recreated=restored.collection_recreated)


def href_of(restored: Restored) -> str:
    """The restored item's URL path under /dav/."""
    collection = restored.collection
    return Target(ITEM, collection.owner, collection.kind, collection.name, restored.item.name).path


async def get_revisions(request: web.Request) -> web.Response:
    identity = await require_user(request)
    collection = request.query.get("collection") or None
    deleted = _flag(request, "deleted")
    limit = int_query(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    found = await request.app[DATABASE].read(lambda db: list_revisions(
        db, identity.user, collection=collection, deleted=deleted, limit=limit))
    return respond([RevisionOut.of(revision) for revision in found])


async def post_restore(request: web.Request) -> web.Response:
    identity = await require_user(request)
    revision_id = int_param(request, "id")
    restored = await request.app[DATABASE].write(lambda db: restore_revision(db, identity.user, revision_id))
    return respond(RestoredOut.of(restored))


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise BadRequest(f"{name}: expected 1 or 0, got {raw!r}")


ROUTES = (
    Route("GET", f"{PREFIX}/revisions", get_revisions, "Replaced and deleted events, tasks and contacts of "
          "your collections that can still be restored, newest first", tag="revisions", response=RevisionOut,
          many=True, errors=(400,), query_params={
              "collection": {"type": "string", "description": "only those of the collection with this name"},
              "deleted": {"type": "integer", "enum": [0, 1],
                          "description": "1: only deleted ones (alone or with their collection)"},
              "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                        "description": f"at most this many (default {DEFAULT_LIMIT})"},
          }),
    Route("POST", f"{PREFIX}/revisions/{{id}}/restore", post_restore, "Make a revision current again, as a new "
          "change sync clients see; into its collection (recreated if deleted), under a new name if another "
          "object took its old one: nothing is overwritten", tag="revisions", response=RestoredOut,
          errors=(404, 409), path_params={"id": {"type": "integer", "description": "the revision's id"}}),
)
