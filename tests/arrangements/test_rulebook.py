"""The rulebook's definitions, on hand-made histories and windows (no database)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hub.arrangements import rulebook
from hub.arrangements.reference import DirectionRef

D = dt.date


@dataclass
class Step:
    status: str
    effective_date: dt.date
    origin: str = "reference"
    id: int | None = None


@dataclass
class Arrangement:
    statuses: rulebook.StatusHistory


@dataclass
class Window:
    active_from: dt.date | None
    active_until: dt.date | None = None


IN_FORCE = Arrangement(((D(2020, 1, 1), "signed"), (D(2020, 6, 1), "in_force")))


def test_the_start_date_counts_the_end_date_does_not() -> None:
    window = Window(D(2021, 3, 1), D(2022, 3, 1))
    assert not rulebook.direction_active(window, IN_FORCE, D(2021, 2, 28))
    assert rulebook.direction_active(window, IN_FORCE, D(2021, 3, 1))
    assert rulebook.direction_active(window, IN_FORCE, D(2022, 2, 28))
    assert not rulebook.direction_active(window, IN_FORCE, D(2022, 3, 1))
    assert rulebook.activity(window, IN_FORCE, D(2022, 3, 1)) == (rulebook.ENDED,)
    assert rulebook.activity(window, IN_FORCE, D(2021, 2, 1)) == (rulebook.NOT_STARTED,)


def test_no_start_date_is_never_active() -> None:
    window = Window(None)
    for day in (D(2020, 7, 1), D(2024, 8, 1), D(2099, 1, 1)):
        assert not rulebook.direction_active(window, IN_FORCE, day)
        assert rulebook.activity(window, IN_FORCE, day) == (rulebook.NO_START,)
    # The reference files' form follows the same rule.
    ref = DirectionRef("ASEAN", "SG-STP", "KH-AEO", ("AEO",), ("import",), None)
    assert not ref.is_active_on(D(2026, 1, 1))


def test_an_arrangement_must_be_in_force() -> None:
    window = Window(D(2019, 1, 1))
    assert rulebook.activity(window, IN_FORCE, D(2020, 3, 1)) == (rulebook.NOT_IN_FORCE,)
    signed_only = Arrangement(((D(2018, 7, 21), "signed"),))
    assert rulebook.activity(window, signed_only, D(2026, 1, 1)) == (rulebook.NOT_IN_FORCE,)
    nothing = Arrangement(())
    assert rulebook.arrangement_status_on(nothing, D(2026, 1, 1)) is None
    assert rulebook.activity(Window(None), nothing, D(2026, 1, 1)) == (
        rulebook.NOT_IN_FORCE, rulebook.NO_START)


def test_steps_of_one_day_follow_the_lifecycle_then_manual_steps_as_recorded() -> None:
    history = rulebook.order_steps([
        Step("in_force", D(2020, 1, 1), id=1), Step("signed", D(2020, 1, 1), id=2),
        Step("suspended", D(2021, 5, 1), origin="manual", id=9),
        Step("in_force", D(2021, 5, 1), origin="manual", id=10)])
    assert history == ((D(2020, 1, 1), "signed"), (D(2020, 1, 1), "in_force"),
                       (D(2021, 5, 1), "suspended"), (D(2021, 5, 1), "in_force"))
    arrangement = Arrangement(history)
    assert rulebook.arrangement_status_on(arrangement, D(2019, 12, 31)) is None
    assert rulebook.arrangement_status_on(arrangement, D(2020, 1, 1)) == "in_force"
    assert rulebook.arrangement_status_on(arrangement, D(2021, 5, 1)) == "in_force"
    reference = rulebook.order_dated([(D(2020, 1, 1), "in_force"), (D(2020, 1, 1), "signed")])
    assert reference == ((D(2020, 1, 1), "signed"), (D(2020, 1, 1), "in_force"))


def test_a_suspension_stops_a_direction_until_it_is_resumed() -> None:
    arrangement = Arrangement((*IN_FORCE.statuses, (D(2026, 3, 1), "suspended"),
                               (D(2026, 4, 1), "in_force")))
    window = Window(D(2021, 1, 1))
    assert rulebook.direction_active(window, arrangement, D(2026, 2, 28))
    assert not rulebook.direction_active(window, arrangement, D(2026, 3, 1))
    assert rulebook.direction_active(window, arrangement, D(2026, 4, 1))


def test_flows() -> None:
    assert rulebook.covers_flow(("import",), "import")
    assert not rulebook.covers_flow(("import",), "export")
    assert not rulebook.covers_flow((), "import")
