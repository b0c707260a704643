"""The replay source: the candle store as of the replay clock, behind the market-data interface."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from market.models import Candle, ListingSource, MarketType, OpenInterest, ReplayClock
from market.sources import get_market_source
from market.sources.base import MarketDataSource, SourceError, perpetual_symbol
from market.sources.replay import ReplaySource
from market.times import datetime_to_ms
from market.values import CandleSeries, Funding, Missing, Ticker
from tests.factories import START, CandleFactory, FundingRateFactory, MarketFactory, hourly_candles

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def source_at(moment) -> ReplaySource:
    return ReplaySource(clock=lambda: moment)


def perp_of(spot):
    return MarketFactory(
        base=spot.base, symbol=perpetual_symbol(spot.symbol), market_type=MarketType.FUTURES
    )


@pytest.fixture
def btc():
    market = MarketFactory(base="BTC")
    hourly_candles(market, [100.0 + i for i in range(48)])  # START .. START + 47h
    return market


def test_get_market_source_gives_the_replay_source_by_default():
    assert isinstance(get_market_source(), ReplaySource)


def test_an_unknown_market_source_is_a_clear_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="MARKET_SOURCE='kraken'"):
        get_market_source("kraken")


def test_replay_source_implements_the_whole_interface():
    assert isinstance(ReplaySource(), MarketDataSource)  # abstract methods would make this fail


def test_now_is_the_replay_clock_market_time(btc):
    ReplayClock.objects.create(
        pk=1, market_time=START + 30 * HOUR, start=START, end=START + 48 * HOUR, step=HOUR
    )
    assert ReplaySource().now() == START + 30 * HOUR


def test_now_creates_the_clock_from_the_store(btc, settings):
    settings.REPLAY_WARMUP_HOURS = 24
    assert ReplaySource().now() == START + 24 * HOUR


def test_now_on_an_empty_store_is_a_source_error():
    with pytest.raises(SourceError, match="import"):
        ReplaySource().now()


def test_markets_are_the_spot_markets_with_a_candle_closed_at_as_of(btc):
    later = MarketFactory(base="NEW")
    hourly_candles(later, [5.0], start=START + 10 * HOUR)
    MarketFactory(base="NOCANDLES")
    perp_of(btc)

    symbols = [info.symbol for info in ReplaySource().markets(as_of=START + 10 * HOUR)]

    assert symbols == ["BTC/USDT"]  # NEW's first candle is still open at 10:00


def test_a_market_is_listed_at_its_first_candle_in_a_replay(btc):
    [info] = ReplaySource().markets(as_of=START + 5 * HOUR)
    assert info.listed_at == START
    assert info.listed_at_source == ListingSource.FIRST_CANDLE


def test_a_market_whose_candles_stopped_over_24h_before_as_of_is_inactive(btc):
    [still] = ReplaySource().markets(as_of=START + 48 * HOUR + 23 * HOUR)
    [stopped] = ReplaySource().markets(as_of=START + 48 * HOUR + 24 * HOUR)
    assert still.active
    assert not stopped.active


def test_candles_never_include_a_candle_closing_after_as_of(btc):
    as_of = START + timedelta(hours=20, minutes=30)
    series = ReplaySource().candles(["BTC/USDT"], as_of=as_of, limit=500)["BTC/USDT"]
    assert isinstance(series, CandleSeries)
    assert series.close_time.max() <= datetime_to_ms(as_of)
    assert len(series) == 20


def test_candles_are_the_latest_limit_oldest_first(btc):
    series = ReplaySource().candles(["BTC/USDT"], as_of=START + 48 * HOUR, limit=3)["BTC/USDT"]
    assert list(series.close) == [145.0, 146.0, 147.0]


def test_candles_of_a_symbol_not_in_the_store_are_missing_with_a_reason(btc):
    result = ReplaySource().candles(["BTC/USDT", "NOPE/USDT"], as_of=START + 5 * HOUR, limit=5)
    assert isinstance(result["NOPE/USDT"], Missing)
    assert "NOPE/USDT" in result["NOPE/USDT"].reason


def test_candles_before_the_first_candle_closes_are_missing(btc):
    result = ReplaySource().candles(["BTC/USDT"], as_of=START + 30 * timedelta(minutes=1), limit=5)
    assert isinstance(result["BTC/USDT"], Missing)
    assert "closed at or before" in result["BTC/USDT"].reason


def test_candles_of_a_timeframe_not_stored_are_missing(btc):
    result = ReplaySource().candles(["BTC/USDT"], timeframe="4h", as_of=START + 24 * HOUR, limit=5)
    assert isinstance(result["BTC/USDT"], Missing)


def test_taker_buy_volume_is_nan_where_the_store_has_none():
    market = MarketFactory(base="TKR")
    CandleFactory(market=market, open_time=START, taker_buy_volume=None)
    CandleFactory(market=market, open_time=START + HOUR, taker_buy_volume=6.0)
    series = ReplaySource().candles(["TKR/USDT"], as_of=START + 2 * HOUR, limit=5)["TKR/USDT"]
    assert np.isnan(series.taker_buy_volume[0])
    assert series.taker_buy_volume[1] == 6.0


def test_ticker_24h_figures_equal_a_hand_computation():
    market = MarketFactory(base="ETH")

    def candle(hour, high=None, low=None):
        return Candle(
            market=market,
            timeframe="1h",
            open_time=START + hour * HOUR,
            open=10.0 + hour,
            high=high or 12.0 + hour,
            low=low or 9.0 + hour,
            close=11.0 + hour,
            volume=2.0 + hour,
        )

    # Hour 5 closes at 06:00, just outside the 24 h before 06:10 the next day: its extremes
    # must not count. Hour 20 has the window's high, hour 12 its low.
    rows = [candle(h) for h in range(5)]
    rows += [candle(5, high=1000.0, low=0.5)]
    rows += [candle(h) for h in range(6, 30) if h not in (12, 20)]
    rows += [candle(12, low=3.0), candle(20, high=99.0)]
    Candle.objects.bulk_create(rows)
    as_of = START + timedelta(hours=30, minutes=10)

    ticker = ReplaySource().tickers(["ETH/USDT"], as_of=as_of)["ETH/USDT"]

    hours = range(6, 30)
    assert isinstance(ticker, Ticker)
    assert ticker.last == 11.0 + 29
    assert ticker.open_24h == 10.0 + 6
    assert ticker.high_24h == 99.0
    assert ticker.low_24h == 3.0
    assert ticker.base_volume_24h == sum(2.0 + h for h in hours)
    assert ticker.quote_volume_24h == pytest.approx(sum((2.0 + h) * (11.0 + h) for h in hours))
    assert ticker.change_24h_pct == pytest.approx((40.0 - 16.0) / 16.0 * 100)
    assert ticker.last_candle_close == START + 30 * HOUR
    assert ticker.candles == 24


def test_ticker_window_holds_only_the_candles_of_the_24h_before_a_gap():
    market = MarketFactory(base="HOLE")
    hourly_candles(market, [1.0] * 5 + [None] * 20 + [2.0] * 3)  # hours 0-4 and 25-27
    ticker = ReplaySource().tickers(["HOLE/USDT"], as_of=START + 28 * HOUR)["HOLE/USDT"]
    assert ticker.candles == 3 + 1  # hours 25-27 and hour 4 (closed at 05:00, inside the window)


def test_ticker_is_missing_when_no_candle_closed_in_the_24h_before_as_of(btc):
    ticker = ReplaySource().tickers(["BTC/USDT"], as_of=START + 72 * HOUR)["BTC/USDT"]
    assert isinstance(ticker, Missing)
    assert "24 h" in ticker.reason


def test_funding_as_of_t_is_the_latest_settlement_at_or_before_t_of_the_perpetual(btc):
    perp = perp_of(btc)
    FundingRateFactory(market=perp, funding_time=START, rate=0.0001)
    FundingRateFactory(market=perp, funding_time=START + 8 * HOUR, rate=0.0004)
    FundingRateFactory(market=perp, funding_time=START + 16 * HOUR, rate=-0.0002)

    funding = ReplaySource().funding_rates(["BTC/USDT"], as_of=START + 15 * HOUR)["BTC/USDT"]

    assert funding == Funding(
        symbol="BTC/USDT",
        perp_symbol="BTC/USDT:USDT",
        rate=0.0004,
        funding_time=START + 8 * HOUR,
        interval=8 * HOUR,
    )


def test_funding_interval_ignores_millisecond_jitter(btc):
    perp = perp_of(btc)
    FundingRateFactory(market=perp, funding_time=START, rate=0.0001)
    FundingRateFactory(market=perp, funding_time=START + 4 * HOUR - timedelta(milliseconds=1))
    funding = ReplaySource().funding_rates(["BTC/USDT"], as_of=START + 5 * HOUR)["BTC/USDT"]
    assert funding.interval == 4 * HOUR


def test_funding_before_the_first_settlement_is_missing(btc):
    FundingRateFactory(market=perp_of(btc), funding_time=START + 8 * HOUR)
    funding = ReplaySource().funding_rates(["BTC/USDT"], as_of=START + 7 * HOUR)["BTC/USDT"]
    assert funding == Missing(
        "no funding settlement of BTC/USDT:USDT at or before as_of (2024-01-01 07:00 UTC)"
    )


def test_funding_settled_more_than_24h_before_as_of_is_missing(btc):
    FundingRateFactory(market=perp_of(btc), funding_time=START)
    funding = ReplaySource().funding_rates(["BTC/USDT"], as_of=START + 24 * HOUR)["BTC/USDT"]
    assert isinstance(funding, Missing)
    assert "more than 24 h" in funding.reason


def test_funding_of_a_coin_without_a_perpetual_is_missing(btc):
    funding = ReplaySource().funding_rates(["BTC/USDT"], as_of=START + 7 * HOUR)["BTC/USDT"]
    assert funding == Missing("no perpetual BTC/USDT:USDT on binance in the store")


@pytest.mark.parametrize(
    ("read", "words"),
    [
        (lambda s, t: s.open_interest(["BTC/USDT"], as_of=t)["BTC/USDT"], "30 days"),
        (lambda s, t: s.open_interest_history("BTC/USDT", as_of=t, hours=24), "30 days"),
        (lambda s, t: s.long_short_ratio(["BTC/USDT"], as_of=t)["BTC/USDT"], "30 days"),
        (lambda s, t: s.taker_flow(["BTC/USDT"], as_of=t)["BTC/USDT"], "30 days"),
        (
            lambda s, t: s.large_trades(["BTC/USDT"], as_of=t, min_usd=100_000)["BTC/USDT"],
            "trades",
        ),
        (lambda s, t: s.fundamentals(["BTC/USDT"], as_of=t)["BTC/USDT"], "CoinGecko"),
        (lambda s, t: s.trending(as_of=t), "CoinGecko"),
        (lambda s, t: s.social(["BTC/USDT"], as_of=t)["BTC/USDT"], "LunarCrush"),
    ],
    ids=[
        "open_interest",
        "open_interest_history",
        "long_short_ratio",
        "taker_flow",
        "large_trades",
        "fundamentals",
        "trending",
        "social",
    ],
)
def test_inputs_the_replay_does_not_have_are_missing_with_a_reason_not_zero(btc, read, words):
    value = read(ReplaySource(), START + 24 * HOUR)
    assert isinstance(value, Missing)
    assert not value
    assert words in value.reason


def test_open_interest_recorded_in_the_store_is_read_as_of_t_with_its_24h_change(btc):
    perp = perp_of(btc)
    for hours, amount in [(0, 1000.0), (1, 1100.0), (24, 1500.0), (25, 1800.0)]:
        OpenInterest.objects.create(
            market=perp, timestamp=START + hours * HOUR, open_interest=amount
        )
    now = ReplaySource().open_interest(["BTC/USDT"], as_of=START + timedelta(hours=24, minutes=30))
    reading = now["BTC/USDT"]
    assert reading.open_interest == 1500.0
    assert reading.open_interest_24h_ago == 1000.0
    assert reading.change_24h_pct == pytest.approx(50.0)
    assert isinstance(reading.open_interest_value, Missing)


def test_every_requested_symbol_gets_exactly_one_answer(btc):
    result = ReplaySource().tickers(["BTC/USDT", "BTC/USDT", "X/USDT"], as_of=START + 5 * HOUR)
    assert list(result) == ["BTC/USDT", "X/USDT"]


def test_listing_time_is_the_first_candle_once_it_has_closed(btc):
    source = ReplaySource()
    assert source.listing_times(["BTC/USDT"], as_of=START + HOUR)["BTC/USDT"] == START
    before = source.listing_times(["BTC/USDT"], as_of=START + 59 * timedelta(minutes=1))
    assert isinstance(before["BTC/USDT"], Missing)
    assert "not listed yet" in before["BTC/USDT"].reason


def test_a_clock_override_is_the_sources_now():
    assert source_at(START).now() == START


def test_market_source_binance_selects_the_live_binance_source(settings):
    from market.sources.binance.source import BinanceSource

    settings.MARKET_SOURCE = "binance"
    source = get_market_source()
    try:
        assert isinstance(source, BinanceSource)
    finally:
        source.close()
