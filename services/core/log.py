"""One-line log records on stderr: the supervisor owns files and rotation.

    2026-11-21T22:02:27.123Z INFO hearth.api: listening on unix:var/run/api.sock
"""
import logging
import sys
import time


class OneLineFormatter(logging.Formatter):
    """UTC timestamp, level, logger, message; tracebacks folded onto the same line."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return line.replace("\n", "\\n")


def setup_logging(level: str = "info", stream=None) -> None:
    """Send every logger's records to stderr, one line each."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
