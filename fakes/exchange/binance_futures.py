"""The fake Binance USDT-M API: `/fapi/v1/...`, `/fapi/v2/ticker/price`, `/futures/data/...`.

Perpetuals as listed by the core (real futures candles, or with a seed spot's candles), their mark
prices, premium index and funding (the data's, or with a seed made up), and the derivatives
statistics the history lacks (open interest, long/short and taker ratios), all synthetic and only
with a seed. `/dapi/v1/exchangeInfo` (COIN-M) answers with no symbols.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fakes.exchange import synthetic as syn
from fakes.exchange.binance_common import (
    BinanceCommon,
    f8,
    int_param,
    invalid_symbol,
    require,
    symbol_or,
    tick_size,
)
from fakes.exchange.core import SYNTHETIC, Query, Route, binance_error, dumps, flat
from fakes.exchange.data import DAY_MS, HOUR_MS, Funding
from fakes.exchange.series import Perp

PERPETUAL_DELIVERY = 4_133_404_800_000
STAT_PERIODS = {
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
}
# Synthetic /futures/data answers kept (see BinanceFutures._stat_rows): 2-3 kB each.
_STAT_BODIES = 20_000


def _funding_interval_ms(funding: Funding, visible: int) -> int:
    """The settlement interval of the `visible` first settlements: the last two's distance in
    whole hours (their times carry jitter), 8 h with only one."""
    if visible < 2:
        return 8 * HOUR_MS
    step = int(funding.times[visible - 1] - funding.times[visible - 2])
    return max(HOUR_MS, round(step / HOUR_MS) * HOUR_MS)


def fapi_klines_weight(query: Query) -> int:
    """/fapi/v1/klines: 1, 2, 5 or 10 by `limit` (under 100, under 500, up to 1000, more)."""
    try:
        limit = int(query.get("limit") or 500)
    except ValueError:
        limit = 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class BinanceFutures(BinanceCommon):
    """Binance USDT-M futures, with the request weights of the real endpoints (`/futures/data`
    endpoints weigh 0 and have their own 5-minute windows, counted by the core)."""

    def _venue_routes(self) -> dict[str, Route]:
        return {
            **super()._venue_routes(),
            "/fapi/v1/ping": Route("futures", self._ping, flat(1)),
            "/fapi/v1/time": Route("futures", self._time, flat(1)),
            "/fapi/v1/exchangeInfo": Route("futures", self._fapi_exchange_info, flat(1)),
            "/fapi/v1/klines": Route("futures", self._fapi_klines, fapi_klines_weight),
            "/fapi/v1/ticker/24hr": Route("futures", self._fapi_ticker, symbol_or(1, 40)),
            "/fapi/v1/ticker/price": Route("futures", self._fapi_price, symbol_or(1, 2)),
            "/fapi/v2/ticker/price": Route("futures", self._fapi_price, symbol_or(1, 2)),
            "/fapi/v1/premiumIndex": Route("futures", self._premium_index, symbol_or(1, 10)),
            "/fapi/v1/fundingRate": Route("futures", self._funding_rate, flat(1)),
            "/fapi/v1/fundingInfo": Route("futures", self._funding_info, flat(0)),
            "/fapi/v1/openInterest": Route("futures", self._open_interest, flat(1)),
            "/fapi/v1/aggTrades": Route("futures", self._fapi_agg_trades, flat(20)),
            "/futures/data/openInterestHist": Route("futures", self._oi_hist, flat(0)),
            "/futures/data/globalLongShortAccountRatio": Route(
                "futures", self._global_long_short, flat(0)
            ),
            "/futures/data/topLongShortAccountRatio": Route(
                "futures", self._top_long_short, flat(0)
            ),
            "/futures/data/takerlongshortRatio": Route("futures", self._taker_ratio, flat(0)),
            "/dapi/v1/exchangeInfo": Route("coinm", self._dapi_exchange_info, flat(1)),
        }

    def _perp(self, query) -> Perp:
        symbol = require(query, "symbol").upper()
        perp = self._listed_perps().get(symbol)
        if perp is None:
            raise invalid_symbol()
        return perp

    def _fapi_rate_limits(self) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.switches.futures_weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ]

    def _fapi_exchange_info(self, query, request):
        perps = self._listed_perps()
        symbols = []
        for symbol, perp in perps.items():
            market = perp.market
            price = self._mark_price(perp)[0] or 1.0
            tick = tick_size(price)
            symbols.append(
                {
                    "symbol": symbol,
                    "pair": symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": PERPETUAL_DELIVERY,
                    "onboardDate": perp.onboard,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": market.base,
                    "quoteAsset": market.quote,
                    "marginAsset": market.quote,
                    "pricePrecision": max(0, -int(np.floor(np.log10(float(tick))))),
                    "quantityPrecision": 3,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": tick,
                            "maxPrice": f8(price * 1000),
                            "tickSize": tick,
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": "0.001",
                            "maxQty": "10000000",
                            "stepSize": "0.001",
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": "0.001",
                            "maxQty": "1000000",
                            "stepSize": "0.001",
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": "5"},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                    "permissionSets": ["GRID", "COPY"],
                }
            )
        return self._ok(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "futuresType": "U_MARGINED",
                "rateLimits": self._fapi_rate_limits(),
                "exchangeFilters": [],
                "assets": [
                    {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}
                ],
                "symbols": symbols,
            }
        )

    def _dapi_exchange_info(self, query, request):
        return self._ok(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [],
            }
        )

    def _fapi_klines(self, query, request):
        perp = self._perp(query)
        return self._klines(query, perp.series, 1500, perp.synthetic_candles)

    def _fapi_ticker(self, query, request):
        perps = self._listed_perps()
        wanted = self._symbols_param(query, perps)
        with_candles = {s: p for s, p in perps.items() if p.series is not None}
        headers = {**SYNTHETIC, "X-Fake-Synthetic-Fields": "quoteVolume,lastQty,firstId,lastId"}
        if query.get("symbol"):
            perp = perps[wanted[0]]
            if perp.series is None:
                raise binance_error(-4108, "Symbol is on delivering or delivered or settle.")
            return self._ok(self._ticker(wanted[0], perp.series, True), headers)
        return self._ok([self._ticker(s, p.series, True) for s, p in with_candles.items()], headers)

    def _fapi_price(self, query, request):
        perps = self._listed_perps()
        wanted = self._symbols_param(query, perps)

        def item(symbol: str) -> dict[str, Any]:
            price = self._mark_price(perps[symbol])[0]
            return {"symbol": symbol, "price": f8(price or 0.0), "time": self.now}

        if query.get("symbol"):
            return self._ok(item(wanted[0]))
        return self._ok([item(s) for s in perps])

    def _mark_price(self, perp: Perp) -> tuple[float | None, bool]:
        """(mark price as of now, whether it is made up)."""
        market = perp.market
        if market.mark is not None and market.mark.visible(self.now):
            return float(market.mark.close[market.mark.visible(self.now) - 1]), False
        if perp.series is not None:
            price = perp.series.price_at(self.now)
            if price is not None:
                return price, perp.synthetic_candles
        spot = self._spot.get(market.symbol)
        if spot is not None:
            price = spot.price_at(self.now)
            if price is not None:
                return price, True
        return None, True

    def _funding_now(self, perp: Perp) -> tuple[float | None, int, bool]:
        """(last funding rate as of now, next funding time, made up?)."""
        funding = perp.market.funding
        now = self.now
        if funding is not None:
            n = funding.visible(now)
            if n:
                interval = _funding_interval_ms(funding, n)
                last_time = int(funding.times[n - 1]) // 1000 * 1000
                periods = max(1, (now - last_time) // interval + 1)
                return float(funding.rates[n - 1]), last_time + periods * interval, False
        nxt = (now // (8 * HOUR_MS) + 1) * 8 * HOUR_MS
        if self.seed is None:
            return None, nxt, False
        key = syn.key_of(self.seed, perp.market.symbol, "funding")
        rate = 0.0001 + 0.00015 * float(syn.normal(key, now // (8 * HOUR_MS)))
        return rate, nxt, True

    def _funding_info(self, query, request):
        """The perpetuals whose funding, as of now, settles at another interval than 8 h: the
        ones Binance lists ("symbols that had ... fundingIntervalHours adjustment"). Rate caps
        are not in the data: the answer gives Binance's documented example (±2.5 %) and is
        marked synthetic when it lists any."""
        items = []
        for symbol, perp in self._listed_perps().items():
            funding = perp.market.funding
            n = funding.visible(self.now) if funding is not None else 0
            if not n:
                continue
            interval = _funding_interval_ms(funding, n)
            if interval != 8 * HOUR_MS:
                items.append(
                    {
                        "symbol": symbol,
                        "adjustedFundingRateCap": "0.02500000",
                        "adjustedFundingRateFloor": "-0.02500000",
                        "fundingIntervalHours": interval // HOUR_MS,
                        "disclaimer": False,
                    }
                )
        return self._ok(
            items,
            (
                {
                    **SYNTHETIC,
                    "X-Fake-Synthetic-Fields": "adjustedFundingRateCap,adjustedFundingRateFloor",
                }
                if items
                else None
            ),
        )

    def _premium(self, symbol: str, perp: Perp) -> tuple[dict[str, Any], bool]:
        mark, mark_made = self._mark_price(perp)
        rate, next_time, rate_made = self._funding_now(perp)
        spot = self._spot.get(symbol)
        index = spot.price_at(self.now) if spot is not None else None
        item = {
            "symbol": symbol,
            "markPrice": f8(mark) if mark is not None else "",
            "indexPrice": f8(index if index is not None else mark or 0.0),
            "estimatedSettlePrice": f8(mark) if mark is not None else "",
            "lastFundingRate": f8(rate) if rate is not None else "",
            "interestRate": "0.00010000",
            "nextFundingTime": next_time,
            "time": self.now,
        }
        return item, mark_made or rate_made

    def _premium_index(self, query, request):
        perps = self._listed_perps()
        if query.get("symbol"):
            perp = self._perp(query)
            item, made = self._premium(query["symbol"].upper(), perp)
            return self._ok(item, SYNTHETIC if made else None)
        items = [self._premium(s, p) for s, p in perps.items()]
        made = any(m for _, m in items)
        return self._ok([i for i, _ in items], SYNTHETIC if made else None)

    def _funding_rate(self, query, request):
        limit = int_param(query, "limit", 100) or 100
        limit = max(1, min(limit, 1000))
        start = int_param(query, "startTime")
        end = int_param(query, "endTime")
        perps = self._listed_perps()
        if query.get("symbol"):
            symbols = [query["symbol"].upper()]
            if symbols[0] not in perps:
                raise invalid_symbol()
        else:
            symbols = list(perps)
        rows: list[tuple[int, str, float, float | None]] = []
        made = False
        for symbol in symbols:
            perp = perps[symbol]
            funding = perp.market.funding
            if funding is not None and funding.visible(self.now):
                times = funding.times[: funding.visible(self.now)]
                rates = funding.rates[: len(times)]
            elif self.seed is not None:
                grid = 8 * HOUR_MS
                first = (perp.onboard // grid + 1) * grid
                times = np.arange(first, self.now + 1, grid, dtype=np.int64)
                key = syn.key_of(self.seed, symbol, "funding")
                rates = 0.0001 + 0.00015 * syn.normal(key, times // grid)
                made = True
            else:
                continue
            lo = int(np.searchsorted(times, start, side="left")) if start is not None else 0
            hi = int(np.searchsorted(times, end, side="right")) if end is not None else len(times)
            if start is None:
                lo = max(lo, hi - limit)
            hi = min(hi, lo + limit)
            for k in range(lo, hi):
                t = int(times[k])
                mark = perp.series.price_at(t + HOUR_MS) if perp.series is not None else None
                rows.append((t, symbol, float(rates[k]), mark))
        rows.sort()
        if start is None and len(rows) > limit:
            rows = rows[-limit:]
        rows = rows[:limit]
        body = [
            {
                "symbol": symbol,
                "fundingTime": t,
                "fundingRate": f8(rate),
                "markPrice": f8(mark) if mark is not None else "",
            }
            for t, symbol, rate, mark in rows
        ]
        return self._ok(body, SYNTHETIC if made else None)

    def _fapi_agg_trades(self, query, request):
        perp = self._perp(query)
        if perp.series is None:
            return 200, b"[]", {}
        return self._agg_trades(query, perp.series, True)

    # --- synthetic derivatives statistics --------------------------------------------------------

    def _needs_seed(self) -> None:
        if self.seed is None:
            raise binance_error(
                -4108, "Symbol is on delivering or delivered or settle or closed or pre-trading."
            )

    def _open_interest_at(self, symbol: str, perp: Perp, times: np.ndarray):
        """(contracts, notional) of synthetic open interest at `times`; NaN where no price."""
        key = syn.key_of(self.seed or 0, symbol, "oi")
        series = perp.series
        if series is None:
            nan = np.full(len(times), np.nan)
            return nan, nan
        base = series.median_quote_volume() * 24 * (0.2 + 0.8 * float(syn.uniform(key, 0)))
        level = np.zeros(len(times))
        for k, period_days in enumerate((29.0, 7.3, 1.7, 0.31)):
            phase = float(syn.uniform(key, k, 40)) * 2 * np.pi
            level += np.sin(2 * np.pi * times / (period_days * DAY_MS) + phase) / (k + 1)
        level += (syn.uniform(key, times // 300_000, 41) - 0.5) * 0.05
        notional = base * np.exp(0.25 * level)
        idx = np.searchsorted(series.times, times - HOUR_MS, side="right") - 1
        prices = np.where(idx >= 0, series.candles.close[np.maximum(idx, 0)], np.nan)
        return notional / prices, np.where(idx >= 0, notional, np.nan)

    def _open_interest(self, query, request):
        perp = self._perp(query)
        self._needs_seed()
        symbol = query["symbol"].upper()
        stamp = self.now // 1000 * 1000 - 5
        contracts, _ = self._open_interest_at(symbol, perp, np.array([stamp], dtype=np.int64))
        if np.isnan(contracts[0]):
            raise binance_error(-4108, "Symbol is on delivering or delivered or settle.")
        body = {"openInterest": f"{contracts[0]:.3f}", "symbol": symbol, "time": stamp}
        return self._ok(body, SYNTHETIC)

    def _stat_grid(self, query) -> np.ndarray:
        period_name = require(query, "period")
        period = STAT_PERIODS.get(period_name)
        if period is None:
            raise binance_error(-1130, "Data sent for parameter 'period' is not valid.")
        limit = int_param(query, "limit", 30) or 30
        limit = max(1, min(limit, 500))
        start = int_param(query, "startTime")
        end = int_param(query, "endTime")
        latest = self.now // period * period
        oldest = (self.now - 30 * DAY_MS + period - 1) // period * period
        if end is not None:
            latest = min(latest, end // period * period)
        if start is not None:
            oldest = max(oldest, (start + period - 1) // period * period)
            latest = min(latest, oldest + (limit - 1) * period)
        else:
            oldest = max(oldest, latest - (limit - 1) * period)
        if latest < oldest:
            return np.empty(0, dtype=np.int64)
        return np.arange(oldest, latest + 1, period, dtype=np.int64)

    def _stat_rows(self, query, build, kind: str | None = None) -> tuple[int, bytes, dict]:
        """A /futures/data answer: `build(symbol, perp, grid)`'s rows, kept per `kind` (default:
        build's name), coin and window."""
        perp = self._perp(query)
        grid = self._stat_grid(query)
        if self.seed is None or perp.series is None:
            return 200, b"[]", {}
        symbol = query["symbol"].upper()
        first = int(perp.series.times[0])
        grid = grid[grid >= first]
        # A pure function of these and "now" (the seed and the data are fixed), and the fake's
        # costliest answer to make: kept, so a benchmark's repeated runs do not spend the
        # client's cores making it again.
        bodies = self._cache.setdefault("stat bodies", {})  # emptied when "now" moves
        key = (kind or build.__qualname__, symbol, int(grid[0]) if len(grid) else 0, len(grid))
        body = bodies.get(key)
        if body is None:
            if len(bodies) >= _STAT_BODIES:
                bodies.clear()  # a bound on memory; refilled on demand
            body = bodies[key] = dumps(build(symbol, perp, grid))
        return 200, body, dict(SYNTHETIC)

    def _oi_hist(self, query, request):
        def build(symbol: str, perp: Perp, grid: np.ndarray) -> list[dict[str, Any]]:
            contracts, notional = self._open_interest_at(symbol, perp, grid)
            key = syn.key_of(self.seed or 0, symbol, "supply")
            spot = self._spot.get(symbol)
            price = (spot or perp.series).price_at(self.now) or 1.0
            supply = syn.supply(key, price, perp.series.median_quote_volume() * 24)
            return [
                {
                    "symbol": symbol,
                    "sumOpenInterest": f8(contracts[k]),
                    "sumOpenInterestValue": f8(notional[k]),
                    "CMCCirculatingSupply": f"{supply['circulating_supply']:.3f}",
                    "timestamp": int(grid[k]),
                }
                for k in range(len(grid))
                if not np.isnan(contracts[k])
            ]

        return self._stat_rows(query, build)

    def _global_long_short(self, query, request):
        return self._long_short(query, "longshort", spread=0.12)

    def _top_long_short(self, query, request):
        # Top traders (the largest 20 % of margin balances) lean harder than all accounts.
        return self._long_short(query, "toplongshort", spread=0.16)

    def _long_short(self, query, kind: str, *, spread: float) -> tuple[int, bytes, dict]:
        """Account long/short ratio rows: a long share of 0.5 + `spread` x a sum of slow waves
        and noise (seeded per coin and `kind`), kept within 0.2-0.8."""

        def build(symbol: str, perp: Perp, grid: np.ndarray) -> list[dict[str, Any]]:
            key = syn.key_of(self.seed or 0, symbol, kind)
            level = np.zeros(len(grid))
            for k, period_days in enumerate((11.0, 2.9, 0.7)):
                phase = float(syn.uniform(key, k, 50)) * 2 * np.pi
                level += np.sin(2 * np.pi * grid / (period_days * DAY_MS) + phase) / (k + 1)
            level += (syn.uniform(key, grid // 300_000, 51) - 0.5) * 0.2
            long_share = np.clip(0.5 + spread * level, 0.2, 0.8)
            return [
                {
                    "symbol": symbol,
                    "longShortRatio": f"{long_share[k] / (1 - long_share[k]):.4f}",
                    "longAccount": f"{long_share[k]:.4f}",
                    "shortAccount": f"{1 - long_share[k]:.4f}",
                    "timestamp": int(grid[k]),
                }
                for k in range(len(grid))
            ]

        return self._stat_rows(query, build, kind)

    def _taker_ratio(self, query, request):
        period = STAT_PERIODS.get(query.get("period", ""), HOUR_MS)

        def build(symbol: str, perp: Perp, grid: np.ndarray) -> list[dict[str, Any]]:
            series = perp.series
            key = syn.key_of(self.seed or 0, symbol, "taker")
            rows = []
            for t in grid.tolist():
                # the period ending at t; hourly candles overlapping it, pro rata
                lo = int(np.searchsorted(series.times, t - period - HOUR_MS + 1, side="left"))
                hi = int(np.searchsorted(series.times, t - HOUR_MS, side="right"))
                if hi <= lo:
                    continue
                starts = series.times[lo:hi]
                overlap = np.minimum(starts + HOUR_MS, t) - np.maximum(starts, t - period)
                share = np.clip(overlap / HOUR_MS, 0.0, 1.0)
                volume = float((series.candles.volume[lo:hi] * share).sum())
                buy_share = float((series.share[lo:hi] * share).sum() / max(share.sum(), 1e-9))
                buy_share += (float(syn.uniform(key, t // 300_000, 60)) - 0.5) * 0.04
                buy = volume * buy_share
                sell = volume - buy
                rows.append(
                    {
                        "buySellRatio": f"{buy / sell:.4f}" if sell > 0 else "0.0000",
                        "buyVol": f"{buy:.4f}",
                        "sellVol": f"{sell:.4f}",
                        "timestamp": t,
                    }
                )
            return rows

        return self._stat_rows(query, build)
