"""sync_staged_event, sync_staged_identifier: index by run only

The merge finds a run's staged events and identifiers by run and joins them on the
operator's own (programme, stable key) index; the wider index cost every staged row a
second string key to write and delete.

Revision ID: c3d9e5f1a7b2
Revises: b7e3f1a2c945
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'c3d9e5f1a7b2'
down_revision: str | Sequence[str] | None = 'b7e3f1a2c945'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('sync_staged_event', 'sync_staged_identifier')


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f'ix_{table}_run', table_name=table)
        op.create_index(f'ix_{table}_run', table, ['run_id'])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f'ix_{table}_run', table_name=table)
        op.create_index(f'ix_{table}_run', table, ['run_id', 'programme_id', 'stable_key'])
