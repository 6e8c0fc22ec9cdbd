"""RFC 6638 scheduling: invitations between local users, and iMIP (RFC 6047) email for everyone else.

`addresses` says who a calendar user address is, `itip` works out messages
on parsed iCalendar, `mailboxes` holds the schedule inbox and outbox,
`deliver` puts messages into local users' collections through the store,
`implicit` is what PUT and DELETE call, `imip` and `sender` queue and send
email, `outbox` answers free-busy requests, and `properties` reports the
scheduling properties of principals, inboxes and outboxes.
"""
