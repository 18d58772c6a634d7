"""view changes: announced grants and operators entering or leaving views

Revision ID: c41f7d9e2b63
Revises: 6192c8340b8a
Create Date: 2026-12-07 03:10:00.000000

The announced grants start as the ones the former sharing rule gave on the day of the
upgrade (a direction without a start date counted as started, its end date as shared),
so that the first daily run of `hub.notify.views` writes tombstones for the operators
that rule shared and the rulebook does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import hub.db


revision: str = 'c41f7d9e2b63'
down_revision: str | Sequence[str] | None = '6192c8340b8a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def previous_grants(connection: sa.Connection, day: dt.date) -> list[dict[str, Any]]:
    """The grants the former rule gave on `day`, one per (recognising, recognised).

    Kept here, frozen, as a record of what the hub shared before this revision.
    """
    meta = sa.MetaData()
    change = sa.Table("arrangement_status_change", meta, autoload_with=connection)
    direction = sa.Table("arrangement_direction", meta, autoload_with=connection)
    arrangement = sa.Table("arrangement", meta, autoload_with=connection)
    programme = sa.Table("programme", meta, autoload_with=connection)
    statuses: dict[int, str | None] = {}
    steps = connection.execute(sa.select(change.c.arrangement_id, change.c.status,
                                         change.c.effective_date, change.c.id)).all()
    for arrangement_id, status, effective, _id in sorted(
            steps, key=lambda s: (s[2], s[1] != "signed", s[3])):
        if effective <= day:
            statuses[arrangement_id] = status
    codes: dict[int, str] = {
        r[0]: r[1] for r in connection.execute(sa.select(arrangement.c.id, arrangement.c.code))}
    consent: dict[int, bool] = {
        r[0]: bool(r[1]) for r in connection.execute(sa.select(programme.c.id,
                                                                programme.c.consent_required))}
    merged: dict[tuple[int, int], dict[str, Any]] = {}
    for row in connection.execute(sa.select(direction)).mappings():
        if statuses.get(row["arrangement_id"]) != "in_force":
            continue
        if row["active_from"] is not None and day < row["active_from"]:
            continue
        if row["active_until"] is not None and day > row["active_until"]:
            continue
        key = (row["recognising_id"], row["recognised_id"])
        entry = merged.setdefault(key, {
            "recognising_id": key[0], "recognised_id": key[1], "categories": set(),
            "consent_required": bool(consent.get(key[1])), "arrangements": set(),
            "since": day})
        entry["categories"].update(str(c) for c in row["categories"] or ())
        entry["arrangements"].add(codes[row["arrangement_id"]])
    return [{**e, "categories": sorted(e["categories"]),
             "arrangements": sorted(e["arrangements"])} for e in merged.values()]


def upgrade() -> None:
    view_grant = op.create_table('view_grant',
    sa.Column('recognising_id', sa.Integer(), nullable=False),
    sa.Column('recognised_id', sa.Integer(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('consent_required', sa.Boolean(), nullable=False),
    sa.Column('arrangements', sa.JSON(), nullable=False),
    sa.Column('since', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['recognised_id'], ['programme.id'], name=op.f('fk_view_grant_recognised_id_programme'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recognising_id'], ['programme.id'], name=op.f('fk_view_grant_recognising_id_programme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('recognising_id', 'recognised_id', name=op.f('pk_view_grant'))
    )
    op.create_table('view_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recognising_id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('arrangement', sa.String(length=200), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('recorded_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['operator.id'], name=op.f('fk_view_change_operator_id_operator'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recognising_id'], ['programme.id'], name=op.f('fk_view_change_recognising_id_programme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_view_change')),
    sa.UniqueConstraint('recognising_id', 'operator_id', 'kind', 'effective_date', name=op.f('uq_view_change_recognising_id_operator_id_kind_effective_date'))
    )
    with op.batch_alter_table('view_change', schema=None) as batch_op:
        batch_op.create_index('ix_view_change_recognising', ['recognising_id', 'id'], unique=False)
    grants = previous_grants(op.get_bind(), dt.datetime.now(dt.UTC).date())
    if grants:
        op.bulk_insert(view_grant, grants)


def downgrade() -> None:
    with op.batch_alter_table('view_change', schema=None) as batch_op:
        batch_op.drop_index('ix_view_change_recognising')
    op.drop_table('view_change')
    op.drop_table('view_grant')
