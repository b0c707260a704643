"""Smart money: the accumulation/distribution table of docs/SCORING.md, point by point."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from market.times import ms_to_datetime
from market.values import CandleSeries, Funding, Missing, OpenInterestNow, Social
from scanners.algorithms import (
    FundingPer8h,
    OpenInterestChange,
    Pressure,
    ScannerConfig,
    SmartMoneyInputs,
    score_smart_money,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
AS_OF = START + 300 * HOUR
CONFIG = ScannerConfig()
GONE = Missing("not in this test")


def nothing(**given) -> SmartMoneyInputs:
    """Inputs with everything missing except what is given."""
    base = {
        "pressure": GONE,
        "funding": GONE,
        "social_activity": GONE,
        "price_change_7d_pct": GONE,
        "open_interest": GONE,
    }
    return SmartMoneyInputs("X/USDT", AS_OF, **{**base, **given})


def points(inputs: SmartMoneyInputs) -> tuple[float, float]:
    result = score_smart_money(inputs, config=CONFIG)
    return result.scores["accumulation"], result.scores["distribution"]


def taker(buy: float) -> Pressure:
    return Pressure(buy, 1 - buy, "taker", 24)


def per_8h(rate: float) -> FundingPer8h:
    return FundingPer8h(rate, rate, 8.0)


@pytest.mark.parametrize(
    ("buy_share", "accumulation", "distribution"),
    [
        (0.5501, 3, 0),
        (0.55, 2, 0),
        (0.5201, 2, 0),
        (0.52, 1, 0),
        (0.5001, 1, 0),
        (0.50, 0, 0),  # sell share 0.50 is not above 0.50 either
        (0.4999, 0, 1),
        (0.48, 0, 1),
        (0.4799, 0, 2),
        (0.45, 0, 2),
        (0.4499, 0, 3),
    ],
)
def test_taker_buy_share_above_each_threshold_scores_its_points(
    buy_share, accumulation, distribution
):
    acc, dist = points(nothing(pressure=taker(buy_share)))
    assert (acc, dist) == (accumulation, distribution)


@pytest.mark.parametrize(
    ("buy", "sell", "accumulation", "distribution"),
    [
        (0.56, 0.30, 3, 0),
        (0.30, 0.56, 0, 3),
        (0.45, 0.45, 0, 0),  # flat candles are neither up nor down
        (0.51, 0.49, 1, 0),
    ],
)
def test_up_candle_share_scores_buying_and_down_candle_share_selling(
    buy, sell, accumulation, distribution
):
    assert points(nothing(pressure=Pressure(buy, sell, "up_candles", 72))) == (
        accumulation,
        distribution,
    )


@pytest.mark.parametrize(
    ("rate", "accumulation", "distribution"),
    [
        (-0.0001, 2, 0),
        (0.0, 1, 0),  # not below 0, but below 0.01 %
        (0.0000999, 1, 0),
        (0.0001, 0, 0),  # 0.01 % is not below 0.01 %
        (0.0003, 0, 0),
        (0.000301, 0, 1),
        (0.0005, 0, 1),
        (0.000501, 0, 2),
    ],
)
def test_funding_per_8h_scores_negative_as_accumulation_and_high_as_distribution(
    rate, accumulation, distribution
):
    assert points(nothing(funding=per_8h(rate))) == (accumulation, distribution)


@pytest.mark.parametrize(
    ("activity", "accumulation", "distribution"),
    [
        (29.9, 2, 0),
        (30, 1, 0),
        (44.9, 1, 0),
        (45, 0, 0),
        (55, 0, 0),
        (55.1, 0, 1),
        (70, 0, 1),
        (70.1, 0, 2),
    ],
)
def test_social_activity_low_is_accumulation_and_high_is_distribution(
    activity, accumulation, distribution
):
    assert points(nothing(social_activity=activity)) == (accumulation, distribution)


@pytest.mark.parametrize(
    ("change", "accumulation", "distribution"),
    [
        (0.0, 2, 0),
        (4.99, 2, 0),
        (-4.99, 2, 0),
        (5.0, 1, 0),
        (-5.0, 1, 0),
        (9.99, 1, 0),
        (-9.99, 1, 0),
        (10.0, 0, 0),
        (-10.0, 0, 0),
        (10.01, 0, 1),
        (20.0, 0, 1),
        (20.01, 0, 2),
        (-30.0, 0, 0),  # a dump is neither sideways nor a pump
    ],
)
def test_seven_day_change_sideways_is_accumulation_and_a_pump_is_distribution(
    change, accumulation, distribution
):
    assert points(nothing(price_change_7d_pct=change)) == (accumulation, distribution)


@pytest.mark.parametrize(
    ("oi_change", "price_change", "accumulation", "distribution"),
    [
        (5.01, 1.99, 1, 0),
        (5.01, -1.99, 1, 0),
        (5.0, 0.0, 0, 0),
        (6.0, 2.0, 0, 0),
        (6.0, -2.0, 0, 0),
        (10.01, 5.01, 0, 1),
        (10.0, 6.0, 0, 0),
        (11.0, 5.0, 0, 0),
        (-20.0, 0.0, 0, 0),
    ],
)
def test_open_interest_rising_with_flat_price_is_accumulation_and_with_a_rally_distribution(
    oi_change, price_change, accumulation, distribution
):
    inputs = nothing(open_interest=OpenInterestChange(oi_change, price_change))
    assert points(inputs) == (accumulation, distribution)


def test_a_point_awarded_is_said_in_a_sentence():
    result = score_smart_money(nothing(pressure=taker(0.57)), config=CONFIG)
    assert "taker buy share 0.57 > 0.55: +3 accumulation" in result.reasons


def test_every_missing_input_is_named_scores_nothing_and_lowers_completeness():
    result = score_smart_money(
        nothing(funding=Missing("no funding settlement at or before as_of")), config=CONFIG
    )
    assert result.completeness == 0
    assert result.scores == {}
    assert result.direction is None
    assert result.component == {"LONG": None, "SHORT": None}
    assert (
        "funding unavailable: no funding settlement at or before as_of — scored no points"
        in result.reasons
    )
    assert sum("unavailable" in reason for reason in result.reasons) == 5
    assert result.inputs["funding"] == {"missing": "no funding settlement at or before as_of"}


@pytest.mark.parametrize("available", [1, 2, 3, 4, 5])
def test_completeness_is_the_share_of_the_five_inputs_available(available):
    given = {
        "pressure": taker(0.5),
        "funding": per_8h(0.0002),
        "social_activity": 50.0,
        "price_change_7d_pct": 12.0,
        "open_interest": OpenInterestChange(0.0, 0.0),
    }
    inputs = nothing(**dict(list(given.items())[:available]))
    assert score_smart_money(inputs, config=CONFIG).completeness == available / 5


ACCUMULATING = nothing(
    pressure=taker(0.56),  # 3
    funding=per_8h(-0.0001),  # 2
    social_activity=40.0,  # 1
    price_change_7d_pct=7.0,  # 1
    open_interest=OpenInterestChange(1.0, 0.0),  # 0
)
DISTRIBUTING = nothing(
    pressure=taker(0.40),  # 3
    funding=per_8h(0.0006),  # 2
    social_activity=60.0,  # 1
    price_change_7d_pct=15.0,  # 1
    open_interest=OpenInterestChange(1.0, 0.0),  # 0
)


def test_seven_accumulation_points_say_long_with_component_points_times_ten():
    result = score_smart_money(ACCUMULATING, config=CONFIG)
    assert result.scores == {"accumulation": 7, "distribution": 0}
    assert result.direction == "LONG"
    assert result.component == {"LONG": 70, "SHORT": 0}
    assert result.completeness == 1
    assert "accumulation 7/10 ≥ 7: LONG" in result.reasons


def test_six_accumulation_points_say_nothing():
    result = score_smart_money(replace(ACCUMULATING, social_activity=50.0), config=CONFIG)
    assert result.scores["accumulation"] == 6
    assert result.direction is None
    assert result.component["LONG"] == 60


def test_seven_distribution_points_say_short_with_component_points_times_ten():
    result = score_smart_money(DISTRIBUTING, config=CONFIG)
    assert result.scores == {"accumulation": 0, "distribution": 7}
    assert result.direction == "SHORT"
    assert result.component == {"LONG": 0, "SHORT": 70}


def test_the_alert_thresholds_are_settings():
    config = replace(CONFIG, accumulation_alert_threshold=8, distribution_alert_threshold=6)
    assert score_smart_money(ACCUMULATING, config=config).direction is None
    assert score_smart_money(
        replace(DISTRIBUTING, social_activity=50.0), config=config
    ).direction == ("SHORT")


def test_the_inputs_are_plain_json():
    result = score_smart_money(ACCUMULATING, config=CONFIG)
    assert json.loads(json.dumps(result.inputs)) == result.inputs


# --- building the inputs from a source's values ---------------------------------------------------


def series(closes, *, opens=None, volumes=None, taker_buy=None, start=START) -> CandleSeries:
    closes = np.asarray(closes, dtype=float)
    n = len(closes)
    times = np.array([int((start + i * HOUR).timestamp() * 1000) for i in range(n)])
    opens = closes if opens is None else np.asarray(opens, dtype=float)
    volumes = np.ones(n) if volumes is None else np.asarray(volumes, dtype=float)
    taker_buy = np.full(n, np.nan) if taker_buy is None else np.asarray(taker_buy, dtype=float)
    return CandleSeries("X/USDT", "1h", times, opens, closes, closes, closes, volumes, taker_buy)


def end_of(candles: CandleSeries) -> datetime:
    return ms_to_datetime(int(candles.close_time[-1]))


def build(candles, **given) -> SmartMoneyInputs:
    values = {"funding": GONE, "open_interest": GONE, "social": GONE, **given}
    return SmartMoneyInputs.build("X/USDT", end_of(candles), candles=candles, **values)


def test_pressure_is_the_taker_buy_share_of_the_last_24h_volume_when_the_source_has_it():
    n = 100
    taker_buy = np.full(n, 0.9)  # old candles: heavy buying, outside the 24 h window
    taker_buy[-24:] = 0.6
    inputs = build(series(np.full(n, 10.0), volumes=np.ones(n), taker_buy=taker_buy))
    assert inputs.pressure == Pressure(pytest.approx(0.6), pytest.approx(0.4), "taker", 24)
    result = score_smart_money(inputs, config=CONFIG)
    assert "taker buy share 0.6 > 0.55: +3 accumulation" in result.reasons
    assert any("taker-buy share of the last 24 h volume" in reason for reason in result.reasons)


def test_without_taker_volume_pressure_is_the_up_candle_share_of_72_candles_and_says_so():
    n = 100
    opens = np.full(n, 10.0)
    closes = np.full(n, 10.0)
    closes[-72:-12] = 11.0  # 60 up-candles
    closes[-12:] = 9.0  # 12 down-candles
    opens[: n - 72] = 0.0  # older candles would be up-candles: outside the window
    inputs = build(series(closes, opens=opens))
    assert inputs.pressure.method == "up_candles"
    assert inputs.pressure.candles == 72
    assert inputs.pressure.buy_share == pytest.approx(60 / 72)
    assert inputs.pressure.sell_share == pytest.approx(12 / 72)
    result = score_smart_money(inputs, config=CONFIG)
    assert any("the source has no taker volume" in reason for reason in result.reasons)
    assert any("up-candle volume share" in reason for reason in result.reasons)


def test_seven_day_change_is_the_last_close_against_the_close_168_hours_before():
    closes = np.full(200, 100.0)
    closes[-169] = 80.0
    inputs = build(series(closes))
    assert inputs.price_change_7d_pct == pytest.approx(25.0)


def test_seven_day_change_is_missing_when_that_candle_is_absent():
    full = series(np.arange(1.0, 201.0))
    keep = np.ones(200, dtype=bool)
    keep[200 - 169] = False  # the candle 168 h before the last one
    gapped = CandleSeries(
        "X/USDT",
        "1h",
        full.open_time[keep],
        full.open[keep],
        full.high[keep],
        full.low[keep],
        full.close[keep],
        full.volume[keep],
        full.taker_buy_volume[keep],
    )
    inputs = build(gapped)
    assert isinstance(inputs.price_change_7d_pct, Missing)
    assert "168 h before the last one" in inputs.price_change_7d_pct.reason


def test_funding_of_another_interval_is_normalised_to_8h_and_the_reason_says_so():
    candles = series(np.full(30, 1.0))
    funding = Funding("X/USDT", "X/USDT:USDT", 0.0002, end_of(candles), timedelta(hours=4))
    inputs = build(candles, funding=funding)
    assert inputs.funding.rate_8h == pytest.approx(0.0004)
    result = score_smart_money(inputs, config=CONFIG)
    assert (
        "funding 0.0400 % per 8 h (normalised from 0.0200 % per 4 h) > 0.03 %: +1 distribution"
        in result.reasons
    )


def test_funding_of_an_unknown_interval_is_taken_as_per_8h_and_says_so():
    candles = series(np.full(30, 1.0))
    funding = Funding("X/USDT", "X/USDT:USDT", -0.0001, end_of(candles), Missing("one settlement"))
    result = score_smart_money(build(candles, funding=funding), config=CONFIG)
    assert any("interval unknown, taken as per 8 h" in reason for reason in result.reasons)
    assert result.scores["accumulation"] >= 2


def test_social_activity_is_the_galaxy_score_and_missing_without_lunarcrush():
    candles = series(np.full(30, 1.0))
    social = Social("X/USDT", START, 28.0, 100, Missing("n/a"), Missing("n/a"), Missing("n/a"))
    assert build(candles, social=social).social_activity == 28.0
    no_key = Missing("no LunarCrush key")
    assert build(candles, social=no_key).social_activity == no_key


def test_open_interest_change_comes_with_the_24h_price_change_from_candles():
    closes = np.full(50, 100.0)
    closes[-25] = 99.0
    oi = OpenInterestNow("X/USDT", "X/USDT:USDT", START, 110.0, Missing("-"), 100.0, 10.0)
    inputs = build(series(closes), open_interest=oi)
    assert inputs.open_interest.open_interest_change_pct == 10.0
    assert inputs.open_interest.price_change_pct == pytest.approx(100 / 99 * 100 - 100)


def test_candles_after_as_of_never_change_the_result():
    rng = np.random.default_rng(5)
    n = 400
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.roll(closes, 1)
    volumes = rng.uniform(1, 5, n)
    full = series(closes, opens=opens, volumes=volumes)
    cut = series(closes[:300], opens=opens[:300], volumes=volumes[:300])
    as_of = end_of(cut) + timedelta(minutes=59)
    from_cut = SmartMoneyInputs.build(
        "X/USDT", as_of, candles=cut, funding=GONE, open_interest=GONE, social=GONE
    )
    from_full = SmartMoneyInputs.build(
        "X/USDT", as_of, candles=full, funding=GONE, open_interest=GONE, social=GONE
    )
    assert from_full == from_cut
    assert score_smart_money(from_full, config=CONFIG) == score_smart_money(from_cut, config=CONFIG)
