"""Recognition models: human judgements on whether two authorisations are one company.

A judgement names both operators by (programme code, stable key), never by row id, so it
survives re-syncs and operators that are removed and created again. The latest judgement
on a pair wins; a judgement always overrides scores and identifier links.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub import clock
from hub.db import Base, UTCDateTime

#: Verdicts a person can give on a pair of operators.
VERDICTS = ("same", "different")


class MatchJudgement(Base):
    """"These two authorisations are (not) the same company", said by `actor`, because `reason`.

    The pair is stored in a canonical order (the smaller (programme, key) first), so that a
    pair has one history whichever way round it was entered.
    """

    __tablename__ = "match_judgement"
    __table_args__ = (
        Index("ix_match_judgement_left", "left_programme", "left_key"),
        Index("ix_match_judgement_right", "right_programme", "right_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    left_programme: Mapped[str] = mapped_column(String(32))
    left_key: Mapped[str] = mapped_column(String(64))
    right_programme: Mapped[str] = mapped_column(String(32))
    right_key: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
