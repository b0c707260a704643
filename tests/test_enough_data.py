"""Enough data before a score (docs/SCORING.md, changed 2026-12-02): pressure needs 24 candles,
MSS's buy share 6, and a candle input whose latest candle closed over 1 h before as_of is
missing."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from market.sources.replay import ReplaySource
from market.times import datetime_to_ms
from market.values import CandleSeries, Missing
from scanners.algorithms import ScannerConfig
from scanners.algorithms.common import pressure_from_candles
from scanners.algorithms.mss import BUY_SHARE_MIN_CANDLES
from scanners.inputs import scan_coins
from tests.factories import START, MarketFactory, hourly_candles

HOUR = timedelta(hours=1)
AS_OF = START + 300 * HOUR


def last_candles(count: int, *, taker: bool, end=AS_OF) -> CandleSeries:
    """`count` 1h candles, the last one closing at `end`; buyers take 60 % of every candle."""
    times = np.array([datetime_to_ms(end - (count - i) * HOUR) for i in range(count)])
    volume = np.full(count, 10.0)
    return CandleSeries(
        "X/USDT",
        "1h",
        times,
        np.full(count, 1.0),
        np.full(count, 2.0),
        np.full(count, 1.0),
        np.full(count, 2.0),  # every candle an up-candle
        volume,
        volume * 0.6 if taker else np.full(count, np.nan),
    )


@pytest.mark.parametrize("taker", [True, False], ids=["taker volume", "up-candles"])
def test_pressure_from_23_candles_is_missing(taker: bool) -> None:
    pressure = pressure_from_candles(last_candles(23, taker=taker), AS_OF)

    assert isinstance(pressure, Missing)
    assert "only 23 1h candles" in pressure.reason
    assert "at least 24" in pressure.reason


@pytest.mark.parametrize("taker", [True, False], ids=["taker volume", "up-candles"])
def test_pressure_from_24_candles_is_scored(taker: bool) -> None:
    pressure = pressure_from_candles(last_candles(24, taker=taker), AS_OF)

    assert not isinstance(pressure, Missing)
    assert pressure.candles == 24
    assert pressure.buy_share == pytest.approx(0.6 if taker else 1.0)


def test_mss_buy_share_with_5_candles_is_missing() -> None:
    pressure = pressure_from_candles(
        last_candles(5, taker=True), AS_OF, min_candles=BUY_SHARE_MIN_CANDLES
    )

    assert isinstance(pressure, Missing)
    assert "at least 6" in pressure.reason


def test_mss_buy_share_with_6_candles_is_scored() -> None:
    pressure = pressure_from_candles(
        last_candles(6, taker=True), AS_OF, min_candles=BUY_SHARE_MIN_CANDLES
    )

    assert not isinstance(pressure, Missing)
    assert pressure.candles == 6


def test_a_coin_one_hour_after_listing_gets_no_mss_buy_share(db) -> None:
    market = MarketFactory(base="NEWB")
    hourly_candles(market, [1.0], start=AS_OF - HOUR)  # listed an hour ago: one candle
    [outcome] = scan_coins(
        ReplaySource(clock=lambda: AS_OF), ["NEWB/USDT"], as_of=AS_OF, scanners="mss"
    )

    [mss] = outcome.results
    assert "only 1 1h candle" in mss.inputs["buy_share"]["missing"]
    assert "at least 6" in mss.inputs["buy_share"]["missing"]


def test_a_scan_in_a_data_gap_has_its_candle_inputs_missing_with_the_reason(db) -> None:
    market = MarketFactory(base="GAP")
    hourly_candles(market, [100.0 + (i % 7) for i in range(300)])  # the last closes at AS_OF
    later = AS_OF + 5 * HOUR  # the market halted: nothing closed in the 5 h since
    [outcome] = scan_coins(
        ReplaySource(clock=lambda: later), ["GAP/USDT"], as_of=later, scanners="all"
    )

    results = {result.scanner: result for result in outcome.results}
    said = "latest 1h candle closed 5 h before as_of"
    assert said in results["rsi"].inputs["rsi"]["missing"]
    assert results["rsi"].scores == {}
    assert said in results["smart_money"].inputs["pressure"]["missing"]
    assert said in results["smart_money"].inputs["price_change_7d_pct"]["missing"]
    assert said in results["volume"].inputs["volumes"]["missing"]
    assert any(said in reason for reason in results["rsi"].reasons)
    assert not any("closed 1h candles" in reason for reason in results["rsi"].reasons)


def test_a_scan_an_hour_after_the_last_candle_closed_still_scores(db) -> None:
    market = MarketFactory(base="LATE")
    hourly_candles(market, [100.0 + (i % 7) for i in range(300)])
    later = AS_OF + HOUR  # exactly 1 h: not more than 1 h
    [outcome] = scan_coins(
        ReplaySource(clock=lambda: later), ["LATE/USDT"], as_of=later, scanners="rsi"
    )

    [rsi] = outcome.results
    assert "rsi" in rsi.scores
    assert ScannerConfig().rsi_window == rsi.inputs["window"]
