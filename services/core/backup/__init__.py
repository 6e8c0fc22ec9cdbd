"""Disaster recovery of the whole server: `hearth backup` and `hearth restore`.

A backup directory holds everything a dead server needs to come back on a new
machine, with blobs = "local":

    backup.json                     the manifest, written last: without it nothing here is a backup
    snapshots/STAMP/hearth.sqlite3  the database, a consistent copy taken while the daemons ran
    snapshots/STAMP/hearth.toml     the config file
    blobs/ab/cd/ID                  every chunk the snapshot references, laid out as var/blobs

A backup in a bucket (`hearth backup --to s3://BUCKET/PREFIX`, bucket_backup.py)
has the same layout under PREFIX/, with the chunks as PREFIX/chunks/ID.

Accounts, app passwords (stored hashed), sessions, files with their versions
and trash, calendars, contacts, shares and links all live in the database;
the chunks hold the files' bytes. Nothing else under var/ is needed: run/ and
log/ are rebuilt by `hearth up`, previews/ is a cache, uploads/ holds uploads
that had not finished. The database alone can also be replicated
continuously with Litestream (replica.py).
"""
