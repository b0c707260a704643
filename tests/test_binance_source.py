"""BinanceSource against the local fake exchange over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

import numpy as np
import pytest
import redis

from fakes.exchange import FakeExchange
from httpengine.bans import LocalBanRegistry
from httpengine.budgets import LocalBudget
from httpengine.engine import RequestEngine
from market.models import Candle, ListingSource, Market, MarketType, OpenInterest
from market.sources.base import SourceError
from market.sources.binance.runtime import close_idle_runtimes
from market.sources.binance.source import BinanceSource
from market.sources.cache import clear_process_caches
from market.values import (
    CandleSeries,
    Funding,
    LargeTrades,
    LongShortRatio,
    Missing,
    OpenInterestNow,
    TakerFlow,
    Ticker,
)
from scanners import scanning
from scanners.algorithms.common import ScannerConfig
from tests.factories import MarketFactory

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "spot-1h"
COINS = ("BTC", "ETH", "SOL", "WIF")
NOW = datetime(2024, 5, 1, tzinfo=UTC)
SEED = 7


@pytest.fixture(scope="module")
def market_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four coins of the bundled sample (WIF listed 2024-03), so the fake starts fast."""
    folder = tmp_path_factory.mktemp("market") / "spot-1h"
    folder.mkdir()
    for coin in COINS:
        shutil.copy(SAMPLE / f"{coin}_USDT-1h.csv.gz", folder)
    return folder.parent


@pytest.fixture(scope="module")
def fake(market_folder: Path) -> Iterator[FakeExchange]:
    exchange = FakeExchange(market_folder, now=NOW, synthetic_seed=SEED)
    with exchange.running_in_thread():
        yield exchange


@pytest.fixture
def clean_fake(fake: FakeExchange) -> Iterator[FakeExchange]:
    """The shared fake with its counters, limits and faults back to normal around each test."""
    defaults = {
        "error_rate": 0.0,
        "timeout_rate": 0.0,
        "malformed_rate": 0.0,
        "spot_weight_limit": 6000,
        "futures_weight_limit": 2400,
        "ban_after": 3,
        "ban_seconds": 120.0,
        "now": NOW.isoformat(),
    }
    fake.configure(defaults)
    fake.reset()
    yield fake
    fake.configure(defaults)
    fake.reset()


def make_engines(*, retries: int = 2, spot_limit: int = 6000) -> dict[str, RequestEngine]:
    """Engines like the product's, with one-second budget windows and short backoff."""
    budget = LocalBudget(window_seconds=1.0, jitter_seconds=0.0)
    bans = LocalBanRegistry()
    limits = {
        "binance-spot": spot_limit,
        "binance-futures": 2400,
        "binance-futures-data": 1000,  # per budget window (here a second), each endpoint
        "coingecko": 1000,
        "lunarcrush": 1000,
    }
    return {
        name: RequestEngine(
            name=name,
            limit_per_minute=limit,
            budget=budget,
            max_concurrent=10,
            retries=retries,
            bans=bans,
            backoff_base=0.01,
            backoff_cap=0.05,
            call_timeout=10,
        )
        for name, limit in limits.items()
    }


def make_source(
    base: str,
    *,
    timeout: float = 5.0,
    engines: dict[str, RequestEngine] | None = None,
    **engine_options,
) -> BinanceSource:
    return BinanceSource(
        clock=lambda: NOW,
        engines=engines or make_engines(**engine_options),
        spot_url=base,
        futures_url=base,
        coingecko_url=f"{base}/coingecko/api/v3",
        coingecko_key="",
        lunarcrush_url=f"{base}/lunarcrush/api4",
        lunarcrush_key="",
        timeout=timeout,
    )


@pytest.fixture
def source(clean_fake: FakeExchange) -> Iterator[BinanceSource]:
    with make_source(clean_fake.base_url) as live:
        yield live


