"""The window of a performance report named by `since`/`until` (tracking/windows.py): parsing,
the allowed combinations, both ends included, and the rollups giving the rows' numbers for any
window, at any time of day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import CheckedOutcomeFactory, SignalFactory
from tests.test_outcome_rollups import NOW, history  # noqa: F401
from tracking import analytics, windows
from tracking.models import Signal
from tracking.performance_filters import PerformanceFilters
from tracking.rollups import rollups_compact
from tracking.window_aggregates import window

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MICRO = timedelta(microseconds=1)


# --- parsing and combinations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T12:30", datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        ("2024-03-01T12:30:00Z", datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        ("2024-03-01T14:30:00+02:00", datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        ("2024-03-01 12:30:00.000001", datetime(2024, 3, 1, 12, 30, 0, 1, tzinfo=UTC)),
    ],
)
def test_a_date_is_its_midnight_utc_and_a_time_without_offset_is_utc(raw, expected):
    assert windows.moment_parse(raw, "since") == expected


@pytest.mark.parametrize("raw", ["yesterday", "2024-13-01", "01/03/2024", ""])
def test_a_bad_moment_is_refused_naming_its_parameter(raw):
    with pytest.raises(windows.WindowError) as refused:
        windows.moment_parse(raw, "until")
    assert refused.value.parameter == "until"
    assert "ISO 8601" in refused.value.message


@pytest.mark.parametrize(
    ("since", "until"), [(NOW, None), (None, NOW), (NOW - DAY, NOW)], ids=["since", "until", "both"]
)
def test_days_cannot_be_combined_with_since_or_until(since, until):
    with pytest.raises(windows.WindowError) as refused:
        windows.window_check(7, since, until)
    assert refused.value.parameter == "days"
    assert windows.COMBINATIONS in refused.value.message


def test_since_after_until_is_refused_naming_since():
    with pytest.raises(windows.WindowError) as refused:
        windows.window_check(None, NOW, NOW - MICRO)
    assert refused.value.parameter == "since"


def test_since_equal_to_until_is_a_window_of_that_moment():
    windows.window_check(None, NOW, NOW)
    assert NOW in windows.report_range(NOW, None, NOW, NOW)


def test_a_shown_bound_parses_back_to_itself():
    for moment in (NOW, NOW + 90 * timedelta(minutes=1), NOW + MICRO):
        assert windows.moment_parse(windows.show(moment), "since") == moment


# --- the numbers of a window --------------------------------------------------------------------

# Bounds at a midnight, early in a day and late in one, on the same day and across days.
EARLY, LATE = timedelta(hours=5, minutes=1), timedelta(hours=19, minutes=13)
WINDOWS = [
    (NOW - 20 * DAY, NOW),
    (NOW - 20 * DAY + EARLY, NOW - 3 * DAY + LATE),
    (NOW - 20 * DAY + LATE, NOW - 3 * DAY + EARLY),
    (NOW - 9 * DAY + EARLY, NOW - 9 * DAY + LATE),
    (NOW - 9 * DAY + LATE, NOW - 9 * DAY + LATE + 3 * HOUR),
    (NOW - 9 * DAY + EARLY, NOW - 9 * DAY + EARLY + HOUR),
    (NOW - 9 * DAY + LATE, NOW - 8 * DAY + EARLY),
    (NOW - 9 * DAY, NOW - 9 * DAY),
    (None, NOW - 30 * DAY + LATE),
    (NOW - 10 * DAY + EARLY, None),
    (NOW + 5 * DAY + LATE, None),  # since after now: empty
]


@pytest.mark.parametrize(("since", "until"), WINDOWS)
def test_the_window_from_the_rollups_equals_the_window_from_the_rows(
    history,  # noqa: F811
    since,
    until,
):
    for filters in ({}, {"horizon": "1h"}, {"scanner": "rsi"}, {"symbol": "ETH/USDT"}):
        chosen = PerformanceFilters(
            **({"days": None, "since": since, "until": until, "now": NOW} | filters)
        )
        rolled = window(chosen, top=5, horizons=True)
        assert rolled == window(chosen, top=5, horizons=True, from_rows=True), chosen


@pytest.mark.parametrize(("since", "until"), WINDOWS)
def test_the_window_counts_the_signals_with_as_of_between_since_and_until_both_included(
    history,  # noqa: F811
    since,
    until,
):
    end = NOW if until is None else until
    expected = sum(
        1
        for as_of in Signal.objects.values_list("as_of", flat=True)
        if (since is None or as_of >= since) and as_of <= end
    )
    chosen = PerformanceFilters(days=None, since=since, until=until, now=NOW)
    assert window(chosen, ()).total_signals == expected


@pytest.mark.parametrize(
    "edge", [NOW.replace(hour=0) - 3 * DAY, NOW.replace(hour=0) - 3 * DAY + EARLY], ids=str
)
def test_a_signal_at_exactly_since_or_until_is_counted_one_a_microsecond_outside_is_not(
    history,  # noqa: F811
    edge,
):
    signal = SignalFactory(scanner="social", as_of=edge)
    CheckedOutcomeFactory(signal=signal, return_pct=7.0)
    rollups_compact()

    def n(since: datetime, until: datetime) -> int:
        filters = PerformanceFilters(days=None, since=since, until=until, scanner="social")
        return analytics.performance_summary(filters)["n"]

    assert n(edge, edge + DAY) == 1
    assert n(edge - DAY, edge) == 1
    assert n(edge + MICRO, edge + DAY) == 0
    assert n(edge - DAY, edge - MICRO) == 0
