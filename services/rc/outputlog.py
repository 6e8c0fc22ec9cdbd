"""The log file the daemon wrapper owns: the child's output plus the wrapper's own lines.

Only whole lines are written, so reopening the file (rotation: rename, SIGHUP)
never splits a line between two files. A partial trailing line waits for its
newline; it is written anyway, newline-terminated, when it grows past
MAX_PARTIAL (as journald splits overlong lines) or when the child exits.
Memory is bounded by MAX_PARTIAL plus one read; a slow disk slows the child
through the pipe instead of growing a buffer.
"""
from __future__ import annotations

import logging
import os

MAX_PARTIAL = 64 * 1024
FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
MODE = 0o640


class OutputLog:
    """An append-only log file, reopened by path on request, written in whole lines."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, FLAGS, MODE)
        self._partial = b""
        self.lost_bytes = 0        # output dropped because the file could not be written
        self.last_error: OSError | None = None
        self.last_write_ok = True

    def write_output(self, data: bytes) -> None:
        """Take a chunk of the child's output; write the complete lines in it."""
        buffer = self._partial + data if self._partial else data
        cut = buffer.rfind(b"\n") + 1
        if cut:
            self._write(buffer[:cut] if cut < len(buffer) else buffer)
            buffer = buffer[cut:]
        while len(buffer) > MAX_PARTIAL:
            self._write(buffer[:MAX_PARTIAL] + b"\n")
            buffer = buffer[MAX_PARTIAL:]
        self._partial = buffer

    def flush_partial(self) -> None:
        """Write a pending partial line, newline-terminated (the child exited mid-line)."""
        if self._partial:
            self._write(self._partial + b"\n")
            self._partial = b""

    def write_line(self, line: str) -> None:
        """Write one of the wrapper's own lines; a pending partial line stays pending."""
        self._write(line.encode("utf-8", "replace") + b"\n")

    def reopen(self) -> None:
        """Open the path afresh (after a rename); on failure keep writing to the old file."""
        fd = os.open(self.path, FLAGS, MODE)
        os.close(self.fd)
        self.fd = fd

    def close(self) -> None:
        self.flush_partial()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as error:  # full disk, I/O error: drop the data, never block or grow
            self.lost_bytes += len(view)
            self.last_error = error
            self.last_write_ok = False
            return
        self.last_write_ok = True


class OutputLogHandler(logging.Handler):
    """Sends the wrapper's log records into its OutputLog, one line each."""

    def __init__(self, output: OutputLog):
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.output.write_line(self.format(record))
        except Exception:
            self.handleError(record)
