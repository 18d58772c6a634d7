"""Run a generator in a forked child process and take its items in the parent.

A snapshot's batches are parsed and validated (CPU work in Python) while the parent
writes the previous batch to the database: on a machine with two cores the two overlap.
`in_child(items)` forks, iterates `items` in the child and sends each item through a
pipe; the parent yields them in order. The pipe's buffer is the only queue, so the child
runs at most one item ahead of the parent and memory stays bounded.

What the child must not do: use anything whose state lives outside its own memory and
is shared with the parent, above all the parent's database connections (the child drops
its copy of the pool with `after_fork`, without closing the parent's connections) and
threads (a forked child has only the thread that forked).

Faults, each ending the iteration in the parent with an exception:
- the generator raises: the exception is sent and raised in the parent (when it cannot
  be pickled, a `ChildFailed` naming its type and message is raised instead);
- the child dies (killed, out of memory): `ChildFailed` with its exit code;
- the parent stops iterating early, or raises: the child is terminated;
- the parent dies: the child's next send finds the pipe closed and the child exits.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections.abc import Callable, Generator, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"
#: seconds the parent waits for a child that sent its last word to exit
_JOIN_SECONDS = 10.0


class ChildFailed(RuntimeError):
    """The child process died, or raised what could not be sent to the parent."""


def available() -> bool:
    """Forking is possible here (POSIX)."""
    return "fork" in multiprocessing.get_all_start_methods()


def in_child(items: Iterator[T], *, name: str = "aeohub-child",
             after_fork: Callable[[], None] | None = None) -> Generator[T, None, None]:
    """Iterate `items` (not yet started) in a forked child; yield what it produces.

    `after_fork` runs first in the child (drop inherited resources there). Items and
    exceptions cross the pipe pickled.
    """
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_produce, args=(items, sending, receiving, after_fork),
                              name=name, daemon=True)
    process.start()
    sending.close()  # the child's end: EOF in the parent once the child is gone
    finished = False  # the child sent its last word (the end or an exception)
    try:
        while True:
            try:
                kind, value = receiving.recv()
            except EOFError:
                process.join(_JOIN_SECONDS)
                raise ChildFailed(
                    f"the {name} process ended without finishing its work (exit code "
                    f"{process.exitcode}; a negative code is the signal that killed it)"
                ) from None
            if kind == _ITEM:
                yield value
                continue
            finished = True
            if kind == _ERROR:
                raise value
            return
    finally:
        receiving.close()
        if not finished:  # the parent stopped early: the child may wait on the pipe
            process.terminate()
        process.join(_JOIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def _produce(items: Iterator[Any], sending: Connection, receiving: Connection,
             after_fork: Callable[[], None] | None) -> None:
    """The child: send every item, then the end (or the exception that stopped it)."""
    receiving.close()  # only the parent reads: its death then breaks the pipe
    # The parent's own SIGTERM handler (the scheduler's: stop after the running jobs) is
    # not the child's: `terminate()` must end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        if after_fork is not None:
            after_fork()
        for item in items:
            if not _send(sending, (_ITEM, item)):
                return  # the parent is gone (or stopped listening): nobody to work for
        message: tuple[str, Any] = (_END, None)
    except BaseException as exc:  # every failure goes to the parent, a broken socket of
        message = (_ERROR, _sendable(exc))  # the work's own included
    _send(sending, message)
    sending.close()


def _send(sending: Connection, message: tuple[str, Any]) -> bool:
    """Send `message`; False when the parent's end is closed."""
    try:
        sending.send(message)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _sendable(exc: BaseException) -> BaseException:
    """`exc` if it survives a pickle round trip (as the parent will read it), else a
    `ChildFailed` with its type and message."""
    try:
        # our own exception, pickled a moment ago in this process
        pickle.loads(pickle.dumps(exc))  # noqa: S301
    except Exception:  # any failure to round-trip
        return ChildFailed(f"{type(exc).__name__}: {exc}")
    return exc
