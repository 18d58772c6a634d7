"""recognition judgements

Revision ID: eae48773580d
Revises: 8a6537341916
Create Date: 2026-11-28 13:36:00.425521
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db


revision: str = 'eae48773580d'
down_revision: str | Sequence[str] | None = '8a6537341916'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('match_judgement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('left_programme', sa.String(length=32), nullable=False),
    sa.Column('left_key', sa.String(length=64), nullable=False),
    sa.Column('right_programme', sa.String(length=32), nullable=False),
    sa.Column('right_key', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', hub.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_judgement'))
    )
    with op.batch_alter_table('match_judgement', schema=None) as batch_op:
        batch_op.create_index('ix_match_judgement_left', ['left_programme', 'left_key'], unique=False)
        batch_op.create_index('ix_match_judgement_right', ['right_programme', 'right_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('match_judgement', schema=None) as batch_op:
        batch_op.drop_index('ix_match_judgement_right')
        batch_op.drop_index('ix_match_judgement_left')

    op.drop_table('match_judgement')
