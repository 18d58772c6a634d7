"""staged record: whether an update empties a value the operator holds

Revision ID: f1c2d3e4a5b6
Revises: d5a8c1e4f702
Create Date: 2026-12-07 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f1c2d3e4a5b6'
down_revision: str | Sequence[str] | None = 'd5a8c1e4f702'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sync_staged') as batch:
        batch.add_column(sa.Column('clears_values', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sync_staged') as batch:
        batch.drop_column('clears_values')
