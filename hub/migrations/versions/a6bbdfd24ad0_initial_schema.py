"""initial schema

Revision ID: a6bbdfd24ad0
Revises: 
Create Date: 2026-11-28 13:27:39.079386
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db


revision: str = 'a6bbdfd24ad0'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
