"""CalDAV and CardDAV: calendars and address books served under /dav/.

`store` keeps collections, items and their change log in SQLite; `ical` and
`vcard` validate what clients send and extract what the store indexes. The
protocol layer (WebDAV, CalDAV, CardDAV) builds on these and never touches
SQL itself.
"""
