"""The derivatives figures of the Binance source, read from each coin's USDT-M perpetual:
funding, open interest (now and its history), the top traders' long/short ratio and the taker
flow. `DerivativesReads` reads them through a source's connection; `BinanceSource` is one.

Point in time. The premium index and open interest "now" answer only for an as_of within
`LIVE_TOLERANCE` of the clock; further back, funding comes from the funding history and open
interest from its 30-day history (`STATS_HISTORY`, as the ratios); older than that is Missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from httpengine.calls import BadResponse, Banned, RequestError
from market.models import OpenInterest
from market.sources.base import perpetual_symbol, unique
from market.sources.binance.connection import (
    FUTURES_API,
    FUTURES_DATA_API,
    BinanceConnection,
    cache_get,
    cache_put,
    read_once,
)
from market.sources.binance.decoding import (
    DAY,
    HOUR,
    HOUR_MS,
    WEIGHT,
    Listing,
    oi_point,
    open_interest_from_history,
    open_interest_now,
    parse_funding,
    to_float,
    to_int,
)
from market.sources.binance.runtime import unreachable
from market.times import datetime_to_ms, ms_to_datetime, require_aware, show_time
from market.values import (
    Funding,
    LongShortRatio,
    Maybe,
    Missing,
    OpenInterestNow,
    OpenInterestPoint,
    TakerFlow,
)

# Binance keeps open interest, long/short and taker ratios for the last 30 days only.
STATS_HISTORY = timedelta(days=30)
# As in the replay: a settlement older than this says nothing about as_of.
FUNDING_MAX_AGE = timedelta(hours=24)
# open_interest() reads 25 h of hourly history: the reading 24 h before as_of and the latest.
OI_WINDOW_HOURS = 25


class DerivativesReads(BinanceConnection):
    """Funding, open interest, long/short ratio and taker flow of the symbols' perpetuals (the
    MarketDataSource methods of those names)."""

    def _perps(self, symbols: Sequence[str]) -> tuple[dict[str, Listing], dict[str, Missing]]:
        """The perpetual of each symbol, or why there is none."""
        info = self._exchange_info()
        perps: dict[str, Listing] = {}
        missing: dict[str, Missing] = {}
        for symbol in unique(symbols):
            listing = info.futures.get(perpetual_symbol(symbol))
            if listing is None:
                missing[symbol] = Missing(f"no USDT-M perpetual for {symbol} on Binance")
            else:
                perps[symbol] = listing
        return perps, missing

    # --- funding -----------------------------------------------------------------------------

    def funding_rates(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Funding]]:
        require_aware(as_of)
        perps, result = self._perps(symbols)
        if not self._live(as_of):
            result.update(
                self._run(self._each(perps, self._funding_history(perps, as_of), "funding"))
            )
            return {symbol: result[symbol] for symbol in unique(symbols)}
        premium = self._premium(as_of)
        intervals = self._intervals()
        for symbol, perp in perps.items():
            if isinstance(premium, Missing):
                result[symbol] = premium
                continue
            result[symbol] = parse_funding(symbol, perp, premium.get(perp.exchange_id), intervals)
        return {symbol: result[symbol] for symbol in unique(symbols)}

    def _premium(self, as_of: datetime) -> dict[str, dict] | Missing:
        return read_once(
            self._prices,
            "premium",
            as_of,
            lambda: self._run(
                self._bulk("futures_premium_all", "fapiPublicGetPremiumIndex", "premium index")
            ),
        )

    def _intervals(self) -> dict[str, timedelta] | Missing:
        """Funding intervals that differ from 8 h (fundingInfo), refreshed every
        EXCHANGE_INFO_SECONDS with the rest of the metadata."""
        return read_once(
            self._metadata, "funding_intervals", datetime.now(UTC), self._read_intervals
        )

    def _read_intervals(self) -> dict[str, timedelta] | Missing:
        async def fetch() -> dict[str, timedelta] | Missing:
            try:
                data = await self._call(
                    FUTURES_API,
                    "fapiPublicGetFundingInfo",
                    {},
                    weight=WEIGHT["futures_funding_info"],
                    what="funding info",
                )
            except RequestError as error:
                if isinstance(error, Banned) or unreachable(error):
                    raise
                return Missing(f"funding intervals unknown (fundingInfo failed: {error})")
            intervals: dict[str, timedelta] = {}
            for item in data if isinstance(data, list) else []:
                hours = (
                    to_float(item.get("fundingIntervalHours")) if isinstance(item, dict) else None
                )
                if hours and hours > 0 and isinstance(item.get("symbol"), str):
                    intervals[item["symbol"]] = timedelta(hours=hours)
            return intervals

        # A failed read is remembered as long as an answer: funding then assumes 8 h, saying so.
        return self._run(fetch())

    def _funding_history(
        self, perps: dict[str, Listing], as_of: datetime
    ) -> Callable[[str], Awaitable[Maybe[Funding]]]:
        async def fetch(symbol: str) -> Maybe[Funding]:
            perp = perps[symbol]
            data = await self._call(
                FUTURES_API,
                "fapiPublicGetFundingRate",
                {"symbol": perp.exchange_id, "endTime": datetime_to_ms(as_of), "limit": 2},
                weight=WEIGHT["futures_funding_rate"],
                what=f"funding history of {perp.symbol}",
            )
            if not isinstance(data, list):
                raise BadResponse(f"funding history of {perp.symbol} is not a list")
            settlements = []
            for item in data:
                when = to_int(item.get("fundingTime")) if isinstance(item, dict) else None
                rate = to_float(item.get("fundingRate")) if isinstance(item, dict) else None
                if item.get("symbol") not in (None, perp.exchange_id):
                    return Missing(f"Binance answered {item.get('symbol')} for {perp.symbol}")
                if when is not None and rate is not None and when <= datetime_to_ms(as_of):
                    # Settlement times carry a millisecond of jitter: round to the second.
                    settlements.append((ms_to_datetime((when + 500) // 1000 * 1000), rate))
            settlements.sort()
            if not settlements:
                return Missing(
                    f"no funding settlement of {perp.symbol} at or before {show_time(as_of)}"
                )
            when, rate = settlements[-1]
            if when <= as_of - FUNDING_MAX_AGE:
                return Missing(
                    f"the latest funding settlement of {perp.symbol} at or before "
                    f"{show_time(as_of)} is from {show_time(when)}, more than 24 h earlier"
                )
            interval: Maybe[timedelta] = (
                timedelta(minutes=round((when - settlements[-2][0]) / timedelta(minutes=1)))
                if len(settlements) > 1
                else Missing(f"only one funding settlement of {perp.symbol}, so no interval")
            )
            return Funding(symbol, perp.symbol, rate, when, interval)

        return fetch

    # --- open interest -----------------------------------------------------------------------

    def open_interest(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[OpenInterestNow]]:
        require_aware(as_of)
        perps, result = self._perps(symbols)
        live = self._live(as_of)
        premium = self._premium(as_of) if live and perps else None

        async def fetch(symbol: str) -> Maybe[OpenInterestNow]:
            perp = perps[symbol]
            history_task = self._stats(perp, "openInterestHist", as_of=as_of, hours=OI_WINDOW_HOURS)
            if not live:
                history = await history_task
                if isinstance(history, Missing):
                    return history
                return open_interest_from_history(symbol, perp, history, as_of)
            now_call = self._call(
                FUTURES_API,
                "fapiPublicGetOpenInterest",
                {"symbol": perp.exchange_id},
                weight=WEIGHT["futures_open_interest"],
                what=f"open interest of {perp.symbol}",
            )
            current, history = await asyncio.gather(now_call, history_task)
            return open_interest_now(symbol, perp, current, history, premium, as_of)

        result.update(self._run(self._each(perps, fetch, "open interest")))
        self._record_open_interest(perps, result)
        return {symbol: result[symbol] for symbol in unique(symbols)}

    def _record_open_interest(
        self, perps: dict[str, Listing], result: dict[str, Maybe[OpenInterestNow]]
    ) -> None:
        """Keep what was read in the store, so later replays and outcome checks have it."""
        readings = {s: r for s, r in result.items() if isinstance(r, OpenInterestNow)}
        if not readings:
            return
        rows = self._market_rows([perps[s] for s in readings])
        OpenInterest.objects.bulk_create(
            [
                OpenInterest(
                    market=rows[perps[s].symbol],
                    timestamp=r.timestamp,
                    open_interest=r.open_interest,
                    open_interest_value=None
                    if isinstance(r.open_interest_value, Missing)
                    else r.open_interest_value,
                )
                for s, r in readings.items()
            ],
            ignore_conflicts=True,
        )

    def open_interest_history(
        self, symbol: str, *, as_of: datetime, hours: int
    ) -> Maybe[list[OpenInterestPoint]]:
        require_aware(as_of)
        perps, missing = self._perps([symbol])
        if symbol in missing:
            return missing[symbol]
        perp = perps[symbol]

        async def fetch(key: str) -> Maybe[list[OpenInterestPoint]]:
            # At least the 25 h open_interest() reads, so the two share one cached request.
            rows = await self._stats(
                perp, "openInterestHist", as_of=as_of, hours=max(hours, OI_WINDOW_HOURS)
            )
            if isinstance(rows, Missing):
                return rows
            after = datetime_to_ms(as_of) - hours * HOUR_MS
            points = [oi_point(row) for row in rows if row["timestamp"] > after]
            return points or Missing(
                f"Binance has no open interest of {perp.symbol} in the {hours} h before "
                f"{show_time(as_of)}"
            )

        return self._run(self._each([symbol], fetch, "open interest history"))[symbol]

    async def _stats(
        self, perp: Listing, endpoint: str, *, as_of: datetime, hours: int, period: str = "1h"
    ) -> Maybe[list[dict[str, Any]]]:
        """Hourly rows of a /futures/data endpoint with as_of - hours < timestamp <= as_of,
        oldest first (cached 5 minutes per coin and window)."""
        if as_of < self.now() - STATS_HISTORY:
            return Missing(
                f"Binance keeps {endpoint} of {perp.symbol} for 30 days only; "
                f"{show_time(as_of)} is older"
            )
        end_ms = datetime_to_ms(as_of)
        start_ms = end_ms - hours * HOUR_MS
        key = f"{endpoint}:{perp.exchange_id}:{period}:{hours}:{end_ms // 60_000}"
        cached = await cache_get(self._derived, key, as_of)
        if cached is not None:
            return cached
        method = {
            "openInterestHist": "fapiDataGetOpenInterestHist",
            "topLongShortAccountRatio": "fapiDataGetTopLongShortAccountRatio",
            "globalLongShortAccountRatio": "fapiDataGetGlobalLongShortAccountRatio",
            "takerlongshortRatio": "fapiDataGetTakerlongshortRatio",
        }[endpoint]
        rows: list[dict[str, Any]] = []
        cursor_end = end_ms
        remaining = hours
        while remaining > 0:
            limit = min(remaining, 500)
            data = await self._call(
                FUTURES_DATA_API,
                method,
                {
                    "symbol": perp.exchange_id,
                    "period": period,
                    "limit": limit,
                    "endTime": cursor_end,
                },
                weight=1,  # a request of the endpoint's quota (its weight is 0)
                what=f"{endpoint} of {perp.symbol}",
                quota=endpoint,
            )
            if not isinstance(data, list):
                raise BadResponse(f"{endpoint} of {perp.symbol} is not a list")
            page = []
            for item in data:
                if not isinstance(item, dict):
                    raise BadResponse(f"{endpoint} of {perp.symbol}: a row is not an object")
                if item.get("symbol") not in (None, perp.exchange_id):
                    raise BadResponse(
                        f"{endpoint}: asked for {perp.exchange_id}, Binance answered "
                        f"{item.get('symbol')}"
                    )
                stamp = to_int(item.get("timestamp"))
                if stamp is not None and start_ms < stamp <= end_ms:
                    page.append({**item, "timestamp": stamp})
            rows = page + rows
            remaining -= limit
            if len(data) < limit or not page:
                break
            cursor_end = min(row["timestamp"] for row in page) - 1
        rows.sort(key=lambda row: row["timestamp"])
        if not rows:
            return Missing(
                f"Binance has no {endpoint} of {perp.symbol} in the {hours} h before "
                f"{show_time(as_of)}"
            )
        await cache_put(self._derived, key, rows, as_of)
        return rows

    # --- long/short and taker flow ------------------------------------------------------------

    def long_short_ratio(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[LongShortRatio]]:
        require_aware(as_of)
        perps, result = self._perps(symbols)

        async def fetch(symbol: str) -> Maybe[LongShortRatio]:
            perp = perps[symbol]
            # Top traders' accounts (docs/SCORING.md: "top-trader long/short"), not all accounts.
            rows = await self._stats(perp, "topLongShortAccountRatio", as_of=as_of, hours=2)
            if isinstance(rows, Missing):
                return rows
            row = rows[-1]
            ratio, longs, shorts = (
                to_float(row.get(name))
                for name in ("longShortRatio", "longAccount", "shortAccount")
            )
            if ratio is None or longs is None or shorts is None or min(ratio, longs, shorts) < 0:
                return Missing(
                    f"Binance's top-trader long/short ratio of {perp.symbol} is not a number"
                )
            return LongShortRatio(symbol, ms_to_datetime(row["timestamp"]), ratio, longs, shorts)

        result.update(self._run(self._each(perps, fetch, "long/short ratio")))
        return {symbol: result[symbol] for symbol in unique(symbols)}

    def taker_flow(
        self, symbols: Sequence[str], *, as_of: datetime, window: timedelta = DAY
    ) -> dict[str, Maybe[TakerFlow]]:
        require_aware(as_of)
        if window <= timedelta(0) or window % HOUR:
            raise ValueError(f"taker flow windows are whole hours, got {window}")
        hours = window // HOUR
        perps, result = self._perps(symbols)

        async def fetch(symbol: str) -> Maybe[TakerFlow]:
            perp = perps[symbol]
            rows = await self._stats(perp, "takerlongshortRatio", as_of=as_of, hours=hours)
            if isinstance(rows, Missing):
                return rows
            buys = [to_float(row.get("buyVol")) for row in rows]
            sells = [to_float(row.get("sellVol")) for row in rows]
            if any(v is None or v < 0 for v in buys + sells):
                return Missing(f"Binance's taker volume of {perp.symbol} is not a valid number")
            return TakerFlow(
                symbol=symbol,
                timestamp=ms_to_datetime(rows[-1]["timestamp"]),
                window=window,
                buy_volume=float(sum(buys)),  # type: ignore[arg-type]
                sell_volume=float(sum(sells)),  # type: ignore[arg-type]
            )

        result.update(self._run(self._each(perps, fetch, "taker flow")))
        return {symbol: result[symbol] for symbol in unique(symbols)}
