"""tracking.analytics: the numbers equal a hand computation on a small fixture, the filters select
what they say, and no recommendation comes from a group of fewer than ANALYTICS_MIN_SAMPLE."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    OutcomeCheckFactory,
    SignalFactory,
    WatchlistFactory,
)
from tracking.analytics import (
    performance_by,
    performance_report,
    performance_summary,
    top_performers,
)
from tracking.metrics import TOO_FEW, wilson_interval
from tracking.performance_filters import PerformanceFilters
from tracking.recommendations import recommendations

pytestmark = pytest.mark.django_db

NOW = START + timedelta(days=40)
DAY = timedelta(days=1)

# The fixture: (scanner, symbol, direction, tier, unadjusted 24h return %, excess over BTC).
# Adjusted returns: +10 W, +6 W, +8 W, −4 L, −5 L, +2 N, −1 N, +20 W, −3 L, +5 W.
FIXTURE = [
    ("rsi", "BTC/USDT", "LONG", "TIER_1", 10.0, 2.0),
    ("rsi", "ETH/USDT", "LONG", "TIER_2", 6.0, 1.0),
    ("rsi", "BTC/USDT", "SHORT", "TIER_1", -8.0, None),
    ("smart_money", "ETH/USDT", "LONG", "TIER_1", -4.0, -3.0),
    ("smart_money", "SOL/USDT", "SHORT", "", 5.0, -4.0),
    ("smart_money", "SOL/USDT", "LONG", "TIER_2", 2.0, None),
    ("mss", "BTC/USDT", "LONG", "TIER_1", -1.0, None),
    ("mss", "ETH/USDT", "LONG", "TIER_3", 20.0, None),
    ("unified", "SOL/USDT", "LONG", "TIER_1", -3.0, None),  # exactly at the loss threshold
    ("unified", "ETH/USDT", "SHORT", "TIER_2", -5.0, None),  # exactly at the win threshold
]


def pct_interval(successes: int, n: int) -> dict:
    low, high = wilson_interval(successes, n)
    return {
        "low": round(100 * low, 4),
        "high": round(100 * high, 4),
        "successes": successes,
        "n": n,
    }


@pytest.fixture
def markets():
    return {
        symbol: MarketFactory(symbol=symbol, base=symbol.split("/")[0])
        for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    }


@pytest.fixture
def fixture(markets):
    """The ten signals of FIXTURE in the last 30 days with their 24h outcomes; besides: a 1h and
    a 7d outcome, a signal 35 days old (+50 %), one whose 24h check is still pending and one
    whose 24h check found no price."""
    signals = []
    for i, (scanner, symbol, direction, tier, return_pct, excess) in enumerate(FIXTURE):
        signal = SignalFactory(
            scanner=scanner,
            symbol=symbol,
            direction=direction,
            tier=tier,
            as_of=NOW - 20 * DAY + i * timedelta(hours=1),
        )
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct, excess_return_pct=excess)
        signals.append(signal)
    CheckedOutcomeFactory(signal=signals[0], horizon="1h", return_pct=1.0)
    CheckedOutcomeFactory(signal=signals[1], horizon="7d", return_pct=-10.0)
    old = SignalFactory(scanner="rsi", symbol="BTC/USDT", as_of=NOW - 35 * DAY)
    CheckedOutcomeFactory(signal=old, return_pct=50.0)
    pending = SignalFactory(scanner="rsi", symbol="BTC/USDT", as_of=NOW - 2 * DAY)
    OutcomeCheckFactory(signal=pending, horizon="24h")
    unavailable = SignalFactory(scanner="mss", symbol="SOL/USDT", as_of=NOW - 3 * DAY)
    OutcomeCheckFactory(
        signal=unavailable,
        horizon="24h",
        status="unavailable",
        unavailable_reason="no candle at T",
    )
    return signals


def f(**kwargs) -> PerformanceFilters:
    return PerformanceFilters(**({"days": 30, "now": NOW} | kwargs))


# --- the hand computation -------------------------------------------------------------------------


def test_the_summary_equals_the_hand_computation(fixture):
    summary = performance_summary(f())
    assert summary == {
        "period_days": 30,
        "since": None,
        "until": None,
        "horizon": "24h",
        "as_of": NOW,
        "filters": {
            "days": 30,
            "since": None,
            "until": None,
            "horizon": "24h",
            "scanner": None,
            "tier": None,
            "direction": None,
            "symbol": None,
            "watchlist": None,
        },
        "min_sample": 30,
        "total_signals": 12,  # the ten, the pending and the unavailable one
        "outcomes_checked": 10,
        "outcomes_pending": 1,
        "outcomes_unavailable": 1,
        "n": 10,
        "wins": 5,
        "losses": 3,
        "neutral": 2,
        "win_rate": 50.0,
        "win_rate_ci": pct_interval(5, 10),
        "loss_rate": 30.0,
        "loss_rate_ci": pct_interval(3, 10),
        "neutral_rate": 20.0,
        "neutral_rate_ci": pct_interval(2, 10),
        "decisive_win_rate": 62.5,  # 5 / (5 + 3)
        "decisive_win_rate_ci": pct_interval(5, 8),
        "avg_win_pct": 9.8,  # (10 + 6 + 8 + 20 + 5) / 5
        "avg_loss_pct": -4.0,  # (−4 − 5 − 3) / 3
        "expectancy_pct": 3.8,  # (49 − 12 + 2 − 1) / 10
        "total_pnl_pct": 38.0,
        "gross_profit_pct": 51.0,  # 49 + 2
        "gross_loss_pct": -13.0,  # −12 − 1
        "profit_factor": 3.9231,  # 51 / 13
        "avg_excess_return_pct": -1.0,  # (2 + 1 − 3 − 4) / 4
        "excess_n": 4,
        "judgement": TOO_FEW,
    }


def test_the_wilson_intervals_of_the_summary_are_the_known_values(fixture):
    summary = performance_summary(f())
    # 5 of 10: 23.66–76.34 %; 5 of 8: 30.57–86.32 % (Wilson, z = 1.96).
    assert summary["win_rate_ci"]["low"] == pytest.approx(23.659, abs=1e-3)
    assert summary["win_rate_ci"]["high"] == pytest.approx(76.341, abs=1e-3)
    assert summary["decisive_win_rate_ci"]["low"] == pytest.approx(30.574, abs=1e-3)
    assert summary["decisive_win_rate_ci"]["high"] == pytest.approx(86.316, abs=1e-3)


def test_by_scanner_equals_the_hand_computation(fixture):
    groups = {row["group"]: row for row in performance_by("scanner", f())["groups"]}
    assert list(groups) == ["mss", "rsi", "smart_money", "unified"]
    picked = {
        name: (row["n"], row["wins"], row["losses"], row["neutral"], row["expectancy_pct"])
        for name, row in groups.items()
    }
    assert picked == {
        "rsi": (3, 3, 0, 0, 8.0),  # 10, 6, 8
        "smart_money": (3, 0, 2, 1, -2.3333),  # −4, −5, 2
        "mss": (2, 1, 0, 1, 9.5),  # −1, 20
        "unified": (2, 1, 1, 0, 1.0),  # −3, 5
    }
    assert groups["rsi"]["win_rate"] == 100.0
    assert groups["rsi"]["win_rate_ci"] == pct_interval(3, 3)
    assert groups["rsi"]["profit_factor"] is None  # nothing lost money
    assert groups["smart_money"]["profit_factor"] == pytest.approx(2 / 9, abs=1e-4)
    assert all(row["judgement"] == TOO_FEW for row in groups.values())


def test_by_tier_direction_and_symbol(fixture):
    def counts(dimension: str) -> dict:
        return {
            row["group"]: (row["n"], row["wins"], row["losses"])
            for row in performance_by(dimension, f())["groups"]
        }

    assert counts("tier") == {
        None: (1, 0, 1),  # recorded without a tier
        "TIER_1": (5, 2, 2),
        "TIER_2": (3, 2, 0),
        "TIER_3": (1, 1, 0),
    }
    assert counts("direction") == {"LONG": (7, 3, 2), "SHORT": (3, 2, 1)}
    assert counts("symbol") == {
        "BTC/USDT": (3, 2, 0),
        "ETH/USDT": (4, 3, 1),
        "SOL/USDT": (3, 0, 2),
    }


def test_by_interval_shows_all_five_horizons_in_order(fixture):
    result = performance_by("horizon", f(horizon="7d"))  # the horizon filter is ignored
    assert result["horizon"] is None
    groups = result["groups"]
    assert [row["group"] for row in groups] == ["1h", "4h", "24h", "7d", "30d"]
    assert [row["n"] for row in groups] == [1, 0, 10, 1, 0]
    empty = groups[1]
    assert empty["win_rate"] is None
    assert empty["win_rate_ci"] == {"low": 0.0, "high": 100.0, "successes": 0, "n": 0}
    assert empty["expectancy_pct"] is None
    assert empty["total_pnl_pct"] == 0.0
    assert empty["judgement"] == TOO_FEW
    assert groups[3]["losses"] == 1
    assert groups[3]["avg_loss_pct"] == -10.0


def test_an_unknown_dimension_is_refused():
    with pytest.raises(ValueError, match="dimension"):
        performance_by("moon_phase", f())


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "n", "wins"),
    [
        ({"scanner": "rsi"}, 3, 3),
        ({"tier": "TIER_1"}, 5, 2),
        ({"direction": "SHORT"}, 3, 2),
        ({"symbol": "ETH/USDT"}, 4, 3),
        ({"horizon": "7d"}, 1, 0),
        ({"horizon": "1h"}, 1, 0),
        ({"days": 40}, 11, 6),  # the signal 35 days old comes in
        ({"days": 1}, 0, 0),
        ({"days": None}, 11, 6),
        ({"scanner": "unified", "direction": "SHORT"}, 1, 1),
    ],
)
def test_the_filters_select_what_they_say(fixture, filters, n, wins):
    summary = performance_summary(f(**filters))
    assert (summary["n"], summary["wins"]) == (n, wins)


def test_the_watchlist_filter_keeps_its_coins(fixture):
    watchlist = WatchlistFactory()
    watchlist.coins.create(symbol="BTC/USDT")
    watchlist.coins.create(symbol="SOL/USDT")
    summary = performance_summary(f(watchlist_id=watchlist.pk))
    assert (summary["n"], summary["wins"], summary["losses"]) == (6, 2, 2)


def test_an_empty_watchlist_selects_nothing(fixture):
    summary = performance_summary(f(watchlist_id=WatchlistFactory().pk))
    assert summary["n"] == summary["total_signals"] == 0


def test_days_count_back_from_the_market_time_not_the_wall_clock(fixture):
    """The window is (now − days, now] of market time: signals after `now` are not in it."""
    then = NOW - 20 * DAY + timedelta(hours=4)  # the first five of FIXTURE are at or before it
    assert performance_summary(f(now=then, days=10))["n"] == 5
    assert performance_summary(f(now=then, days=16))["n"] == 6  # and the one 35 days old


def test_signals_counted_and_outcomes_checked_differ_by_the_open_checks(fixture):
    summary = performance_summary(f(scanner="mss"))
    assert summary["total_signals"] == 3
    assert summary["outcomes_checked"] == 2
    assert summary["outcomes_unavailable"] == 1


# --- top performers -----------------------------------------------------------------------------


def test_top_performers_rank_signals_by_adjusted_return_and_symbols_by_expectancy(fixture):
    top = top_performers(f(), limit=3)
    best = [(row["symbol"], row["adjusted_return_pct"]) for row in top["best_signals"]]
    worst = [(row["symbol"], row["adjusted_return_pct"]) for row in top["worst_signals"]]
    assert best == [("ETH/USDT", 20.0), ("BTC/USDT", 10.0), ("BTC/USDT", 8.0)]
    assert worst == [("SOL/USDT", -5.0), ("ETH/USDT", -4.0), ("SOL/USDT", -3.0)]
    assert [(r["symbol"], r["expectancy_pct"]) for r in top["best_symbols"]] == [
        ("ETH/USDT", 6.75),
        ("BTC/USDT", 5.6667),
        ("SOL/USDT", -2.0),
    ]
    assert [r["symbol"] for r in top["worst_symbols"]] == ["SOL/USDT", "BTC/USDT", "ETH/USDT"]
    first = top["best_signals"][0]
    assert first == {
        "signal_id": fixture[7].pk,
        "horizon": "24h",
        "exit_price": pytest.approx(120.0),
        "return_pct": 20.0,
        "adjusted_return_pct": 20.0,
        "excess_return_pct": None,
        "outcome": "WIN",
        "scanner": "mss",
        "symbol": "ETH/USDT",
        "direction": "LONG",
        "tier": "TIER_3",
        "as_of": fixture[7].as_of,
        "entry_price": 100.0,
    }


def test_a_symbol_needs_three_checked_outcomes_to_be_a_top_performer(fixture):
    top = top_performers(f(scanner="rsi"), limit=10)  # BTC twice, ETH once
    assert top["best_symbols"] == top["worst_symbols"] == []
    assert len(top["best_signals"]) == 3


def test_the_limit_bounds_every_list(fixture):
    top = top_performers(f(), limit=1)
    assert [len(top[key]) for key in ("best_signals", "worst_signals")] == [1, 1]
    assert [len(top[key]) for key in ("best_symbols", "worst_symbols")] == [1, 1]


# --- in the database ----------------------------------------------------------------------------


def test_the_aggregation_runs_in_the_database(fixture):
    """The number of queries does not grow with the rows: aggregates, not loops over rows."""
    with CaptureQueriesContext(connection) as small:
        performance_report(f())
    for i in range(30):
        signal = SignalFactory(
            scanner="rsi", symbol="BTC/USDT", as_of=NOW - 10 * DAY + i * timedelta(minutes=1)
        )
        CheckedOutcomeFactory(signal=signal, return_pct=float(i % 7 - 3))
    with CaptureQueriesContext(connection) as large:
        performance_report(f())
    assert len(large.captured_queries) == len(small.captured_queries)


# --- recommendations ----------------------------------------------------------------------------


def outcomes(
    wins: int,
    losses: int = 0,
    neutral: int = 0,
    *,
    scanner: str = "rsi",
    tier: str = "",
    symbol: str = "BTC/USDT",
) -> None:
    """Signals with checked 24h outcomes: `wins` at +6 %, `losses` at −4 %, `neutral` at +1 %."""
    returns = [6.0] * wins + [-4.0] * losses + [1.0] * neutral
    for i, return_pct in enumerate(returns):
        signal = SignalFactory(
            scanner=scanner,
            tier=tier,
            symbol=symbol,
            as_of=NOW - 10 * DAY + i * timedelta(minutes=1),
        )
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct)


def said(filters: PerformanceFilters | None = None) -> list[tuple[str, str]]:
    advice = recommendations(filters or f())
    return [(item["priority"], item["topic"]) for item in advice["recommendations"]]


def test_no_recommendation_from_the_small_fixture(fixture):
    advice = recommendations(f())
    assert advice["recommendations"] == []
    reasons = {item["topic"]: item["reason"] for item in advice["withheld"]}
    assert reasons["overall"] == "all signals: 10 checked outcomes, fewer than 30 — " + TOO_FEW
    assert reasons["tier_1"].startswith("TIER_1: 5 checked outcomes")


def test_29_wins_of_29_are_still_too_few_to_judge():
    outcomes(29, tier="TIER_1")
    assert said() == []
    assert performance_summary(f())["judgement"] == TOO_FEW


def test_a_scanner_with_fewer_than_30_outcomes_is_never_named(db):
    outcomes(40, scanner="rsi")
    outcomes(0, 29, scanner="mss")  # 0 of 29: would be the worst, but is too small
    advice = recommendations(f())
    topics = [item["topic"] for item in advice["recommendations"]]
    assert "best_scanner" not in topics
    assert "worst_scanner" not in topics
    assert any(
        "1 scanner(s) with at least 30" in item["reason"]
        for item in advice["withheld"]
        if item["topic"] == "scanners"
    )


def test_the_min_sample_is_a_setting(settings):
    settings.ANALYTICS_MIN_SAMPLE = 5
    outcomes(10)
    assert said() == [("HIGH", "overall")]
    assert performance_summary(f())["judgement"] == "excellent"


@pytest.mark.parametrize(
    ("wins", "losses", "expected", "judgement"),
    [
        (90, 10, [("HIGH", "overall")], "excellent"),  # 90 % [82.6, 94.5]
        (130, 70, [("MEDIUM", "overall")], "good"),  # 65 % [58.2, 71.3]
        (40, 60, [("URGENT", "overall")], "poor"),  # 40 % [30.9, 49.8]
        (22, 18, [], "inconclusive"),  # 55 % [39.8, 69.3]: either side of 55 %
        (75, 25, [("MEDIUM", "overall")], "good"),  # 75 % [65.7, 82.5]: not surely ≥ 70
    ],
)
def test_the_overall_verdict_needs_its_interval(wins, losses, expected, judgement):
    outcomes(wins, losses)
    assert said() == expected
    assert performance_summary(f())["judgement"] == judgement


def test_the_overall_recommendation_shows_its_evidence():
    outcomes(90, 10)
    item = recommendations(f())["recommendations"][0]
    low, high = wilson_interval(90, 100)
    assert item["evidence"] == {
        "group": "all signals",
        "win_rate": 90.0,
        "low": round(100 * low, 4),
        "high": round(100 * high, 4),
        "n": 100,
    }
    assert item["message"] == (
        "Excellent: the win rate is 90.0 % (95 % interval 82.6–94.5 %, n = 100)."
    )


def test_a_weak_tier_1_asks_for_a_threshold_of_90():
    outcomes(20, 30, tier="TIER_1")  # 40 % [27.6, 53.8] < 60
    advice = recommendations(f())["recommendations"]
    tier_1 = [item for item in advice if item["topic"] == "tier_1"]
    assert [item["priority"] for item in tier_1] == ["URGENT"]
    assert "Raise the TIER_1 threshold to 90" in tier_1[0]["message"]


def test_a_strong_tier_1_may_be_lowered():
    outcomes(45, 5, tier="TIER_1")  # 90 % [78.6, 95.7] ≥ 75
    tier_1 = [i for i in recommendations(f())["recommendations"] if i["topic"] == "tier_1"]
    assert [item["priority"] for item in tier_1] == ["MEDIUM"]
    assert "Consider lowering the TIER_1 threshold" in tier_1[0]["message"]


def test_a_tier_1_between_60_and_75_gets_no_advice():
    outcomes(34, 16, tier="TIER_1")  # 68 % [54.2, 79.2]: neither < 60 nor ≥ 75 for sure
    advice = recommendations(f())
    assert "tier_1" not in [item["topic"] for item in advice["recommendations"]]
    assert "tier_1" in [item["topic"] for item in advice["withheld"]]


def test_best_and_worst_scanner_are_named_when_their_intervals_do_not_overlap():
    outcomes(40, 10, scanner="rsi")  # 80 % [67.0, 88.8]
    outcomes(10, 40, scanner="mss", symbol="ETH/USDT")  # 20 % [11.2, 33.0]
    outcomes(28, 22, scanner="social", symbol="SOL/USDT")  # 56 % [42.3, 68.8]
    advice = {item["topic"]: item for item in recommendations(f())["recommendations"]}
    assert advice["best_scanner"]["evidence"]["group"] == "rsi"
    assert advice["best_scanner"]["priority"] == "LOW"
    assert advice["best_scanner"]["message"].endswith("better than mss.")  # social overlaps
    assert advice["worst_scanner"]["evidence"]["group"] == "mss"
    assert advice["worst_scanner"]["priority"] == "MEDIUM"


def test_the_best_scanner_above_every_other_says_so():
    outcomes(45, 5, scanner="rsi")  # 90 % [78.6, 95.7]
    outcomes(10, 40, scanner="mss", symbol="ETH/USDT")
    outcomes(12, 38, scanner="social", symbol="SOL/USDT")
    best = [i for i in recommendations(f())["recommendations"] if i["topic"] == "best_scanner"]
    assert best[0]["message"].endswith("better than every other scanner.")


def test_overlapping_scanners_are_not_ranked():
    outcomes(30, 20, scanner="rsi")  # 60 % [46.2, 72.4]
    outcomes(25, 25, scanner="mss", symbol="ETH/USDT")  # 50 % [36.6, 63.4]
    advice = recommendations(f())
    topics = [item["topic"] for item in advice["recommendations"]]
    assert "best_scanner" not in topics
    assert "worst_scanner" not in topics
    assert any("overlap" in item["reason"] for item in advice["withheld"])


def test_recommendations_follow_the_filters():
    outcomes(20, 30, tier="TIER_1")
    # Filtered to TIER_2 there is nothing to say about TIER_1 (and nothing at all).
    assert said(f(tier="TIER_2")) == []
    assert said(replace(f(), days=1)) == []


# --- the report's shared window -------------------------------------------------------------------


def test_the_report_agrees_with_the_separate_services(fixture):
    """The report reads the window once (on PostgreSQL with GROUPING SETS); every section equals
    what the services compute on their own, for every kind of filter."""
    only_pending = SignalFactory(scanner="social", symbol="ETH/USDT", as_of=NOW - DAY)
    OutcomeCheckFactory(signal=only_pending, horizon="24h")  # a group without checked outcomes
    watchlist = WatchlistFactory()
    watchlist.coins.create(symbol="BTC/USDT")
    for filters in (
        f(),
        f(days=None),
        f(days=1),
        f(horizon="1h"),
        f(tier="TIER_1"),
        f(tier="TIER_2"),
        f(scanner="rsi"),
        f(direction="SHORT"),
        f(symbol="SOL/USDT"),
        f(watchlist_id=watchlist.pk),
    ):
        report = performance_report(filters, limit=2)
        assert report["summary"] == performance_summary(filters)
        for key, dimension in (
            ("by_scanner", "scanner"),
            ("by_tier", "tier"),
            ("by_interval", "horizon"),
            ("by_signal_type", "direction"),
        ):
            assert report[key] == performance_by(dimension, filters)["groups"], (filters, key)
        assert report["top_performers"] == top_performers(filters, limit=2)
        assert report["recommendations"] == recommendations(filters)
    groups = performance_report(f())["by_scanner"]
    assert "social" not in [row["group"] for row in groups]


def test_the_reports_top_signals_rank_ties_and_missing_returns_as_the_services_do(fixture):
    """On PostgreSQL the report ranks the top signals in its window query; ties (by signal id),
    outcomes without an adjusted return (where the database places nulls) and every field agree
    with `top_performers`, at every limit."""
    for i, adjusted in enumerate([7.5, 7.5, None, -2.25, None, -2.25, 0.1]):
        signal = SignalFactory(
            scanner="unified",
            symbol="ETH/USDT",
            tier="TIER_1" if i % 2 else "",
            as_of=NOW - 5 * DAY + i * timedelta(minutes=7),
        )
        CheckedOutcomeFactory(
            signal=signal,
            return_pct=1.0,
            adjusted_return_pct=adjusted,
            **({"outcome": "NEUTRAL"} if adjusted is None else {}),
        )
    for limit in (1, 2, 3, 5, 30):
        for filters in (f(), f(days=None), f(symbol="ETH/USDT"), f(horizon="1h"), f(days=1)):
            report = performance_report(filters, limit=limit)["top_performers"]
            assert report == top_performers(filters, limit=limit), (limit, filters)
            assert [type(row["as_of"]) for row in report["best_signals"]] == [
                type(row["as_of"]) for row in top_performers(filters, limit=limit)["best_signals"]
            ]


def test_the_report_makes_few_queries(fixture):
    with CaptureQueriesContext(connection) as report:
        performance_report(f())
    # PostgreSQL: the window (GROUPING SETS), the horizons, the best and worst signals (ranked in
    # one query). SQLite (no GROUPING SETS): count, states, overall, four dimensions, horizons,
    # the best and worst signals.
    assert len(report.captured_queries) <= (3 if connection.vendor == "postgresql" else 9)
