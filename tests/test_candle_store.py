"""Point-in-time reads of the candle store: nothing that closed after as_of, gaps stay gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from market import candle_store
from market.models import Candle, OpenInterest, PriceSeries
from market.times import datetime_to_ms, ms_to_datetime
from market.values import Missing
from tests.factories import (
    START,
    CandleFactory,
    FundingRateFactory,
    MarketFactory,
    hourly_candles,
)

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)

# Open times a store must give back to the millisecond: the factories' start, Binance's first
# spot candle plus a millisecond, the last millisecond of a far year.
EXACT_OPEN_TIMES = [
    START,
    datetime(2017, 8, 17, 4, 0, 0, 1000, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
]


def open_times(series) -> list:
    return [ms_to_datetime(ms) for ms in series.open_time]


@pytest.fixture
def gapped_market():
    """Hours 0-9 and 14-19 have candles; 10-13 are a hole (an exchange outage)."""
    market = MarketFactory(base="GAP")
    closes = [100.0 + i for i in range(20)]
    closes[10:14] = [None] * 4
    hourly_candles(market, closes)
    return market


def test_the_candle_still_open_at_as_of_is_not_returned():
    market = MarketFactory()
    hourly_candles(market, [1.0, 2.0, 3.0])
    # At 02:30 the 02:00 candle is still open: only 00:00 and 01:00 have closed.
    series = candle_store.closed_candles(market, as_of=START + 2.5 * HOUR, limit=10)
    assert list(series.close) == [1.0, 2.0]


def test_a_candle_that_closes_exactly_at_as_of_is_returned():
    market = MarketFactory()
    hourly_candles(market, [1.0, 2.0, 3.0])
    series = candle_store.closed_candles(market, as_of=START + 2 * HOUR, limit=10)
    assert list(series.close) == [1.0, 2.0]
    assert series.last_close_time == START + 2 * HOUR


def test_no_candle_closing_after_as_of_is_ever_returned_on_data_with_gaps(gapped_market):
    stored = list(Candle.objects.filter(market=gapped_market).values_list("open_time", flat=True))
    for minutes in range(0, 22 * 60, 20):
        as_of = START + timedelta(minutes=minutes)
        series = candle_store.closed_candles(gapped_market, as_of=as_of, limit=1000)
        expected = sorted(t for t in stored if t + HOUR <= as_of)
        assert open_times(series) == expected
        assert all(series.close_time <= datetime_to_ms(as_of))


def test_limit_returns_the_latest_n_candles_oldest_first():
    market = MarketFactory()
    hourly_candles(market, [float(i) for i in range(10)])
    series = candle_store.closed_candles(market, as_of=START + 10 * HOUR, limit=3)
    assert list(series.close) == [7.0, 8.0, 9.0]


def test_a_gap_stays_a_gap(gapped_market):
    series = candle_store.closed_candles(gapped_market, as_of=START + 20 * HOUR, limit=8)
    assert open_times(series) == [START + h * HOUR for h in (8, 9, 14, 15, 16, 17, 18, 19)]
    assert np.diff(series.open_time).max() == 5 * 3_600_000


def test_since_keeps_only_candles_opened_at_or_after_it():
    market = MarketFactory()
    hourly_candles(market, [float(i) for i in range(10)])
    series = candle_store.closed_candles(market, as_of=START + 6 * HOUR, since=START + 4 * HOUR)
    assert list(series.close) == [4.0, 5.0]


def test_price_series_are_kept_apart():
    market = MarketFactory()
    CandleFactory(market=market, open_time=START, close=10.0)
    CandleFactory(market=market, open_time=START, close=11.0, series=PriceSeries.MARK)
    mark = candle_store.closed_candles(market, as_of=START + HOUR, limit=5, series=PriceSeries.MARK)
    assert list(mark.close) == [11.0]


def test_taker_buy_volume_is_nan_where_the_stored_candle_has_none():
    market = MarketFactory()
    CandleFactory(market=market, open_time=START, taker_buy_volume=4.0)
    CandleFactory(market=market, open_time=START + HOUR, taker_buy_volume=None)
    series = candle_store.closed_candles(market, as_of=START + 2 * HOUR, limit=5)
    assert series.taker_buy_volume[0] == 4.0
    assert np.isnan(series.taker_buy_volume[1])


def test_a_zero_or_negative_limit_is_refused():
    market = MarketFactory()
    with pytest.raises(ValueError, match="limit"):
        candle_store.closed_candles(market, as_of=START, limit=0)


def test_a_naive_as_of_is_refused():
    market = MarketFactory()
    with pytest.raises(ValueError, match="aware"):
        candle_store.closed_candles(market, as_of=START.replace(tzinfo=None), limit=1)


def test_bulk_read_equals_one_read_per_market(gapped_market):
    full = MarketFactory(base="FULL")
    hourly_candles(full, [float(i) for i in range(30)])
    young = MarketFactory(base="YOUNG")
    hourly_candles(young, [1.0, 2.0], start=START + 17 * HOUR)
    empty = MarketFactory(base="EMPTY")
    markets = [gapped_market, full, young, empty]
    as_of = START + timedelta(hours=19, minutes=30)

    bulk = candle_store.closed_candles_bulk(markets, as_of=as_of, limit=12)

    for market in markets:
        single = candle_store.closed_candles(market, as_of=as_of, limit=12)
        assert list(bulk[market.pk].open_time) == list(single.open_time), market.symbol
        assert list(bulk[market.pk].close) == list(single.close), market.symbol
    assert len(bulk[gapped_market.pk]) == 12  # reached back across the hole
    assert len(bulk[empty.pk]) == 0


@pytest.mark.parametrize("minutes_past_the_hour", [0, 1, 30, 59])
def test_bulk_read_of_complete_histories_is_one_query(
    django_assert_num_queries, minutes_past_the_hour
):
    markets = [MarketFactory() for _ in range(20)]
    for market in markets:
        hourly_candles(market, [float(i) for i in range(50)])
    as_of = START + 48 * HOUR + timedelta(minutes=minutes_past_the_hour)
    with django_assert_num_queries(1):
        bulk = candle_store.closed_candles_bulk(markets, as_of=as_of, limit=24)
    assert all(list(series.close) == [float(i) for i in range(24, 48)] for series in bulk.values())


def test_bulk_read_costs_no_query_per_market_without_older_candles(
    django_assert_num_queries, gapped_market
):
    empty = [MarketFactory() for _ in range(20)]
    as_of = START + timedelta(hours=19, minutes=30)
    # The window's range, which short markets have older candles, the gapped one's older rows.
    with django_assert_num_queries(3):
        bulk = candle_store.closed_candles_bulk([*empty, gapped_market], as_of=as_of, limit=12)
    assert all(len(bulk[market.pk]) == 0 for market in empty)
    assert len(bulk[gapped_market.pk]) == 12


def test_price_at_is_the_close_of_the_last_closed_hourly_candle():
    market = MarketFactory()
    hourly_candles(market, [1.0, 2.0, 3.0])
    assert candle_store.price_at(market, START + timedelta(hours=2, minutes=59)) == 2.0
    assert candle_store.price_at(market, START + 3 * HOUR) == 3.0


def test_price_at_is_missing_before_the_first_candle_closes():
    market = MarketFactory()
    hourly_candles(market, [1.0])
    price = candle_store.price_at(market, START + timedelta(minutes=59))
    assert isinstance(price, Missing)
    assert "no 1h candle" in price.reason


def test_price_at_is_missing_when_a_gap_covers_the_24h_before_as_of():
    market = MarketFactory()
    hourly_candles(market, [1.0, 2.0])  # last close: START + 2h
    assert candle_store.price_at(market, START + 25 * HOUR) == 2.0
    price = candle_store.price_at(market, START + 26 * HOUR)
    assert isinstance(price, Missing)
    assert "gap" in price.reason


def test_first_candle_time_and_last_close_time_of_a_market(gapped_market):
    assert candle_store.first_candle_time(gapped_market) == START
    assert candle_store.last_close_time(gapped_market) == START + 20 * HOUR
    assert candle_store.last_close_time(gapped_market, as_of=START + 12 * HOUR) == START + 10 * HOUR


def test_candle_bounds_as_of_a_time_ignore_later_candles(gapped_market):
    bounds = candle_store.candle_bounds(gapped_market, as_of=START + 5 * HOUR)
    assert bounds == candle_store.CandleBounds(START, START + 5 * HOUR)
    assert candle_store.candle_bounds(gapped_market, as_of=START) is None


def test_latest_funding_is_the_latest_settlement_at_or_before_as_of():
    first = FundingRateFactory(funding_time=START, rate=0.0001)
    second = FundingRateFactory(market=first.market, funding_time=START + 8 * HOUR, rate=0.0003)
    FundingRateFactory(market=first.market, funding_time=START + 16 * HOUR, rate=-0.0002)
    assert candle_store.latest_funding(first.market, START + 8 * HOUR) == second
    assert candle_store.latest_funding(first.market, START + 15 * HOUR) == second
    assert candle_store.latest_funding(first.market, START - HOUR) is None


def test_recent_funding_bulk_gives_the_latest_settlement_and_the_time_of_the_one_before():
    first = FundingRateFactory(funding_time=START, rate=0.0001)
    FundingRateFactory(market=first.market, funding_time=START + 8 * HOUR, rate=0.0003)
    FundingRateFactory(market=first.market, funding_time=START + 16 * HOUR, rate=-0.0002)
    lone = FundingRateFactory(funding_time=START, rate=0.0005)
    recent = candle_store.recent_funding_bulk([first.market, lone.market], START + 9 * HOUR)
    assert recent[first.market.pk] == candle_store.RecentFunding(START + 8 * HOUR, 0.0003, START)
    assert recent[lone.market.pk] == candle_store.RecentFunding(START, 0.0005, None)


def test_open_interest_bulk_gives_each_markets_latest_reading_at_or_before_as_of():
    first, second, bare = MarketFactory(), MarketFactory(), MarketFactory()
    for market, hours in ((first, (0, 1, 3)), (second, (0,))):
        for hour in hours:
            OpenInterest.objects.create(
                market=market, timestamp=START + hour * HOUR, open_interest=100.0 + hour
            )
    readings = candle_store.open_interest_at_bulk([first, second, bare], START + 2 * HOUR)
    assert {pk: reading.open_interest for pk, reading in readings.items()} == {
        first.pk: 101.0,
        second.pk: 100.0,
    }


def test_a_read_of_more_rows_than_one_fetch_gives_every_candle_in_order(monkeypatch):
    monkeypatch.setattr(candle_store, "_FETCH_ROWS", 3)
    market = MarketFactory()
    hourly_candles(market, [float(i) for i in range(10)])
    series = candle_store.closed_candles(market, as_of=START + 10 * HOUR, limit=1000)
    assert list(series.close) == [float(i) for i in range(10)]
    assert open_times(series) == [START + h * HOUR for h in range(10)]


@pytest.mark.parametrize("open_time", EXACT_OPEN_TIMES)
def test_open_times_are_read_to_the_exact_millisecond(open_time):
    market = MarketFactory()
    CandleFactory(market=market, timeframe="1m", open_time=open_time)
    series = candle_store.closed_candles(
        market, timeframe="1m", as_of=open_time + timedelta(minutes=1), limit=1
    )
    assert series.open_time[0] == datetime_to_ms(open_time)
    assert series.first_open_time == open_time


def _binary_copy(rows: list[tuple[float, ...]]) -> bytes:
    """A PostgreSQL binary COPY of float8 rows, as the server writes it."""
    body = b"".join(
        len(row).to_bytes(2, "big")
        + b"".join((8).to_bytes(4, "big") + np.array(value, ">f8").tobytes() for value in row)
        for row in rows
    )
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + body + b"\xff\xff"


def test_a_binary_copy_read_in_any_pieces_gives_its_rows(monkeypatch):
    monkeypatch.setattr(candle_store, "_FETCH_ROWS", 2)  # read in parts of a few pieces
    rows = [(float(i), i * 1.5, np.nan) for i in range(7)]
    copied = candle_store._BinaryFloatRows(3)
    data = _binary_copy(rows)
    for start in range(0, len(data), 13):  # pieces that split the header and the rows anywhere
        copied.write(data[start : start + 13])
    np.testing.assert_array_equal(copied.table(), np.array(rows), strict=True)


def test_a_binary_copy_of_other_fields_is_refused():
    copied = candle_store._BinaryFloatRows(2)
    copied.write(_binary_copy([(1.0, 2.0, 3.0)]))
    with pytest.raises(ValueError, match="other widths"):
        copied.table()
