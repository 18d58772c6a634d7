"""connection: a name is unique within its administration, not across the hub

Revision ID: a9d4e2c7b810
Revises: f1c2d3e4a5b6
Create Date: 2026-12-07 22:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'a9d4e2c7b810'
down_revision: str | Sequence[str] | None = 'f1c2d3e4a5b6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('connection') as batch:
        batch.drop_constraint('uq_connection_name', type_='unique')
        batch.create_unique_constraint('uq_connection_administration_id_name',
                                       ['administration_id', 'name'])


def downgrade() -> None:
    # Fails while two administrations have connections of the same name: rename one first.
    with op.batch_alter_table('connection') as batch:
        batch.drop_constraint('uq_connection_administration_id_name', type_='unique')
        batch.create_unique_constraint('uq_connection_name', ['name'])
