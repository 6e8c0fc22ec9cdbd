"""File storage for sync: content-defined chunks, a blob store, and each folder's journal.

Storage only: no HTTP. Functions take a sqlite_utils.Database and never manage
transactions; callers wrap them in `write(db, fn)` / `Database.write`.
"""
from .chunks import (AVG_SIZE, MAX_SIZE, MIN_SIZE, BlobStore, Chunk, ChunkStore, chunk_id, chunk_stream,
                     content_digest)
from .folders import (ROOT_FILES, Folder, FolderDeleted, QuotaExceeded, create_folder, folder_access,
                      folder_view, list_folders, open_or_create_folder, quota_bytes, share_folder, usage)
from .lifecycle import (DeletedFolder, delete_folder, deleted_folders, folder_by_name, purge_deleted_folders,
                        rename_folder, restore_folder)
from .gc import collect_chunks, collect_garbage, expire_versions
from .history import changes_since, trash, versions
from .journal import (MissingChunks, Revision, StaleRevision, commit_file, delete, mkdir, rename, restore,
                      set_mtime)
from .paths import creatable_path, name_problem, normalize_path

__all__ = [
    "ROOT_FILES",
    "AVG_SIZE", "MAX_SIZE", "MIN_SIZE", "BlobStore", "Chunk", "ChunkStore", "chunk_id", "chunk_stream",
    "content_digest",
    "Folder", "FolderDeleted", "QuotaExceeded", "create_folder", "folder_access", "folder_view", "list_folders",
    "open_or_create_folder", "quota_bytes", "share_folder", "usage",
    "DeletedFolder", "delete_folder", "deleted_folders", "folder_by_name", "purge_deleted_folders",
    "rename_folder", "restore_folder",
    "collect_chunks", "collect_garbage", "expire_versions",
    "MissingChunks", "Revision", "StaleRevision", "changes_since", "commit_file", "delete", "mkdir",
    "rename", "restore", "set_mtime", "trash", "versions", "creatable_path", "name_problem", "normalize_path",
]
