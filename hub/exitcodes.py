"""Exit statuses of the `aeohub` commands, one table for every command (docs/cli.md).

Scripts branch on these numbers, so they never change meaning: 0 is success, 1 an error,
2 a usage error (click's own), and 3 and 4 the command's "no, but not an error" answers.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Success (`verify`: the trader is recognised; `sync run`: the run succeeded).
OK = 0
#: An error: the command could not do its job (bad data, a failed run, a broken chain).
ERROR = 1
#: A usage error: an unknown option, a missing argument, an invalid option value.
USAGE = 2
#: `verify`: not recognised; `sync run`: held for confirmation.
NOT_RECOGNISED = HELD = 3
#: `verify`: unknown or ambiguous trader; `sync run`: busy (another process holds it).
UNKNOWN = BUSY = 4

#: `aeohub verify`'s exit status for each decision.
VERIFY_EXIT = {"recognised": OK, "not_recognised": NOT_RECOGNISED,
               "unknown_trader": UNKNOWN, "ambiguous": UNKNOWN}


def of_runs(statuses: Iterable[str]) -> int:
    """The exit status of a command that ran syncs (`sync run`, `scheduler --once`):
    ERROR when one did not succeed and was not held, else HELD when one was held."""
    found = set(statuses)
    if found - {"succeeded", "needs_confirmation"}:
        return ERROR
    return HELD if "needs_confirmation" in found else OK
