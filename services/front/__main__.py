"""`python -m services.front [--config FILE]`: run the front end (the one door) until SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import stat
import sys

from services.core.config import ConfigError, load_config
from services.core.exitcodes import ExitStatus
from services.core.http import ListenAddress
from services.core.log import setup_logging

log = logging.getLogger("front")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.front",
                                     description="hearth's front end: routing, CORS, TLS, limits, access log.")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./hearth.toml or $HEARTH_CONFIG)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        try:
            address = ListenAddress.parse(config.front.listen, config.data_dir)
        except ValueError as error:
            raise ConfigError(f"{config.path or '$HEARTH_FRONT_LISTEN'}: [front] listen: {error}") from None
        if config.api.listen == config.front.listen:
            # A hearth.toml from before the front end existed puts the API on the suite's port.
            raise ConfigError(f"{config.path or 'hearth.toml'}: [api] listen and [front] listen are both "
                              f"{config.front.listen}: the API now sits behind the front end; "
                              'set [api] listen = "unix:run/api.sock"')
        if bool(config.front.tls_cert) != bool(config.front.tls_key):
            raise ConfigError(f"{config.path or 'hearth.toml'}: [front] tls_cert and tls_key go together: "
                              "give both or neither")
        from .app import Front, serve  # after the config is known good: keeps a bad start fast
        front = Front(config)  # routes, upstreams, CORS tables and the certificate are checked here
    except ConfigError as error:
        print(f"hearth-front: {error}", file=sys.stderr)
        return ExitStatus.CONFIG
    setup_logging(config.log_level)
    try:
        asyncio.run(serve(front, config, address))
    except OSError as error:
        log.error("cannot serve on %s: %s", address, error)
        return ExitStatus.ERROR
    if address.path is not None:
        try:
            if stat.S_ISSOCK(address.path.lstat().st_mode):
                address.path.unlink()
        except FileNotFoundError:
            pass
    log.info("stopped")
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
