"""Binance's answers read into values: pure functions from wire bytes and JSON to numbers, tables
and market values, with no I/O; and the request weights Binance's docs give its endpoints.

The two bodies a scan reads most of (klines, aggTrades) are decoded by msgspec straight into
typed rows (`KLINES_DECODER`, `AGG_TRADES_DECODER`), any other through the generic JSON reading.
A malformed answer raises the request engine's BadResponse naming what is wrong (a permanent
error: not retried), or reads as the coin's Missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import orjson

from httpengine.calls import BadResponse
from market.models import MarketType
from market.times import datetime_to_ms, ms_to_datetime, show_time
from market.values import Funding, Maybe, Missing, OpenInterestNow, OpenInterestPoint, Ticker

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
HOUR_MS = 3_600_000
# As in the replay: an open interest reading older than this says nothing about as_of.
OPEN_INTEREST_MAX_AGE = timedelta(hours=2)
# Binance's default funding interval; /fapi/v1/fundingInfo lists only the symbols that differ.
DEFAULT_FUNDING_INTERVAL = timedelta(hours=8)
# The most klines one request returns.
KLINES_PAGE = 1000

# Request weights from Binance's docs (FINDINGS.md section 3).
WEIGHT = {
    "spot_exchange_info": 20,
    "spot_klines": 2,
    "spot_ticker_all": 80,
    "spot_agg_trades": 4,
    "futures_exchange_info": 1,
    "futures_premium_all": 10,
    "futures_funding_info": 0,
    "futures_funding_rate": 1,
    "futures_open_interest": 1,
}


def futures_klines_weight(limit: int) -> int:
    """The weight of a futures klines request for `limit` candles (Binance's docs)."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class _AggTrade(msgspec.Struct, gc=False):
    """One aggTrades row as Binance writes it (a: trade id, p: price, q: quantity, T: time ms,
    m: buyer is maker); its other fields are not read."""

    a: int
    p: float
    q: float
    T: int
    m: bool


class _Kline(msgspec.Struct, array_like=True, gc=False):
    """One klines row as Binance writes it, by position; the fields between the volume and the
    taker buy volume are skipped unread, those after it ignored."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: msgspec.Raw
    quote_volume: msgspec.Raw
    trades: msgspec.Raw
    taker_buy_volume: float


# The two bodies a scan reads most of (a coin's 500 candles, its hour of trades in pages of
# 1,000) are decoded straight into numbers: Binance's decimal strings become floats inside
# msgspec (strict=False is what lets a string decode as a number, or "true" as a bool), with no
# dict or str per value. A body of another shape falls back to the generic parse, whose checks
# name what is wrong.
KLINES_DECODER = msgspec.json.Decoder(list[_Kline], strict=False)
AGG_TRADES_DECODER = msgspec.json.Decoder(list[_AggTrade], strict=False)


def decoded(body: str | bytes, decoder: msgspec.json.Decoder | None) -> Any:
    """`body` decoded by `decoder` when it is of the decoder's type, else as any JSON (an error
    answer, a malformed one: the generic reading's checks then name what is wrong). Raises
    ValueError when the body is not JSON at all."""
    if decoder is not None:
        try:
            return decoder.decode(body)
        except msgspec.DecodeError:
            pass  # not of the decoder's type: read as any JSON, for the generic checks
    return orjson.loads(body)


@dataclass(frozen=True)
class Listing:
    """One market of the exchange, from exchangeInfo."""

    symbol: str  # unified: BTC/USDT, BTC/USDT:USDT
    exchange_id: str  # BTCUSDT
    base: str
    quote: str
    market_type: str
    active: bool
    onboard: datetime | None  # perpetuals: onboardDate


@dataclass(frozen=True)
class ExchangeInfo:
    """The exchange's spot markets and USDT-M perpetuals, by unified symbol."""

    spot: dict[str, Listing]
    futures: dict[str, Listing]

    def get(self, symbol: str) -> Listing | None:
        """The market of a unified symbol (a perpetual when it has a settle part), or None."""
        return (self.futures if ":" in symbol else self.spot).get(symbol)


def parse_exchange_info(data: Any, *, futures: bool) -> dict[str, Listing]:
    """The markets of a spot or futures exchangeInfo answer by unified symbol (of the futures,
    the perpetuals only); malformed entries are skipped, an answer without a symbol list is a
    BadResponse."""
    symbols = data.get("symbols") if isinstance(data, dict) else None
    if not isinstance(symbols, list):
        raise BadResponse(f"{'futures' if futures else 'spot'} exchangeInfo has no symbol list")
    found: dict[str, Listing] = {}
    for item in symbols:
        if not isinstance(item, dict):
            continue
        exchange_id, base, quote = item.get("symbol"), item.get("baseAsset"), item.get("quoteAsset")
        if not all(isinstance(v, str) and v for v in (exchange_id, base, quote)):
            continue
        if futures:
            if item.get("contractType") != "PERPETUAL":
                continue
            settle = item.get("marginAsset") or quote
            symbol = f"{base}/{quote}:{settle}"
            onboard = item.get("onboardDate")
            onboard_at = (
                ms_to_datetime(onboard)
                if isinstance(onboard, int) and not isinstance(onboard, bool) and onboard > 0
                else None
            )
        else:
            symbol, onboard_at = f"{base}/{quote}", None
        found[symbol] = Listing(
            symbol=symbol,
            exchange_id=exchange_id,
            base=base,
            quote=quote,
            market_type=MarketType.FUTURES if futures else MarketType.SPOT,
            active=item.get("status") == "TRADING",
            onboard=onboard_at,
        )
    return found


def to_float(value: Any) -> float | None:
    """A finite float from Binance's string or number, else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    """An int from Binance's string or number, else None (a bool is none)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def klines_table(rows: Any, what: str) -> np.ndarray:
    """Raw klines rows (as KLINES_DECODER or a generic parse reads them) as a float table
    (open ms, o, h, l, c, volume, taker buy volume)."""
    if not isinstance(rows, list):
        raise BadResponse(f"{what}: expected a list of klines, got {type(rows).__name__}")
    if rows and type(rows[0]) is _Kline:
        table = np.array(
            [
                (k.open_time, k.open, k.high, k.low, k.close, k.volume, k.taker_buy_volume)
                for k in rows
            ],
            dtype=np.float64,
        )
        bad = ~np.isfinite(table[:, 1:6])
        if bad.any():
            index, column = np.argwhere(bad)[0]
            name = ("open", "high", "low", "close", "volume")[column]
            raise BadResponse(f"{what}: kline {index + 1} has no valid {name}")
        return table
    try:
        # numpy parses Binance's decimal strings itself: one pass, no Python float per value.
        table = np.array(
            [(r[0], r[1], r[2], r[3], r[4], r[5], r[9]) for r in rows], dtype=np.float64
        ).reshape(-1, 7)
        if np.isfinite(table[:, :6]).all():
            return table
    except (TypeError, ValueError, IndexError, KeyError):
        pass
    return _klines_table_checked(rows, what)


def _klines_table_checked(rows: list, what: str) -> np.ndarray:
    """The row-by-row reading of klines_table, which names the first bad kline."""
    table = np.empty((len(rows), 7), dtype=np.float64)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < 10:
            raise BadResponse(f"{what}: kline {index + 1} is not a 12-field row")
        open_time = to_int(row[0])
        if open_time is None:
            raise BadResponse(f"{what}: kline {index + 1} has no open time")
        values = [to_float(row[i]) for i in (1, 2, 3, 4, 5, 9)]
        for name, value in zip(("open", "high", "low", "close", "volume"), values, strict=False):
            if value is None:
                raise BadResponse(f"{what}: kline {index + 1} has no valid {name}")
        taker = values[5] if values[5] is not None else math.nan
        table[index] = (open_time, *values[:5], taker)
    return table


def trades_table(data: Any, what: str) -> np.ndarray:
    """aggTrades (as AGG_TRADES_DECODER or a generic parse reads them) as a float table
    (price, quantity, time ms, id, buyer-is-maker)."""
    if not isinstance(data, list):
        raise BadResponse(f"{what}: not a list")
    if data and type(data[0]) is _AggTrade:
        table = np.array([(t.p, t.q, t.T, t.a, t.m) for t in data], dtype=np.float64)
        if not np.isfinite(table).all() or (table[:, 0] <= 0).any() or (table[:, 1] < 0).any():
            raise BadResponse(f"{what}: a trade has an invalid price or quantity")
        return table
    try:
        table = np.array(
            [(t["p"], t["q"], t["T"], t["a"], t["m"]) for t in data], dtype=np.float64
        ).reshape(-1, 5)
    except (TypeError, ValueError, KeyError) as error:
        raise BadResponse(f"{what}: a trade is malformed ({error})") from None
    if (
        not np.isfinite(table).all()
        or (table[:, 0] <= 0).any()
        or (table[:, 1] < 0).any()
        or not {type(t["m"]) for t in data} <= {bool}
    ):
        raise BadResponse(f"{what}: a trade has an invalid price, quantity or side")
    return table


def parse_ticker(symbol: str, item: dict | None) -> Maybe[Ticker]:
    """The Ticker of a 24h ticker object (None: not in the answer), or why it is Missing."""
    if item is None:
        return Missing(f"Binance's 24h tickers do not include {symbol}")
    values = {
        name: to_float(item.get(name))
        for name in (
            "lastPrice",
            "openPrice",
            "highPrice",
            "lowPrice",
            "volume",
            "quoteVolume",
            "priceChangePercent",
        )
    }
    bad = [name for name, value in values.items() if value is None]
    if bad:
        return Missing(f"the 24h ticker of {symbol} has no valid {', '.join(bad)}")
    prices = [values[name] for name in ("lastPrice", "openPrice", "highPrice", "lowPrice")]
    if min(prices) <= 0 or values["volume"] < 0 or values["quoteVolume"] < 0:  # type: ignore[operator]
        return Missing(f"the 24h ticker of {symbol} has a price that is not positive")
    close_time = to_int(item.get("closeTime"))
    open_time = to_int(item.get("openTime"))
    if close_time is None or open_time is None:
        return Missing(f"the 24h ticker of {symbol} has no window times")
    return Ticker(
        symbol=symbol,
        last=values["lastPrice"],  # type: ignore[arg-type]
        open_24h=values["openPrice"],  # type: ignore[arg-type]
        high_24h=values["highPrice"],  # type: ignore[arg-type]
        low_24h=values["lowPrice"],  # type: ignore[arg-type]
        base_volume_24h=values["volume"],  # type: ignore[arg-type]
        quote_volume_24h=values["quoteVolume"],  # type: ignore[arg-type]
        change_24h_pct=values["priceChangePercent"],  # type: ignore[arg-type]
        # A rolling ticker: its window ends at closeTime (+1 ms: Binance's inclusive end).
        last_candle_close=ms_to_datetime(close_time + 1),
        candles=max(1, round((close_time + 1 - open_time) / HOUR_MS)),
    )


def parse_funding(
    symbol: str,
    perp: Listing,
    item: dict | None,
    intervals: dict[str, timedelta] | Missing,
) -> Maybe[Funding]:
    """The Funding of a perpetual's premium index object (None: not in the answer), with the
    funding intervals that differ from 8 h (or why they are unknown), or why it is Missing."""
    if item is None:
        return Missing(f"Binance's premium index does not include {perp.symbol}")
    rate = to_float(item.get("lastFundingRate"))
    next_time = to_int(item.get("nextFundingTime"))
    if rate is None or next_time is None or next_time <= 0:
        return Missing(f"the premium index of {perp.symbol} has no valid funding rate or time")
    interval: Maybe[timedelta]
    if isinstance(intervals, Missing):
        interval = intervals
        step = DEFAULT_FUNDING_INTERVAL
    else:
        interval = step = intervals.get(perp.exchange_id, DEFAULT_FUNDING_INTERVAL)
    # The rate of the period that settles next; its period began one interval before.
    return Funding(symbol, perp.symbol, rate, ms_to_datetime(next_time) - step, interval)


def oi_point(row: dict[str, Any]) -> OpenInterestPoint:
    """A row of openInterestHist (its timestamp already an int) as a point; BadResponse when
    it has no valid amount."""
    amount = to_float(row.get("sumOpenInterest"))
    value = to_float(row.get("sumOpenInterestValue"))
    if amount is None or amount < 0:
        raise BadResponse(f"open interest row {row.get('timestamp')} has no valid amount")
    return OpenInterestPoint(
        timestamp=ms_to_datetime(row["timestamp"]),
        open_interest=amount,
        open_interest_value=value
        if value is not None and value >= 0
        else Missing("the open interest's value was not given"),
    )


def _day_ago(history: Maybe[list[dict[str, Any]]], moment: datetime) -> Maybe[float]:
    if isinstance(history, Missing):
        return history
    target = datetime_to_ms(moment)
    older = [row for row in history if row["timestamp"] <= target]
    if not older or older[-1]["timestamp"] <= target - OPEN_INTEREST_MAX_AGE // timedelta(
        milliseconds=1
    ):
        return Missing(f"no open interest recorded around {show_time(moment)}")
    return oi_point(older[-1]).open_interest


