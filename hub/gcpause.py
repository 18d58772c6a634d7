"""Pausing the cyclic garbage collector around large, short-lived allocations.

A batch verify, or a sync's batch of records, allocates a few hundred thousand small,
acyclic objects that live until its answer is written or its rows are staged; the
collector would walk them (and everything else alive) several times over for nothing.
Reference counting still frees them while it is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def paused(when: bool = True) -> Iterator[None]:
    """Pause the collector for the block (if `when`, and if it is not paused already)."""
    if not when or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def each(items: Iterable[T]) -> Iterator[T]:
    """The items of `items`, the collector paused from making each one until the next is
    asked for: a loop over large batches, each read, worked on and let go in turn.

    Use it in a `for` loop: a `break`, `return` or exception there closes this generator,
    which resumes the collector (between items, it runs as usual)."""
    iterator = iter(items)
    while True:
        with paused():
            try:
                item = next(iterator)
            except StopIteration:
                return
            yield item
