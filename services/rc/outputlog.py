"""The log file the daemon wrapper owns: the child's output plus the wrapper's own lines.

Only whole lines are written, so reopening the file (rotation: rename, SIGHUP)
never splits a line between two files. A partial trailing line waits for its
newline; it is written anyway, newline-terminated, when it grows past
MAX_PARTIAL (as journald splits overlong lines) or when the child exits.

The child's output is read straight into one preallocated buffer and its whole
lines are written from there, so a read allocates nothing and copies nothing:
only a trailing partial line is moved, to the buffer's start, to wait for the
rest. Memory is that buffer, MAX_PARTIAL plus one read; a slow disk slows the
child through the pipe instead of growing a buffer.
"""
from __future__ import annotations

import io
import logging
import os

MAX_PARTIAL = 64 * 1024
READ_SIZE = 256 * 1024           # the least room a read gets, after a held partial line
FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
MODE = 0o600


class OutputLog:
    """An append-only log file, reopened by path on request, written in whole lines."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, FLAGS, MODE)
        # [0, _held) of the buffer is a partial line (never holding a newline)
        # waiting for its end; reads land right after it.
        self._buffer = bytearray(MAX_PARTIAL + READ_SIZE)
        self._view = memoryview(self._buffer)
        self._held = 0
        self.lost_bytes = 0        # output dropped because the file could not be written
        self.last_error: OSError | None = None
        self.last_write_ok = True

    def read_from(self, source: io.RawIOBase) -> int | None:
        """One read from the child's (non-blocking) pipe; write the complete lines it finished.

        Returns what readinto returned: the byte count (a count of READ_SIZE or
        more means there may be more waiting), 0 at end of file, None when the
        pipe was empty.
        """
        held = self._held
        count = source.readinto(self._view[held:] if held else self._view)
        if count:
            end = held + count
            if self._buffer[end - 1] == 10:  # whole lines, the usual case: write them all
                self._held = 0
                self._write(self._view[:end])
            else:
                self._take(held, end)
        return count

    def write_output(self, data: bytes) -> None:
        """Take a chunk of the child's output; write the complete lines in it."""
        data = memoryview(data).cast("B")
        while data:
            held = self._held
            size = min(len(data), len(self._buffer) - held)
            self._buffer[held:held + size] = data[:size]
            self._take(held, held + size)
            data = data[size:]

    def flush_partial(self) -> None:
        """Write a pending partial line, newline-terminated (the child exited mid-line)."""
        if self._held:
            self._write(self._view[:self._held].tobytes() + b"\n")
            self._held = 0

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

    def _take(self, new: int, end: int) -> None:
        """The buffer holds output up to `end`, of which [new, end) is fresh: write its whole
        lines in one write, split an overlong partial line, keep the rest at the start."""
        cut = self._buffer.rfind(b"\n", new, end) + 1  # the held part has no newline: skip it
        if cut:
            self._write(self._view[:cut])
        start = cut
        while end - start > MAX_PARTIAL:
            self._write(self._view[start:start + MAX_PARTIAL].tobytes() + b"\n")
            start += MAX_PARTIAL
        if start and end > start:  # copied out first: the source and target ranges may overlap
            self._buffer[:end - start] = self._view[start:end].tobytes()
        self._held = end - start

    def _write(self, data) -> None:
        """Write bytes (or a byte memoryview) in full, retrying short writes."""
        left = len(data)
        try:
            while left:
                written = os.write(self.fd, data)
                if written >= left:
                    break
                data, left = memoryview(data)[written:], left - written
        except OSError as error:  # full disk, I/O error: drop the data, never block or grow
            self.lost_bytes += left
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
