"""The replay's in-memory candles read exactly what the store's reads give, as of any time: no
candle that closes after as_of, the same newest `limit`, the same numbers. Likewise its funding
settlements and open-interest readings."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db.models import F

from market import candle_store
from market.candle_store import CandleMemory
from market.models import Candle, OpenInterest
from market.sources.replay import ReplaySource
from market.times import datetime_to_ms
from market.values import CandleSeries
from tests.factories import (
    START,
    CandleFactory,
    FundingRateFactory,
    MarketFactory,
    hourly_candles,
)
from tests.test_candle_store import EXACT_OPEN_TIMES

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture
def markets():
    """Two coins: one with a two-hour hole in its history, one listed 10 hours later."""
    gappy = MarketFactory(base="GAP")
    hourly_candles(gappy, [100.0 + i for i in range(20)])
    hourly_candles(gappy, [200.0 + i for i in range(20)], start=START + 22 * HOUR)
    late = MarketFactory(base="LATE")
    hourly_candles(late, [50.0 + i for i in range(30)], start=START + 10 * HOUR)
    return [gappy, late]


def same(left: CandleSeries, right: CandleSeries) -> bool:
    return len(left) == len(right) and all(
        np.array_equal(getattr(left, name), getattr(right, name), equal_nan=True)
        for name in ("open_time", "open", "high", "low", "close", "volume", "taker_buy_volume")
    )


@pytest.mark.parametrize("minutes", [0, 1, 30, 59])
@pytest.mark.parametrize("limit", [1, 3, 24, 500])
def test_in_memory_candles_are_the_stores_as_of_every_time(markets, minutes, limit):
    memory = CandleMemory()
    for hour in range(-1, 45):
        as_of = START + hour * HOUR + timedelta(minutes=minutes)
        stored = candle_store.closed_candles_bulk(markets, as_of=as_of, limit=limit)
        remembered = memory.closed_candles_bulk(markets, as_of=as_of, limit=limit)
        assert all(same(stored[m.pk], remembered[m.pk]) for m in markets), as_of


def test_in_memory_candles_keep_the_stores_numbers_and_missing_taker_volume(markets):
    # Some candles know their taker volume, the rest do not (NULL): memory has the stored
    # numbers exactly and NaN for the NULLs, as the store's own reads give them.
    gappy = markets[0]
    Candle.objects.filter(market=gappy, open_time__lt=START + 5 * HOUR).update(
        taker_buy_volume=F("volume") / 3, close=F("close") + 0.1
    )
    as_of = START + 30 * HOUR
    stored = candle_store.closed_candles_bulk(markets, as_of=as_of, limit=500)
    remembered = CandleMemory().closed_candles_bulk(markets, as_of=as_of, limit=500)
    assert all(same(stored[m.pk], remembered[m.pk]) for m in markets)
    taker = remembered[gappy.pk].taker_buy_volume
    assert not np.isnan(taker[:5]).any()
    assert np.isnan(taker[5:]).all()
    assert remembered[gappy.pk].close[0] == Candle.objects.get(market=gappy, open_time=START).close


def test_in_memory_candles_read_in_many_parts_are_the_stores(markets, monkeypatch):
    monkeypatch.setattr(candle_store, "_FETCH_ROWS", 3)  # the first load in parts of 3 rows
    as_of = START + 50 * HOUR
    stored = candle_store.closed_candles_bulk(markets, as_of=as_of, limit=500)
    remembered = CandleMemory().closed_candles_bulk(markets, as_of=as_of, limit=500)
    assert [len(remembered[m.pk]) for m in markets] == [40, 30]
    assert all(same(stored[m.pk], remembered[m.pk]) for m in markets)


@pytest.mark.parametrize("open_time", EXACT_OPEN_TIMES)
def test_in_memory_open_times_are_the_stored_ones_to_the_millisecond(open_time):
    market = MarketFactory()
    CandleFactory(market=market, timeframe="1m", open_time=open_time)
    remembered = CandleMemory().closed_candles_bulk(
        [market], timeframe="1m", as_of=open_time + timedelta(minutes=1), limit=1
    )[market.pk]
    assert remembered.open_time[0] == datetime_to_ms(open_time)


def test_the_in_memory_source_never_gives_a_candle_closing_after_as_of(markets):
    as_of = START + timedelta(hours=20, minutes=30)
    source = ReplaySource(memory=CandleMemory())
    series = source.candles(["GAP/USDT"], as_of=as_of, limit=500)["GAP/USDT"]
    assert series.close_time.max() <= datetime_to_ms(as_of)
    assert len(series) == 20


def test_in_memory_funding_is_the_stores_as_of_every_time():
    first = FundingRateFactory(funding_time=START, rate=0.0001)
    FundingRateFactory(market=first.market, funding_time=START + 8 * HOUR, rate=0.0003)
    FundingRateFactory(
        market=first.market, funding_time=START + timedelta(hours=16, milliseconds=1), rate=-0.0002
    )
    lone = FundingRateFactory(funding_time=START + 4 * HOUR, rate=0.0005)
    perps = [first.market, lone.market, MarketFactory(base="NONE")]
    memory = CandleMemory()
    for minutes in range(-60, 20 * 60, 30):
        as_of = START + timedelta(minutes=minutes)
        remembered = memory.recent_funding_bulk(perps, as_of)
        assert remembered == candle_store.recent_funding_bulk(perps, as_of), as_of
    assert memory.recent_funding_bulk(perps, START + 17 * HOUR)[first.market.pk].rate == -0.0002


def test_in_memory_open_interest_is_the_stores_as_of_every_time():
    first, second, bare = MarketFactory(), MarketFactory(), MarketFactory()
    for market, hours in ((first, (0, 1, 3)), (second, (0, 5))):
        for hour in hours:
            OpenInterest.objects.create(
                market=market,
                timestamp=START + hour * HOUR + timedelta(microseconds=7),
                open_interest=100.0 + hour,
                open_interest_value=None if hour == 1 else 2000.0 + hour,
            )
    memory = CandleMemory()
    fields = ("pk", "market_id", "timestamp", "open_interest", "open_interest_value")

    def readings(found: dict) -> dict:
        return {pk: tuple(getattr(row, name) for name in fields) for pk, row in found.items()}

    for minutes in range(-60, 7 * 60, 30):
        as_of = START + timedelta(minutes=minutes)
        markets = [first, second, bare]
        stored = readings(candle_store.open_interest_at_bulk(markets, as_of))
        assert readings(memory.open_interest_at_bulk(markets, as_of)) == stored, as_of
    assert (
        memory.open_interest_at_bulk([first], START + 2 * HOUR)[first.pk].open_interest_value
        is None
    )


def test_the_in_memory_source_lists_the_markets_the_store_source_lists(markets):
    MarketFactory(base="BARE")  # a market with no candle at all is never listed
    remembered, stored = ReplaySource(memory=CandleMemory()), ReplaySource()
    for hour in range(-1, 72, 3):
        as_of = START + hour * HOUR + timedelta(minutes=30)
        assert remembered.markets(as_of=as_of) == stored.markets(as_of=as_of), as_of
    listed = remembered.markets(as_of=START + 11 * HOUR)
    assert [(m.base, m.active) for m in listed] == [("GAP", True), ("LATE", True)]


def test_the_in_memory_source_gives_the_listing_times_the_store_source_gives(markets):
    MarketFactory(base="BARE")  # no candle: not listed yet at any time
    symbols = ["GAP/USDT", "LATE/USDT", "BARE/USDT", "NONE/USDT"]
    remembered, stored = ReplaySource(memory=CandleMemory()), ReplaySource()
    for hour in range(-1, 48, 5):
        as_of = START + hour * HOUR + timedelta(minutes=30)
        assert remembered.listing_times(symbols, as_of=as_of) == stored.listing_times(
            symbols, as_of=as_of
        ), as_of
    listed = remembered.listing_times(symbols, as_of=START + 12 * HOUR)
    assert listed["GAP/USDT"] == START
    assert listed["LATE/USDT"] == START + 10 * HOUR
