"""The DAV protocol layer: WebDAV, CalDAV and CardDAV over HTTP, on top of services.dav.store.

`paths` maps URLs to resources, `xmlio` reads and writes DAV XML, `access`
authenticates and checks ownership, `properties` says what each resource
reports, and one module per method family answers requests (`propfind`,
`proppatch`, `mkcol`, `items`); `dispatch` routes by method.
"""
