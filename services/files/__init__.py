"""WebDAV access to the file tree that sync serves: /files/<user>/<folder>/… (RFC 4918 class 1 and 2)."""
