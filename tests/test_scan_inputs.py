"""Gathering a batch's inputs from a market-data source and scanning it, failures per coin."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
import pytest
import talib

from market.sources.base import MarketDataSource, SourceError
from market.sources.replay import ReplaySource
from market.times import datetime_to_ms
from market.values import CandleSeries, Missing
from scanners import inputs as scan_inputs
from scanners.algorithms import ScannerConfig
from scanners.inputs import (
    CoinOutcome,
    candles_needed,
    expand_scanners,
    gather_inputs,
    scan_coins,
)
from tests.factories import START, FundingRateFactory, MarketFactory, hourly_candles

HOUR = timedelta(hours=1)
AS_OF = START + 300 * HOUR
CONFIG = ScannerConfig()


class CountingReplay(ReplaySource):
    """The real replay source, counting how often each method is called and with what limit."""

    def __init__(self, moment: datetime) -> None:
        super().__init__(clock=lambda: moment)
        self.calls: Counter[str] = Counter()
        self.limits: list[int] = []

    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        if name in type(self).counted and callable(attribute):
            calls = super().__getattribute__("calls")

            def counted(*args, **kwargs):
                calls[name] += 1
                if name == "candles":
                    self.limits.append(kwargs["limit"])
                return attribute(*args, **kwargs)

            return counted
        return attribute

    counted = frozenset(
        {
            "candles",
            "tickers",
            "funding_rates",
            "open_interest",
            "long_short_ratio",
            "taker_flow",
            "large_trades",
            "fundamentals",
            "trending",
            "social",
            "listing_times",
            "markets",
        }
    )


@pytest.fixture
def store(db):
    """OLD/USDT trading for 300 h with a perpetual, NEW/USDT listed 30 h before AS_OF."""
    rng = np.random.default_rng(1)
    old = MarketFactory(base="OLD")
    old_closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))))
    hourly_candles(old, old_closes)
    new = MarketFactory(base="NEW")
    hourly_candles(new, [1.0 + 0.01 * i for i in range(30)], start=AS_OF - 30 * HOUR)
    perp = MarketFactory(base="OLD", symbol="OLD/USDT:USDT", market_type="futures")
    for k in range(3):
        FundingRateFactory(market=perp, funding_time=AS_OF - (20 - 8 * k) * HOUR, rate=-0.0002)
    return {"OLD/USDT": np.array(old_closes)}


def by_scanner(outcome: CoinOutcome) -> dict:
    return {result.scanner: result for result in outcome.results}


def test_scan_coins_scores_each_coin_of_a_replay_with_what_the_replay_has(store):
    outcomes = scan_coins(
        ReplaySource(clock=lambda: AS_OF),
        ["OLD/USDT", "NEW/USDT"],
        as_of=AS_OF,
        scanners="all",
        config=CONFIG,
    )
    assert [outcome.symbol for outcome in outcomes] == ["OLD/USDT", "NEW/USDT"]
    assert all(outcome.error is None for outcome in outcomes)
    old, new = by_scanner(outcomes[0]), by_scanner(outcomes[1])
    assert set(old) == {"smart_money", "rsi", "social", "whale", "volume"}  # not a new listing
    assert set(new) == {"smart_money", "mss", "rsi", "social", "whale", "volume"}

    closes = store["OLD/USDT"]
    assert old["rsi"].scores["rsi"] == pytest.approx(talib.RSI(closes, 14)[-1], abs=1e-6)
    # The replay has candles (pressure from up-candles, 7-day change) and OLD's funding; no
    # open interest or social data: those are missing, not zero.
    smart = old["smart_money"]
    assert smart.completeness == pytest.approx(3 / 5)
    assert smart.inputs["funding"]["rate_8h"] == pytest.approx(-0.0002)
    assert smart.inputs["pressure"]["method"] == "up_candles"
    assert "missing" in smart.inputs["open_interest"]
    assert "missing" in smart.inputs["social_activity"]
    assert old["whale"].completeness == 0
    assert old["volume"].completeness == 1
    assert old["social"].completeness == 0

    mss = new["mss"]
    assert mss.inputs["age_hours"] == pytest.approx(30)
    assert mss.direction is None  # too few inputs in a replay to trust an MSS signal
    assert new["volume"].completeness == 0  # 30 candles are not a week of history
    assert new["rsi"].completeness == 1


def test_every_source_method_is_called_at_most_once_per_batch(store):
    source = CountingReplay(AS_OF)
    scan_coins(source, ["OLD/USDT", "NEW/USDT", "NONE/USDT"], as_of=AS_OF, scanners="all")
    assert source.calls
    assert max(source.calls.values()) == 1
    assert source.limits == [CONFIG.rsi_window]


@pytest.mark.parametrize(
    ("scanners", "limit"),
    [
        ("rsi", 500),
        ("smart_money", 192),  # with the volume component: 24 + 168 candles
        ("mss", 72),
        ("social", 25),
        ("volume", 192),
        ("whale", 0),
        ("all", 500),
    ],
)
def test_the_candle_limit_is_the_most_any_scanner_of_the_run_needs(scanners, limit):
    assert candles_needed(expand_scanners(scanners), CONFIG) == limit


def test_a_smart_money_run_computes_whale_and_volume_components_too():
    assert expand_scanners("smart_money") == ("smart_money", "whale", "volume")
    assert expand_scanners(["rsi", "social"]) == ("rsi", "social")
    assert len(expand_scanners("all")) == 6


def test_an_unknown_scanner_name_is_refused():
    with pytest.raises(ValueError, match="unknown scanner 'macd'"):
        expand_scanners(["macd"])


def test_vendor_data_only_mss_reads_is_asked_for_the_new_listings_alone(store):
    source = CountingReplay(AS_OF)
    asked: dict[str, list[str]] = {}
    original = source.fundamentals

    def fundamentals(symbols, *, as_of):
        asked["fundamentals"] = list(symbols)
        return original(symbols, as_of=as_of)

    source.fundamentals = fundamentals
    gathered = gather_inputs(source, ["OLD/USDT", "NEW/USDT"], as_of=AS_OF, scanners="mss")
    assert asked["fundamentals"] == ["NEW/USDT"]
    assert gathered["OLD/USDT"].mss is not None
    assert gathered["OLD/USDT"].rsi is None  # not requested


def test_duplicate_symbols_are_scanned_once_in_their_first_order(store):
    outcomes = scan_coins(
        ReplaySource(clock=lambda: AS_OF),
        ["NEW/USDT", "OLD/USDT", "NEW/USDT"],
        as_of=AS_OF,
        scanners="rsi",
    )
    assert [outcome.symbol for outcome in outcomes] == ["NEW/USDT", "OLD/USDT"]


def test_a_coin_not_in_the_store_gets_results_that_say_its_data_is_missing(store):
    [outcome] = scan_coins(
        ReplaySource(clock=lambda: AS_OF), ["NONE/USDT"], as_of=AS_OF, scanners="rsi"
    )
    assert outcome.error is None
    [result] = outcome.results
    assert result.completeness == 0
    assert "no spot market NONE/USDT" in result.reasons[0]


# --- a stub source: one coin's failure stays that coin's -----------------------------------------


def candles_of(symbol: str, count: int = 200) -> CandleSeries:
    closes = 10 + np.sin(np.arange(count) / 5)
    start = datetime_to_ms(AS_OF - count * HOUR)
    times = start + np.arange(count) * 3_600_000
    return CandleSeries(
        symbol, "1h", times, closes, closes, closes, closes, np.ones(count), np.full(count, np.nan)
    )


class StubSource(MarketDataSource):
    """Candles for every coin; BAD/USDT makes `candles` raise, BROKEN/USDT gets a broken value."""

    name = "stub"

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.fail_with = fail_with
        self.candle_calls: list[list[str]] = []

    def now(self):
        return AS_OF

    def markets(self, *, as_of, market_type="spot"):
        return []

    def candles(self, symbols, *, timeframe="1h", as_of, limit):
        self.candle_calls.append(list(symbols))
        if self.fail_with is not None:
            raise self.fail_with
        if "BAD/USDT" in symbols:
            raise ValueError("the exchange sent garbage for BAD/USDT")
        return {
            symbol: "not a candle series" if symbol == "BROKEN/USDT" else candles_of(symbol)
            for symbol in symbols
        }

    def _missing(self, symbols):
        return dict.fromkeys(symbols, Missing("the stub has none"))

    def tickers(self, symbols, *, as_of):
        return self._missing(symbols)

    def funding_rates(self, symbols, *, as_of):
        return self._missing(symbols)

    def open_interest(self, symbols, *, as_of):
        return self._missing(symbols)

    def open_interest_history(self, symbol, *, as_of, hours):
        return Missing("the stub has none")

    def long_short_ratio(self, symbols, *, as_of):
        return self._missing(symbols)

    def taker_flow(self, symbols, *, as_of, window=timedelta(hours=24)):
        return self._missing(symbols)

    def large_trades(self, symbols, *, as_of, min_usd, window=timedelta(hours=1)):
        return self._missing(symbols)

    def fundamentals(self, symbols, *, as_of):
        return self._missing(symbols)

    def trending(self, *, as_of):
        return Missing("the stub has none")

    def social(self, symbols, *, as_of):
        return self._missing(symbols)

    def listing_times(self, symbols, *, as_of):
        return dict.fromkeys(symbols, AS_OF - 1000 * HOUR)


def test_a_coin_whose_source_call_raises_gets_the_error_and_the_others_are_scanned():
    source = StubSource()
    outcomes = scan_coins(source, ["A/USDT", "BAD/USDT", "C/USDT"], as_of=AS_OF, scanners="all")
    outcome = {o.symbol: o for o in outcomes}
    assert outcome["BAD/USDT"].results == []
    assert outcome["BAD/USDT"].error.startswith(
        "ValueError: the exchange sent garbage for BAD/USDT"
    )
    for symbol in ("A/USDT", "C/USDT"):
        assert outcome[symbol].error is None
        assert {r.scanner for r in outcome[symbol].results} == {
            "smart_money",
            "rsi",
            "social",
            "whale",
            "volume",
        }
    # One batch call, then one call per coin to find the one that fails.
    assert source.candle_calls[0] == ["A/USDT", "BAD/USDT", "C/USDT"]
    assert len(source.candle_calls) == 4


def test_a_coin_whose_value_breaks_the_inputs_gets_the_error_and_no_results():
    outcomes = scan_coins(StubSource(), ["A/USDT", "BROKEN/USDT"], as_of=AS_OF, scanners="rsi")
    assert outcomes[0].error is None
    assert len(outcomes[0].results) == 1
    assert outcomes[1].results == []
    assert outcomes[1].error.startswith("AttributeError: ")


def test_a_scanner_that_raises_on_one_coin_fails_that_coin_only(monkeypatch):
    real = scan_inputs.SCORERS["rsi"]

    def flaky(inputs, *, config):
        if inputs.symbol == "B/USDT":
            raise ZeroDivisionError("division by zero")
        return real(inputs, config=config)

    monkeypatch.setitem(scan_inputs.SCORERS, "rsi", flaky)
    outcomes = scan_coins(StubSource(), ["A/USDT", "B/USDT"], as_of=AS_OF, scanners="rsi")
    assert outcomes[0].error is None
    assert outcomes[1] == CoinOutcome(
        "B/USDT", [], "ZeroDivisionError: division by zero (scoring rsi)"
    )


def test_a_source_error_for_the_whole_batch_propagates():
    source = StubSource(fail_with=SourceError("stub", "exchange down"))
    with pytest.raises(SourceError, match="exchange down"):
        scan_coins(source, ["A/USDT", "B/USDT"], as_of=AS_OF, scanners="rsi")


def test_as_of_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        scan_coins(StubSource(), ["A/USDT"], as_of=datetime(2024, 1, 1), scanners="rsi")


class SideBySideSource(StubSource):
    """A network-like source: each batch read waits until all five reads of a smart-money batch
    are in flight at once, so a source read one call after another breaks the barrier."""

    parallel_reads = True

    def __init__(self) -> None:
        super().__init__()
        # candles, funding, open interest, social, large trades
        self.barrier = threading.Barrier(5, timeout=10)

    def candles(self, symbols, *, timeframe="1h", as_of, limit):
        self.barrier.wait()
        return super().candles(symbols, timeframe=timeframe, as_of=as_of, limit=limit)

    def _missing(self, symbols):
        self.barrier.wait()
        return super()._missing(symbols)


def test_a_source_that_serves_concurrent_calls_gets_the_batch_reads_side_by_side():
    outcomes = scan_coins(
        SideBySideSource(), ["A/USDT", "C/USDT"], as_of=AS_OF, scanners="smart_money"
    )
    assert [outcome.error for outcome in outcomes] == [None, None]
    assert {r.scanner for r in outcomes[0].results} == {"smart_money", "whale", "volume"}


class ListingTimesBesideTheRestSource(SideBySideSource):
    """The five reads every coin needs and the listing times meet at one barrier: a batch that
    waits for the listing times before reading the rest breaks it."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(6, timeout=10)

    def listing_times(self, symbols, *, as_of):
        self.barrier.wait()
        return super().listing_times(symbols, as_of=as_of)


def test_what_every_coin_needs_is_read_beside_the_listing_times_not_after_them():
    outcomes = scan_coins(
        ListingTimesBesideTheRestSource(), ["A/USDT", "C/USDT"], as_of=AS_OF, scanners="all"
    )
    assert [outcome.error for outcome in outcomes] == [None, None]
