"""Fixtures of the watchlist API tests (a plugin of tests/conftest.py): four markets (`markets`:
a module asks for them with `usefixtures`), alice's "majors" (BTC, ETH) and bob's list (DOGE)."""

from __future__ import annotations

import pytest

from scanners.models import Watchlist, WatchlistCoin
from tests.factories import MarketFactory, UserFactory, WatchlistFactory


@pytest.fixture
def markets():
    return [MarketFactory(base=base) for base in ("BTC", "ETH", "SOL", "DOGE")]


@pytest.fixture
def majors(user) -> Watchlist:
    watchlist = WatchlistFactory(owner=user, name="majors")
    for symbol in ("BTC/USDT", "ETH/USDT"):
        WatchlistCoin.objects.create(watchlist=watchlist, symbol=symbol)
    return watchlist


@pytest.fixture
def theirs() -> Watchlist:
    watchlist = WatchlistFactory(owner=UserFactory(username="bob"), name="bob's")
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="DOGE/USDT")
    return watchlist


def coins_of(watchlist: Watchlist) -> list[str]:
    return sorted(watchlist.coins.values_list("symbol", flat=True))