def raw_klines(fake: FakeExchange, symbol: str, **params) -> list[list]:
    query = urlencode({"symbol": symbol, "interval": "1h", **params})
    with urlopen(f"{fake.base_url}/api/v3/klines?{query}", timeout=5) as answer:
        return json.loads(answer.read())


# --- markets and listing ---------------------------------------------------------------------


@pytest.mark.django_db
def test_spot_markets_carry_their_first_candle_as_listing_time(source):
    markets = {m.symbol: m for m in source.markets(as_of=NOW)}

    assert set(markets) == {f"{coin}/USDT" for coin in COINS}
    wif = markets["WIF/USDT"]
    assert wif.listed_at_source == ListingSource.FIRST_CANDLE
    assert datetime(2024, 3, 1, tzinfo=UTC) <= wif.listed_at < NOW
    assert Market.objects.get(symbol="WIF/USDT").listed_at == wif.listed_at


@pytest.mark.django_db
def test_perpetual_markets_carry_the_exchange_onboard_date(source):
    perps = {m.symbol: m for m in source.markets(as_of=NOW, market_type=MarketType.FUTURES)}

    assert "BTC/USDT:USDT" in perps
    assert perps["BTC/USDT:USDT"].listed_at_source == ListingSource.EXCHANGE
    assert perps["BTC/USDT:USDT"].market_type == MarketType.FUTURES


@pytest.mark.django_db
def test_markets_listed_after_as_of_are_left_out(source):
    before_wif = datetime(2024, 2, 1, tzinfo=UTC)

    symbols = {m.symbol for m in source.markets(as_of=before_wif)}

    assert "BTC/USDT" in symbols
    assert "WIF/USDT" not in symbols


@pytest.mark.django_db
def test_listing_times_are_missing_for_unknown_and_not_yet_listed_coins(source):
    times = source.listing_times(
        ["BTC/USDT", "WIF/USDT", "NOPE/USDT"], as_of=datetime(2024, 2, 1, tzinfo=UTC)
    )

    assert isinstance(times["BTC/USDT"], datetime)
    assert "after" in times["WIF/USDT"].reason
    assert "no spot market NOPE/USDT" in times["NOPE/USDT"].reason


@pytest.mark.django_db
def test_listing_time_lookup_uses_the_store_before_asking_the_exchange(source, clean_fake):
    imported = datetime(2023, 12, 1, tzinfo=UTC)  # what an import notes from a file's first row
    MarketFactory(
        base="SOL", symbol="SOL/USDT", listed_at=imported, listed_at_source="first_candle"
    )

    times = source.listing_times(["SOL/USDT"], as_of=NOW)

    assert times["SOL/USDT"] == imported
    assert clean_fake.requests["/api/v3/klines"] == 0


@pytest.mark.django_db
def test_candles_written_through_do_not_pass_for_the_listing_time(source):
    source.candles(["SOL/USDT"], as_of=NOW, limit=24)

    times = source.listing_times(["SOL/USDT"], as_of=NOW)

    assert times["SOL/USDT"] < NOW - timedelta(days=30)


# --- candles -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_candles_keep_the_taker_buy_volume_of_raw_klines(source, clean_fake):
    series = source.candles(["BTC/USDT"], as_of=NOW, limit=5)["BTC/USDT"]

    raw = raw_klines(clean_fake, "BTCUSDT", endTime=int(NOW.timestamp() * 1000) - 1, limit=5)
    assert isinstance(series, CandleSeries)
    assert series.open_time.tolist() == [row[0] for row in raw]
    assert series.taker_buy_volume.tolist() == pytest.approx([float(row[9]) for row in raw])
    assert not np.isnan(series.taker_buy_volume).any()


