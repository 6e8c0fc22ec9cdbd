"""rcorder(8) in Python: the order to start rc.d scripts in.

Each script declares, in one block of comment lines near its top,
``# PROVIDE:`` the names it provides, ``# REQUIRE:`` the names that must be
started before it, ``# BEFORE:`` the names it must start before, and
``# KEYWORD:`` tags such as ``shutdown``. `order` sorts scripts so that
every provider of a name comes before the scripts that require it.

Unlike FreeBSD's rcorder, which warns and carries on, a lowercase REQUIRE
nobody provides is an error: in hearth it is a typo or a missing script.
ALL-CAPS names (LOGIN, FILESYSTEMS, NETWORKING, …) are FreeBSD's placeholder
stages; when no script provides one, it counts as already reached.
"""
from __future__ import annotations

import heapq
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus

# The header lines rcorder reads, as FreeBSD spells them (both forms).
_FIELDS = {
    "# PROVIDE:": "provides", "# PROVIDES:": "provides",
    "# REQUIRE:": "requires", "# REQUIRES:": "requires",
    "# BEFORE:": "befores",
    "# KEYWORD:": "keywords", "# KEYWORDS:": "keywords",
}

# Files in an rc.d directory that are not scripts to order: the library
# they source, and editor or package-manager leftovers (as FreeBSD's rc skips).
_NOT_SCRIPTS = ("rc.subr",)
_SCRATCH_SUFFIXES = ("~", "#", ".OLD", ".bak", ".orig", ".sample", ".pkgsave", ",v")


@dataclass(frozen=True)
class RcScript:
    """One rc.d script's rcorder header."""

    path: Path
    name: str                       # the file name
    provides: tuple[str, ...]
    requires: tuple[str, ...] = ()
    befores: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


def parse_script(path: str | Path) -> RcScript:
    """Read the header of the rc.d script at `path`.

    Like rcorder(8), only the first run of consecutive header lines counts:
    the first other line after a header line ends the header.
    """
    path = Path(path)
    fields: dict[str, list[str]] = {"provides": [], "requires": [], "befores": [], "keywords": []}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise CommandError(f"rcorder: {path}: {e.strerror}", ExitStatus.CONFIG) from e
    in_header = False
    for line in lines:
        field = next((f for prefix, f in _FIELDS.items() if line.startswith(prefix)), None)
        if field is None:
            if in_header:
                break
            continue
        in_header = True
        fields[field] += line.split(":", 1)[1].split()
    if not fields["provides"]:
        raise CommandError(f"rcorder: {path}: no '# PROVIDE:' line", ExitStatus.CONFIG)
    return RcScript(path=path, name=path.name, **{k: tuple(v) for k, v in fields.items()})


def scripts_in(directory: str | Path) -> list[RcScript]:
    """Parse every script in an rc.d directory, leaving out rc.subr,
    hidden files and backup/scratch files."""
    paths = sorted(
        p for p in Path(directory).iterdir()
        if p.is_file() and not p.name.startswith(".")
        and p.name not in _NOT_SCRIPTS and not p.name.endswith(_SCRATCH_SUFFIXES)
    )
    return [parse_script(p) for p in paths]


def is_placeholder(name: str) -> bool:
    """FreeBSD's stage names (LOGIN, FILESYSTEMS, …) are written in capitals."""
    return name.isupper()


def order(scripts: Iterable[RcScript], skip_keywords: Iterable[str] = ()) -> list[RcScript]:
    """Return `scripts` in start order, without those carrying a keyword in
    `skip_keywords` (rcorder -s; they still satisfy others' REQUIREs).

    Among scripts free to go next, the one with the smallest file name goes
    first, so the order depends only on the headers, not the input order.
    Raises CommandError (ExitStatus.CONFIG) on a cycle or a missing provider.
    """
    def key(s: RcScript):
        return (s.name, str(s.path))

    scripts = sorted(set(scripts), key=key)     # the same file given twice is one script
    providers: dict[str, list[RcScript]] = {}
    for s in scripts:
        for p in s.provides:
            providers.setdefault(p, []).append(s)

    # after[s]: the scripts that must start before s.
    after: dict[RcScript, set[RcScript]] = {s: set() for s in scripts}
    for s in scripts:
        for r in s.requires:
            if r not in providers and not is_placeholder(r):
                raise CommandError(
                    f"rcorder: {s.name} requires {r}, which no script provides",
                    ExitStatus.CONFIG)
            after[s].update(p for p in providers.get(r, ()) if p is not s)
        for b in s.befores:
            for p in providers.get(b, ()):   # BEFORE an absent name: nothing to do
                if p is not s:
                    after[p].add(s)

    waiting = {s: len(deps) for s, deps in after.items()}
    unblocks: dict[RcScript, list[RcScript]] = {s: [] for s in scripts}
    for s, deps in after.items():
        for d in deps:
            unblocks[d].append(s)
    ready = [(key(s), s) for s, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    result = []
    while ready:
        _, s = heapq.heappop(ready)
        result.append(s)
        for t in unblocks[s]:
            waiting[t] -= 1
            if waiting[t] == 0:
                heapq.heappush(ready, (key(t), t))

    if len(result) < len(scripts):
        cycle = _find_cycle({s for s in scripts if waiting[s] > 0}, after, key)
        raise CommandError(
            "rcorder: dependency cycle: " + " -> ".join(s.name for s in cycle),
            ExitStatus.CONFIG)
    skip = set(skip_keywords)
    return [s for s in result if not skip.intersection(s.keywords)]


def _find_cycle(stuck, after, key) -> list[RcScript]:
    """One cycle among `stuck` (scripts that never became ready), as
    "a, b, …, a" where each requires the next, starting at the smallest name.

    Every stuck script waits on another stuck one, so following those waits
    from anywhere must come back to a script already seen.
    """
    path: list[RcScript] = []
    s = min(stuck, key=key)
    while s not in path:
        path.append(s)
        s = min((d for d in after[s] if d in stuck), key=key)
    cycle = path[path.index(s):]
    start = cycle.index(min(cycle, key=key))
    cycle = cycle[start:] + cycle[:start]
    return cycle + [cycle[0]]


def main(argv: list[str] | None = None) -> int:
    """`python -m services.rc.rcorder [-s keyword] file|dir …`: print paths in order."""
    args = list(sys.argv[1:] if argv is None else argv)
    skip = []
    while len(args) >= 2 and args[0] == "-s":
        skip.append(args[1])
        del args[:2]
    try:
        scripts = []
        for a in args:
            scripts += scripts_in(a) if Path(a).is_dir() else [parse_script(a)]
        for s in order(scripts, skip_keywords=skip):
            print(s.path)
    except CommandError as e:
        print(e, file=sys.stderr)
        return e.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
