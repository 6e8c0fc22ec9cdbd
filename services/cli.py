"""The `hearth` command.

Each subcommand lives in the module that owns the work; this file only builds
the argument parser and turns failures into one line and an exit code. Heavy
modules are imported when their command runs, so the daemon wrapper (which
stays resident for every service) stays small.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from services.core.errors import CommandError, StoreUnavailable
from services.core.exitcodes import ExitStatus

EXIT_CODES = """exit codes:
  0  success
  1  the operation failed (the message says why)
  2  usage or configuration error (bad flag, config key, value or file)
  3  already running (a live process holds the pid file)
  4  not running (status found a service down)
  5  timed out waiting for readiness or shutdown"""


def _lazy(target: str):
    """A handler that imports `module:function` only when the command runs."""
    module_name, _, function = target.partition(":")

    def handler(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module_name), function)(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="hearth: file sync, calendars, contacts, shares and your own web services on one home server.",
        epilog=EXIT_CODES + "\n\nConfiguration: hearth.toml in the current directory (or --config, or "
               "$HEARTH_CONFIG); see `hearth config --help` for every key.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./hearth.toml or $HEARTH_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, target: str, help: str, **kwargs) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help,
                                  formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        sub.set_defaults(handler=_lazy(target))
        return sub

    command("init", "services.core.bootstrap:run_init",
            "Create the data directory, a hearth.toml if missing, and the admin user "
            "(password printed once, or taken from $HEARTH_ADMIN_PASSWORD).")

    up = command("up", "services.rc.supervisor:run_up",
                 "Initialise if needed, start every enabled service in dependency order, wait until healthy.")
    up.add_argument("--no-wait", action="store_true", help="don't wait for readiness")
    command("down", "services.rc.supervisor:run_down", "Stop every service, in reverse dependency order.")
    command("status", "services.rc.supervisor:run_status",
            "Show each service's state, pid, uptime, restarts and log; exit 4 if any is down.")
    service = command("service", "services.rc.supervisor:run_service",
                      "Run an rc verb for one service (start, stop, restart, status, reload, onestart, …).")
    service.add_argument("name", help="service name, e.g. api or hearth_api or one of your [[service]] names")
    service.add_argument("verb", help="start | stop | restart | status | reload | (one|force|quiet)VERB")

    from services.rc import slot_commands
    slot_commands.configure_deploy(command(
        "deploy", "services.rc.slot_commands:run_deploy",
        "Restart one slot of a service with slots = true (staging by default) with a new command, and wait "
        "until it is healthy.",
        epilog="examples:\n"
               "  hearth deploy hello --command 'sh -c \"exec ./hello-v2 --port $PORT\"'\n"
               "  hearth deploy hello -- ./hello-v2 --config v2.toml\n\n"
               "The command gets its slot's address in $HEARTH_LISTEN (and $HOST, $PORT on TCP). Without a\n"
               "command, hearth.toml's is used. The new command is kept in var/run/slots/NAME.json and runs\n"
               "from then on, until the next deploy to that slot. A command that does not become healthy\n"
               "exits non-zero and leaves prod as it was."))
    slot_commands.configure_promote(command(
        "promote", "services.rc.slot_commands:run_promote",
        "Make a service's staging slot prod, with no failed request: the front end switches new requests, "
        "the old prod finishes what it has and keeps running as staging.",
        epilog="Refuses (nothing changes) unless staging is healthy. Returns once every new request goes to\n"
               "the new prod and the old prod has finished the requests it was given (--drain-timeout).\n"
               "Promoting again rolls back at once."))
    from services.rc import frontdoor
    frontdoor.configure(command(
        "deploy cloudflared", "services.rc.frontdoor:run_cloudflared",
        "Print a cloudflared ingress config (YAML) with one rule per front-end route, in the front end's "
        "order, and the catch-all 404 last; comments say what to set for CORS and TLS.",
        epilog="example:\n  hearth deploy cloudflared --hostname home.example.net > /etc/cloudflared/config.yml"))
    frontdoor.configure(command(
        "deploy caddy", "services.rc.frontdoor:run_caddy",
        "Print a Caddyfile for a machine with a public IP: one site per hostname, proxied to the front end.",
        epilog="example:\n  hearth deploy caddy --hostname home.example.net > /etc/caddy/Caddyfile"))

    config = command("config", "services.core.config_command:run",
                     "Print the effective configuration (after HEARTH_… overrides).",
                     epilog=_config_epilog())
    config.add_argument("--markdown", action="store_true", help="print the README table of every key instead")
    config.add_argument("--example", action="store_true", help="print a commented hearth.toml with every key")

    from services.core import account_commands, backup_commands, export_commands, storage_commands
    account_commands.register(command)
    export_commands.register(command)
    backup_commands.register(command)
    storage_commands.register(command)

    from services.sync.client import commands as sync_commands
    sync_commands.configure_sync(command(
        "sync", "services.sync.client.daemon:run",
        "Keep a local directory and a folder on the server identical: upload and download only what "
        "changed, keep both versions when both sides changed, never propagate a mass deletion unasked.",
        epilog="related commands:\n"
               "  hearth sync status DIR     what the client did last, what is pending, the last error\n"
               "  hearth sync confirm-deletes DIR, hearth sync undo-deletes DIR\n"
               "                             send, or bring back, deletions the mass-deletion guard held back\n"
               "  hearth sync versions DIR PATH, hearth sync restore DIR PATH [--revision ID], hearth sync trash DIR\n"
               "                             the server's kept versions and deleted files\n"
               "  hearth sync check [--verify]\n"
               "                             on the server: check the chunk store against the journal\n\n"
               "examples:\n"
               "  hearth sync ~/Documents --server https://home.example.net --user alice --password-stdin --once\n"
               "  hearth sync ~/Photos --folder bob/Photos --token-file ~/.config/hearth/token\n\n"
               "State lives in DIR/.hearth/. Exit codes for --once: 0 in sync, 1 not (reasons printed), 2 bad\n"
               "flags or credentials, 3 another client already syncs DIR."))
    sync_commands.configure_status(command(
        "sync status", "services.sync.client.status:run",
        "Show a synced directory's state: in sync, N pending, problems, last error (exit 1 unless in sync)."))
    sync_commands.configure_status(command(
        "sync confirm-deletes", "services.sync.client.hold_commands:run_confirm",
        "Send the deletions the mass-deletion guard held back in a synced directory (they go to the "
        "server's trash)."))
    sync_commands.configure_status(command(
        "sync undo-deletes", "services.sync.client.hold_commands:run_undo",
        "Bring the files whose deletion the mass-deletion guard held back to the directory again, "
        "from the server."))
    sync_commands.configure_versions(command(
        "sync versions", "services.sync.client.history_commands:run_versions",
        "List every kept revision of a file in a synced directory (newest first, delete markers included)."))
    sync_commands.configure_restore(command(
        "sync restore", "services.sync.client.history_commands:run_restore",
        "Bring back an earlier revision of a file (also a deleted one) as a new revision; nothing is "
        "overwritten."))
    sync_commands.configure_trash(command(
        "sync trash", "services.sync.client.history_commands:run_trash",
        "List the files deleted from a synced folder that can still be restored."))
    check = command("sync check", "services.sync.check:run_check",
                    "On the server: verify the chunk store against every folder's journal (exit 1 if "
                    "inconsistent).")
    check.add_argument("--verify", action="store_true", help="also re-hash every stored chunk (slow)")
    from services.sync import folder_commands, trash_commands
    folder_commands.register(command)
    trash_commands.register(command)

    from services.dav import commands as dav_commands, share_commands
    share_commands.register(command)
    from services.files import link_commands
    link_commands.register(command)
    dav_commands.register(command)

    from services.tunnel import relay_main
    relay_main.configure(command("relay", "services.tunnel.relay_main:run_relay_command", relay_main.HELP))

    from services.rc import daemon, rotate
    daemon.configure_parser(command(
        "daemon", "services.rc.daemon:run",
        "Run a command as a supervised daemon, like FreeBSD's daemon(8): pid files, log capture, "
        "privilege drop, restart with backoff."))
    rotate.configure_parser(command(
        "rotate", "services.rc.rotation_conf:run_rotate",
        "Rotate logs as configured in a newsyslog.conf(5) file (default: the one hearth up generates)."))
    return parser


def _config_epilog() -> str:
    from services.core.config_docs import describe_options
    return "keys (env override in parentheses):\n" + describe_options()


# Commands whose last argument may be a command line after `--` (`hearth deploy NAME --slot staging -- cmd …`):
# argparse cannot mix options after a positional with words after --, so those words are set aside first.
TRAILING_COMMAND = frozenset({"deploy"})


# `hearth sync status DIR` and `hearth sync check` are their own commands inside, since `hearth sync DIR`
# takes a directory where they take a verb.
SYNC_VERBS = frozenset({"status", "check", "versions", "restore", "trash", "confirm-deletes", "undo-deletes"})
# Likewise `hearth deploy cloudflared|caddy`: generated front doors, where `hearth deploy NAME` takes a
# [[service]] (which may not be named so: RESERVED_SERVICE_NAMES).
FRONT_DOORS = frozenset({"cloudflared", "caddy"})
# And `hearth backup status|replicate`, where `hearth backup` takes --to DIR.
BACKUP_VERBS = frozenset({"status", "replicate"})
# And `hearth storage migrate|remove-old`.
STORAGE_VERBS = frozenset({"migrate", "remove-old"})
# The commands whose next word may be one of these verbs: `hearth WORD VERB` is the command "WORD VERB".
COMMAND_VERBS = {"sync": SYNC_VERBS, "deploy": FRONT_DOORS, "backup": BACKUP_VERBS, "storage": STORAGE_VERBS}


def _command_index(argv: list[str]) -> int | None:
    words = iter(enumerate(argv))
    for index, word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return index
    return None


def _split_trailing_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    index = _command_index(argv)
    if index is None:
        return argv, None
    word = argv[index]
    if index + 1 < len(argv) and argv[index + 1] in COMMAND_VERBS.get(word, ()):
        return argv[:index] + [f"{word} {argv[index + 1]}"] + argv[index + 2:], None
    if word in TRAILING_COMMAND and "--" in argv[index:]:
        split = argv.index("--", index)
        return argv[:split], argv[split + 1:]
    return argv, None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv, trailing = _split_trailing_command(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if trailing is not None:
        args.argv = trailing
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"hearth: {error}", file=sys.stderr)
        return int(error.status)
    except StoreUnavailable as error:  # the blob store's one line (endpoint, bucket or credentials)
        print(f"hearth: {error.reason}", file=sys.stderr)
        return int(ExitStatus.ERROR)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"hearth: unexpected error: {error.__class__.__name__}: {error} (run with --debug for details)",
              file=sys.stderr)
        return int(ExitStatus.ERROR)


if __name__ == "__main__":
    sys.exit(main())
