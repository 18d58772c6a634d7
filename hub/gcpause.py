"""Pausing the cyclic garbage collector around large, short-lived allocations.

A batch verify, or a sync's batch of records, allocates a few hundred thousand small,
acyclic objects that live until its answer is written or its rows are staged; the
collector would walk them (and everything else alive) several times over for nothing.
Reference counting still frees them while it is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
