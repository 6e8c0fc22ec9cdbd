"""`python -m services.files [--config FILE]`: run the WebDAV file daemon until SIGTERM."""
from __future__ import annotations

import sys

from services.core.daemon_main import run_app_daemon


def main(argv: list[str] | None = None) -> int:
    return run_app_daemon(argv, name="files", description="hearth's WebDAV file server daemon.",
                          app_factory="services.files.app:create_app")


if __name__ == "__main__":
    sys.exit(main())