@pytest.mark.django_db
def test_candles_are_written_through_and_served_from_the_store_afterwards(source, clean_fake):
    first = source.candles(["BTC/USDT", "ETH/USDT"], as_of=NOW, limit=48)
    requests_after_first = clean_fake.requests["/api/v3/klines"]
    second = source.candles(["BTC/USDT", "ETH/USDT"], as_of=NOW, limit=48)

    assert requests_after_first == 2
    assert clean_fake.requests["/api/v3/klines"] == 2
    assert Candle.objects.filter(market__symbol="BTC/USDT").count() == 48
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert second[symbol].open_time.tolist() == first[symbol].open_time.tolist()
        assert second[symbol].taker_buy_volume.tolist() == first[symbol].taker_buy_volume.tolist()


@pytest.mark.django_db
def test_candles_never_include_one_that_closes_after_as_of(source):
    as_of = NOW - timedelta(minutes=30)

    series = source.candles(["ETH/USDT"], as_of=as_of, limit=10)["ETH/USDT"]

    assert series.last_close_time <= as_of
    newest = Candle.objects.filter(market__symbol="ETH/USDT").latest("open_time").open_time
    assert newest + timedelta(hours=1) <= as_of


@pytest.mark.django_db
def test_a_later_call_fetches_only_the_candles_after_the_stored_ones(source, clean_fake):
    source.candles(["SOL/USDT"], as_of=NOW - timedelta(hours=5), limit=100)
    series = source.candles(["SOL/USDT"], as_of=NOW, limit=100)["SOL/USDT"]

    assert clean_fake.requests["/api/v3/klines"] == 2
    assert len(series) == 100
    assert series.last_close_time == NOW
    assert Candle.objects.filter(market__symbol="SOL/USDT").count() == 105


@pytest.mark.django_db
def test_fetched_candles_are_answered_as_the_store_holds_them(source, clean_fake):
    from market import candle_store

    source.candles(["SOL/USDT"], as_of=NOW - timedelta(hours=5), limit=100)
    answered = source.candles(["SOL/USDT", "BTC/USDT"], as_of=NOW, limit=100)

    rows = candle_store.markets_by_symbol(["SOL/USDT", "BTC/USDT"], exchange=source.exchange)
    stored = candle_store.closed_candles_bulk(list(rows.values()), as_of=NOW, limit=100)
    for symbol in ("SOL/USDT", "BTC/USDT"):
        mine, theirs = answered[symbol], stored[rows[symbol].pk]
        for name in ("open_time", "open", "high", "low", "close", "volume", "taker_buy_volume"):
            assert getattr(mine, name).tolist() == getattr(theirs, name).tolist(), (symbol, name)
    # The bulk insert writes times exactly as the ORM does: lookups by datetime find them.
    assert Candle.objects.filter(
        market__symbol="BTC/USDT", open_time=NOW - timedelta(hours=1)
    ).exists()


@pytest.mark.django_db
def test_a_stored_candle_wins_over_a_refetched_one(source, clean_fake):
    row = MarketFactory(symbol="ETH/USDT", base="ETH", quote="USDT")
    opened = NOW - timedelta(hours=3)
    Candle.objects.create(
        market=row, timeframe="1h", open_time=opened, open=1, high=2, low=0.5, close=1.5, volume=9
    )

    series = source.candles(["ETH/USDT"], as_of=NOW, limit=10)["ETH/USDT"]

    assert len(series) == 10
    index = series.open_time.tolist().index(int(opened.timestamp() * 1000))
    assert (series.open[index], series.volume[index]) == (1.0, 9.0)
    assert np.isnan(series.taker_buy_volume[index])
    assert Candle.objects.filter(market=row).count() == 10


@pytest.mark.django_db
def test_an_unknown_symbol_is_missing_and_the_rest_of_the_batch_answers(source):
    result = source.candles(["BTC/USDT", "NOPE/USDT"], as_of=NOW, limit=3)

    assert isinstance(result["BTC/USDT"], CandleSeries)
    assert result["NOPE/USDT"] == Missing("no spot market NOPE/USDT on Binance")


