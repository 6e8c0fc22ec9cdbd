"""The one small set of exit codes every hearth command uses.

Scripts rely on these numbers, so they only ever grow; meanings never change.
"""
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1            # the operation failed; the message says why
    CONFIG = 2           # bad usage, bad config file or key: fix the input, don't retry
    ALREADY_RUNNING = 3  # a live process holds the pid file
    NOT_RUNNING = 4      # status: something that should run does not
    TIMEOUT = 5          # waited for readiness or shutdown and gave up

    # EX_CONFIG from sysexits(3): the conventional "misconfigured" code of
    # other people's daemons; the supervisor treats it like CONFIG.
    EX_CONFIG = 78


# Exit codes after which the supervisor must not restart a child: the
# child said it is misconfigured, and restarting cannot fix that.
NO_RESTART_CODES = frozenset({ExitStatus.CONFIG, ExitStatus.EX_CONFIG})
