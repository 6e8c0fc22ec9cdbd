"""Mass deletions a WebDAV or Nextcloud client made, and their undo: GET /sync/v1/mass-deletions,
POST /sync/v1/mass-deletions/{id}/undo (services/core/tree/deletion_runs.py records them)."""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.http import DATABASE
from services.core.routing import Route, int_param, int_query, respond
from services.core.tree.deletion_runs import DeletionRun, mass_deletions, undo_run

from .common import FEED, PREFIX, quota_bytes


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")


class MassDeletionOut(BaseModel):
    id: int
    folder_id: int
    folder: str = Field(description="the folder's name")
    user: str = Field(description="who deleted")
    device: str = Field(description="the app password's label, or \"the account password\"")
    started_at: str
    last_at: str = Field(description="the run's last deletion")
    files: int = Field(description="files deleted in the run (all in the trash)")
    tracked: int = Field(description="files the folder held when the run began")
    summary: str = Field(description="one line for people")
    undone_at: str | None = Field(description="null until undone")

    @classmethod
    def of(cls, run: DeletionRun) -> "MassDeletionOut":
        return cls(id=run.id, folder_id=run.folder_id, folder=run.folder, user=run.user, device=run.device,
                   started_at=_iso(run.started_at), last_at=_iso(run.last_at), files=run.files,
                   tracked=run.tracked, summary=run.summary, undone_at=_iso(run.undone_at))


async def get_mass_deletions(request: web.Request) -> web.Response:
    identity = await require_user(request)
    folder = int_query(request, "folder", 0) or None
    found = await request.app[DATABASE].read(lambda db: mass_deletions(db, identity.user, folder))
    return respond([MassDeletionOut.of(run) for run in found])


async def post_undo_mass_deletion(request: web.Request) -> web.Response:
    identity = await require_user(request)
    run_id, quota = int_param(request, "id"), quota_bytes(request)
    run = await request.app[DATABASE].write(lambda db: undo_run(db, identity.user, run_id, quota=quota))
    request.app[FEED].notify(run.folder_id)
    return respond(MassDeletionOut.of(run))


ROUTES = (
    Route("GET", f"{PREFIX}/mass-deletions", get_mass_deletions,
          "Mass deletions WebDAV and Nextcloud clients made in your folders or with your account (more than "
          "10 files and more than half a folder's at once), newest first", tag="journal",
          response=MassDeletionOut, many=True, errors=(400,),
          query_params={"folder": {"type": "integer", "description": "only this folder's"}}),
    Route("POST", f"{PREFIX}/mass-deletions/{{id}}/undo", post_undo_mass_deletion,
          "Bring back every file of a mass deletion from the trash, each with its content and file id; 409, "
          "changing nothing, if a file lives at any of their paths again or it was undone already", tag="journal",
          response=MassDeletionOut, errors=(403, 404, 409, 410, 507),
          path_params={"id": {"type": "integer", "description": "the mass deletion's id"}}),
)
