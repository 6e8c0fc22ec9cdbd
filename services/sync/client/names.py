"""Name problems that break sync between platforms, detected and reported — never fixed silently.

- Non-NFC names (macOS HFS+ and some tools write NFD): an error. The client
  reports them and does not rename the user's file.
- Names the server refuses to create (control characters, bidirectional
  overrides, over 255 bytes: services.core.tree.paths.name_problem, the rule the
  server applies): an error, reported once instead of uploaded and refused.
- Names Windows or macOS cannot hold (reserved device names, trailing dot or
  space, `:*?"<>|` and control characters): warnings; the file still syncs to
  platforms that can hold it.
- Paths differing only by case (after NFC + casefold): reported as clashes,
  never merged, because case-insensitive file systems would make one overwrite
  the other.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from services.core.tree.paths import name_problem

WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)])
_WINDOWS_BAD_CHARS = re.compile(r'[\x00-\x1f:*?"<>|\\]')


@dataclass(frozen=True)
class NameProblem:
    relpath: str
    severity: str  # "error" (will not sync as-is) or "warning" (some platforms cannot hold it)
    code: str      # "not-nfc", "refused-name", "windows-reserved", "trailing-dot-or-space", "invalid-char"
    message: str


def check_name(relpath: str) -> list[NameProblem]:
    """Problems with one POSIX-style relative path (every component is checked)."""
    problems = []
    if unicodedata.normalize("NFC", relpath) != relpath:
        problems.append(NameProblem(relpath, "error", "not-nfc",
                                    "name is not in Unicode NFC form; rename it (hearth will not)"))
    if refused := name_problem(unicodedata.normalize("NFC", relpath)):
        problems.append(NameProblem(relpath, "error", "refused-name",
                                    f"{refused}, which the server refuses; rename it (hearth will not)"))
    for part in relpath.split("/"):
        if not part:
            continue
        base = part.split(".", 1)[0].rstrip(" ").upper()
        if base in WINDOWS_RESERVED:
            problems.append(NameProblem(relpath, "warning", "windows-reserved",
                                        f"{part!r} is a reserved device name on Windows"))
        if part[-1] in ". ":
            problems.append(NameProblem(relpath, "warning", "trailing-dot-or-space",
                                        f"{part!r} ends in a dot or space, which Windows strips"))
        bad = sorted(set(_WINDOWS_BAD_CHARS.findall(part)))
        if bad:
            problems.append(NameProblem(relpath, "warning", "invalid-char",
                                        f"{part!r} contains {''.join(bad)!r}, invalid on Windows"
                                        + (" and macOS Finder" if ":" in bad else "")))
    return problems


def case_key(relpath: str) -> str:
    return unicodedata.normalize("NFC", relpath).casefold()


def case_clashes(paths: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups (sorted, 2+ members) of paths equal after NFC + casefold; sorted by first member."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(case_key(path), []).append(path)
    return sorted(tuple(sorted(set(group))) for group in groups.values() if len(set(group)) > 1)
