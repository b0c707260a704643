"""What Binance spot and USDT-M answer alike: parameters, errors, klines, 24 h tickers, trades.

`BinanceCommon` is the base of both Binance venues (`binance_spot`, `binance_futures`): the
handlers they share take the venue's series and differ only in their limits and fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from fakes.exchange.core import SYNTHETIC, ApiError, ExchangeCore, Query, binance_error
from fakes.exchange.data import DAY_MS, HOUR_MS
from fakes.exchange.series import Series

KLINE_SYNTHETIC_FIELDS = (
    "quote_volume,number_of_trades,taker_buy_base_volume,taker_buy_quote_volume"
)


def f8(value: float) -> str:
    """A price or quantity as Binance prints it: 8 decimals."""
    return "%.8f" % value  # noqa: UP031 - the fastest exact fixed-point format


def invalid_symbol() -> ApiError:
    """Binance's answer to a symbol it does not list (as of now)."""
    return binance_error(-1121, "Invalid symbol.")


def int_param(query: Query, name: str, default: int | None = None) -> int | None:
    """Integer parameter `name`, `default` when absent or empty; Binance's -1100 if not a number."""
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise binance_error(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def require(query: Query, name: str) -> str:
    """Parameter `name`; Binance's -1102 when absent or empty."""
    value = query.get(name)
    if not value:
        raise binance_error(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def tick_size(price: float) -> str:
    """A tick size of about 1e-5 of the price, as Binance's filters print it."""
    exponent = int(np.floor(np.log10(price))) - 4 if price > 0 else -8
    exponent = min(max(exponent, -8), 0)
    return f8(10.0**exponent)


def symbol_or(one: int, many: int) -> Callable[[Query], int]:
    """The request weight of an endpoint that weighs `one` for one symbol, else `many`."""
    return lambda query: one if query.get("symbol") else many


class BinanceCommon(ExchangeCore):
    """The handlers both Binance venues use (each declares its own paths for them)."""

    def _ping(self, query, request):
        return self._ok({})

    def _time(self, query, request):
        return self._ok({"serverTime": self.now})

    def _symbols_param(self, query, listed: dict) -> list[str] | None:
        if query.get("symbol"):
            symbol = query["symbol"].upper()
            if symbol not in listed:
                raise invalid_symbol()
            return [symbol]
        if query.get("symbols"):
            try:
                symbols = json.loads(query["symbols"])
                if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                    raise ValueError
            except ValueError:
                raise binance_error(
                    -1100, "Illegal characters found in parameter 'symbols'."
                ) from None
            for symbol in symbols:
                if symbol not in listed:
                    raise invalid_symbol()
            return symbols
        return None

    def _klines(self, query, series: Series | None, max_limit: int, synthetic_all: bool):
        interval = require(query, "interval")
        if interval != "1h":
            raise binance_error(-1120, "Invalid interval.")
        limit = int_param(query, "limit", 500)
        if limit is None or limit <= 0:
            limit = 500
        limit = min(limit, max_limit)
        start = int_param(query, "startTime")
        end = int_param(query, "endTime")
        if start is not None and end is not None and start > end:
            raise binance_error(-1023, "Start time is greater than end time.")
        headers = {**SYNTHETIC, "X-Fake-Synthetic-Fields": KLINE_SYNTHETIC_FIELDS}
        if synthetic_all:
            headers["X-Fake-Synthetic-Fields"] = "all"
        if series is None:
            return 200, b"[]", headers
        times = series.times
        hi = series.candles.visible(self.now)
        if end is not None:
            hi = min(hi, int(np.searchsorted(times, end, side="right")))
        if start is not None:
            lo = int(np.searchsorted(times, start, side="left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        if hi <= lo:
            return 200, b"[]", headers
        return 200, series.klines(lo, hi), headers

    def _ticker(self, symbol: str, series: Series, futures: bool) -> dict[str, Any]:
        c = series.candles
        i0, i1 = series.day_window(self.now)
        last = float(c.close[i1 - 1]) if i1 else 0.0
        if i1 > i0:
            open_ = float(c.open[i0])
            high = float(c.high[i0:i1].max())
            low = float(c.low[i0:i1].min())
            volume = float(c.volume[i0:i1].sum())
            quote = float(series.quote_volume(i0, i1).sum())
            first_id = int(series.first_trade_id[i0])
            last_id = int(series.first_trade_id[i1]) - 1
            count = last_id - first_id + 1
            if count <= 0:
                first_id = last_id = -1
                count = 0
        else:
            open_ = high = low = last
            volume = quote = 0.0
            first_id = last_id = -1
            count = 0
        change = last - open_
        percent = change / open_ * 100 if open_ else 0.0
        average = quote / volume if volume else 0.0
        last_qty = float(c.volume[i1 - 1]) / max(1, int(series.trades[i1 - 1])) if i1 else 0.0
        item: dict[str, Any] = {
            "symbol": symbol,
            "priceChange": f8(change),
            "priceChangePercent": f"{percent:.3f}",
            "weightedAvgPrice": f8(average),
            "prevClosePrice": f8(float(c.close[i0 - 1]) if i0 else 0.0),
            "lastPrice": f8(last),
            "lastQty": f8(last_qty),
            "bidPrice": f8(last),
            "bidQty": f8(last_qty * 3),
            "askPrice": f8(last),
            "askQty": f8(last_qty * 2),
            "openPrice": f8(open_),
            "highPrice": f8(high),
            "lowPrice": f8(low),
            "volume": f8(volume),
            "quoteVolume": f8(quote),
            "openTime": self.now - DAY_MS,
            "closeTime": self.now - 1,
            "firstId": first_id,
            "lastId": last_id,
            "count": count,
        }
        if futures:
            for name in ("prevClosePrice", "bidPrice", "bidQty", "askPrice", "askQty"):
                del item[name]
        return item

    def _agg_trades(self, query, series: Series, futures: bool):
        limit = int_param(query, "limit", 500) or 500
        limit = max(1, min(limit, 1000))
        from_id = int_param(query, "fromId")
        start = int_param(query, "startTime")
        end = int_param(query, "endTime")
        if start is not None and end is not None and end - start > HOUR_MS:
            raise binance_error(-1127, "More than 1 hours between startTime and endTime.")
        headers = {**SYNTHETIC, "X-Fake-Synthetic-Fields": "all"}
        visible = series.candles.visible(self.now)
        if visible == 0:
            return 200, b"[]", headers
        times = series.times
        out: list[str] = []
        if from_id is not None or start is not None:
            if from_id is not None:
                i = int(np.searchsorted(series.first_trade_id, from_id, side="right")) - 1
                i = max(i, 0)
                j = max(0, from_id - int(series.first_trade_id[i]))
            else:
                i = max(0, int(np.searchsorted(times, start, side="right")) - 1)
                j = 0
            while i < visible and len(out) < limit:
                if start is not None and from_id is None and int(times[i]) + HOUR_MS <= start:
                    i, j = i + 1, 0
                    continue
                if end is not None and int(times[i]) > end:
                    break
                # Times are computed for the rest of the candle (cheap); only the trades
                # answered are formatted.
                ids, stamps = series.trade_stamps(i, j, int(series.trades[i]))
                k0 = 0
                if start is not None and from_id is None:
                    k0 = int(np.searchsorted(stamps, start, side="left"))
                k1 = len(stamps)
                if end is not None:
                    k1 = int(np.searchsorted(stamps, end, side="right"))
                k1 = max(k0, min(k1, k0 + limit - len(out)))
                out += series.trade_texts(i, ids[k0:k1], futures)
                if end is not None and k1 < len(stamps) and stamps[k1] > end:
                    break  # times never decrease: nothing later is inside endTime
                i, j = i + 1, 0
        else:
            # The most recent `limit` trades (before endTime, if given).
            hi = visible
            if end is not None:
                hi = min(hi, int(np.searchsorted(times, end, side="right")))
            collected: list[str] = []
            i = hi - 1
            while i >= 0 and len(collected) < limit:
                n = int(series.trades[i])
                ids, stamps = series.trade_stamps(i, max(0, n - limit * 4 - 16), n)
                k1 = len(stamps) if end is None else int(np.searchsorted(stamps, end, "right"))
                # Only the newest trades still wanted are formatted (times never decrease).
                k0 = max(0, k1 - (limit - len(collected)))
                texts = series.trade_texts(i, ids[k0:k1], futures)
                collected = texts + collected
                i -= 1
            out = collected[-limit:]
        return 200, ("[" + ",".join(out) + "]").encode(), headers
