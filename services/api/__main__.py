"""`python -m services.api [--config FILE]`: run the API daemon until SIGTERM."""
from __future__ import annotations

import sys

from services.core.daemon_main import run_app_daemon


def main(argv: list[str] | None = None) -> int:
    return run_app_daemon(argv, name="api", description="hearth's JSON API daemon.", app_factory="services.api.app:create_app")


if __name__ == "__main__":
    sys.exit(main())
