"""Watchlist services: names unique per owner, coins checked against the stored markets."""

from __future__ import annotations

import pytest

from scanners.models import Watchlist
from scanners.watchlists import (
    UnknownSymbols,
    WatchlistError,
    watchlist_add_coins,
    watchlist_create,
    watchlist_delete,
    watchlist_remove_coins,
    watchlist_rename,
)
from tests.factories import MarketFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def markets() -> None:
    for base in ("BTC", "ETH", "SOL"):
        MarketFactory(base=base)


def coins(watchlist: Watchlist) -> list[str]:
    return list(watchlist.coins.values_list("symbol", flat=True))


def test_a_watchlist_stores_its_coins_as_spot_symbols() -> None:
    watchlist = watchlist_create(owner=UserFactory(), name=" majors ", symbols=["btc", "ETHUSDT"])
    assert watchlist.name == "majors"
    assert coins(watchlist) == ["BTC/USDT", "ETH/USDT"]


def test_watchlist_services_reject_unknown_symbols_listing_them() -> None:
    owner = UserFactory()
    with pytest.raises(UnknownSymbols) as caught:
        watchlist_create(owner=owner, name="x", symbols=["BTC", "NOPE", "FAKE/USDT"])
    assert caught.value.symbols == ["NOPE/USDT", "FAKE/USDT"]
    assert "NOPE/USDT, FAKE/USDT" in str(caught.value)
    assert not Watchlist.objects.exists()

    watchlist = watchlist_create(owner=owner, name="x", symbols=["BTC"])
    with pytest.raises(UnknownSymbols, match="DOGE/USDT"):
        watchlist_add_coins(watchlist=watchlist, symbols=["ETH", "DOGE"])
    assert coins(watchlist) == ["BTC/USDT"]


def test_adding_coins_keeps_each_once_and_removing_unknown_ones_is_rejected() -> None:
    watchlist = watchlist_create(owner=UserFactory(), name="x", symbols=["BTC"])
    assert watchlist_add_coins(watchlist=watchlist, symbols=["BTC", "SOL", "sol"]) == ["SOL/USDT"]
    assert coins(watchlist) == ["BTC/USDT", "SOL/USDT"]

    with pytest.raises(UnknownSymbols, match="ETH/USDT"):
        watchlist_remove_coins(watchlist=watchlist, symbols=["BTC", "ETH"])
    assert watchlist_remove_coins(watchlist=watchlist, symbols=["BTC"]) == ["BTC/USDT"]
    assert coins(watchlist) == ["SOL/USDT"]


def test_names_are_unique_per_owner_only() -> None:
    alice, bob = UserFactory(), UserFactory()
    mine = watchlist_create(owner=alice, name="alts")
    watchlist_create(owner=bob, name="alts")
    other = watchlist_create(owner=alice, name="other")

    with pytest.raises(WatchlistError, match="already have a watchlist named 'alts'"):
        watchlist_create(owner=alice, name="alts")
    with pytest.raises(WatchlistError, match="already have a watchlist named 'alts'"):
        watchlist_rename(watchlist=other, name="alts")
    assert watchlist_rename(watchlist=mine, name="alts 2").name == "alts 2"
    with pytest.raises(WatchlistError, match="needs a name"):
        watchlist_create(owner=alice, name="  ")


def test_deleting_a_watchlist_deletes_its_coins() -> None:
    watchlist = watchlist_create(owner=UserFactory(), name="x", symbols=["BTC", "ETH"])
    watchlist_delete(watchlist=watchlist)
    assert not Watchlist.objects.exists()
