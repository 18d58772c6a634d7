"""web sessions: server-side dashboard sessions

Revision ID: b7d41c2e9a10
Revises: c41f7d9e2b63
Create Date: 2026-12-07 03:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = 'b7d41c2e9a10'
down_revision: str | Sequence[str] | None = 'c41f7d9e2b63'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'web_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['web_user.id'],
                                name=op.f('fk_web_session_user_id_web_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_session')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_session_token_hash')),
    )
    op.create_index(op.f('ix_web_session_user_id'), 'web_session', ['user_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_web_session_user_id'), table_name='web_session')
    op.drop_table('web_session')
