"""The DAV daemon's JSON API under /dav/api/v1: sharing and kept revisions of calendars and address books."""
