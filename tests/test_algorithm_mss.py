"""MSS, new-listing discovery: the point tables, the formula and who gets scored at all."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from market.values import (
    CandleSeries,
    Fundamentals,
    LongShortRatio,
    Missing,
    OpenInterestNow,
    Social,
)
from scanners.algorithms import FundingPer8h, MssInputs, Pressure, ScannerConfig, score_mss
from scanners.algorithms.mss import MAX_POINTS, TABLES, circulating_pct

AS_OF = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = ScannerConfig()
GONE = Missing("not in this test")


def listed(hours_ago: float, **given) -> MssInputs:
    """A coin listed `hours_ago` before AS_OF; every input missing except the ones given."""
    values = dict.fromkeys(
        (
            "fdv_usd",
            "circulating_pct",
            "alt_rank",
            "galaxy_score",
            "sentiment",
            "social_volume_change_pct",
            "open_interest_change_pct",
            "funding",
            "long_short_ratio",
            "pressure",
        ),
        GONE,
    )
    return MssInputs("NEW/USDT", AS_OF, AS_OF - hours_ago * HOUR, **{**values, **given})


TABLE_CASES = [
    # (input, value, points)
    ("fdv_usd", 5e6, 15),
    ("fdv_usd", 5e6 + 1, 13),
    ("fdv_usd", 10e6, 13),
    ("fdv_usd", 10e6 + 1, 10),
    ("fdv_usd", 25e6, 10),
    ("fdv_usd", 25e6 + 1, 6),
    ("fdv_usd", 50e6, 6),
    ("fdv_usd", 50e6 + 1, 2),
    ("age_hours", 24, 12),
    ("age_hours", 24.01, 10),
    ("age_hours", 48, 10),
    ("age_hours", 48.01, 7),
    ("age_hours", 72, 7),
    ("age_hours", 72.01, 4),
    ("age_hours", 168, 4),
    ("age_hours", 168.01, 1),
    ("circulating_pct", 20, 8),
    ("circulating_pct", 20.01, 6),
    ("circulating_pct", 40, 6),
    ("circulating_pct", 40.01, 4),
    ("circulating_pct", 60, 4),
    ("circulating_pct", 60.01, 2),
    ("alt_rank", 50, 10),
    ("alt_rank", 51, 8),
    ("alt_rank", 100, 8),
    ("alt_rank", 101, 5),
    ("alt_rank", 200, 5),
    ("alt_rank", 201, 3),
    ("alt_rank", 500, 3),
    ("alt_rank", 501, 1),
    ("galaxy_score", 75, 8),
    ("galaxy_score", 74.9, 6),
    ("galaxy_score", 65, 6),
    ("galaxy_score", 64.9, 4),
    ("galaxy_score", 50, 4),
    ("galaxy_score", 49.9, 1),
    ("sentiment", 70, 6),
    ("sentiment", 69.9, 4),
    ("sentiment", 60, 4),
    ("sentiment", 59.9, 2),
    ("sentiment", 50, 2),
    ("sentiment", 49.9, 0),
    ("social_volume_change_pct", 200, 6),
    ("social_volume_change_pct", 199.9, 5),
    ("social_volume_change_pct", 100, 5),
    ("social_volume_change_pct", 99.9, 3.5),
    ("social_volume_change_pct", 50, 3.5),
    ("social_volume_change_pct", 49.9, 2),
    ("social_volume_change_pct", 25, 2),
    ("social_volume_change_pct", 24.9, 0.5),
    ("open_interest_change_pct", 200, 12),
    ("open_interest_change_pct", 199.9, 10),
    ("open_interest_change_pct", 100, 10),
    ("open_interest_change_pct", 99.9, 7),
    ("open_interest_change_pct", 50, 7),
    ("open_interest_change_pct", 49.9, 4),
    ("open_interest_change_pct", 25, 4),
    ("open_interest_change_pct", 24.9, 1),
    ("open_interest_change_pct", 0, 1),
    ("open_interest_change_pct", -0.1, 0),
    ("funding", 0.0001, 8),  # 0.01 %
    ("funding", 0.0004, 8),  # 0.04 %: still the best band
    ("funding", 0.00040001, 4),
    ("funding", 0.01, 4),
    ("funding", 0.0000999, 5),  # positive but below 0.01 %
    ("funding", 0.0, 1),
    ("funding", -0.0001, 1),
    ("long_short_ratio", 1.5, 10),
    ("long_short_ratio", 2.5, 10),
    ("long_short_ratio", 2.5001, 5),
    ("long_short_ratio", 4.0, 5),
    ("long_short_ratio", 1.4999, 7),
    ("long_short_ratio", 1.2, 7),
    ("long_short_ratio", 1.1999, 4),
    ("long_short_ratio", 1.0, 4),
    ("long_short_ratio", 0.9999, 1),
    ("buy_share", 0.5501, 5),
    ("buy_share", 0.55, 0),
]


@pytest.mark.parametrize(("name", "value", "expected"), TABLE_CASES)
def test_each_band_of_each_table_gives_its_points(name, value, expected):
    _phase, table, _label = TABLES[name]
    assert table.score(value)[0] == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [case for case in TABLE_CASES if case[0] not in ("age_hours",)],
)
def test_each_input_scores_its_band_through_score_mss(name, value, expected):
    given = {
        "funding": {"funding": FundingPer8h(value, value, 8.0)},
        "buy_share": {"pressure": Pressure(value, 1 - value, "taker", 24)},
    }.get(name, {name: value})
    result = score_mss(listed(10, **given), config=CONFIG)  # age 10 h: 12 of 12 points
    assert result.scores["points"] == 12 + expected
    assert result.scores["possible"] == 12 + TABLES[name][1].maximum
    assert result.completeness == pytest.approx(2 / 11)


def test_the_maxima_are_35_discovery_30_social_35_validation():
    per_phase: dict[str, float] = {}
    for phase, table, _label in TABLES.values():
        per_phase[phase] = per_phase.get(phase, 0) + table.maximum
    assert per_phase == {"discovery": 35, "social": 30, "validation": 35}
    assert MAX_POINTS == 100


@pytest.mark.parametrize(
    ("hours_ago", "scored"),
    [(0, True), (71.99, True), (72, False), (500, False)],
)
def test_only_coins_listed_less_than_mss_max_age_hours_ago_are_scored(hours_ago, scored):
    assert (score_mss(listed(hours_ago), config=CONFIG) is not None) is scored


def test_a_coin_of_unknown_listing_time_is_not_scored():
    inputs = replace(listed(10), listed_at=Missing("no market"))
    assert score_mss(inputs, config=CONFIG) is None


def test_max_age_is_a_setting():
    assert score_mss(listed(100), config=replace(CONFIG, mss_max_age_hours=200)) is not None


def test_mss_is_points_over_the_maximum_of_the_inputs_available():
    inputs = listed(30, fdv_usd=8e6, sentiment=55.0)  # 10 of 12, 13 of 15, 2 of 6
    result = score_mss(inputs, config=CONFIG)
    assert result.scores["mss"] == pytest.approx(100 * 25 / 33)
    assert result.completeness == pytest.approx(3 / 11)
    assert result.component == {"LONG": result.scores["mss"], "SHORT": None}
    assert sum("unavailable" in reason for reason in result.reasons) == 8


BEST = {
    "fdv_usd": 4e6,
    "circulating_pct": 10.0,
    "alt_rank": 20,
    "galaxy_score": 80.0,
    "sentiment": 75.0,
    "social_volume_change_pct": 300.0,
    "open_interest_change_pct": 250.0,
    "funding": FundingPer8h(0.0002, 0.0002, 8.0),
    "long_short_ratio": 2.0,
    "pressure": Pressure(0.6, 0.4, "taker", 24),
}


def test_a_perfect_new_listing_scores_100_and_says_long():
    result = score_mss(listed(5, **BEST), config=CONFIG)
    assert result.scores["mss"] == 100
    assert result.completeness == 1
    assert result.direction == "LONG"
    assert (result.scores["discovery"], result.scores["social"]) == (35, 30)
    assert result.scores["validation"] == 35


def test_mss_at_the_threshold_says_long_and_just_below_says_nothing():
    # age 12 + FDV 15 + supply 8 + AltRank 10 + Galaxy 8 + sentiment 6 + social 6 + OI 12 +
    # funding 8 + ls 10 = 95 of 100 with buy share 0/5
    inputs = listed(5, **{**BEST, "pressure": Pressure(0.5, 0.5, "taker", 24)})
    result = score_mss(inputs, config=replace(CONFIG, mss_alert_threshold=95))
    assert result.scores["mss"] == 95
    assert result.direction == "LONG"
    result = score_mss(inputs, config=replace(CONFIG, mss_alert_threshold=95.01))
    assert result.direction is None


def test_below_the_minimum_completeness_a_high_mss_gives_no_signal_and_says_so():
    inputs = listed(5, fdv_usd=1e6, alt_rank=10, galaxy_score=90.0, sentiment=80.0)  # 5 of 11
    result = score_mss(inputs, config=CONFIG)
    assert result.scores["mss"] == 100
    assert result.completeness == pytest.approx(5 / 11)
    assert result.direction is None
    assert any("completeness 0.45 < 0.5: no signal" in reason for reason in result.reasons)


def test_at_the_minimum_completeness_a_high_mss_says_long():
    inputs = listed(5, fdv_usd=1e6, alt_rank=10, galaxy_score=90.0, sentiment=80.0)
    result = score_mss(inputs, config=replace(CONFIG, mss_min_completeness=5 / 11))
    assert result.direction == "LONG"


def test_a_missing_input_is_named_in_the_reasons_and_in_the_inputs():
    inputs = listed(5, funding=Missing("no funding settlement of NEW/USDT:USDT"))
    result = score_mss(inputs, config=CONFIG)
    assert "funding unavailable: no funding settlement of NEW/USDT:USDT — scored no points" in (
        result.reasons
    )
    assert result.inputs["funding"] == {"missing": "no funding settlement of NEW/USDT:USDT"}
    assert json.loads(json.dumps(result.inputs)) == result.inputs


def test_circulating_share_needs_both_supplies():
    both = Fundamentals("NEW/USDT", AS_OF, Missing("-"), 1e7, 25.0, 100.0)
    assert circulating_pct(both) == 25.0
    no_total = replace(both, total_supply=Missing("no total supply"))
    assert circulating_pct(no_total) == Missing("no total supply")


def test_inputs_are_built_from_the_sources_values():
    n = 30
    closes = np.full(n, 2.0)
    opens = np.full(n, 1.0)  # every candle an up-candle
    times = np.array([int((AS_OF - (n - i) * HOUR).timestamp() * 1000) for i in range(n)])
    candles = CandleSeries(
        "NEW/USDT", "1h", times, opens, closes, closes, closes, np.ones(n), np.full(n, np.nan)
    )
    social = Social("NEW/USDT", AS_OF, 70.0, 40, 1000.0, 150.0, 65.0)
    inputs = MssInputs.build(
        "NEW/USDT",
        AS_OF,
        listed_at=AS_OF - 30 * HOUR,
        candles=candles,
        fundamentals=Fundamentals("NEW/USDT", AS_OF, 1e6, 2e7, 30.0, 100.0),
        social=social,
        open_interest=OpenInterestNow("NEW/USDT", "NEW/USDT:USDT", AS_OF, 3.0, 6.0, 1.0, 200.0),
        funding=Missing("no perpetual"),
        long_short=LongShortRatio("NEW/USDT", AS_OF, 1.3, 0.565, 0.435),
    )
    result = score_mss(inputs, config=CONFIG)
    # age 10, FDV 10, supply 6, AltRank 10, Galaxy 6, sentiment 4, social volume 5, OI 12,
    # long/short 7, buy share (up-candles 1.0) 5; funding missing (max 8)
    assert result.scores["points"] == 75
    assert result.scores["possible"] == 92
    assert result.completeness == pytest.approx(10 / 11)
    assert result.inputs["buy_share_method"] == "up_candles"
