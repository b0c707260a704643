"""Watchlists: a user's named lists of coins, checked against the stored markets.

Symbols are taken in any usual spelling (BTC, BTCUSDT, btc/usdt) and stored as the spot symbol
(BTC/USDT). A symbol with no spot market of the configured exchange is rejected, and the error
lists every such symbol at once.

A watchlist is named by its id or by its name (`watchlist_find`), and only ever among its owner's
own: another user's watchlist is, to everyone else, one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet

from scanners.models import ScanResult, Watchlist, WatchlistCoin
from scanners.scanning import UnknownSymbols, normalize_symbol, symbols_validate

__all__ = [
    "UnknownSymbols",
    "WatchlistError",
    "WatchlistNotFound",
    "watchlist_add_coins",
    "watchlist_create",
    "watchlist_delete",
    "watchlist_find",
    "watchlist_latest_results",
    "watchlist_remove_coins",
    "watchlist_rename",
    "watchlist_replace_coins",
]

NAME_MAX = 100


class WatchlistError(ValidationError):
    """A watchlist change that cannot be made (name taken, empty name); the message says why."""


class WatchlistNotFound(LookupError):
    """No watchlist of the user's has this id or name (another user's counts as none)."""


def watchlists_of(owner: User | AnonymousUser | None) -> QuerySet[Watchlist]:
    """`owner`'s watchlists; nobody's for an anonymous or missing owner. Every read of
    watchlists on a user's behalf starts here, so no user reaches another's."""
    if owner is None or not owner.is_authenticated:
        return Watchlist.objects.none()
    return Watchlist.objects.filter(owner=owner)


def watchlist_find(*, owner: User | AnonymousUser | None, ref: str | int) -> Watchlist:
    """One of `owner`'s watchlists by id or by name: digits are tried as an id first, then as a
    name (a watchlist may be called "2024"); anything else is a name, matched exactly after
    trimming. An anonymous owner has none. Raises WatchlistNotFound."""
    text = str(ref).strip()
    own = watchlists_of(owner)
    found = None
    if text.isdigit():
        found = own.filter(pk=int(text)).first()
    if found is None:
        found = own.filter(name=text).first()
    if found is None:
        raise WatchlistNotFound(f"no watchlist of yours has the id or name {text!r}")
    return found


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


@transaction.atomic
def watchlist_replace_coins(*, watchlist: Watchlist, symbols: Iterable[str]) -> list[str]:
    """Make the watchlist hold exactly `symbols` (an empty list empties it); returns them,
    normalised. UnknownSymbols lists every unknown one, and then nothing changes."""
    coins = symbols_validate(symbols)
    watchlist.coins.exclude(symbol__in=coins).delete()
    WatchlistCoin.objects.bulk_create(
        [WatchlistCoin(watchlist=watchlist, symbol=symbol) for symbol in coins],
        ignore_conflicts=True,
    )
    watchlist.save(update_fields=["updated_at"])
    return coins


def watchlist_latest_results(*, watchlist: Watchlist, now: datetime) -> QuerySet[ScanResult]:
    """The latest result of each scanner for each coin of the watchlist, as of `now` (market
    time), from any run that scanned the coin (a watchlist scan or the universe's). Ordered by
    symbol and scanner; a coin no scanner has seen yet has no row."""
    symbols = list(watchlist.coins.values_list("symbol", flat=True))
    latest = (
        ScanResult.objects.filter(symbol__in=symbols, as_of__lte=now)
        .values("symbol", "scanner")
        .annotate(last=Max("as_of"))
        .order_by()
    )
    moments = Q()
    for row in latest:
        moments |= Q(symbol=row["symbol"], scanner=row["scanner"], as_of=row["last"])
    if not moments:
        return ScanResult.objects.none()
    rows = ScanResult.objects.filter(moments)
    # Two runs at the same market time: the later-written result.
    newest = rows.values("symbol", "scanner").annotate(id=Max("id")).values("id").order_by()
    return ScanResult.objects.filter(pk__in=newest).order_by("symbol", "scanner")


def watchlist_delete(*, watchlist: Watchlist) -> None:
    watchlist.delete()
