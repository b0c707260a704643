"""Social trending: LunarCrush's formula, else CoinGecko's trending rank, and the LONG rule."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from market.values import CandleSeries, Missing, Social, TrendingCoin
from scanners.algorithms import LunarCrushMetrics, ScannerConfig, SocialInputs, score_social
from scanners.algorithms.social import trending_rank

AS_OF = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = ScannerConfig()
NO_KEY = Missing("no LunarCrush key")
NOT_TRENDING = Missing("X is not among the 15 trending coins")


def lunar(galaxy=60.0, alt_rank=100, change=50.0, price=3.0) -> SocialInputs:
    return SocialInputs(
        "X/USDT", AS_OF, LunarCrushMetrics(galaxy, alt_rank, change), NOT_TRENDING, price
    )


def trending(rank, price=3.0) -> SocialInputs:
    return SocialInputs("X/USDT", AS_OF, NO_KEY, rank, price)


@pytest.mark.parametrize(
    ("galaxy", "alt_rank", "change", "expected"),
    [
        (60.0, 100, 50.0, 0.5 * 60 + 0.3 * 100 * 0.9 + 0.2 * 25),
        (80.0, 1, 400.0, 40 + 0.3 * 100 * 0.999 + 20),  # volume term capped at 100
        (50.0, 1000, 0.0, 25.0),  # AltRank 1000 and worse add nothing
        (50.0, 5000, 0.0, 25.0),
        (50.0, 500, -40.0, 25 + 15 - 4),  # a falling social volume subtracts, as written
        (100.0, 1, 1000.0, 0.5 * 100 + 0.3 * 100 * 0.999 + 20),
    ],
)
def test_with_lunarcrush_the_score_is_the_weighted_formula(galaxy, alt_rank, change, expected):
    result = score_social(lunar(galaxy, alt_rank, change), config=CONFIG)
    assert result.scores["social"] == pytest.approx(expected)
    assert result.inputs["method"] == "lunarcrush"
    assert result.completeness == 1


@pytest.mark.parametrize(("rank", "expected"), [(1, 100), (2, 95), (6, 75), (7, 70), (15, 30)])
def test_without_lunarcrush_the_trending_rank_gives_100_minus_5_per_place(rank, expected):
    result = score_social(trending(rank), config=CONFIG)
    assert result.scores["social"] == expected
    assert result.inputs["method"] == "trending"
    assert result.completeness == 1
    assert any("LunarCrush metrics unavailable: no LunarCrush key" in r for r in result.reasons)


def test_not_trending_and_no_lunarcrush_is_no_score_with_completeness_0():
    result = score_social(trending(NOT_TRENDING), config=CONFIG)
    assert result.scores == {}
    assert result.direction is None
    assert result.completeness == 0
    assert result.component == {"LONG": None, "SHORT": None}
    assert any("not among the 15 trending coins" in reason for reason in result.reasons)
    assert any("no LunarCrush key" in reason for reason in result.reasons)


@pytest.mark.parametrize(
    ("rank", "price", "direction"),
    [
        (6, 0.01, "LONG"),  # 75: at the threshold, with a rising price
        (7, 5.0, None),  # 70: below it
        (6, 0.0, None),  # a flat price is not a positive change
        (1, -2.0, None),
        (1, Missing("no 1h candle 24 h before the last one"), None),
    ],
)
def test_long_needs_the_threshold_and_a_positive_24h_price_change(rank, price, direction):
    result = score_social(trending(rank, price), config=CONFIG)
    assert result.direction == direction
    assert result.component == {"LONG": result.scores["social"], "SHORT": None}


def test_a_missing_24h_price_change_is_named_and_lowers_completeness():
    result = score_social(trending(1, Missing("no candle 24 h before")), config=CONFIG)
    assert result.completeness == 0.5
    assert "24h price change unavailable: no candle 24 h before — scored no points" in (
        result.reasons
    )


def test_the_threshold_is_a_setting():
    config = replace(CONFIG, social_alert_threshold=95)
    assert score_social(trending(2), config=config).direction == "LONG"
    assert score_social(trending(3), config=config).direction is None


def test_a_missing_lunarcrush_part_scores_nothing_lowers_completeness_and_is_named():
    inputs = lunar(galaxy=Missing("no Galaxy score for X"), alt_rank=100, change=50.0)
    result = score_social(inputs, config=CONFIG)
    assert result.scores["social"] == pytest.approx(27 + 5)
    assert result.completeness == 0.75
    assert "Galaxy score unavailable: no Galaxy score for X — scored no points" in result.reasons


def test_lunarcrush_without_any_metric_falls_back_to_the_trending_rank():
    gone = Missing("-")
    inputs = SocialInputs("X/USDT", AS_OF, LunarCrushMetrics(gone, gone, gone), 2, 1.0)
    result = score_social(inputs, config=CONFIG)
    assert result.inputs["method"] == "trending"
    assert result.scores["social"] == 95


def test_trending_rank_is_found_by_base_currency():
    coins = [TrendingCoin("PEPE", 1, "Pepe", "pepe"), TrendingCoin("x", 4, "X", "x")]
    assert trending_rank("X/USDT", coins) == 4
    assert isinstance(trending_rank("BTC/USDT", coins), Missing)
    assert trending_rank("X/USDT", NO_KEY) == NO_KEY


def test_inputs_are_built_from_the_sources_values_and_plain_json():
    n = 30
    closes = np.full(n, 10.0)
    closes[-25] = 8.0
    times = np.array([int((AS_OF - (n - i) * HOUR).timestamp() * 1000) for i in range(n)])
    candles = CandleSeries(
        "X/USDT", "1h", times, closes, closes, closes, closes, np.ones(n), np.full(n, np.nan)
    )
    social = Social("X/USDT", AS_OF, 90.0, 10, 1e4, 300.0, Missing("no sentiment"))
    inputs = SocialInputs.build(
        "X/USDT", AS_OF, social=social, trending=Missing("live only"), candles=candles
    )
    assert inputs.price_change_24h_pct == pytest.approx(25.0)
    result = score_social(inputs, config=CONFIG)
    assert result.scores["social"] == pytest.approx(45 + 29.7 + 20)
    assert result.direction == "LONG"
    assert json.loads(json.dumps(result.inputs)) == result.inputs
