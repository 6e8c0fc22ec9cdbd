"""Preparing and starting the supervised child: its user, environment and process group.

Everything that can be wrong with the user's input (unknown user, unreadable env
file, missing command) is checked here before the wrapper detaches, so the
person starting it gets the one-line error instead of a log entry.
"""
from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import sys

from dotenv import dotenv_values

from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def lookup_user(name: str) -> pwd.struct_passwd:
    """The passwd entry for -u, checked against our own privileges."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise CommandError(f"-u {name}: no such user", ExitStatus.CONFIG) from None
    euid = os.geteuid()
    if euid != 0 and entry.pw_uid != euid:
        raise CommandError(f"-u {name}: changing user needs root (running as uid {euid})",
                           ExitStatus.CONFIG)
    return entry


def load_env_files(paths: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs from dotenv files, later files winning; values are never logged."""
    values: dict[str, str] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                parsed = dotenv_values(stream=handle, interpolate=False)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise CommandError(f"-e {path}: cannot read env file: {reason}", ExitStatus.CONFIG) from None
        values.update({key: value for key, value in parsed.items() if value is not None})
    return values


def child_environment(user: pwd.struct_passwd | None, env_values: dict[str, str]) -> dict[str, str]:
    """The inherited environment, then the -u user's identity, then the env files."""
    env = dict(os.environ)
    if user is not None:
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name,
                   SHELL=user.pw_shell or "/bin/sh")
    env.update(env_values)
    return env


def check_command(argv: list[str], env: dict[str, str]) -> None:
    """Fail early, with one line, when the command cannot be found or run."""
    if not argv:
        raise CommandError("missing command: usage is hearth daemon [options] -- command [args ...]",
                           ExitStatus.CONFIG)
    program = argv[0]
    if "/" in program:
        found = os.path.isfile(program) and os.access(program, os.X_OK)
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath)) is not None
    if not found:
        raise CommandError(f"command not found or not executable: {program}", ExitStatus.CONFIG)


def _die_with_parent(parent_pid: int):
    """preexec_fn: SIGTERM the child when the wrapper dies, even by SIGKILL (Linux only).

    It runs after Popen's setuid/setgid, which matters: a credential change
    clears the parent-death signal.
    """
    def preexec() -> None:
        if _libc is None:
            return
        _libc.prctl(ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM),
                    ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        if os.getppid() != parent_pid:  # the wrapper died before prctl took effect
            os._exit(1)
    return preexec


def spawn(argv: list[str], env: dict[str, str], user: pwd.struct_passwd | None,
          stdout, stderr) -> subprocess.Popen:
    """Start the child in its own process group (session), stdin from /dev/null."""
    drop = {}
    if user is not None and os.geteuid() == 0:
        drop = dict(user=user.pw_uid, group=user.pw_gid,
                    extra_groups=os.getgrouplist(user.pw_name, user.pw_gid))
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                            start_new_session=True, close_fds=True,
                            preexec_fn=_die_with_parent(os.getpid()), **drop)


def describe_exit(returncode: int) -> str:
    """`exit 1` or `killed by SIGKILL`, from a Popen returncode."""
    if returncode >= 0:
        return f"exit {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"
