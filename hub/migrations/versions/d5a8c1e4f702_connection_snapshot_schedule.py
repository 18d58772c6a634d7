"""connection snapshot schedule: when an incremental connection is read whole

Revision ID: d5a8c1e4f702
Revises: c3e5f7a9b1d2
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd5a8c1e4f702'
down_revision: str | Sequence[str] | None = 'c3e5f7a9b1d2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('connection') as batch:
        batch.add_column(sa.Column('snapshot_schedule', sa.String(length=120),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('connection') as batch:
        batch.drop_column('snapshot_schedule')
