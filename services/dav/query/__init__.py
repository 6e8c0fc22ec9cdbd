"""CalDAV and CardDAV query semantics, without HTTP: filters, collations, time ranges, expansion, free-busy.

`calfilter` and `cardfilter` read a REPORT's filter element and test one stored
object against it; `timerange` holds RFC 4791 §9.9's overlap rules, `textmatch`
the collations, `caldata` the partial retrieval and expansion of calendar-data,
`carddata` the same for address-data, and `freebusy` the busy-time computation
that free-busy-query and scheduling share.
"""
