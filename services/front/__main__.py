"""`python -m services.front [--config FILE]`: run the front end (the one door) until SIGTERM."""
from __future__ import annotations

import asyncio
import sys

from services.core.config import Config, ConfigError
from services.core.daemon_main import run_daemon
from services.core.http import ListenAddress
from services.core.instances import DaemonInstance


def prepare(config: Config, address: ListenAddress, instance: DaemonInstance):
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
    return lambda: asyncio.run(serve(front, config, address))


def main(argv: list[str] | None = None) -> int:
    return run_daemon(argv, name="front",
                      description="hearth's front end: routing, CORS, TLS, limits, access log.", prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
