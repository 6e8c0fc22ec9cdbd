"""One sync cycle: pull what the server has, then push what changed here.

Pull runs first so that a file changed on both sides is seen as a conflict (and
kept twice) rather than met as a 409 on upload.
"""
from __future__ import annotations

from services.sync.client.context import Context, Report
from services.sync.client.ignore import IGNORE_FILE
from services.sync.client.pull import pull
from services.sync.client.push import push


async def cycle(context: Context, hints: set[str] | None) -> Report:
    """Pull, then push (a full scan when `hints` is None, else only those paths)."""
    report = Report()
    context.check_root()
    if (hints is None or IGNORE_FILE in hints) and context.reload_ignore():
        context.state.set_cursor(0)  # paths no longer ignored must come down: replay the journal
    await pull(context, report)
    context.check_root()
    await push(context, report, hints)
    return report
