"""client secret overlap: the previous secret, accepted until a time

Revision ID: c3e5f7a9b1d2
Revises: b7d41c2e9a10
Create Date: 2026-12-07 03:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = 'c3e5f7a9b1d2'
down_revision: str | Sequence[str] | None = 'b7d41c2e9a10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_client') as batch:
        batch.add_column(sa.Column('previous_secret_hash', sa.String(length=255),
                                   nullable=True))
        batch.add_column(sa.Column('previous_secret_expires_at',
                                   hub.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('oauth_client') as batch:
        batch.drop_column('previous_secret_expires_at')
        batch.drop_column('previous_secret_hash')