@pytest.mark.django_db
def test_perpetual_candles_come_from_the_futures_api(source, clean_fake):
    series = source.candles(["BTC/USDT:USDT"], as_of=NOW, limit=24)["BTC/USDT:USDT"]

    assert len(series) == 24
    assert clean_fake.requests["/fapi/v1/klines"] == 1
    assert Market.objects.get(symbol="BTC/USDT:USDT").market_type == MarketType.FUTURES


# --- tickers and funding -----------------------------------------------------------------------


@pytest.mark.django_db
def test_live_tickers_come_from_one_bulk_call(source, clean_fake):
    tickers = source.tickers(["BTC/USDT", "ETH/USDT", "SOL/USDT"], as_of=NOW)
    again = source.tickers(["BTC/USDT"], as_of=NOW + timedelta(seconds=30))

    assert clean_fake.requests["/api/v3/ticker/24hr"] == 1
    btc = tickers["BTC/USDT"]
    assert isinstance(btc, Ticker)
    assert btc.low_24h <= btc.last <= btc.high_24h
    assert btc.last_candle_close == NOW
    assert again["BTC/USDT"] == btc


@pytest.mark.django_db
def test_tickers_in_the_past_are_derived_from_candles(source, clean_fake):
    as_of = NOW - timedelta(days=3)

    ticker = source.tickers(["ETH/USDT"], as_of=as_of)["ETH/USDT"]

    assert clean_fake.requests["/api/v3/ticker/24hr"] == 0
    assert ticker.candles == 24
    assert ticker.last_candle_close == as_of


@pytest.mark.django_db
def test_live_funding_comes_from_one_premium_index_call(source, clean_fake):
    funding = source.funding_rates(["BTC/USDT", "ETH/USDT"], as_of=NOW)

    assert clean_fake.requests["/fapi/v1/premiumIndex"] == 1
    btc = funding["BTC/USDT"]
    assert isinstance(btc, Funding)
    assert btc.perp_symbol == "BTC/USDT:USDT"
    assert btc.funding_time <= NOW
    assert btc.interval == timedelta(hours=8)  # fundingInfo does not list it
    assert abs(btc.rate) < 0.01


@pytest.mark.django_db
def test_live_funding_of_a_perpetual_settling_every_4h_has_that_interval(tmp_path, clean_fake):
    (tmp_path / "spot-1h").mkdir()
    shutil.copy(SAMPLE / "ETH_USDT-1h.csv.gz", tmp_path / "spot-1h")
    start = int((NOW - timedelta(days=2)).timestamp() * 1000)
    settlements = [f"{start + i * 4 * 3_600_000},0.0002" for i in range(12)]
    funding_file = tmp_path / "funding" / "ETH_USDT_USDT-8h-funding_rate.csv"
    funding_file.parent.mkdir()
    funding_file.write_text("timestamp_ms,funding_rate\n" + "\n".join(settlements) + "\n")
    with FakeExchange(tmp_path, now=NOW).running_in_thread() as base, make_source(base) as live:
        eth = live.funding_rates(["ETH/USDT"], as_of=NOW)["ETH/USDT"]

    assert isinstance(eth, Funding)
    assert eth.interval == timedelta(hours=4)
    # The premium index's rate settles next, at NOW + 4 h; its period began 4 h before that.
    assert eth.funding_time == NOW
    assert eth.rate == pytest.approx(0.0002)


@pytest.mark.django_db
def test_funding_in_the_past_comes_from_the_funding_history(source, clean_fake):
    as_of = NOW - timedelta(days=2, hours=3)

    funding = source.funding_rates(["ETH/USDT"], as_of=as_of)["ETH/USDT"]

    assert clean_fake.requests["/fapi/v1/premiumIndex"] == 0
    assert isinstance(funding, Funding)
    assert as_of - timedelta(hours=8) < funding.funding_time <= as_of
    assert funding.interval == timedelta(hours=8)