def _change_pct(now: float, before: Maybe[float]) -> Maybe[float]:
    if isinstance(before, Missing):
        return before
    if before <= 0:
        return Missing("open interest 24 h earlier was 0, so no percentage change")
    return (now - before) / before * 100


def open_interest_from_history(
    symbol: str, perp: Listing, history: list[dict[str, Any]], as_of: datetime
) -> Maybe[OpenInterestNow]:
    """Open interest at as_of from its hourly history alone (rows oldest first, not empty):
    Missing when the latest row is more than OPEN_INTEREST_MAX_AGE old."""
    latest = oi_point(history[-1])
    if latest.timestamp <= as_of - OPEN_INTEREST_MAX_AGE:
        return Missing(
            f"the latest open interest of {perp.symbol} is from {show_time(latest.timestamp)}, "
            f"more than 2 h before {show_time(as_of)}"
        )
    before = _day_ago(history, as_of - DAY)
    return OpenInterestNow(
        symbol=symbol,
        perp_symbol=perp.symbol,
        timestamp=latest.timestamp,
        open_interest=latest.open_interest,
        open_interest_value=latest.open_interest_value,
        open_interest_24h_ago=before,
        change_24h_pct=_change_pct(latest.open_interest, before),
    )


def open_interest_now(
    symbol: str,
    perp: Listing,
    current: Any,
    history: Maybe[list[dict[str, Any]]],
    premium: dict[str, dict] | Missing | None,
    as_of: datetime,
) -> Maybe[OpenInterestNow]:
    """Open interest at as_of from the openInterest answer `current`, valued at the premium
    index's mark price, its change from the hourly `history` 24 h earlier."""
    if not isinstance(current, dict):
        raise BadResponse(f"open interest of {perp.symbol} is not an object")
    if current.get("symbol") not in (None, perp.exchange_id):
        return Missing(
            f"asked for the open interest of {perp.exchange_id}, Binance answered "
            f"{current.get('symbol')}"
        )
    amount = to_float(current.get("openInterest"))
    stamp = to_int(current.get("time"))
    if amount is None or amount < 0 or stamp is None:
        return Missing(f"the open interest of {perp.symbol} is not a valid number")
    timestamp = min(ms_to_datetime(stamp), as_of)
    mark = None
    if isinstance(premium, dict) and isinstance(premium.get(perp.exchange_id), dict):
        mark = to_float(premium[perp.exchange_id].get("markPrice"))
    value: Maybe[float] = (
        amount * mark
        if mark is not None and mark > 0
        else Missing(f"no mark price of {perp.symbol} to value its open interest")
    )
    before = _day_ago(history, as_of - DAY)
    return OpenInterestNow(
        symbol=symbol,
        perp_symbol=perp.symbol,
        timestamp=timestamp,
        open_interest=amount,
        open_interest_value=value,
        open_interest_24h_ago=before,
        change_24h_pct=_change_pct(amount, before),
    )
