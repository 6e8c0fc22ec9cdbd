"""Timestamps as the journal stores them: UTC, fixed width, so text order is time order."""
from __future__ import annotations

from datetime import datetime, timezone

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> str:
    return stamp(datetime.now(timezone.utc))


def stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(timezone.utc).strftime(FORMAT)