@pytest.mark.django_db
def test_a_coin_without_a_perpetual_has_missing_derivatives(market_folder, clean_fake):
    spot_only = FakeExchange(market_folder, now=NOW)  # no synthetic perpetuals
    with spot_only.running_in_thread() as base, make_source(base) as live:
        funding = live.funding_rates(["BTC/USDT"], as_of=NOW)
        interest = live.open_interest(["BTC/USDT"], as_of=NOW)

    assert funding["BTC/USDT"] == Missing("no USDT-M perpetual for BTC/USDT on Binance")
    assert interest["BTC/USDT"] == Missing("no USDT-M perpetual for BTC/USDT on Binance")


# --- open interest, ratios, taker flow, trades ---------------------------------------------------


@pytest.mark.django_db
def test_open_interest_has_its_24h_change_and_is_recorded(source):
    interest = source.open_interest(["BTC/USDT", "ETH/USDT"], as_of=NOW)

    btc = interest["BTC/USDT"]
    assert isinstance(btc, OpenInterestNow)
    assert btc.open_interest > 0
    assert btc.open_interest_value > 0
    assert btc.change_24h_pct == pytest.approx(
        (btc.open_interest - btc.open_interest_24h_ago) / btc.open_interest_24h_ago * 100
    )
    assert OpenInterest.objects.filter(market__symbol="BTC/USDT:USDT").count() == 1


@pytest.mark.django_db
def test_open_interest_in_the_past_comes_from_its_history(source, clean_fake):
    as_of = NOW - timedelta(days=3)

    btc = source.open_interest(["BTC/USDT"], as_of=as_of)["BTC/USDT"]

    assert clean_fake.requests["/fapi/v1/openInterest"] == 0
    assert btc.timestamp == as_of
    assert isinstance(btc.change_24h_pct, float)


@pytest.mark.django_db
def test_open_interest_history_covers_the_hours_before_as_of(source):
    points = source.open_interest_history("SOL/USDT", as_of=NOW, hours=48)

    assert len(points) == 48
    assert points[0].timestamp > NOW - timedelta(hours=48)
    assert points[-1].timestamp == NOW
    assert all(a.timestamp < b.timestamp for a, b in pairwise(points))


@pytest.mark.django_db
def test_open_interest_history_older_than_30_days_is_missing(source):
    points = source.open_interest_history("SOL/USDT", as_of=NOW - timedelta(days=40), hours=24)

    assert isinstance(points, Missing)
    assert "30 days" in points.reason


@pytest.mark.django_db
def test_long_short_ratio_is_the_top_traders_one(source, clean_fake):
    source.long_short_ratio(["ETH/USDT"], as_of=NOW)

    assert clean_fake.requests["/futures/data/topLongShortAccountRatio"] == 1
    assert clean_fake.requests["/futures/data/globalLongShortAccountRatio"] == 0


@pytest.mark.django_db
def test_long_short_ratio_is_the_latest_reading(source):
    ratio = source.long_short_ratio(["ETH/USDT"], as_of=NOW)["ETH/USDT"]

    assert isinstance(ratio, LongShortRatio)
    assert ratio.timestamp == NOW
    assert ratio.long_share + ratio.short_share == pytest.approx(1, abs=1e-3)
    assert ratio.ratio == pytest.approx(ratio.long_share / ratio.short_share, rel=1e-3)


class SteppingClock:
    """Wall-clock seconds shared by the fake's limits and the source's budget. A budget's wait
    moves it instead of sleeping, once `arrived()` says the requests granted before it reached
    the fake (they must be counted in the window they were granted in)."""

    def __init__(self, start: float, arrived: Callable[[], bool]) -> None:
        self.value = start
        self.arrived = arrived

    def __call__(self) -> float:
        return self.value

    async def sleep(self, seconds: float) -> None:
        while not self.arrived():
            await asyncio.sleep(0.01)
        self.value += max(seconds, 0.0)


