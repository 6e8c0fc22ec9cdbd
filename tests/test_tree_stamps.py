"""Directory stamps (services/core/tree/stamps.py): what a directory knows of everything below it."""
from services.core.db import write
from services.core.tree import (commit_file, create_folder, delete, list_folders, mkdir, rename, restore,
                                share_folder)
from services.core.tree.stamps import folder_stamp, root_file_id, root_tag

NO_CHUNKS = []


def _put(db, folder, path, size=0):
    # Content is not the point here: an empty file, or one whose size the stamps must add up.
    chunks = [("a" * 64, size)] if size else NO_CHUNKS
    entry = db.execute("SELECT revision_id, deleted FROM entries WHERE folder_id = ? AND path = ?",
                       [folder, path]).fetchone()
    base = entry[0] if entry and not entry[1] else None
    return write(db, lambda d: commit_file(d, folder, path, base, chunks, size, 1, False, "laptop"))


def _stamps(db, folder, *paths):
    return {path: folder_stamp(db, folder, path) for path in paths}


def _file_id(db, folder, path):
    return db.execute("SELECT file_id FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                      [folder, path]).fetchone()[0]


def test_a_deep_write_changes_every_ancestor_and_no_sibling(db):
    folder = write(db, lambda d: create_folder(d, "alice", "Docs")).id
    other = write(db, lambda d: create_folder(d, "alice", "Other")).id
    for path in ("a/b/c/old.txt", "a/sibling/x.txt", "a/b/side/y.txt"):
        _put(db, folder, path)
    _put(db, other, "z.txt")
    before = _stamps(db, folder, "", "a", "a/b", "a/b/c", "a/sibling", "a/b/side")
    root_before, other_before = root_tag(list_folders(db, "alice")), folder_stamp(db, other, "")
    _put(db, folder, "a/b/c/new.txt", 5)
    after = _stamps(db, folder, *before)
    for changed in ("", "a", "a/b", "a/b/c"):
        assert after[changed][0] > before[changed][0], changed
        assert after[changed][1] == before[changed][1] + 5  # sizes: bytes of the current files below
        assert after[changed][2] == before[changed][2]  # file ids stay
    assert after["a/sibling"] == before["a/sibling"] and after["a/b/side"] == before["a/b/side"]
    assert folder_stamp(db, other, "") == other_before
    assert root_tag(list_folders(db, "alice")) != root_before


def test_rename_and_delete_reach_both_parents_and_ids_follow_the_move(db):
    folder = write(db, lambda d: create_folder(d, "alice", "Docs")).id
    write(db, lambda d: mkdir(d, folder, "from", "laptop"))
    _put(db, folder, "from/sub/f.txt", 7)
    _put(db, folder, "to/keep.txt", 1)
    _put(db, folder, "still/here.txt", 2)
    file_id, sub_id = _file_id(db, folder, "from/sub/f.txt"), folder_stamp(db, folder, "from/sub")[2]
    dir_id = folder_stamp(db, folder, "from")[2]
    before = _stamps(db, folder, "", "to", "still")
    revision = db.execute("SELECT revision_id FROM entries WHERE path = 'from'").fetchone()[0]
    write(db, lambda d: rename(d, folder, "from", "to/moved", revision, "laptop"))
    after = _stamps(db, folder, "", "to", "still", "to/moved", "to/moved/sub", "from")
    assert after["to"][0] > before["to"][0] and after["to"][1] == 8
    assert after[""][1] == before[""][1] == 10 and after["from"][1] == 0
    assert after["still"] == before["still"]
    assert _file_id(db, folder, "to/moved/sub/f.txt") == file_id  # a moved file keeps its id...
    assert (after["to/moved"][2], after["to/moved/sub"][2]) == (dir_id, sub_id)  # ...and so do directories
    assert after["from"][2] != dir_id  # the old path names something else from now on
    revision = db.execute("SELECT revision_id FROM entries WHERE path = 'to/moved/sub/f.txt'").fetchone()[0]
    write(db, lambda d: delete(d, folder, "to/moved/sub/f.txt", revision, "laptop"))
    gone = _stamps(db, folder, "", "to", "to/moved", "to/moved/sub", "still")
    assert all(gone[p][0] > after[p][0] for p in ("", "to", "to/moved", "to/moved/sub"))
    assert (gone[""][1], gone["to"][1], gone["to/moved"][1]) == (3, 1, 0) and gone["still"] == before["still"]
    recreated = _put(db, folder, "to/moved/sub/f.txt")
    assert _file_id(db, folder, recreated.path) != file_id  # a new file at an old path is a new file


def test_root_tag_follows_folders_created_renamed_shared_and_deleted(db):
    from services.core.tree import delete_folder, rename_folder

    tags = [root_tag(list_folders(db, "bob"))]
    folder = write(db, lambda d: create_folder(d, "alice", "Family")).id
    write(db, lambda d: share_folder(d, "alice", folder, "bob", "ro"))
    tags.append(root_tag(list_folders(db, "bob")))
    _put(db, folder, "photo.jpg")
    tags.append(root_tag(list_folders(db, "bob")))
    write(db, lambda d: rename_folder(d, "alice", folder, "Familie"))
    tags.append(root_tag(list_folders(db, "bob")))
    write(db, lambda d: share_folder(d, "alice", folder, "bob", "rw"))
    tags.append(root_tag(list_folders(db, "bob")))
    write(db, lambda d: delete_folder(d, "alice", folder))
    tags.append(root_tag(list_folders(db, "bob")))
    assert len(set(tags)) == len(tags) - 1 and tags[0] == tags[-1]  # gone again: the empty root's tag
    assert root_file_id(db, "bob") is not None and root_file_id(db, "bob") != root_file_id(db, "alice")


def test_a_write_touches_the_same_rows_beside_10000_siblings(db):
    """O(depth): a change writes its ancestors' stamps only, never rows of its siblings or their subtrees."""
    small = write(db, lambda d: create_folder(d, "alice", "Small")).id
    big = write(db, lambda d: create_folder(d, "alice", "Big")).id

    def fill(d):
        for i in range(10_000):
            commit_file(d, big, f"deep/er/d{i % 100}/f{i}.txt", None, NO_CHUNKS, 0, 1, False, "laptop")
    write(db, fill)
    _put(db, small, "deep/er/first.txt")

    def rows_written(folder):
        before = db.conn.total_changes
        _put(db, folder, "deep/er/new.txt")
        return db.conn.total_changes - before
    assert rows_written(big) == rows_written(small)


def test_the_migration_computes_the_stamps_every_change_keeps(db):
    """A database from before stamps gets the same stamps the journal would have kept."""
    from services.core.schema import m004_tree_stamps

    folder = write(db, lambda d: create_folder(d, "alice", "Docs")).id
    write(db, lambda d: share_folder(d, "alice", folder, "bob", "ro"))
    for path, size in (("a/b/one.txt", 3), ("a/two.txt", 4), ("c/three.txt", 5), ("top.txt", 6)):
        _put(db, folder, path, size)
    revision = db.execute("SELECT revision_id FROM entries WHERE path = 'a/two.txt'").fetchone()[0]
    write(db, lambda d: delete(d, folder, "a/two.txt", revision, "laptop"))
    kept = db.execute("SELECT path, seq, size FROM tree_dirs ORDER BY path").fetchall()

    def rebuild(d):
        d.execute("DROP TRIGGER users_get_a_root_file_id")  # m007's, which names tree_roots
        d.execute("DROP TABLE tree_dirs")
        d.execute("DROP TABLE tree_roots")
        d.execute("DROP TABLE tree_meta")
        d.execute("DROP INDEX entries_file_id")  # made by a later migration, on the column dropped here
        d.execute("ALTER TABLE entries DROP COLUMN file_id")
        m004_tree_stamps(d)
    write(db, rebuild)
    assert db.execute("SELECT path, seq, size FROM tree_dirs ORDER BY path").fetchall() == kept
    ids = [row[0] for row in db.execute("SELECT file_id FROM tree_dirs UNION ALL SELECT file_id FROM entries "
                                        "UNION ALL SELECT file_id FROM tree_roots")]
    assert len(ids) == len(set(ids)) and root_file_id(db, "bob") is not None
    assert _put(db, folder, "a/after.txt")  # new ids continue after the migrated ones
    new_id = _file_id(db, folder, "a/after.txt")
    assert new_id > max(ids)


def test_a_file_restored_from_the_trash_keeps_its_id_unless_another_file_took_it(db):
    """Nextcloud keeps a restored file's id (its apps match files by it); an id names one thing only."""
    folder = write(db, lambda d: create_folder(d, "alice", "Photos")).id
    first = _put(db, folder, "a.jpg", 10)
    kept = _file_id(db, folder, "a.jpg")
    write(db, lambda d: delete(d, folder, "a.jpg", first.id, "phone"))
    back = write(db, lambda d: restore(d, folder, "a.jpg", first.id, "laptop"))
    assert _file_id(db, folder, "a.jpg") == kept

    write(db, lambda d: rename(d, folder, "a.jpg", "b.jpg", back.id, "phone"))
    assert _file_id(db, folder, "b.jpg") == kept  # the id went along; a.jpg's delete marker still names it
    write(db, lambda d: restore(d, folder, "a.jpg", first.id, "laptop"))
    assert _file_id(db, folder, "a.jpg") not in (kept, None) and _file_id(db, folder, "b.jpg") == kept


def test_every_user_has_a_root_id_from_the_moment_they_are_made(db):
    """The Nextcloud apps read oc:id of a brand-new account's root (iOS keys its directory records by it):
    a user gets a root id when made, before any folder; users made before the migration get theirs."""
    from services.core.accounts import create_user
    from services.core.schema import m007_every_user_has_a_root_id

    write(db, lambda d: create_user(d, "carol", "x"))
    assert root_file_id(db, "carol") is not None

    def before_the_migration(d):
        d.execute("DROP TRIGGER users_get_a_root_file_id")
        d.execute("DELETE FROM tree_roots")
        create_user(d, "dave", "x")
    write(db, before_the_migration)
    assert root_file_id(db, "dave") is None and root_file_id(db, "carol") is None
    write(db, m007_every_user_has_a_root_id)
    ids = {user: root_file_id(db, user) for user in ("carol", "dave")}
    assert None not in ids.values() and len(set(ids.values())) == 2
    write(db, lambda d: create_user(d, "erin", "x"))
    assert root_file_id(db, "erin") > max(ids.values())   # from the one counter: never an id used before
