"""RSI screener: classic RSI(14), equal to TA-Lib on the real bundled data, and its rules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import talib

from market.file_validation import parse_file
from market.times import ms_to_datetime
from market.values import CandleSeries, Missing
from scanners.algorithms import RsiInputs, ScannerConfig, rsi, score_rsi

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "spot-1h"
START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = ScannerConfig()


def series(closes, start=START, symbol="X/USDT") -> CandleSeries:
    closes = np.asarray(closes, dtype=float)
    times = np.array([int((start + i * HOUR).timestamp() * 1000) for i in range(len(closes))])
    return CandleSeries(
        symbol, "1h", times, closes, closes, closes, closes, np.ones(len(closes)), closes * np.nan
    )


def as_of_after(candles: CandleSeries, count: int) -> datetime:
    """The moment the `count`-th candle of the series closes."""
    return ms_to_datetime(int(candles.close_time[count - 1]))


def sample_series(path: Path) -> CandleSeries:
    parsed = parse_file(path)
    v = parsed.values
    return CandleSeries(
        parsed.layout.symbol,
        "1h",
        parsed.times_ms,
        v["open"],
        v["high"],
        v["low"],
        v["close"],
        v["volume"],
        v["taker_buy_volume"],
    )


SAMPLE_FILES = sorted(SAMPLE.glob("*.csv.gz"))


def test_the_bundled_sample_is_there_to_compare_with():
    assert len(SAMPLE_FILES) >= 40


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name.split("-")[0])
def test_rsi_equals_talib_on_the_real_data_at_several_as_of_points(path):
    candles = sample_series(path)
    worst = 0.0
    checked = 0
    step = max((len(candles) - CONFIG.rsi_window) // 12, 1)
    for count in [*range(CONFIG.rsi_window, len(candles) + 1, step), len(candles)]:
        as_of = as_of_after(candles, count) + timedelta(minutes=30)  # between two closes
        result = score_rsi(
            RsiInputs.build(candles.symbol, as_of, candles, window=500), config=CONFIG
        )
        window = candles.close[count - CONFIG.rsi_window : count]
        expected = talib.RSI(window, timeperiod=14)[-1]
        worst = max(worst, abs(result.scores["rsi"] - expected))
        checked += 1
    assert checked >= 10
    assert worst <= 1e-6


def test_rsi_is_seeded_with_simple_means_then_smoothed_the_wilder_way():
    closes = np.array([10.0, 11, 10, 12, 12, 11, 13, 14, 13, 15, 14, 16, 15, 17, 16, 18, 15])
    changes = np.diff(closes)
    gain = np.clip(changes, 0, None)
    loss = np.clip(-changes, 0, None)
    avg_gain, avg_loss = gain[:14].mean(), loss[:14].mean()
    for up, down in zip(gain[14:], loss[14:], strict=True):
        avg_gain = (avg_gain * 13 + up) / 14
        avg_loss = (avg_loss * 13 + down) / 14
    assert rsi(closes) == pytest.approx(100 - 100 / (1 + avg_gain / avg_loss), abs=1e-12)
    assert rsi(closes) == pytest.approx(talib.RSI(closes, 14)[-1], abs=1e-12)


def test_rsi_of_fewer_than_fifteen_closes_is_refused():
    with pytest.raises(ValueError, match="at least 15 closes"):
        rsi(np.arange(14.0))


def test_fewer_than_fifteen_closes_leave_rsi_missing_with_no_direction():
    candles = series(np.arange(1.0, 15.0))
    result = score_rsi(
        RsiInputs.build("X/USDT", as_of_after(candles, 14), candles, window=500), config=CONFIG
    )
    assert result.scores == {}
    assert result.direction is None
    assert result.completeness == 0
    assert result.component == {"LONG": None, "SHORT": None}
    assert "only 14 closed 1h candles" in result.reasons[0]


def test_missing_candles_leave_rsi_missing_and_say_why():
    inputs = RsiInputs.build("X/USDT", START, Missing("no 1h candle of X/USDT"), window=500)
    result = score_rsi(inputs, config=CONFIG)
    assert result.completeness == 0
    assert result.inputs["rsi"] == {"missing": "no 1h candle of X/USDT"}
    assert result.reasons == ["RSI(14) unavailable: no 1h candle of X/USDT — scored no points"]


def test_a_price_that_never_moved_has_no_rsi_rather_than_talibs_zero():
    candles = series(np.full(30, 5.0))
    result = score_rsi(
        RsiInputs.build("X/USDT", as_of_after(candles, 30), candles, window=500), config=CONFIG
    )
    assert talib.RSI(candles.close, 14)[-1] == 0  # which would read as "deeply oversold"
    assert result.direction is None
    assert result.completeness == 0
    assert "did not move" in result.reasons[0]


def test_rsi_uses_only_the_last_rsi_window_candles():
    rng = np.random.default_rng(7)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 800)))
    candles = series(closes)
    config = replace(CONFIG, rsi_window=300)
    inputs = RsiInputs.build("X/USDT", as_of_after(candles, 800), candles, window=300)
    result = score_rsi(inputs, config=config)
    assert result.inputs["candles"] == 300
    assert result.scores["rsi"] == pytest.approx(talib.RSI(closes[-300:], 14)[-1], abs=1e-9)


def _result_for(value_config: ScannerConfig):
    rng = np.random.default_rng(3)
    candles = series(100 + np.cumsum(rng.normal(0, 1, 100)))
    inputs = RsiInputs.build("X/USDT", as_of_after(candles, 100), candles, window=500)
    return score_rsi(inputs, config=value_config)


VALUE = _result_for(CONFIG).scores["rsi"]


@pytest.mark.parametrize(
    ("oversold", "overbought", "direction"),
    [
        (VALUE, 99.0, None),  # RSI equal to the oversold threshold: not below it
        (VALUE + 1e-9, 99.0, "LONG"),
        (1.0, VALUE, None),  # RSI equal to the overbought threshold: not above it
        (1.0, VALUE - 1e-9, "SHORT"),
        (1.0, 99.0, None),
    ],
)
def test_rsi_fires_only_strictly_beyond_its_thresholds(oversold, overbought, direction):
    config = replace(CONFIG, rsi_oversold_threshold=oversold, rsi_overbought_threshold=overbought)
    result = _result_for(config)
    assert result.direction == direction
    assert result.completeness == 1


def test_the_component_is_100_minus_rsi_long_and_rsi_short():
    result = _result_for(CONFIG)
    assert result.component == {"LONG": pytest.approx(100 - VALUE), "SHORT": VALUE}


@pytest.mark.parametrize(
    ("closes", "direction", "words"),
    [
        (100 - np.cumsum([1 if i % 4 else -0.5 for i in range(40)]), "LONG", "oversold"),
        (100 + np.cumsum([1 if i % 4 else -0.5 for i in range(40)]), "SHORT", "overbought"),
    ],
)
def test_a_falling_market_is_oversold_long_and_a_rising_one_overbought_short(
    closes, direction, words
):
    candles = series(closes)
    result = score_rsi(
        RsiInputs.build("X/USDT", as_of_after(candles, 40), candles, window=500), config=CONFIG
    )
    assert result.direction == direction
    assert words in result.reasons[0]


def test_candles_after_as_of_never_change_the_rsi():
    rng = np.random.default_rng(11)
    closes = 50 + np.cumsum(rng.normal(0, 1, 700))
    full = series(closes)
    as_of = as_of_after(full, 600)
    cut = series(closes[:600])
    from_cut = score_rsi(RsiInputs.build("X/USDT", as_of, cut, window=500), config=CONFIG)
    from_full = score_rsi(RsiInputs.build("X/USDT", as_of, full, window=500), config=CONFIG)
    assert from_full == from_cut


def test_the_inputs_are_plain_json():
    result = _result_for(CONFIG)
    assert json.loads(json.dumps(result.inputs)) == result.inputs
    assert result.inputs["candles"] == 100