@pytest.mark.django_db
def test_futures_data_requests_wait_for_the_endpoints_next_5_minutes_not_for_a_429(market_folder):
    path = "/futures/data/takerlongshortRatio"
    start = 1_800_000_000.0  # the start of a 5-minute window
    clock = SteppingClock(start, arrived=lambda: limited.requests[path] >= 2)
    limited = FakeExchange(
        market_folder, now=NOW, synthetic_seed=SEED, futures_data_requests_per_5min=2, clock=clock
    )
    engines = make_engines()
    engines["binance-futures-data"] = RequestEngine(
        name="binance-futures-data",
        limit_per_minute=2,  # per window of its budget: 5 minutes
        usable_share=1.0,
        budget=LocalBudget(window_seconds=300, now=clock, sleep=clock.sleep, jitter_seconds=0),
        max_concurrent=10,
        retries=0,
        bans=LocalBanRegistry(),
    )
    coins = [f"{coin}/USDT" for coin in COINS]
    with limited.running_in_thread() as base, make_source(base, engines=engines) as live:
        flows = live.taker_flow(coins, as_of=NOW)

    assert all(isinstance(flow, TakerFlow) for flow in flows.values())
    assert limited.requests[path] == len(coins)
    assert limited.sent_429["futures_data"] == 0
    assert clock() >= start + 300  # the last two waited for the next window


@pytest.mark.django_db
def test_taker_flow_sums_the_window(source):
    day = source.taker_flow(["BTC/USDT"], as_of=NOW)["BTC/USDT"]
    hours = source.taker_flow(["BTC/USDT"], as_of=NOW, window=timedelta(hours=4))["BTC/USDT"]

    assert isinstance(day, TakerFlow)
    assert day.window == timedelta(hours=24)
    assert 0 < hours.buy_volume < day.buy_volume
    assert 0 < hours.sell_volume < day.sell_volume


@pytest.mark.django_db
def test_large_trades_count_only_trades_above_the_threshold(source):
    every = source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=0)["SOL/USDT"]
    whales = source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=5_000)["SOL/USDT"]
    none = source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=1e15)["SOL/USDT"]

    assert isinstance(every, LargeTrades)
    assert every.buy_usd + every.sell_usd == pytest.approx(every.total_usd)
    assert every.buy_usd > 0
    assert every.sell_usd > 0
    assert whales.total_usd == pytest.approx(every.total_usd)
    assert whales.count < every.count
    assert (none.count, none.buy_usd, none.sell_usd) == (0, 0, 0)
    assert none.total_usd == pytest.approx(every.total_usd)


@pytest.mark.django_db
def test_reading_the_same_trade_window_again_sends_no_request(clean_fake, source):
    first = source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=5_000)["SOL/USDT"]
    pages = clean_fake.requests["/api/v3/aggTrades"]
    again = source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=5_000)["SOL/USDT"]
    assert again == first
    assert clean_fake.requests["/api/v3/aggTrades"] == pages > 0


@pytest.mark.django_db
def test_a_later_trade_window_reads_only_the_trades_after_the_last_one_read(clean_fake, source):
    source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=5_000)
    later = NOW + timedelta(minutes=10, seconds=30)
    clean_fake.configure({"now": later.isoformat()})
    clean_fake.reset()
    incremental = source.large_trades(["SOL/USDT"], as_of=later, min_usd=5_000)["SOL/USDT"]
    incremental_pages = clean_fake.requests["/api/v3/aggTrades"]

    clear_process_caches()
    clean_fake.reset()
    fresh = source.large_trades(["SOL/USDT"], as_of=later, min_usd=5_000)["SOL/USDT"]

    assert (incremental.window_start, incremental.window_end) == (
        NOW + timedelta(minutes=10) - timedelta(hours=1),
        NOW + timedelta(minutes=10),  # whole minutes: the tally's buckets
    )
    assert incremental.count == fresh.count
    for part in ("buy_usd", "sell_usd", "total_usd"):
        assert getattr(incremental, part) == pytest.approx(getattr(fresh, part)), part
    assert 0 < incremental_pages < clean_fake.requests["/api/v3/aggTrades"]


