"""`python -m services.api [--config FILE]`: run the API daemon until SIGTERM."""
from __future__ import annotations

import logging
import sys

from services.core.config import Config
from services.core.daemon_main import run_daemon
from services.core.http import ListenAddress, serve

log = logging.getLogger("api")


def prepare(config: Config, address: ListenAddress):
    from .app import create_app  # after the config is known good: keeps a bad start fast

    app = create_app(config)

    def run() -> None:
        log.info("serving on %s", address)
        serve(app, address)

    return run


def main(argv: list[str] | None = None) -> int:
    return run_daemon(argv, name="api", description="hearth's JSON API daemon.", prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
