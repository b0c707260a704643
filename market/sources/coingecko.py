"""CoinGecko: market cap, FDV and supply (`/coins/markets`), and the trending list.

An async client the live source drives on its event loop, through `engine_for("coingecko")`
(a call per request against COINGECKO_CALLS_PER_MINUTE). The demo key, when set, is sent as
`x-cg-demo-api-key`. Base assets are matched to CoinGecko ids by `symbols.match_symbols`: exact
symbol, the largest coin only when it is 10x the next, else ambiguous (Missing with the ids).

CoinGecko publishes only the present: asked for a moment more than a few minutes back, every input
is Missing rather than today's value passed off as history.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from httpengine.calls import (
    BadResponse,
    PermanentError,
    RateLimited,
    Reply,
    RequestError,
    TransientError,
)
from httpengine.engine import RequestEngine
from market.sources.base import unique
from market.sources.cache import process_cache
from market.sources.symbols import SymbolMap, VendorCoin, match_symbols
from market.times import show_time
from market.values import Fundamentals, Maybe, Missing, TrendingCoin

PAGE_SIZE = 250
# 8 pages = the 2,000 largest coins: every coin a 500-coin Binance universe holds, in 8 calls.
MAX_PAGES = 8
# Inputs asked for further back than this are not "now" and CoinGecko has no history of them.
LIVE_TOLERANCE = timedelta(minutes=5)
VENDOR_CACHE_SECONDS = 300


def header(headers: Any, name: str) -> str | None:
    """A response header by case-insensitive name."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if str(key).lower() == wanted:
            return value
    return None


def retry_after_seconds(headers: Any, default: float) -> float:
    raw = header(headers, "Retry-After")
    try:
        return max(float(raw), 0.0) if raw is not None else default
    except ValueError:
        return default


