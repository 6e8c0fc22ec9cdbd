"""iMIP (RFC 6047): iTIP messages to calendar users outside hearth, as email, through a queue.

A message is composed and queued inside the PUT's own write transaction (so
it exists exactly when the change does) and sent later by sender.py; a slow
or failing SMTP server never touches the PUT.
"""
from __future__ import annotations

import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import sqlite_utils

from services.core.tree.clock import utcnow

from . import itip
from .addresses import Settings, is_mail, mail_of

SUBJECTS = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "REPLY": "Reply"}
TEXTS = {"REQUEST": "You are invited to {summary}{when}.",
         "CANCEL": "{summary}{when} has been cancelled.",
         "REPLY": "{who} has replied {partstat} to {summary}{when}."}


def queue(db: sqlite_utils.Database, settings: Settings, sender: str, message: itip.Message) -> None:
    """Put one iMIP message in the outgoing queue (sent by the DAV daemon's background sender)."""
    email = compose(settings, sender, message)
    db.execute("""INSERT INTO dav_outgoing_mail (sender, recipient, method, message, created_at, next_attempt_at)
                  VALUES (?, ?, ?, ?, ?, ?)""",
               [sender, message.recipient, message.method, email.as_bytes(), utcnow(), time.time()])


def compose(settings: Settings, sender: str, message: itip.Message) -> EmailMessage:
    """The email: a short text part and the iTIP object as text/calendar; method=… (RFC 6047 §2.4)."""
    first = itip.components(message.calendar)[0]
    summary = str(first.get("SUMMARY", "an event"))
    start = first.get("DTSTART")
    when = f" ({start.dt:%Y-%m-%d %H:%M %Z})".replace(" )", ")") if start is not None else ""
    attendee = next(iter(itip.attendees(first)), None)
    text = TEXTS[message.method].format(
        summary=summary, when=when, who=mail_of(sender) if is_mail(sender) else sender,
        partstat=str(getattr(attendee, "params", {}).get("PARTSTAT", "")).lower())
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = mail_of(message.recipient)
    if is_mail(sender):
        email["Reply-To"] = mail_of(sender)
    email["Subject"] = f"{SUBJECTS[message.method]}: {summary}"
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(domain=settings.mail_domain)
    email.set_content(text + "\n")
    email.add_alternative(message.calendar.to_ical().decode("utf-8"), subtype="calendar",
                          params={"method": message.method})
    return email
