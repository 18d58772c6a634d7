"""sync_run: a run that failed for its source gives its slot up too

A scheduled run that failed because its source was down or unreadable is tried again
within its slot once the connection's backoff has passed, instead of at the next slot. A
run that a guard stopped (`stopped_by_guard`: an incremental feed past its quarantine
limits) keeps its slot, as every other run but an abandoned one does.

Revision ID: e4a0b6c2d8f3
Revises: c3d9e5f1a7b2
Create Date: 2026-12-08 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e4a0b6c2d8f3'
down_revision: str | Sequence[str] | None = 'c3d9e5f1a7b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _slot_index(where: sa.ColumnElement[bool]) -> None:
    op.drop_index('uq_sync_run_slot', table_name='sync_run')
    op.create_index('uq_sync_run_slot', 'sync_run', ['connection_id', 'scheduled_for'],
                    unique=True, sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    op.add_column('sync_run', sa.Column('stopped_by_guard', sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    status = sa.column('status', sa.String())
    guard = sa.column('stopped_by_guard', sa.Boolean())
    _slot_index(sa.and_(status != 'abandoned',
                        sa.or_(status != 'failed', guard.is_(sa.true()))))


def downgrade() -> None:
    # Fails while a failed run and a later run share a slot: delete one of them first.
    _slot_index(sa.column('status', sa.String()) != 'abandoned')
    with op.batch_alter_table('sync_run') as batch:
        batch.drop_column('stopped_by_guard')
