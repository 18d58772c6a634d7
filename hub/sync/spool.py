"""Objects a sync run sets aside for later in the same run, on disk rather than in memory.

A snapshot's creations are built and encoded while the next batch is being sorted
(`SyncJob._prepare`) and wait here for the switch. The file is an anonymous temporary
file: nothing is left behind when the run ends or dies, and a resumed run (another
process) finds nothing and builds its rows at the switch.
"""

from __future__ import annotations

import marshal
import pickle
import tempfile
from typing import IO, Any


class Spool:
    """Objects in a temporary file (marshal, or pickle for what marshal refuses), each
    taken back once by its key."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._offsets: dict[Any, int] = {}

    def put(self, key: Any, value: Any) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="aeohub-spool-")  # noqa: SIM115
        self._file.seek(0, 2)
        self._offsets[key] = self._file.tell()
        try:  # plain values (tuples of str, int, None): marshal is the faster
            kind, data = b"m", marshal.dumps(value)
        except ValueError:
            kind, data = b"p", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(kind + len(data).to_bytes(8, "big"))
        self._file.write(data)

    def take(self, key: Any) -> Any:
        """The value put under `key` (None if there is none); it is not kept."""
        offset = self._offsets.pop(key, None)
        if offset is None or self._file is None:
            return None
        self._file.seek(offset)
        head = self._file.read(9)
        data = self._file.read(int.from_bytes(head[1:], "big"))
        # this run's own objects, written by this process to its own unnamed file
        if head[:1] == b"m":
            return marshal.loads(data)  # noqa: S302
        return pickle.loads(data)  # noqa: S301

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._offsets.clear()
