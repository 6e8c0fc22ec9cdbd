"""When to restart a child that exited, and when to give up (Syncthing's svcutil spirit).

Quick failures double the delay up to a cap; a child that stayed up long enough
is considered healthy again and resets it. Restarts are counted in a sliding
window so a service that fails once a day never hits the limit.
"""
from __future__ import annotations

from collections import deque


class Backoff:
    """Restart delays and the give-up rule for one supervised child."""

    def __init__(self, first: float, cap: float, stable_after: float,
                 max_restarts: int | None, window: float):
        self.first = first
        self.cap = max(cap, first)  # an explicit -R longer than the cap is honoured
        self.stable_after = stable_after
        self.max_restarts = max_restarts
        self.window = window
        self._next = first
        self._restarts: deque[float] = deque()

    def delay_after(self, uptime: float) -> float:
        """The wait before the next start, given how long the child that just exited ran."""
        if uptime >= self.stable_after:
            self._next = self.first
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def record_restart(self, now: float) -> None:
        self._restarts.append(now)

    def restarts_in_window(self, now: float) -> int:
        while self._restarts and self._restarts[0] <= now - self.window:
            self._restarts.popleft()
        return len(self._restarts)

    def should_give_up(self, now: float) -> bool:
        """True when the child already used up its restarts in the window (-C)."""
        return self.max_restarts is not None and self.restarts_in_window(now) >= self.max_restarts
