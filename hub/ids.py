"""Row ids and numbers as people write them: in the hub's addresses and on its command line.

- `int` (Werkzeug's own name, so every route has it): ASCII digits only. Werkzeug's
  `\\d` also takes other scripts' digits, and Python reads a full-width one (U+FF11) as
  1: one row would have more than one address.
- `id` (`<id:run_id>`): a row id, 1 to `hub.db.MAX_ID`. A whole number no row id can
  hold names no row: the address matches no route, a 404 like any unknown page, before a
  query sends it to the database (SQLite takes no integer beyond 2**63 - 1, PostgreSQL's
  INTEGER none beyond MAX_ID: either was a 500).
"""

from __future__ import annotations

import click
from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from hub.db import MAX_ID


class AsciiInteger(IntegerConverter):
    """A whole number written in ASCII digits."""

    regex = r"[0-9]+"


class RowId(AsciiInteger):
    """A positive whole number of at most `MAX_ID`, as an `int`."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def init_app(app: Flask) -> None:
    """Install the converters; before any route is added (they are read then)."""
    app.url_map.converters.update(int=AsciiInteger, id=RowId)


class RowIdParam(click.IntRange):
    """A row id on the command line: a whole number from 1 to `MAX_ID`. Any other number
    names no row, and one beyond the database's integer would fail in the driver (a
    traceback); click refuses it as a usage error (exit status 2) naming the argument or
    option."""

    name = "id"

    def __init__(self) -> None:
        super().__init__(1, MAX_ID)


#: The type of every command-line argument and option that takes a row id.
ROW_ID = RowIdParam()
