"""Whale activity and volume spike: components of the unified score, never signals of their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from market.times import ms_to_datetime
from market.values import CandleSeries, LargeTrades, Missing
from scanners.algorithms import (
    ScannerConfig,
    VolumeInputs,
    VolumeWindows,
    WhaleInputs,
    WhaleTrades,
    score_volume_spike,
    score_whale,
)

AS_OF = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = ScannerConfig()


def whale(buy, sell, total=1_000_000.0) -> WhaleInputs:
    return WhaleInputs("X/USDT", AS_OF, WhaleTrades(buy, sell, total, 100_000.0, 3))


@pytest.mark.parametrize(
    ("buy", "sell", "long", "short"),
    [
        (300_000, 0, 60, 0),  # net buy share 0.3 -> 200 × 0.3
        (500_000, 0, 100, 0),
        (800_000, 100_000, 100, 0),  # clamped to 100
        (0, 250_000, 0, 50),
        (200_000, 200_000, 0, 0),
        (0, 0, 0, 0),  # no whale trade in the hour: no whale pressure either way
        (150_000, 100_000, 10, 0),
    ],
)
def test_whale_component_is_200_times_the_net_share_in_each_direction(buy, sell, long, short):
    result = score_whale(whale(buy, sell), config=CONFIG)
    assert result.component == {"LONG": pytest.approx(long), "SHORT": pytest.approx(short)}
    assert result.direction is None
    assert result.completeness == 1


def test_whale_data_the_source_does_not_have_is_missing_not_zero():
    inputs = WhaleInputs("X/USDT", AS_OF, Missing("individual trades are not in the replay data"))
    result = score_whale(inputs, config=CONFIG)
    assert result.component == {"LONG": None, "SHORT": None}
    assert result.scores == {}
    assert result.completeness == 0
    assert result.reasons == [
        "whale trades unavailable: individual trades are not in the replay data — scored no points"
    ]


def test_an_hour_without_any_trade_has_no_whale_share():
    result = score_whale(whale(0, 0, total=0), config=CONFIG)
    assert result.completeness == 0
    assert "nothing traded in the last hour" in result.reasons[0]


def test_whale_inputs_come_from_the_sources_large_trades():
    trades = LargeTrades("X/USDT", AS_OF - HOUR, AS_OF, 100_000.0, 4e5, 1e5, 2e6, 5)
    inputs = WhaleInputs.build("X/USDT", AS_OF, large_trades=trades)
    assert inputs.trades == WhaleTrades(4e5, 1e5, 2e6, 100_000.0, 5)
    assert score_whale(inputs, config=CONFIG).component["LONG"] == pytest.approx(30)


def test_large_trades_ending_after_as_of_are_refused():
    trades = LargeTrades("X/USDT", AS_OF, AS_OF + HOUR, 100_000.0, 1.0, 1.0, 2.0, 1)
    with pytest.raises(ValueError, match="after as_of"):
        WhaleInputs.build("X/USDT", AS_OF, large_trades=trades)


# --- volume spike ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "score"),
    [(0.5, 0), (1.0, 0), (1.5, 25), (2.0, 50), (3.0, 100), (5.0, 100)],
)
def test_volume_spike_is_100_times_r_minus_1_over_2_clamped(ratio, score):
    inputs = VolumeInputs("X/USDT", AS_OF, VolumeWindows(last_24h=ratio * 70, previous_7d=490))
    result = score_volume_spike(inputs, config=CONFIG)
    assert result.scores["ratio"] == pytest.approx(ratio)
    assert result.component == {"LONG": pytest.approx(score), "SHORT": pytest.approx(score)}
    assert result.direction is None


def hourly(volumes, end=AS_OF) -> CandleSeries:
    n = len(volumes)
    times = np.array([int((end - (n - i) * HOUR).timestamp() * 1000) for i in range(n)])
    prices = np.ones(n)
    return CandleSeries(
        "X/USDT", "1h", times, prices, prices, prices, prices, volumes, np.full(n, np.nan)
    )


def test_volume_windows_are_the_last_24_candles_and_the_168_before_them():
    volumes = np.concatenate([np.full(10, 1000.0), np.full(168, 1.0), np.full(24, 2.0)])
    inputs = VolumeInputs.build("X/USDT", AS_OF, candles=hourly(volumes))
    assert inputs.volumes == VolumeWindows(last_24h=48.0, previous_7d=168.0)
    result = score_volume_spike(inputs, config=CONFIG)
    assert result.scores["ratio"] == pytest.approx(2.0)  # 48 vs a mean day of 24
    assert result.component["LONG"] == pytest.approx(50)


@pytest.mark.parametrize("count", [0, 24, 191])
def test_fewer_than_192_hourly_candles_leave_the_volume_spike_missing(count):
    result = score_volume_spike(
        VolumeInputs.build("X/USDT", AS_OF, candles=hourly(np.ones(count))), config=CONFIG
    )
    assert result.completeness == 0
    assert result.component == {"LONG": None, "SHORT": None}
    assert "not enough for a volume spike" in result.reasons[0]


def test_no_volume_in_the_week_before_is_missing_not_infinite():
    volumes = np.concatenate([np.zeros(168), np.ones(24)])
    result = score_volume_spike(
        VolumeInputs.build("X/USDT", AS_OF, candles=hourly(volumes)), config=CONFIG
    )
    assert result.completeness == 0
    assert "no volume traded in the 7 days" in result.reasons[0]


def test_candles_after_as_of_never_change_the_volume_spike():
    rng = np.random.default_rng(2)
    volumes = rng.uniform(1, 10, 300)
    full = hourly(volumes, end=AS_OF + 100 * HOUR)
    as_of = ms_to_datetime(int(full.close_time[199]))
    cut = hourly(volumes[:200], end=as_of)
    assert VolumeInputs.build("X/USDT", as_of, candles=full) == VolumeInputs.build(
        "X/USDT", as_of, candles=cut
    )