@pytest.mark.django_db
def test_a_window_too_busy_for_one_read_is_finished_by_the_next_reads(
    clean_fake, source, monkeypatch
):
    full = source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=5_000)["SOL/USDT"]
    clear_process_caches()
    monkeypatch.setattr("market.sources.binance.source.AGG_TRADES_MAX_PAGES", 1)
    answers = [
        source.large_trades(["SOL/USDT"], as_of=NOW, min_usd=5_000)["SOL/USDT"] for _ in range(40)
    ]
    assert isinstance(answers[0], Missing)
    assert "goes on from where this one stopped" in answers[0].reason
    finished = next(answer for answer in answers if isinstance(answer, LargeTrades))
    assert finished.count == full.count
    assert finished.total_usd == pytest.approx(full.total_usd)


# --- failures ----------------------------------------------------------------------------------


def _align_fake_minute(fake: FakeExchange, seconds_left: float) -> None:
    """Make the fake's rate-limit minute end `seconds_left` seconds from now."""
    offset = (60 - seconds_left - time.time() % 60) % 60
    fake.clock = lambda: time.time() + offset


@pytest.mark.django_db
def test_http_429_waits_retry_after_then_answers(source, clean_fake):
    source.markets(as_of=NOW)
    # This minute: a ping (weight 1) and the klines (2) exceed a limit of 2; the next: they fit.
    _align_fake_minute(clean_fake, 0.8)
    clean_fake.reset()
    clean_fake.configure({"spot_weight_limit": 2})
    urlopen(f"{clean_fake.base_url}/api/v3/ping", timeout=5).close()
    try:
        started = time.monotonic()
        series = source.candles(["ETH/USDT"], as_of=NOW, limit=3)["ETH/USDT"]
        waited = time.monotonic() - started
    finally:
        clean_fake.clock = time.time

    assert isinstance(series, CandleSeries)
    assert clean_fake.sent_429["spot"] == 1
    assert 0.5 <= waited < 10


@pytest.mark.django_db
def test_http_418_is_a_source_error_and_calls_resume_after_the_ban(source, clean_fake):
    source.markets(as_of=NOW)
    clean_fake.configure({"spot_weight_limit": 1, "ban_after": 0, "ban_seconds": 1.0})

    with pytest.raises(SourceError, match="banned"):
        source.candles(["ETH/USDT"], as_of=NOW, limit=3)

    clean_fake.configure({"spot_weight_limit": 6000})
    series = source.candles(["ETH/USDT"], as_of=NOW, limit=3)["ETH/USDT"]
    assert isinstance(series, CandleSeries)
    assert clean_fake.sent_418["spot"] == 1


@pytest.mark.django_db
def test_5xx_answers_are_retried_then_reported_for_the_coin(source, clean_fake):
    source.markets(as_of=NOW)
    clean_fake.configure({"error_rate": 1.0})

    result = source.candles(["ETH/USDT"], as_of=NOW, limit=3)["ETH/USDT"]

    assert isinstance(result, Missing)
    assert "failed after 3 attempts" in result.reason
    assert clean_fake.faults["error"] == 3


@pytest.mark.django_db
def test_timeouts_are_retried_then_reported_for_the_coin(clean_fake):
    clean_fake.configure({"timeout_seconds": 2.0})
    with make_source(clean_fake.base_url, timeout=0.3, retries=1) as live:
        live.markets(as_of=NOW)
        clean_fake.configure({"timeout_rate": 1.0})
        result = live.candles(["ETH/USDT"], as_of=NOW, limit=3)["ETH/USDT"]

    assert isinstance(result, Missing)
    assert "timed out" in result.reason
    assert clean_fake.faults["timeout"] == 2


