"""docs/SCORING.md's outcome rules: thresholds, direction, excursions, barriers."""

from __future__ import annotations

import pytest

from tracking.models import Barrier, Outcome
from tracking.outcomes import adjusted_return, excursions, outcome_for, percent_change

WIN, LOSS = 5.0, 3.0
TINY = 1e-6


@pytest.mark.parametrize(
    ("return_pct", "expected"),
    [
        (WIN + TINY, Outcome.WIN),
        (WIN, Outcome.WIN),
        (WIN - TINY, Outcome.NEUTRAL),
        (0.0, Outcome.NEUTRAL),
        (-LOSS + TINY, Outcome.NEUTRAL),
        (-LOSS, Outcome.LOSS),
        (-LOSS - TINY, Outcome.LOSS),
        (-WIN, Outcome.LOSS),
        (LOSS, Outcome.NEUTRAL),
    ],
)
def test_a_long_wins_at_plus_win_and_loses_at_minus_loss(return_pct, expected) -> None:
    assert outcome_for("LONG", return_pct, win=WIN, loss=LOSS) == expected


@pytest.mark.parametrize(
    ("return_pct", "expected"),
    [
        (-WIN - TINY, Outcome.WIN),
        (-WIN, Outcome.WIN),
        (-WIN + TINY, Outcome.NEUTRAL),
        (0.0, Outcome.NEUTRAL),
        (LOSS - TINY, Outcome.NEUTRAL),
        (LOSS, Outcome.LOSS),
        (LOSS + TINY, Outcome.LOSS),
        (WIN, Outcome.LOSS),
        (-LOSS, Outcome.NEUTRAL),
    ],
)
def test_a_short_wins_at_minus_win_and_loses_at_plus_loss(return_pct, expected) -> None:
    assert outcome_for("SHORT", return_pct, win=WIN, loss=LOSS) == expected


def test_thresholds_come_from_the_arguments_not_constants() -> None:
    assert outcome_for("LONG", 2.0, win=2.0, loss=1.0) == Outcome.WIN
    assert outcome_for("SHORT", 1.0, win=2.0, loss=1.0) == Outcome.LOSS


@pytest.mark.parametrize(
    ("entry", "exit_price", "expected"),
    [
        (0.3, 0.315, 5.0),  # (0.315 - 0.3) / 0.3 * 100 is 5.000000000000004 in floats
        (0.7, 0.679, -3.0),
        (100.0, 105.0, 5.0),
        (100.0, 97.0, -3.0),
    ],
)
def test_a_return_exactly_on_a_threshold_is_not_moved_by_float_noise(
    entry, exit_price, expected
) -> None:
    assert percent_change(entry, exit_price) == expected
    assert outcome_for("LONG", percent_change(entry, exit_price), win=WIN, loss=LOSS) != (
        Outcome.NEUTRAL
    )


def test_the_direction_adjusted_return_is_negated_for_a_short() -> None:
    assert adjusted_return("LONG", 4.0) == 4.0
    assert adjusted_return("SHORT", 4.0) == -4.0


class TestExcursions:
    def test_a_long_measures_favour_from_highs_and_adversity_from_lows(self) -> None:
        moves = excursions("LONG", 100.0, [102.0, 104.0], [99.0, 98.0], win=WIN, loss=LOSS)
        assert (moves.mfe_pct, moves.mae_pct) == (4.0, -2.0)
        assert moves.first_barrier == Barrier.NONE

    def test_a_short_measures_favour_from_lows_and_adversity_from_highs(self) -> None:
        moves = excursions("SHORT", 100.0, [102.0, 101.0], [96.0, 99.0], win=WIN, loss=LOSS)
        assert (moves.mfe_pct, moves.mae_pct) == (4.0, -2.0)

    def test_a_long_that_first_reaches_the_win_level_touched_win_first(self) -> None:
        moves = excursions(
            "LONG", 100.0, [101.0, 105.0, 101.0], [99.0, 99.0, 90.0], win=WIN, loss=LOSS
        )
        assert moves.first_barrier == Barrier.WIN

    def test_a_long_that_first_reaches_the_loss_level_touched_loss_first(self) -> None:
        moves = excursions("LONG", 100.0, [101.0, 110.0], [97.0, 99.0], win=WIN, loss=LOSS)
        assert moves.first_barrier == Barrier.LOSS

    def test_a_short_reaches_its_win_level_with_a_low_and_its_loss_level_with_a_high(
        self,
    ) -> None:
        assert (
            excursions("SHORT", 100.0, [101.0], [95.0], win=WIN, loss=LOSS).first_barrier
            == Barrier.WIN
        )
        assert (
            excursions("SHORT", 100.0, [103.0], [99.0], win=WIN, loss=LOSS).first_barrier
            == Barrier.LOSS
        )

    def test_one_candle_reaching_both_levels_is_both_in_one_candle(self) -> None:
        moves = excursions("LONG", 100.0, [101.0, 106.0], [99.0, 96.0], win=WIN, loss=LOSS)
        assert moves.first_barrier == Barrier.BOTH

    def test_levels_just_short_of_the_thresholds_are_not_touched(self) -> None:
        moves = excursions("LONG", 100.0, [104.99], [97.01], win=WIN, loss=LOSS)
        assert moves.first_barrier == Barrier.NONE
