"""LunarCrush v4: galaxy score, AltRank, social volume and sentiment (`/public/coins/list/v2`).

Used only with LUNARCRUSH_API_KEY (sent as `Authorization: Bearer <key>`). Without a key every
social input is `Missing("no LUNARCRUSH_API_KEY: social inputs unavailable")`, never 0. Coins are
matched to LunarCrush's by exact symbol (`symbols.match_symbols`, ambiguity reported). Requests go
through `engine_for("lunarcrush")`; the list is cached 5 minutes.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from httpengine.calls import BadResponse, RequestError
from httpengine.engine import RequestEngine
from market.sources.cache import process_cache
from market.sources.coingecko import get_json
from market.sources.symbols import SymbolMap, VendorCoin, match_symbols
from market.times import show_time
from market.values import Maybe, Missing, Social

NO_KEY = "no LUNARCRUSH_API_KEY: social inputs unavailable"
PAGE_SIZE = 1000
MAX_PAGES = 3
LIVE_TOLERANCE = timedelta(minutes=5)
CACHE_SECONDS = 300


def _number(row: dict[str, Any], field: str, label: str) -> Maybe[float]:
    value = row.get(field)
    if value is None:
        return Missing(f"LunarCrush gives no {label}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return Missing(f"LunarCrush's {label} is not a number ({value!r})")
    return float(value)


def _change_pct(row: dict[str, Any]) -> Maybe[float]:
    """24h change of social volume, when the list carries the previous day's volume."""
    now = row.get("social_volume_24h")
    before = row.get("social_volume_24h_previous", row.get("social_volume_previous"))
    if before is None or now is None:
        return Missing("LunarCrush's coin list gives no previous social volume, so no 24h change")
    if not isinstance(before, int | float) or not isinstance(now, int | float):
        return Missing("LunarCrush's social volume is not a number")
    if before <= 0:
        return Missing("social volume 24 h earlier was 0, so no percentage change")
    return (now - before) / before * 100


class LunarCrushClient:
    """LunarCrush's coin list through the `lunarcrush` engine; inert without an API key."""

    vendor = "LunarCrush"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        engine: RequestEngine | None,
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
        # Shared by every client of the process (see CoinGeckoClient); keyed by the key too.
        self._cache = process_cache(
            f"lunarcrush:{self.base_url}:{zlib.crc32(api_key.encode()):08x}", CACHE_SECONDS
        )
        self._lock = asyncio.Lock()
        self.last_map: SymbolMap | None = None

    async def coins(self, bases: set[str], *, as_of: datetime) -> list[dict[str, Any]]:
        """Pages of the coin list (largest first) until every base is seen or the list ends."""
        assert self.engine is not None
        async with self._lock:
            entry = self._cache.entry("coins", as_of=as_of)
            rows, pages, done = entry.value if entry else ([], 0, False)
            grew = False
            while not done and pages < self.max_pages:
                seen = {str(row.get("symbol", "")).upper() for row in rows}
                if pages and bases <= seen:
                    break
                data = await get_json(
                    self._session(),
                    self.engine,
                    f"{self.base_url}/public/coins/list/v2",
                    params={"sort": "market_cap_rank", "limit": PAGE_SIZE, "page": pages},
                    headers={"Authorization": f"Bearer {self.api_key}"},
                    timeout=self.timeout,
                    what=f"coins/list/v2 page {pages}",
                )
                page = data.get("data") if isinstance(data, dict) else None
                if not isinstance(page, list):
                    raise BadResponse("LunarCrush coins/list/v2 has no data list")
                rows = rows + [row for row in page if isinstance(row, dict) and row.get("symbol")]
                pages += 1
                done = len(page) < PAGE_SIZE
                grew = True
            if grew:
                self._cache.put("coins", (rows, pages, done), data_time=as_of)
            return rows

    async def social(
        self, bases: dict[str, str], *, as_of: datetime, now: datetime
    ) -> dict[str, Maybe[Social]]:
        """{symbol: Social} for {symbol: base asset}."""
        if not self.api_key:
            return dict.fromkeys(bases, Missing(NO_KEY))
        if as_of < now - LIVE_TOLERANCE:
            return dict.fromkeys(
                bases,
                Missing(
                    f"LunarCrush publishes only current social metrics, not as of "
                    f"{show_time(as_of)}"
                ),
            )
        try:
            rows = await self.coins(set(bases.values()), as_of=as_of)
        except RequestError as error:
            return dict.fromkeys(bases, Missing(f"LunarCrush unavailable: {error}"))
        coins = [
            VendorCoin(
                vendor_id=str(row.get("id", row["symbol"])),
                symbol=str(row["symbol"]),
                name=str(row.get("name", "")),
                market_cap=row.get("market_cap")
                if isinstance(row.get("market_cap"), int | float)
                else None,
            )
            for row in rows
        ]
        self.last_map = match_symbols(bases.values(), coins, vendor=self.vendor)
        by_id = {str(row.get("id", row["symbol"])): row for row in rows}
        result: dict[str, Maybe[Social]] = {}
        for symbol, base in bases.items():
            coin = self.last_map.lookup(base)
            if isinstance(coin, Missing):
                result[symbol] = coin
                continue
            row = by_id[coin.vendor_id]
            alt_rank = _number(row, "alt_rank", "AltRank")
            result[symbol] = Social(
                symbol=symbol,
                timestamp=as_of,
                galaxy_score=_number(row, "galaxy_score", "galaxy score"),
                alt_rank=alt_rank if isinstance(alt_rank, Missing) else int(alt_rank),
                social_volume=_number(row, "social_volume_24h", "24h social volume"),
                social_volume_change_24h_pct=_change_pct(row),
                sentiment=_number(row, "sentiment", "sentiment"),
            )
        return result
