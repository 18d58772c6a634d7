"""The migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.db import Database
from hub.migrate import current_revision, head_revisions, upgrade
from hub.models import metadata
from tests.conftest import _drop_pg_database, new_database_url


def test_single_head(database):
    assert len(head_revisions(database)) == 1


def test_autogenerate_finds_no_difference(database):
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_upgrade_from_empty_reaches_head_and_is_repeatable(backend, tmp_path):
    url = new_database_url(backend, tmp_path)
    database = Database(url)
    try:
        assert current_revision(database) is None
        upgrade(database)
        assert current_revision(database) == head_revisions(database)[0]
        upgrade(database)  # a second upgrade is a no-op
        assert current_revision(database) == head_revisions(database)[0]
    finally:
        database.dispose()
        if backend == "postgresql":
            _drop_pg_database(url)
