"""Setting keys of one table in hearth.toml for a command that changes the configuration (`hearth storage migrate`).

The file is a person's: their comments, order and other tables stay as they are. Only the lines
`key = …` of the named table are replaced (or added under its header, or the table appended), the
result is parsed again before it counts, and it replaces the file whole (temp file, fsync, rename,
fsync of the directory): a crash leaves the old file or the new one, never half of each.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Mapping

from .durable import fsync_directory
from .errors import CommandError

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[")
# `key = "value"  # comment`: the value a basic or literal string or a bare word, the comment kept
_KEY_LINE = re.compile(r"""^\s*(?P<key>[A-Za-z0-9_\-]+)\s*=\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s#]*)\s*(?P<comment>#.*)?$""")


def set_keys(path: Path, table: str, values: Mapping[str, str]) -> None:
    """In `path`, set each of `values` (strings) in `[table]`; everything else in the file is kept."""
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start, end = _table_lines(lines, table)
    pending = dict(values)
    if start is None:
        lines += ["\n", f"[{table}]\n"] + [f"{key} = {json.dumps(value)}\n" for key, value in pending.items()]
    else:
        for index in range(start + 1, end):
            match = _KEY_LINE.match(lines[index].rstrip("\n"))
            if match and match.group("key") in pending:
                comment = f"  {match.group('comment')}" if match.group("comment") else ""
                lines[index] = f"{match.group('key')} = {json.dumps(pending.pop(match.group('key')))}{comment}\n"
        lines[start + 1:start + 1] = [f"{key} = {json.dumps(value)}\n" for key, value in pending.items()]
    text = "".join(lines)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CommandError(f"{path}: could not set [{table}] keys and keep the file valid ({error}); "
                           "nothing was changed") from None
    assert all(parsed[table][key] == value for key, value in values.items())
    _replace(path, text)


def _table_lines(lines: list[str], table: str) -> tuple[int | None, int]:
    """The index of `[table]`'s header line and of the line after its last key (None: no such table)."""
    start = None
    for index, line in enumerate(lines):
        header = _TABLE.match(line)
        if start is not None and (header or _ARRAY_TABLE.match(line)):
            return start, index
        if header and header.group(1) == table:
            start = index
    return start, len(lines)


def _replace(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