@pytest.mark.django_db
def test_a_malformed_body_makes_that_coin_missing_with_a_reason(source, clean_fake):
    source.markets(as_of=NOW)
    clean_fake.configure({"malformed_rate": 1.0})

    result = source.candles(["BTC/USDT", "ETH/USDT"], as_of=NOW, limit=3)

    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert isinstance(result[symbol], Missing)
        assert "not JSON" in result[symbol].reason
    assert not Candle.objects.exists()


@pytest.mark.django_db
def test_an_exchange_nobody_answers_at_is_a_source_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        make_source(f"http://127.0.0.1:{port}", retries=1) as live,
        pytest.raises(SourceError, match="cannot reach Binance"),
    ):
        live.tickers(["BTC/USDT"], as_of=NOW)


@pytest.mark.django_db
def test_a_closed_source_refuses_calls(clean_fake):
    live = make_source(clean_fake.base_url)
    live.close()

    with pytest.raises(SourceError, match="closed"):
        live.tickers(["BTC/USDT"], as_of=NOW)


@pytest.mark.redis
@pytest.mark.django_db
def test_a_closed_source_leaves_no_redis_connection_of_the_shared_budget_open(clean_fake, settings):
    from httpengine import registry

    url = "redis://127.0.0.1:6379/8"
    settings.RATE_BUDGET_REDIS_URL = url
    registry.reset_engines()
    watcher = redis.Redis.from_url(url)

    def budget_connections() -> int:
        return sum(1 for client in watcher.client_list() if client.get("db") == "8") - 1

    before = budget_connections()
    open_after: list[int] = []
    try:
        for _ in range(3):  # one after another: the idle runtime (and its clients) is reused
            source = BinanceSource(
                clock=lambda: NOW, spot_url=clean_fake.base_url, futures_url=clean_fake.base_url
            )
            with source:
                source.tickers(["BTC/USDT"], as_of=NOW)
            clear_process_caches()  # so each source asks again
            open_after.append(budget_connections())
        assert open_after[0] == open_after[1] == open_after[2]  # no growth
        close_idle_runtimes()
        assert budget_connections() == before
    finally:
        registry.reset_engines()
        watcher.close()


@pytest.mark.django_db
def test_a_tally_refresh_leaves_a_later_scan_only_the_trades_since(clean_fake, source, settings):
    settings.SCAN_UNIVERSE_SIZE = 3
    refresh = scanning.refresh_trade_tallies(source=source, as_of=NOW)
    # A coin too busy for one refresh is read on by the next one (or the scan), not dropped.
    refreshed = [
        coin
        for coin in scanning.universe_select(source, as_of=NOW, size=3)
        if coin not in refresh.unread
    ]
    later = NOW + timedelta(minutes=5)
    clean_fake.configure({"now": later.isoformat()})
    clean_fake.reset()
    whale_usd = ScannerConfig.from_settings().whale_trade_usd  # the scan's threshold
    after_refresh = source.large_trades(refreshed, as_of=later, min_usd=whale_usd)
    pages_after_refresh = clean_fake.requests["/api/v3/aggTrades"]

    clear_process_caches()  # no tallies: the scan reads its whole hour
    clean_fake.reset()
    whole_hour = source.large_trades(refreshed, as_of=later, min_usd=whale_usd)

    assert refresh.coins == 3
    assert all("goes on from where" in reason for reason in refresh.unread.values())
    assert len(refreshed) >= 1
    assert {s: v.count for s, v in after_refresh.items()} == {
        s: v.count for s, v in whole_hour.items()
    }
    assert pages_after_refresh == len(refreshed)  # one page each: the five minutes since
    assert clean_fake.requests["/api/v3/aggTrades"] > pages_after_refresh
