"""Watchlists: a user's named lists of coins, checked against the stored markets.

Symbols are taken in any usual spelling (BTC, BTCUSDT, btc/usdt) and stored as the spot symbol
(BTC/USDT). A symbol with no spot market of the configured exchange is rejected, and the error
lists every such symbol at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from scanners.models import Watchlist, WatchlistCoin
from scanners.scanning import UnknownSymbols, normalize_symbol, symbols_validate

__all__ = [
    "UnknownSymbols",
    "WatchlistError",
    "watchlist_add_coins",
    "watchlist_create",
    "watchlist_delete",
    "watchlist_remove_coins",
    "watchlist_rename",
]

NAME_MAX = 100


class WatchlistError(ValidationError):
    """A watchlist change that cannot be made (name taken, empty name); the message says why."""


def _clean_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise WatchlistError("a watchlist needs a name")
    if len(cleaned) > NAME_MAX:
        raise WatchlistError(f"a watchlist name has at most {NAME_MAX} characters")
    return cleaned


@transaction.atomic
def watchlist_create(*, owner: User, name: str, symbols: Iterable[str] = ()) -> Watchlist:
    """A new watchlist of `owner` holding `symbols`; UnknownSymbols lists the unknown ones."""
    name = _clean_name(name)
    coins = symbols_validate(symbols)
    if Watchlist.objects.filter(owner=owner, name=name).exists():
        raise WatchlistError(f"you already have a watchlist named {name!r}")
    try:
        with transaction.atomic():
            watchlist = Watchlist.objects.create(owner=owner, name=name)
    except IntegrityError:
        raise WatchlistError(f"you already have a watchlist named {name!r}") from None
    WatchlistCoin.objects.bulk_create(
        [WatchlistCoin(watchlist=watchlist, symbol=symbol) for symbol in coins]
    )
    return watchlist


@transaction.atomic
def watchlist_rename(*, watchlist: Watchlist, name: str) -> Watchlist:
    name = _clean_name(name)
    if name == watchlist.name:
        return watchlist
    if Watchlist.objects.filter(owner_id=watchlist.owner_id, name=name).exists():
        raise WatchlistError(f"you already have a watchlist named {name!r}")
    watchlist.name = name
    try:
        with transaction.atomic():
            watchlist.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise WatchlistError(f"you already have a watchlist named {name!r}") from None
    return watchlist


@transaction.atomic
def watchlist_add_coins(*, watchlist: Watchlist, symbols: Iterable[str]) -> list[str]:
    """Add the symbols (those already in it are kept once); returns the ones newly added."""
    coins = symbols_validate(symbols)
    present = set(watchlist.coins.values_list("symbol", flat=True))
    new = [symbol for symbol in coins if symbol not in present]
    WatchlistCoin.objects.bulk_create(
        [WatchlistCoin(watchlist=watchlist, symbol=symbol) for symbol in new],
        ignore_conflicts=True,
    )
    return new


@transaction.atomic
def watchlist_remove_coins(*, watchlist: Watchlist, symbols: Iterable[str]) -> list[str]:
    """Remove the symbols; ones not in the watchlist are rejected, listed (UnknownSymbols)."""
    wanted = list(dict.fromkeys(normalize_symbol(s) for s in symbols if s.strip()))
    present = set(watchlist.coins.values_list("symbol", flat=True))
    absent = [symbol for symbol in wanted if symbol not in present]
    if absent:
        raise UnknownSymbols(absent, f"not in the watchlist {watchlist.name!r}")
    watchlist.coins.filter(symbol__in=wanted).delete()
    return wanted


def watchlist_delete(*, watchlist: Watchlist) -> None:
    watchlist.delete()
