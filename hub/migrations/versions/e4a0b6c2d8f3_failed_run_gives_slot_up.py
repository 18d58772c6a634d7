"""sync_run: a failed run gives its slot up too

A scheduled run that failed (the node was down for a few minutes) is tried again within
its slot once the connection's backoff has passed, instead of at the next slot.

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


def _slot_index(where: str) -> None:
    op.drop_index('uq_sync_run_slot', table_name='sync_run')
    op.create_index('uq_sync_run_slot', 'sync_run', ['connection_id', 'scheduled_for'],
                    unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    _slot_index("status NOT IN ('abandoned', 'failed')")


def downgrade() -> None:
    # Fails while a failed run and a later run share a slot: delete one of them first.
    _slot_index("status != 'abandoned'")
