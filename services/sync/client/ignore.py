"""Which paths the client never syncs: built-in rules plus `.hearthignore`.

`.hearthignore` at the root of a synced folder uses gitignore semantics (the
`pathspec` library's GitIgnoreSpec): `#` comments, `!` negation, trailing `/`
for directories only, a leading or inner `/` anchors to the root, `**`.
Only the root's `.hearthignore` is read; nested `.hearthignore` files are NOT
supported (they are synced like any other file, and have no effect).

Built-in rules, in two tiers:
- ALWAYS_IGNORED (cannot be re-included by `!`): the client's state directory
  `.hearth/` and its temp files `.hearth-tmp-*`.
- DEFAULT_PATTERNS (a `.hearthignore` may re-include them with `!pattern`):
  editor/OS droppings — `*~`, `.*.swp`, `.*.swx`, `*.tmp`, `.~lock.*#`
  (LibreOffice locks), `~$*` (Office owner files), `.DS_Store`, `Thumbs.db`,
  `desktop.ini`.
As in git, a file inside an ignored directory cannot be re-included; the
scanner does not descend into ignored directories at all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pathspec

IGNORE_FILE = ".hearthignore"
STATE_DIR = ".hearth"

ALWAYS_IGNORED = (f"{STATE_DIR}/", ".hearth-tmp-*")
DEFAULT_PATTERNS = (
    "*~", ".*.swp", ".*.swx", "*.tmp", ".~lock.*#", "~$*",
    ".DS_Store", "Thumbs.db", "desktop.ini",
)


class IgnoreRules:
    """Answers `ignored(relpath, is_dir)` for POSIX-style paths relative to the root."""

    def __init__(self, user_lines: Iterable[str] = ()):
        self.user_lines = [line.rstrip("\r\n") for line in user_lines]
        self._always = pathspec.GitIgnoreSpec.from_lines(ALWAYS_IGNORED)
        self._spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_PATTERNS, *self.user_lines])

    @classmethod
    def load(cls, root: str | Path) -> "IgnoreRules":
        """Rules for a synced folder: defaults plus its root `.hearthignore`, if any."""
        try:
            text = (Path(root) / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return cls()
        return cls(text.splitlines())

    def ignored(self, relpath: str, is_dir: bool = False) -> bool:
        path = relpath.strip("/") + ("/" if is_dir else "")
        return self._always.match_file(path) or self._spec.match_file(path)
