"""If-Match / If-None-Match as PUT, DELETE, COPY and MOVE apply them (RFC 9110 §13.1)."""
from __future__ import annotations

from ..errors import PreconditionFailed


def check_conditions(name: str, current_etag: str | None, if_match: str | None,
                     if_none_match: bool) -> None:
    """Raise PreconditionFailed (412) unless the request's conditions hold for the current state.

    `if_match` is the header value ("*" or a list of entity tags, compared
    strongly: a weak tag never matches); `if_none_match` means `If-None-Match: *`,
    "only if nothing is there yet" — what clients send to create without
    overwriting someone else's new item."""
    if if_none_match and current_etag is not None:
        raise PreconditionFailed(f"{name} already exists")
    if if_match is None:
        return
    if current_etag is None:
        raise PreconditionFailed(f"{name} does not exist")
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" not in tags and current_etag not in tags:
        raise PreconditionFailed(f"{name} has changed (ETag {current_etag})")
