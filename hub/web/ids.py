"""Row ids in the dashboard's addresses: `<id:run_id>`.

A whole number a row id cannot hold (0, or beyond `hub.db.MAX_ID`) names no row: the
address matches no route, a 404 like any unknown page, before a query sends it to the
database (SQLite takes no integer beyond 2**63 - 1, PostgreSQL's INTEGER none beyond
MAX_ID: either was a 500).
"""

from __future__ import annotations

from flask.blueprints import BlueprintSetupState
from werkzeug.routing import IntegerConverter, Map

from hub.db import MAX_ID

#: The converter's name in a route's rule.
NAME = "id"


class RowIdConverter(IntegerConverter):
    """A positive whole number of at most `MAX_ID`, as an `int`."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def install(state: BlueprintSetupState) -> None:
    """Give the app the converter (`Blueprint.record_once`: before the routes using it)."""
    state.app.url_map.converters[NAME] = RowIdConverter
