"""sync_run: a slot is claimed only by runs that were not abandoned

A run whose process died is abandoned; its slot can then be run again instead of waiting
for the next one.

Revision ID: b7e3f1a2c945
Revises: a9d4e2c7b810
Create Date: 2026-12-07 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b7e3f1a2c945'
down_revision: str | Sequence[str] | None = 'a9d4e2c7b810'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOT_ABANDONED = sa.text("status != 'abandoned'")


def upgrade() -> None:
    with op.batch_alter_table('sync_run') as batch:
        batch.drop_constraint('uq_sync_run_connection_id_scheduled_for', type_='unique')
    op.create_index('uq_sync_run_slot', 'sync_run', ['connection_id', 'scheduled_for'],
                    unique=True, sqlite_where=_NOT_ABANDONED,
                    postgresql_where=_NOT_ABANDONED)


def downgrade() -> None:
    # Fails while an abandoned run and a later run share a slot: delete one of them first.
    op.drop_index('uq_sync_run_slot', table_name='sync_run')
    with op.batch_alter_table('sync_run') as batch:
        batch.create_unique_constraint('uq_sync_run_connection_id_scheduled_for',
                                       ['connection_id', 'scheduled_for'])
