"""`python -m services.api [--config FILE]`: run the API daemon until SIGTERM."""
from __future__ import annotations

import argparse
import logging
import stat
import sys

from services.core.config import ConfigError, load_config
from services.core.exitcodes import ExitStatus
from services.core.http import ListenAddress, serve
from services.core.log import setup_logging

log = logging.getLogger("api")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.api", description="hearth's JSON API daemon.")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./hearth.toml or $HEARTH_CONFIG)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        try:
            address = ListenAddress.parse(config.api.listen, config.data_dir)
        except ValueError as error:
            raise ConfigError(f"{config.path or '$HEARTH_API_LISTEN'}: [api] listen: {error}") from None
    except ConfigError as error:
        print(f"hearth-api: {error}", file=sys.stderr)
        return ExitStatus.CONFIG
    setup_logging(config.log_level)

    from .app import create_app  # after the config is known good: keeps a bad start fast
    app = create_app(config)
    log.info("serving on %s", address)
    try:
        serve(app, address)
    except OSError as error:
        log.error("cannot serve on %s: %s", address, error)
        return ExitStatus.ERROR
    if address.path is not None:
        # We had it bound until now: leave no stale socket behind.
        try:
            if stat.S_ISSOCK(address.path.lstat().st_mode):
                address.path.unlink()
        except FileNotFoundError:
            pass
    log.info("stopped")
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
