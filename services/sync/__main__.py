"""`python -m services.sync [--config FILE]`: run the sync server daemon until SIGTERM."""
from __future__ import annotations

import logging
import sys

from services.core.config import Config
from services.core.daemon_main import run_daemon
from services.core.http import ListenAddress, serve

log = logging.getLogger("sync")


def prepare(config: Config, address: ListenAddress):
    from .app import create_app  # after the config is known good: keeps a bad start fast

    app = create_app(config)

    def run() -> None:
        log.info("serving on %s", address)
        serve(app, address)

    return run


def main(argv: list[str] | None = None) -> int:
    return run_daemon(argv, name="sync", description="hearth's file sync server daemon.", prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
