"""Progress of long transfers: a bar with rate and ETA on a terminal, log lines otherwise."""
from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("hearth.sync")

SHOW_ABOVE = 8 << 20     # smaller transfers are not worth a bar
LOG_EVERY = 10.0         # seconds between progress lines when not on a terminal


class Progress:
    """`advance(n)` as bytes move; `close()` at the end. Silent for small totals."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done = what, total, 0
        self.started = self.logged = time.monotonic()
        self.bar = None
        if total >= SHOW_ABOVE and sys.stderr.isatty():
            self.bar = tqdm(total=total, desc=what, unit="B", unit_scale=True, unit_divisor=1024,
                            leave=False, dynamic_ncols=True)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if self.total >= SHOW_ABOVE and now - self.logged >= LOG_EVERY:
            self.logged = now
            rate = self.done / max(now - self.started, 1e-6)
            eta = (self.total - self.done) / rate if rate else 0
            log.info("%s: %d of %d MiB (%.1f MiB/s, %s left)", self.what, self.done >> 20, self.total >> 20,
                     rate / (1 << 20), _duration(eta))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
