"""`hearth relay --config relay.toml`: load the relay's config and run it until SIGTERM."""
from __future__ import annotations

import argparse
import logging

from services.core.exitcodes import ExitStatus
from services.core.log import setup_logging

from .event_loop import run as run_loop
from .relay_config import __doc__ as CONFIG_HELP
from .relay_config import load_relay_config

HELP = ("Run the tunnel relay on a public server: agents at home dial in over TLS; public TLS "
        "connections are routed by SNI and passed through undecrypted.")
EPILOG = "relay.toml:" + CONFIG_HELP.split("relay.toml:", 1)[1]


def run_relay_command(args: argparse.Namespace) -> int:
    config = load_relay_config(args.relay_config)  # ConfigError: one line and exit 2, by the CLI
    setup_logging(args.log_level)
    from .relay import run_relay
    try:
        run_loop(run_relay(config))
    except OSError as error:
        logging.getLogger("relay").error("cannot serve: %s", error)
        return ExitStatus.ERROR
    return ExitStatus.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    # Its own dest: `hearth --config` names hearth.toml, which the relay's machine does not have.
    parser.add_argument("--config", dest="relay_config", metavar="FILE", required=True,
                        help="the relay's TOML config (see below)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
