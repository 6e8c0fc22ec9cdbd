"""`python -m services.dav [--config FILE]`: run the CalDAV/CardDAV daemon until SIGTERM."""
from __future__ import annotations

import sys

from services.core.daemon_main import run_app_daemon


def main(argv: list[str] | None = None) -> int:
    return run_app_daemon(argv, name="dav", description="hearth's CalDAV/CardDAV server daemon.",
                          app_factory="services.dav.app:create_app")


if __name__ == "__main__":
    sys.exit(main())
