"""The fake Binance spot API (`/api/v3/...`): exchange info, klines, tickers, prices, trades."""

from __future__ import annotations

import json
from typing import Any

from fakes.exchange.binance_common import (
    BinanceCommon,
    f8,
    invalid_symbol,
    require,
    symbol_or,
    tick_size,
)
from fakes.exchange.core import SYNTHETIC, Query, Route, flat
from fakes.exchange.series import Series


def spot_ticker_weight(query: Query) -> int:
    """/api/v3/ticker/24hr: 2 for one symbol, 2/40/80 for up to 20/100/more, 80 for all."""
    if query.get("symbol"):
        return 2
    if query.get("symbols"):
        try:
            count = len(json.loads(query["symbols"]))
        except ValueError:
            return 2
        return 2 if count <= 20 else 40 if count <= 100 else 80
    return 80


class BinanceSpot(BinanceCommon):
    """Binance spot, with the request weights of the real endpoints."""

    def _venue_routes(self) -> dict[str, Route]:
        return {
            **super()._venue_routes(),
            "/api/v3/ping": Route("spot", self._ping, flat(1)),
            "/api/v3/time": Route("spot", self._time, flat(1)),
            "/api/v3/exchangeInfo": Route("spot", self._spot_exchange_info, flat(20)),
            "/api/v3/klines": Route("spot", self._spot_klines, flat(2)),
            "/api/v3/ticker/24hr": Route("spot", self._spot_ticker, spot_ticker_weight),
            "/api/v3/ticker/price": Route("spot", self._spot_price, symbol_or(2, 4)),
            "/api/v3/aggTrades": Route("spot", self._spot_agg_trades, flat(4)),
        }

    def _spot_series(self, query) -> Series:
        symbol = require(query, "symbol").upper()
        series = self._listed_spot().get(symbol)
        if series is None:
            raise invalid_symbol()
        return series

    def _spot_rate_limits(self) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.switches.spot_weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ]

    def _spot_exchange_info(self, query, request):
        listed = self._listed_spot()
        wanted = self._symbols_param(query, listed)
        symbols = []
        for symbol in wanted if wanted is not None else listed:
            market = self.data.markets[symbol]
            series = listed[symbol]
            last = series.price_at(self.now) or 1.0
            symbols.append(
                {
                    "symbol": symbol,
                    "status": "TRADING",
                    "baseAsset": market.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": market.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": [
                        "LIMIT",
                        "LIMIT_MAKER",
                        "MARKET",
                        "STOP_LOSS_LIMIT",
                        "TAKE_PROFIT_LIMIT",
                    ],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "otoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": True,
                    "cancelReplaceAllowed": True,
                    "amendAllowed": True,
                    "pegInstructionsAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": True,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": tick_size(last),
                            "maxPrice": f8(last * 1000),
                            "tickSize": tick_size(last),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": tick_size(10 / last),
                            "maxQty": "9000000000.00000000",
                            "stepSize": tick_size(10 / last),
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": "5.00000000",
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT", "MARGIN", "TRD_GRP_004"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": [
                        "EXPIRE_TAKER",
                        "EXPIRE_MAKER",
                        "EXPIRE_BOTH",
                        "DECREMENT",
                    ],
                }
            )
        return self._ok(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "rateLimits": self._spot_rate_limits(),
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    def _spot_klines(self, query, request):
        series = self._spot_series(query)
        return self._klines(query, series, 1000, False)

    def _spot_ticker(self, query, request):
        listed = self._listed_spot()
        wanted = self._symbols_param(query, listed)
        headers = {
            **SYNTHETIC,
            "X-Fake-Synthetic-Fields": "quoteVolume,weightedAvgPrice,lastQty,bidPrice,bidQty,"
            "askPrice,askQty,firstId,lastId,count",
        }
        if query.get("symbol"):
            symbol = wanted[0]
            return self._ok(self._ticker(symbol, listed[symbol], False), headers)
        symbols = wanted if wanted is not None else list(listed)
        return self._ok([self._ticker(s, listed[s], False) for s in symbols], headers)

    def _spot_price(self, query, request):
        listed = self._listed_spot()
        wanted = self._symbols_param(query, listed)

        def item(symbol: str) -> dict[str, str]:
            return {"symbol": symbol, "price": f8(listed[symbol].price_at(self.now) or 0.0)}

        if query.get("symbol"):
            return self._ok(item(wanted[0]))
        return self._ok([item(s) for s in (wanted if wanted is not None else listed)])

    def _spot_agg_trades(self, query, request):
        return self._agg_trades(query, self._spot_series(query), False)
