"""CoinGecko and LunarCrush through BinanceSource against the fake, and the symbol mapping."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest

from fakes.exchange import FakeExchange
from market.sources.coingecko import CoinGeckoClient
from market.sources.lunarcrush import NO_KEY
from market.sources.symbols import VendorCoin, match_symbols
from market.values import Fundamentals, Missing, Social, TrendingCoin
from tests.test_binance_source import NOW, SAMPLE, SEED, make_engines, make_source

COINS = ("BTC", "ETH", "SOL", "DOGE", "PEPE")


@pytest.fixture(scope="module")
def vendor_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeExchange]:
    folder = tmp_path_factory.mktemp("vendors") / "spot-1h"
    folder.mkdir()
    for coin in COINS:
        shutil.copy(SAMPLE / f"{coin}_USDT-1h.csv.gz", folder)
    exchange = FakeExchange(folder.parent, now=NOW, synthetic_seed=SEED)
    with exchange.running_in_thread():
        yield exchange


@pytest.fixture
def vendors(vendor_fake: FakeExchange) -> FakeExchange:
    vendor_fake.reset()
    return vendor_fake


def with_lunarcrush_key(base: str):
    from market.sources.binance.source import BinanceSource

    return BinanceSource(
        clock=lambda: NOW,
        engines=make_engines(),
        spot_url=base,
        futures_url=base,
        coingecko_url=f"{base}/coingecko/api/v3",
        coingecko_key="demo-key",
        lunarcrush_url=f"{base}/lunarcrush/api4",
        lunarcrush_key="test-key",
        timeout=5,
    )


# --- CoinGecko ---------------------------------------------------------------------------------


def test_fundamentals_come_from_coingecko_markets(vendors):
    with make_source(vendors.base_url) as live:
        result = live.fundamentals(["BTC/USDT", "SOL/USDT", "NOPE/USDT"], as_of=NOW)

    btc = result["BTC/USDT"]
    assert isinstance(btc, Fundamentals)
    assert btc.market_cap > 0
    assert btc.fdv >= btc.market_cap
    assert btc.total_supply >= btc.circulating_supply > 0
    assert result["NOPE/USDT"] == Missing("NOPE is not listed on CoinGecko under that symbol")
    assert vendors.requests["/coingecko/api/v3/coins/markets"] == 1


def test_fundamentals_are_cached_for_five_minutes(vendors):
    with make_source(vendors.base_url) as live:
        live.fundamentals(["BTC/USDT"], as_of=NOW)
        live.fundamentals(["ETH/USDT"], as_of=NOW + timedelta(minutes=2))

    assert vendors.requests["/coingecko/api/v3/coins/markets"] == 1


def test_fundamentals_of_the_past_are_missing_not_todays_values(vendors):
    with make_source(vendors.base_url) as live:
        result = live.fundamentals(["BTC/USDT"], as_of=NOW - timedelta(days=1))

    assert isinstance(result["BTC/USDT"], Missing)
    assert "only the current" in result["BTC/USDT"].reason
    assert vendors.requests["/coingecko/api/v3/coins/markets"] == 0


def test_coingecko_fields_it_leaves_null_are_missing_not_zero(vendor_fake, tmp_path):
    folder = tmp_path / "spot-1h"
    folder.mkdir()
    shutil.copy(SAMPLE / "BTC_USDT-1h.csv.gz", folder)
    bare = FakeExchange(tmp_path, now=NOW)  # no seed: no supplies or market caps
    with bare.running_in_thread() as base, make_source(base) as live:
        btc = live.fundamentals(["BTC/USDT"], as_of=NOW)["BTC/USDT"]

    assert isinstance(btc, Fundamentals)
    for value in (btc.market_cap, btc.fdv, btc.circulating_supply, btc.total_supply):
        assert isinstance(value, Missing)
        assert "CoinGecko gives no" in value.reason


def test_trending_lists_coingecko_coins_by_rank(vendors):
    with make_source(vendors.base_url) as live:
        trending = live.trending(as_of=NOW)

    assert trending
    assert all(isinstance(coin, TrendingCoin) for coin in trending)
    assert [coin.rank for coin in trending] == list(range(1, len(trending) + 1))
    assert {coin.base for coin in trending} <= set(COINS)


def test_the_demo_key_goes_in_its_header():
    client = CoinGeckoClient(
        base_url="http://127.0.0.1:1", api_key="k", engine=None, session=None, timeout=1
    )
    keyless = CoinGeckoClient(
        base_url="http://127.0.0.1:1", api_key="", engine=None, session=None, timeout=1
    )

    assert client.headers == {"x-cg-demo-api-key": "k"}
    assert keyless.headers == {}


# --- LunarCrush --------------------------------------------------------------------------------


def test_without_a_lunarcrush_key_social_inputs_are_missing_not_zero(vendors):
    with make_source(vendors.base_url) as live:
        social = live.social(["BTC/USDT", "ETH/USDT"], as_of=NOW)

    assert social == {"BTC/USDT": Missing(NO_KEY), "ETH/USDT": Missing(NO_KEY)}
    assert vendors.requests["/lunarcrush/api4/public/coins/list/v2"] == 0


def test_with_a_key_social_metrics_come_from_lunarcrush(vendors):
    with with_lunarcrush_key(vendors.base_url) as live:
        social = live.social(["BTC/USDT", "NOPE/USDT"], as_of=NOW)

    btc = social["BTC/USDT"]
    assert isinstance(btc, Social)
    assert vendors.requests["/lunarcrush/api4/public/coins/list/v2"] == 1
    # The fake has no social history: values it leaves null are Missing, never 0.
    for value in (btc.galaxy_score, btc.alt_rank, btc.social_volume, btc.sentiment):
        assert isinstance(value, Missing) or value > 0
    assert isinstance(btc.social_volume_change_24h_pct, Missing)
    assert isinstance(social["NOPE/USDT"], Missing)


# --- symbol mapping ------------------------------------------------------------------------------


def test_a_symbol_shared_by_two_similar_coins_is_ambiguous_with_both_ids(caplog):
    coins = [
        VendorCoin("pepe", "pepe", market_cap=5e9),
        VendorCoin("pepe-old", "PEPE", market_cap=1e9),
        VendorCoin("bitcoin", "btc", market_cap=1e12),
    ]

    with caplog.at_level(logging.INFO, logger="market.sources.symbols"):
        mapping = match_symbols(["PEPE", "BTC", "ZZZ"], coins, vendor="CoinGecko")

    pepe = mapping.lookup("PEPE")
    assert isinstance(pepe, Missing)
    assert "ambiguous" in pepe.reason
    assert "pepe, pepe-old" in pepe.reason
    assert mapping.lookup("BTC").vendor_id == "bitcoin"
    assert mapping.problems() == [
        "ZZZ: not on CoinGecko",
        "PEPE: ambiguous on CoinGecko (pepe, pepe-old)",
    ]
    assert "1 ambiguous" in caplog.text


def test_a_shared_symbol_goes_to_the_coin_ten_times_larger_than_the_next():
    coins = [
        VendorCoin("uniswap", "UNI", market_cap=5e9),
        VendorCoin("uni-fork", "UNI", market_cap=4e8),
    ]

    mapping = match_symbols(["UNI"], coins, vendor="CoinGecko")

    assert mapping.lookup("UNI").vendor_id == "uniswap"
    assert mapping.problems() == []


def test_shared_symbols_without_market_caps_are_ambiguous():
    coins = [VendorCoin("a", "X"), VendorCoin("b", "X")]

    assert isinstance(match_symbols(["X"], coins, vendor="LunarCrush").lookup("X"), Missing)


def test_ambiguous_coins_are_missing_in_fundamentals(vendors, monkeypatch):
    original = CoinGeckoClient.symbol_map

    async def with_a_twin(self, bases, *, as_of):
        listing = await self.listing(bases, as_of=as_of)
        btc = next(coin for coin in listing.coins if coin["symbol"] == "btc")
        listing.coins.append({**btc, "id": "btc-twin", "market_cap": btc["market_cap"] / 2})
        return await original(self, bases, as_of=as_of)

    monkeypatch.setattr(CoinGeckoClient, "symbol_map", with_a_twin)
    with make_source(vendors.base_url) as live:
        btc = live.fundamentals(["BTC/USDT"], as_of=NOW)["BTC/USDT"]
        problems = live.unmapped_coins()

    assert isinstance(btc, Missing)
    assert "bitcoin, btc-twin" in btc.reason
    assert problems == ["BTC: ambiguous on CoinGecko (bitcoin, btc-twin)"]
