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
