"""`hearth deploy` and `hearth promote`: staging and production slots of a user service.

A service with `slots = true` runs as two instances, blue and green; one is
`prod` (behind `route`), the other `staging` (behind `staging_route` or
`staging_host`). `deploy` restarts one of them with a new command and waits
until it is healthy; `promote` swaps the labels in the slot record, has the
front end take up the new mapping, and waits until the old prod has finished
the requests it was given. Nothing is stopped by a promote, so no request
fails, and promoting again is an instant rollback.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import shlex
import sys
from contextlib import contextmanager
from typing import Iterator

from services.core.config import Config, ServiceSpec, load_config
from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus
from services.core.private import private_dir
from services.core.slots import SlotRecord, instance_name, read_record, slots_dir, write_record

from .front_link import FrontLink
from .readiness import NotReady, wait_ready
from .supervisor import find_script, prepare, start_one, stop_one

# promote asks staging once more whether it is healthy; this long at most.
PROMOTE_READY_SECONDS = 5.0
DRAIN_SECONDS = 30.0


def configure_deploy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a [[service]] with slots = true (`hearth deploy cloudflared` and "
                                     "`hearth deploy caddy` print a front-door config instead)")
    parser.add_argument("--slot", choices=("staging", "prod"), default="staging",
                        help="which slot to restart (default staging; prod needs --force)")
    parser.add_argument("--command", dest="new_command", metavar="CMD",
                        help="the new command, shell-quoted in one string (default: hearth.toml's command)")
    parser.add_argument("--force", action="store_true",
                        help="allow --slot prod: requests to prod fail while it restarts")
    parser.add_argument("--timeout", type=float, metavar="SECS",
                        help="how long to wait for health ([supervisor] ready_timeout)")
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_SECONDS, metavar="SECS",
                        help=f"wait this long at most for prod requests still running on the slot "
                             f"(default {DRAIN_SECONDS:g})")
    # The words after `--` are taken out before argparse sees them (services.cli.main): argparse
    # cannot take options after NAME and a command after -- at once.
    parser.add_argument("argv", nargs="*", metavar="-- COMMAND ARGS", help="the new command as separate words")


def configure_promote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a [[service]] with slots = true")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECS",
                        help="how long the front end may take to switch (default 10)")
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_SECONDS, metavar="SECS",
                        help=f"wait this long at most for the old prod's requests to finish "
                             f"(default {DRAIN_SECONDS:g})")


def slotted_service(config: Config, name: str) -> ServiceSpec:
    spec = next((s for s in config.services if s.name == name), None)
    if spec is None:
        known = ", ".join(s.name for s in config.services if s.slots) or "none"
        raise CommandError(f"no service named {name!r} (services with slots: {known})", ExitStatus.CONFIG)
    if not spec.slots:
        raise CommandError(f"service {name!r} has no slots: add slots = true and staging_route to its "
                           "[[service]] table", ExitStatus.CONFIG)
    return spec


@contextmanager
def slot_lock(config: Config, service: str) -> Iterator[None]:
    """One deploy or promote of a service at a time."""
    directory = private_dir(slots_dir(config.data_dir))
    fd = os.open(directory / f"{service}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandError(f"{service}: another deploy or promote is running") from None
        yield
    finally:
        os.close(fd)


def current_record(config: Config, service: str) -> SlotRecord:
    try:
        record = read_record(config.data_dir, service)
    except ValueError as error:
        raise CommandError(f"slot record {error}", ExitStatus.CONFIG) from None
    assert record is not None  # prepare() created it
    return record


def new_command(args: argparse.Namespace, spec: ServiceSpec) -> tuple[str, ...]:
    argv = list(args.argv)
    if argv and args.new_command is not None:
        raise CommandError("give the command with --command or after --, not both", ExitStatus.CONFIG)
    if args.new_command is not None:
        try:
            argv = shlex.split(args.new_command)
        except ValueError as error:
            raise CommandError(f"--command: {error}", ExitStatus.CONFIG) from None
        if not argv:
            raise CommandError("--command: empty", ExitStatus.CONFIG)
    return tuple(argv) or spec.command


def run_deploy(args: argparse.Namespace) -> int:
    """Restart one slot with a new command and wait until it is healthy."""
    config = load_config(args.config)
    spec = slotted_service(config, args.name)
    command = new_command(args, spec)
    if args.slot == "prod" and not args.force:
        raise CommandError(f"deploying to {spec.name}@prod restarts the instance serving live traffic, so requests "
                           f"fail meanwhile: deploy to staging and `hearth promote {spec.name}`, or pass --force",
                           ExitStatus.CONFIG)
    prepare(config)
    with slot_lock(config, spec.name):
        record = current_record(config, spec.name)
        colour = record.colour_of(args.slot)
        shown = f"{spec.name}@{args.slot}({colour})"
        prod = f"{spec.name}@prod({record.prod})"
        front = FrontLink(config)
        if args.slot == "staging" and front.running:
            # After a promote, this colour may still be finishing requests it got as prod.
            left = drain(front, spec.name, colour, args.drain_timeout)
            if left:
                print(f"hearth: {shown} still runs {left} request(s) from its time as prod after "
                      f"{args.drain_timeout:g} s; restarting it cuts them", file=sys.stderr)
        write_record(config.data_dir, record.deployed(colour, command, "deploying"))
        script = find_script(config, instance_name(spec.name, colour))
        prepare(config)  # the colour's rc.d script now runs the new command
        stop_one(config, script)
        try:
            start_one(config, script, timeout=args.timeout)
        except CommandError as error:
            write_record(config.data_dir, current_record(config, spec.name).with_status(colour, "failed"))
            unaffected = f"; {prod} is unaffected" if args.slot == "staging" else ""
            raise CommandError(f"deploy failed: {error}{unaffected}", error.status) from None
        write_record(config.data_dir, current_record(config, spec.name).with_status(colour, "ready"))
    print(f"{shown}: deployed: {shlex.join(command)}")
    return ExitStatus.OK


def run_promote(args: argparse.Namespace) -> int:
    """Swap staging and prod: the front end switches, the old prod drains and stays up as staging."""
    config = load_config(args.config)
    spec = slotted_service(config, args.name)
    prepare(config)
    with slot_lock(config, spec.name):
        record = current_record(config, spec.name)
        new_prod, old_prod = record.staging, record.prod
        staging = f"{spec.name}@staging({new_prod})"
        status = record.colours[new_prod].get("status")
        if status != "ready":
            raise CommandError(f"{staging}: its last deploy is {status}: deploy again before promoting; "
                               f"nothing changed")
        try:
            wait_ready(config, instance_name(spec.name, new_prod), PROMOTE_READY_SECONDS)
        except NotReady as error:
            raise CommandError(f"{staging} is not ready: {error}; nothing changed") from None
        front = FrontLink(config)
        if front.running:
            report = front.slots()
            if report is None:
                raise CommandError(f"the front end does not answer at {front.url}; nothing changed")
            if spec.name not in report:
                raise CommandError(f"the front end does not route {spec.name}'s slots yet (it reads hearth.toml "
                                   "when it starts): `hearth service front restart`, then promote; nothing changed")
        promoted = record.promoted()
        write_record(config.data_dir, promoted)
        switched = f"{spec.name}: {new_prod} is prod now, {old_prod} staging (generation {promoted.generation})"
        if not front.running:
            print(f"{switched}; the front end is not running and routes so when it starts")
            return ExitStatus.OK
        front.reload()
        done, _ = front.wait(spec.name, lambda entry: entry["generation"] >= promoted.generation, args.timeout,
                             resignal=True)
        if not done:
            raise CommandError(f"{switched} in the slot record, but the front end did not take it up within "
                               f"{args.timeout:g} s; `hearth service front reload` retries", ExitStatus.TIMEOUT)
        left = drain(front, spec.name, old_prod, args.drain_timeout)
        if left:
            print(f"hearth: {spec.name}@staging({old_prod}) still runs {left} request(s) from its time as prod "
                  f"after {args.drain_timeout:g} s (WebSockets, long downloads); they go on", file=sys.stderr)
    print(f"{switched}: every new request goes to {new_prod}; {old_prod} keeps running as staging "
          f"(`hearth promote {spec.name}` again rolls back)")
    return ExitStatus.OK


def drain(front: FrontLink, service: str, colour: str, timeout: float) -> int | str:
    """Wait until no request the front end routed to `colour` as prod still runs; what is left at timeout."""
    if service not in (front.slots() or {}):
        return 0  # the front end does not route this service (yet), so it sent it nothing
    done, entry = front.wait(service, lambda e: e["in_flight"][colour]["prod"] == 0, timeout)
    if done:
        return 0
    return entry["in_flight"][colour]["prod"] if entry else "?"