async def get_json(
    session: aiohttp.ClientSession,
    engine: RequestEngine,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    what: str,
) -> Any:
    """GET `url` through `engine` and return its decoded JSON, the engine's errors on failure."""

    async def call() -> Reply[Any]:
        try:
            async with session.get(
                url,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.read()
                status = response.status
                if status == 429:
                    raise RateLimited(retry_after_seconds(response.headers, 60.0))
                if status >= 500:
                    raise TransientError(f"HTTP {status} from {url}")
                if status in (401, 403):
                    raise PermanentError(f"HTTP {status}: the API key was refused ({url})")
                if status >= 400:
                    raise PermanentError(f"HTTP {status} from {url}: {body[:120]!r}")
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise TransientError(f"timed out after {timeout:g} s: {url}") from error
        except aiohttp.ClientError as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error
        try:
            return Reply(json.loads(body))
        except ValueError:
            raise BadResponse(f"not JSON from {url}: {body[:80]!r}") from None

    return await engine.run(call, weight=1, what=what)


def _number(value: Any, name: str) -> Maybe[float]:
    """A non-negative finite number from a vendor field, else Missing naming the field."""
    if value is None:
        return Missing(f"CoinGecko gives no {name}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Missing(f"CoinGecko's {name} is not a number ({value!r})")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return Missing(f"CoinGecko's {name} is not a valid amount ({value!r})")
    return number


@dataclass
class _Listing:
    """What the markets pages fetched so far say."""

    coins: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    exhausted: bool = False

    def smallest_cap(self) -> float:
        caps = [c.get("market_cap") for c in self.coins]
        caps = [float(c) for c in caps if isinstance(c, int | float) and c > 0]
        return min(caps) if caps else math.inf


class CoinGeckoClient:
    """CoinGecko's `/coins/markets` and `/search/trending` through the `coingecko` engine."""

    vendor = "CoinGecko"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        engine: RequestEngine,
        session: Callable[[], aiohttp.ClientSession],
        timeout: float,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.engine = engine
        self._session = session
        self.timeout = timeout
        self.max_pages = max_pages
        # Shared by every client of the process: each batch of a scan builds its own, and the
        # vendor's budget is a few calls a minute.
        self._listing = process_cache(f"coingecko:{self.base_url}:markets", VENDOR_CACHE_SECONDS)
        self._trending = process_cache(f"coingecko:{self.base_url}:trending", VENDOR_CACHE_SECONDS)
        self._lock = asyncio.Lock()
        self.last_map: SymbolMap | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"x-cg-demo-api-key": self.api_key} if self.api_key else {}

    async def _get(self, path: str, params: dict[str, Any] | None, what: str) -> Any:
        return await get_json(
            self._session(),
            self.engine,
            f"{self.base_url}/{path}",
            params=params,
            headers=self.headers,
            timeout=self.timeout,
            what=what,
        )

    async def _page(self, page: int) -> list[dict[str, Any]]:
        data = await self._get(
            "coins/markets",
            {
                "vs_currency": "usd",
                "order": "market_cap_desc",
                "per_page": PAGE_SIZE,
                "page": page,
            },
            f"coins/markets page {page}",
        )
        if not isinstance(data, list):
            raise BadResponse(f"coins/markets page {page} is not a list")
        return [coin for coin in data if isinstance(coin, dict) and coin.get("symbol")]

    def _settled(self, listing: _Listing, bases: set[str]) -> bool:
        """True when more pages cannot change any base's match: each is found, and every coin
        within 10x of its largest namesake (a possible rival) is on the pages already read."""
        if listing.exhausted or listing.pages >= self.max_pages:
            return True
        by_symbol: dict[str, float] = {}
        for coin in listing.coins:
            cap = coin.get("market_cap")
            cap = float(cap) if isinstance(cap, int | float) else 0.0
            symbol = str(coin["symbol"]).upper()
            by_symbol[symbol] = max(by_symbol.get(symbol, 0.0), cap)
        smallest = listing.smallest_cap()
        return all(base in by_symbol and by_symbol[base] / 10 >= smallest for base in bases)

    async def listing(self, bases: Sequence[str], *, as_of: datetime) -> _Listing:
        """The markets pages, read (and cached 5 minutes) until every base is settled."""
        wanted = {base.upper() for base in bases}
        async with self._lock:
            entry = self._listing.entry("markets", as_of=as_of)
            listing: _Listing = entry.value if entry else _Listing()
            data_time = entry.data_time if entry else as_of
            grew = False
            while not self._settled(listing, wanted):
                page = await self._page(listing.pages + 1)
                listing = _Listing(listing.coins + page, listing.pages + 1, len(page) < PAGE_SIZE)
                grew = True
            if grew or entry is None:
                self._listing.put("markets", listing, data_time=data_time)
            return listing

    async def symbol_map(self, bases: Sequence[str], *, as_of: datetime) -> SymbolMap:
        listing = await self.listing(bases, as_of=as_of)
        coins = [
            VendorCoin(
                vendor_id=str(coin.get("id", "")),
                symbol=str(coin["symbol"]),
                name=str(coin.get("name", "")),
                market_cap=coin.get("market_cap")
                if isinstance(coin.get("market_cap"), int | float)
                else None,
            )
            for coin in listing.coins
        ]
        self.last_map = match_symbols(bases, coins, vendor=self.vendor)
        return self.last_map

    async def fundamentals(
        self, bases: dict[str, str], *, as_of: datetime, now: datetime
    ) -> dict[str, Maybe[Fundamentals]]:
        """{symbol: Fundamentals} for {symbol: base asset}."""
        if as_of < now - LIVE_TOLERANCE:
            return dict.fromkeys(bases, Missing(_no_history("market cap and supply", as_of)))
        try:
            symbol_map = await self.symbol_map(list(bases.values()), as_of=as_of)
        except RequestError as error:
            return dict.fromkeys(bases, Missing(f"CoinGecko markets unavailable: {error}"))
        listing = await self.listing(list(bases.values()), as_of=as_of)
        by_id = {str(coin.get("id")): coin for coin in listing.coins}
        result: dict[str, Maybe[Fundamentals]] = {}
        for symbol, base in bases.items():
            coin = symbol_map.lookup(base)
            if isinstance(coin, Missing):
                result[symbol] = coin
                continue
            raw = by_id[coin.vendor_id]
            result[symbol] = Fundamentals(
                symbol=symbol,
                timestamp=as_of,
                market_cap=_number(raw.get("market_cap"), "market cap"),
                fdv=_number(raw.get("fully_diluted_valuation"), "fully diluted valuation"),
                circulating_supply=_number(raw.get("circulating_supply"), "circulating supply"),
                total_supply=_number(raw.get("total_supply"), "total supply"),
            )
        return result

    async def trending(self, *, as_of: datetime, now: datetime) -> Maybe[list[TrendingCoin]]:
        if as_of < now - LIVE_TOLERANCE:
            return Missing(_no_history("the trending list", as_of))
        cached = self._trending.get("trending", as_of=as_of)
        if cached is not None:
            return cached
        try:
            data = await self._get("search/trending", None, "search/trending")
        except RequestError as error:
            return Missing(f"CoinGecko trending unavailable: {error}")
        items = data.get("coins") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return Missing("CoinGecko's trending answer has no coin list")
        coins: list[TrendingCoin] = []
        for position, entry in enumerate(items, start=1):
            item = entry.get("item") if isinstance(entry, dict) else None
            if not isinstance(item, dict) or not item.get("symbol") or not item.get("id"):
                continue
            score = item.get("score")
            rank = score + 1 if isinstance(score, int) and not isinstance(score, bool) else position
            coins.append(
                TrendingCoin(
                    base=str(item["symbol"]).upper(),
                    rank=int(rank),
                    name=str(item.get("name", "")),
                    vendor_id=str(item["id"]),
                )
            )
        coins.sort(key=lambda coin: coin.rank)
        self._trending.put("trending", coins, data_time=as_of)
        return coins


def _no_history(what: str, as_of: datetime) -> str:
    return f"CoinGecko publishes only the current {what}, not as of {show_time(as_of)}"


def bases_of(symbols: Sequence[str]) -> dict[str, str]:
    """{symbol: base asset} of unified symbols (BTC/USDT, BTC/USDT:USDT -> BTC)."""
    return {symbol: symbol.partition("/")[0].upper() for symbol in unique(symbols)}
