"""What every server-side command shares: the database, domain errors as one line and an exit code, tables.

Kept light to import, like the command modules that use it: heavy imports
happen inside the functions.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Callable, Iterator

from .errors import BadRequest, CommandError, HTTPError
from .exitcodes import ExitStatus


def as_command(action: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Domain errors (the same ones the API answers with) become one line and an exit code."""
    try:
        return action(args)
    except HTTPError as error:
        status = ExitStatus.CONFIG if isinstance(error, BadRequest) else ExitStatus.ERROR
        raise CommandError(error.reason, status) from None


@contextmanager
def database(args: argparse.Namespace) -> Iterator:
    from .config import load_config
    from .db import db_path, migrate, open_db
    from .schema import MIGRATION_SETS

    config = load_config(args.config)
    path = db_path(config.data_dir)
    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    try:
        yield db
    finally:
        db.close()


def require_user(db, name: str) -> dict:
    from . import accounts
    from .errors import NotFound

    user = accounts.get_user(db, accounts.normalize_name(name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


class ProgressBars:
    """A progress bar on a terminal (stderr) for work big enough to need one; silent otherwise.

    `start(total)` returns the function to call with each step's size (bytes, or items with `unit`)."""

    def __init__(self, desc: str, *, unit: str = "B", above: int = 0):
        self.desc, self.unit, self.above = desc, unit, above
        self.bar = None

    def start(self, total: int) -> Callable[[int], None]:
        import sys

        if total <= self.above or not sys.stderr.isatty():
            return lambda n: None
        from tqdm import tqdm

        in_bytes = self.unit == "B"
        self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, unit_scale=in_bytes,
                        unit_divisor=1024 if in_bytes else 1000, leave=False, dynamic_ncols=True)
        return self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
