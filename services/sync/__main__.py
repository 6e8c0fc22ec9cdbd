"""`python -m services.sync [--config FILE]`: run the sync server daemon until SIGTERM."""
from __future__ import annotations

import sys

from services.core.daemon_main import run_app_daemon


def main(argv: list[str] | None = None) -> int:
    return run_app_daemon(argv, name="sync", description="hearth's file sync server daemon.", app_factory="services.sync.app:create_app")


if __name__ == "__main__":
    sys.exit(main())
