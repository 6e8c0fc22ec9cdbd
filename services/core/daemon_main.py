"""The `python -m services.NAME` entry point every hearth daemon shares.

A bad config is one line on stderr and exit 2 (the supervisor does not
restart that); a port already taken is exit 1 (it does, with backoff); a clean
SIGTERM is exit 0 with the Unix socket removed.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import stat
import sys
from typing import Callable

from .config import Config, ConfigError, load_config
from .exitcodes import ExitStatus
from . import instances
from .http import ListenAddress
from .log import setup_logging
from .private import private_umask

Prepare = Callable[[Config, ListenAddress, instances.DaemonInstance], Callable[[], None]]


def listen_address(config: Config, section: str, number: int = 1) -> ListenAddress:
    """Where the daemon (its instance `number`, see core.instances) listens."""
    try:
        listen = instances.listen(config, instances.DaemonInstance(section, number))
        return ListenAddress.parse(listen, config.data_dir)
    except ValueError as error:
        raise ConfigError(f"{config.path or f'$HEARTH_{section.upper()}_LISTEN'}: [{section}] listen: {error}") from None


def remove_socket(address: ListenAddress) -> None:
    """We had it bound until now: leave no stale socket behind."""
    if address.path is None:
        return
    try:
        if stat.S_ISSOCK(address.path.lstat().st_mode):
            address.path.unlink()
    except FileNotFoundError:
        pass


def run_daemon(argv: list[str] | None, *, name: str, description: str, prepare: Prepare) -> int:
    """Parse --config, check it, let `prepare` build the daemon (it may raise ConfigError), serve."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}", description=description)
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./hearth.toml or $HEARTH_CONFIG)")
    if name in instances.SCALABLE:
        parser.add_argument("--instance", metavar="K", type=int, default=1,
                            help=f"run as instance K of [{name}] instances (default 1), supervised as {name}_K")
    args = parser.parse_args(argv)
    private_umask()  # however it was started: by hearth up, rc.d, systemd or by hand
    log = logging.getLogger(name)
    try:
        config = load_config(args.config)
        instance = instances.DaemonInstance(name, getattr(args, "instance", 1))
        if not 1 <= instance.number <= instances.count(config, name):
            raise ConfigError(f"--instance {instance.number}: [{name}] instances is {instances.count(config, name)}")
        address = listen_address(config, name, instance.number)
        setup_logging(config.log_level)
        serve = prepare(config, address, instance)
    except ConfigError as error:
        print(f"hearth-{name}: {error}", file=sys.stderr)
        return ExitStatus.CONFIG
    try:
        serve()
    except OSError as error:
        log.error("cannot serve on %s: %s", address, error)
        return ExitStatus.ERROR
    remove_socket(address)
    log.info("stopped")
    return ExitStatus.OK


def run_app_daemon(argv: list[str] | None, *, name: str, description: str, app_factory: str) -> int:
    """`run_daemon` for an aiohttp application built by `app_factory` ("module:function").

    The factory is imported only once the config is known good, which keeps a
    misconfigured start fast (and its exit code 2 clean).
    """
    def prepare(config: Config, address: ListenAddress, instance: instances.DaemonInstance) -> Callable[[], None]:
        from .http import INSTANCE, serve

        module_name, _, function = app_factory.partition(":")
        app = getattr(importlib.import_module(module_name), function)(config)
        app[INSTANCE] = instance

        def run() -> None:
            serve(app, address, ready=lambda: logging.getLogger(name).info("serving on %s", address))

        return run

    return run_daemon(argv, name=name, description=description, prepare=prepare)
