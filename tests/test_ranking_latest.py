"""`ranking_latest`: each coin's newest row, read coin by coin (never a window over every row the
coins ever had), as it stands now or as it stood at a time, for all coins or a few."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scoring.models import UnifiedRanking
from scoring.ranking import ranking_latest
from tests.factories import START, ScanRunFactory, UnifiedRankingFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture
def history() -> dict[str, list[UnifiedRanking]]:
    """Three coins ranked over five hours; C only in the first two; B's score changes each hour."""
    runs = [ScanRunFactory(scanner="all", as_of=START + hour * HOUR) for hour in range(5)]
    rows: dict[str, list[UnifiedRanking]] = {"A/USDT": [], "B/USDT": [], "C/USDT": []}
    for hour, run in enumerate(runs):
        for symbol in rows:
            if symbol == "C/USDT" and hour > 1:
                continue
            rows[symbol].append(
                UnifiedRankingFactory(
                    scan_run=run, symbol=symbol, unified_score=50.0 + hour * (symbol == "B/USDT")
                )
            )
    return rows


def test_the_ranking_holds_each_coins_newest_row_even_when_it_left_the_scans(history) -> None:
    assert set(ranking_latest()) == {
        history["A/USDT"][-1],
        history["B/USDT"][-1],
        history["C/USDT"][-1],
    }


def test_the_ranking_as_of_a_time_holds_each_coins_newest_row_at_or_before_it(history) -> None:
    at = START + 2 * HOUR
    assert set(ranking_latest({"as_of": at})) == {
        history["A/USDT"][2],
        history["B/USDT"][2],
        history["C/USDT"][1],
    }


def test_the_ranking_of_some_coins_holds_only_theirs(history) -> None:
    found = ranking_latest({"symbols": ["C/USDT", "B/USDT", "NONE/USDT"]})
    assert list(found) == [history["B/USDT"][-1], history["C/USDT"][-1]]  # best first


def test_the_ranking_before_any_row_is_empty(history) -> None:
    assert not ranking_latest({"as_of": START - HOUR}).exists()


def test_an_empty_table_ranks_nothing() -> None:
    assert list(ranking_latest()) == []
