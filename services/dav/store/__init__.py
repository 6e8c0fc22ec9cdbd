"""Storage of calendars and address books: collections, items, change log, shares.

Storage only: no HTTP. Functions take a sqlite_utils.Database and never manage
transactions; callers wrap them in `write(db, fn)` / `Database.write`, so a
failed call changes nothing. Errors are HTTPError subclasses; DAV ones carry
their precondition element (services/dav/errors.py).
"""
from .changes import TOKEN_PREFIX, Changes, changes_since, sync_token
from .collections import (
                          ADDRESSBOOK,
                          CALENDAR,
                          Collection,
                          collection_by_name,
                          create_collection,
                          delete_collection,
                          ensure_defaults,
                          get_collection,
                          list_collections,
                          revoke_share,
                          share_collection,
                          shares_of,
                          update_properties,
)
from .items import (
                          MAX_RESOURCE_SIZE,
                          Item,
                          delete_item,
                          etag_of,
                          find_item,
                          get_item,
                          get_items,
                          items_in_range,
                          list_items,
                          put_item,
)
from .queries import ChangePage, changes_page, collection_items, items_named
from .restore import Restored, restore_revision
from .revisions import Revision, expire_revisions, get_revision, list_revisions
from .transfer import copy_item, move_item

__all__ = [
    "TOKEN_PREFIX", "Changes", "changes_since", "sync_token",
    "ADDRESSBOOK", "CALENDAR", "Collection", "collection_by_name", "create_collection",
    "delete_collection", "ensure_defaults", "get_collection", "list_collections", "revoke_share",
    "share_collection", "shares_of", "update_properties",
    "MAX_RESOURCE_SIZE", "Item", "delete_item", "etag_of", "find_item", "get_item", "get_items",
    "items_in_range", "list_items", "put_item",
    "copy_item", "move_item",
    "ChangePage", "changes_page", "collection_items", "items_named",
    "Restored", "restore_revision", "Revision", "expire_revisions", "get_revision", "list_revisions",
]
