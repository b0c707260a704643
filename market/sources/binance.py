"""The live source: Binance spot and USDT-M futures through ccxt, CoinGecko, LunarCrush.

How a call runs. The interface is synchronous and batch-oriented; inside, every request of a batch
runs concurrently on a background event loop of this process (`_Runtime`: one thread, one pooled
aiohttp session, one ccxt client, shared by the sources of the same configuration and kept between
calls; `close()` of the last of them shuts it down). Database reads and writes stay in the calling
thread, so they see the caller's transaction.

Every request goes through the request engine of its API (`engine_for("binance-spot")`,
`"binance-futures"`) with the endpoint's real weight (Binance's docs, not ccxt's outdated table);
the /futures/data endpoints (weight 0) through `"binance-futures-data"`, which counts each
endpoint's requests against its own limit of 1,000 per 5 minutes. ccxt's own rate limiter is off.
ccxt's failures are mapped, by the HTTP status each call captured (`_Binance.on_rest_response` keeps
it in a context variable, so concurrent calls never mix them up), to the engine's RateLimited (429,
after Retry-After), Banned (418), TransientError (timeouts, 5xx, network; retried) and
PermanentError/BadResponse (4xx, bodies that are not what the API promises).

What fails where. A problem of one coin (unknown symbol, empty or malformed answer, NaN or negative
prices, another symbol echoed back, retries exhausted) is that coin's `Missing(reason)`; the batch
goes on. A ban, or an exchange that cannot be reached at all, is a `SourceError`.

Point in time. Candles are served only once closed by as_of, read from and written through to the
candle store. "Now" endpoints (24h tickers, premium index, open interest) answer only for an as_of
within `LIVE_TOLERANCE` of the clock; further back, tickers come from candles, funding from the
funding history, open interest from its 30-day history, and what Binance keeps no history of is
Missing.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import math
import os
import queue
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import msgspec
import numpy as np
import orjson
import uvloop
from django.conf import settings
from django.db import transaction

from httpengine.calls import (
    BadResponse,
    Banned,
    PermanentError,
    RateLimited,
    Reply,
    RequestError,
    TransientError,
)
from httpengine.engine import RequestEngine
from httpengine.registry import close_loop_clients, engine_for, shared_redis_url
from market import candle_store
from market.candle_writer import CandleRows, insert_new_rows
from market.file_layouts import CANDLE_FIELDS, FileLayout, ImportFileError
from market.file_validation import ParsedFile, RawTable, validate_table
from market.models import (
    Candle,
    ImportKind,
    ListingSource,
    Market,
    MarketType,
    OpenInterest,
    PriceSeries,
)
from market.sources.base import MarketDataSource, SourceError, perpetual_symbol, unique
from market.sources.cache import RedisTimedCache, TimedCache, process_cache
from market.sources.coingecko import CoinGeckoClient, bases_of, header
from market.sources.lunarcrush import LunarCrushClient
from market.sources.replay import tickers_from_candles
from market.sources.trade_tally import MINUTE_MS, TradeTally
from market.times import (
    datetime_to_ms,
    ms_to_datetime,
    require_aware,
    show_time,
    timeframe_duration,
)
from market.values import (
    CandleSeries,
    Fundamentals,
    Funding,
    LargeTrades,
    LongShortRatio,
    MarketInfo,
    Maybe,
    Missing,
    OpenInterestNow,
    OpenInterestPoint,
    Social,
    TakerFlow,
    Ticker,
    TrendingCoin,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

SPOT_API = "binance-spot"
FUTURES_API = "binance-futures"
# /futures/data: weight 0, but 1,000 requests per 5 minutes per endpoint and IP.
FUTURES_DATA_API = "binance-futures-data"
HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
HOUR_MS = 3_600_000
# "Now" endpoints answer for an as_of at most this far behind the clock.
LIVE_TOLERANCE = timedelta(minutes=5)
# Binance keeps open interest, long/short and taker ratios for the last 30 days only.
STATS_HISTORY = timedelta(days=30)
# As in the replay: a settlement older than this says nothing about as_of.
FUNDING_MAX_AGE = timedelta(hours=24)
OPEN_INTEREST_MAX_AGE = timedelta(hours=2)
# open_interest() reads 25 h of hourly history: the reading 24 h before as_of and the latest.
OI_WINDOW_HOURS = 25
# Binance's default funding interval; /fapi/v1/fundingInfo lists only the symbols that differ.
DEFAULT_FUNDING_INTERVAL = timedelta(hours=8)
KLINES_PAGE = 1000
AGG_TRADES_PAGE = 1000
# A whale window whose trades fill more pages than this is reported missing, not half-counted.
AGG_TRADES_MAX_PAGES = 30
EXCHANGE_INFO_SECONDS = 600.0
# How long a coin's trade tally is kept (see trade_tally): past an hour it holds nothing a
# one-hour whale window can use.
TRADE_TALLY_SECONDS = 3600.0

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

_RESPONSE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "binance_response", default=None
)
# The typed decoder of the call under way (see `_Binance.on_json_response`), if it has one.
_DECODER: contextvars.ContextVar[msgspec.json.Decoder | None] = contextvars.ContextVar(
    "binance_decoder", default=None
)


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
_KLINES_DECODER = msgspec.json.Decoder(list[_Kline], strict=False)
_AGG_TRADES_DECODER = msgspec.json.Decoder(list[_AggTrade], strict=False)


@dataclass(frozen=True)
class _Unread:
    """A 2xx body of a call with a typed decoder, handed back by ccxt unparsed."""

    text: str


def _decoded(body: str | bytes, decoder: msgspec.json.Decoder | None) -> Any:
    """`body` decoded by `decoder` when it is of the decoder's type, else as any JSON (an error
    answer, a malformed one: the generic reading's checks then name what is wrong). Raises
    ValueError when the body is not JSON at all."""
    if decoder is not None:
        try:
            return decoder.decode(body)
        except msgspec.DecodeError:
            pass  # not of the decoder's type: read as any JSON, for the generic checks
    return orjson.loads(body)


def futures_klines_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


# --- ccxt ----------------------------------------------------------------------------------------


class _Binance(ccxt_async.binance):
    """ccxt's Binance, keeping each response's status and headers for the call that made it,
    handing back unparsed the 2xx bodies of calls that name a typed decoder (`_call` reads
    them), and refusing 2xx bodies that are not JSON (ccxt would hand back the raw text)."""

    def on_json_response(self, response_body: str) -> Any:
        response = _RESPONSE.get()
        if _DECODER.get() is not None and response and 200 <= response["status"] < 300:
            return _Unread(response_body)  # read by the engine, after the slot (_call)
        return orjson.loads(response_body)

    def on_rest_response(
        self,
        code,
        reason,
        url,
        method,
        response_headers,
        response_body,
        request_headers,
        request_body,
    ):
        _RESPONSE.set({"status": code, "url": url, "headers": dict(response_headers or {})})
        return super().on_rest_response(
            code,
            reason,
            url,
            method,
            response_headers,
            response_body,
            request_headers,
            request_body,
        )

    def handle_errors(
        self, code, reason, url, method, headers, body, response, request_headers, request_body
    ):
        if response is None and 200 <= code < 300 and body:
            raise ccxt.BadResponse(f"{method} {url}: HTTP {code} body is not JSON: {body[:80]!r}")
        return super().handle_errors(
            code, reason, url, method, headers, body, response, request_headers, request_body
        )


def binance_urls(spot: str, futures: str) -> dict[str, str]:
    """Every `urls['api']` key ccxt's binance may use, on our hosts (nothing left on binance.com).

    COIN-M, options and portfolio-margin keys are never used by this source; they point at the
    futures host under their real path so a stray call fails loudly instead of leaving.
    """
    spot, futures = spot.rstrip("/"), futures.rstrip("/")
    return {
        "public": f"{spot}/api/v3",
        "private": f"{spot}/api/v3",
        "v1": f"{spot}/api/v1",
        "sapi": f"{spot}/sapi/v1",
        "sapiV2": f"{spot}/sapi/v2",
        "sapiV3": f"{spot}/sapi/v3",
        "sapiV4": f"{spot}/sapi/v4",
        "fapiPublic": f"{futures}/fapi/v1",
        "fapiPublicV2": f"{futures}/fapi/v2",
        "fapiPublicV3": f"{futures}/fapi/v3",
        "fapiPrivate": f"{futures}/fapi/v1",
        "fapiPrivateV2": f"{futures}/fapi/v2",
        "fapiPrivateV3": f"{futures}/fapi/v3",
        "fapiData": f"{futures}/futures/data",
        "dapiPublic": f"{futures}/dapi/v1",
        "dapiPrivate": f"{futures}/dapi/v1",
        "dapiPrivateV2": f"{futures}/dapi/v2",
        "dapiData": f"{futures}/dapi/futures/data",
        "eapiPublic": f"{futures}/eapi/v1",
        "eapiPrivate": f"{futures}/eapi/v1",
        "papi": f"{futures}/papi/v1",
        "papiV2": f"{futures}/papi/v2",
    }


class _Unreachable(TransientError):
    """No HTTP answer at all (connection refused, DNS): the exchange, not a coin, is the problem."""


def _to_engine_error(error: Exception, response: dict[str, Any] | None, what: str) -> Exception:
    """The engine's error for a ccxt failure, judged by the HTTP status the call received."""
    status = response.get("status") if response else None
    headers = response.get("headers") if response else None
    retry_after = header(headers, "Retry-After")
    try:
        wait = float(retry_after) if retry_after is not None else None
    except ValueError:
        wait = None
    if status == 418:
        return Banned(time.time() + (wait if wait is not None else 120.0))
    if status == 429:
        return RateLimited(wait if wait is not None else 60.0)
    if isinstance(error, ccxt.BadResponse) and status is not None and 200 <= status < 300:
        return BadResponse(f"{what}: {error}")
    if status is not None and status >= 500:
        return TransientError(f"{what}: HTTP {status}")
    if isinstance(error, ccxt.RequestTimeout | asyncio.TimeoutError | TimeoutError):
        return TransientError(f"{what}: timed out")
    if status is None and isinstance(error, ccxt.NetworkError | aiohttp.ClientError):
        return _Unreachable(f"{what}: no answer ({type(error).__name__}: {error})")
    if isinstance(error, ccxt.BadSymbol):
        return PermanentError(f"{what}: Binance does not know the symbol")
    if isinstance(error, ccxt.DDoSProtection):
        return RateLimited(wait if wait is not None else 60.0)
    if isinstance(error, ccxt.NetworkError):
        return TransientError(f"{what}: {type(error).__name__}")
    return PermanentError(f"{what}: {type(error).__name__}: {str(error)[:200]}")


def _unreachable(error: BaseException) -> bool:
    """True for an engine error whose cause (after the engine's retries) was no answer at all."""
    seen = error
    while seen is not None:
        if isinstance(seen, _Unreachable):
            return True
        seen = seen.__cause__
    return False


# --- the per-process event loop --------------------------------------------------------------


class _Runtime:
    """A background event loop of this process with the pooled HTTP session and ccxt client."""

    def __init__(self, *, spot_url: str, futures_url: str, timeout: float, connections: int):
        self.pid = os.getpid()
        self.spot_url = spot_url
        self.futures_url = futures_url
        self.timeout = timeout
        self.connections = connections
        self.users = 0
        # uvloop (a ccxt dependency): a scan's thousands of requests are CPU-bound on the
        # client long before the network is the limit, and its loop costs less per request.
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="market-data-loop", daemon=True)
        self.thread.start()
        self._session: aiohttp.ClientSession | None = None
        self._exchange: _Binance | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(
        self, coroutine: Coroutine[Any, Any, T], work: Callable[[float], object] | None = None
    ) -> T:
        """The coroutine's result; `work(timeout)`, when given, is called in this thread while
        the coroutine runs (it should wait at most `timeout` seconds for something to do)."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("a market-data call cannot be made from the source's own loop")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        if work is not None:
            try:
                while not future.done():
                    work(0.01)
            except BaseException:
                future.cancel()
                raise
        return future.result()

    def session(self) -> aiohttp.ClientSession:
        """The pooled session (created in the loop on first use)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.connections, limit_per_host=self.connections, ttl_dns_cache=300
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    def exchange(self) -> _Binance:
        if self._exchange is None:
            exchange = _Binance(
                {
                    "enableRateLimit": False,
                    "timeout": int(self.timeout * 1000),
                    "session": self.session(),
                    "urls": {"api": binance_urls(self.spot_url, self.futures_url)},
                    "options": {
                        "fetchMarkets": {"types": ["spot", "linear"]},
                        "fetchCurrencies": False,
                        "fetchMargins": False,
                    },
                }
            )
            exchange.urls["api"] = binance_urls(self.spot_url, self.futures_url)
            exchange.timeout_on_exit = 0
            self._exchange = exchange
        return self._exchange

    async def _aclose(self) -> None:
        # The engines' Redis clients of this loop die with it: close them, or every released
        # runtime leaks its connections until garbage collection ("Too many connections").
        await close_loop_clients()
        if self._exchange is not None:
            await self._exchange.close()
        if self._session is not None:
            await self._session.close()

    def close(self) -> None:
        if not self.loop.is_closed() and self.thread.is_alive():
            try:
                self.run(self._aclose())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=10)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


_read_locks: dict[tuple[int, str], threading.Lock] = {}
_read_locks_guard = threading.Lock()


def _read_once(cache: TimedCache, key: str, as_of: datetime, read: Callable[[], T]) -> T:
    """`cache[key]` fit for as_of, else `read()` stored there under data time as_of. One thread
    of the process reads while the others wait for its answer: a scan's first batches all ask
    for the same bulk answer at once."""
    with _read_locks_guard:
        lock = _read_locks.setdefault((id(cache), key), threading.Lock())
    with lock:
        value = cache.get(key, as_of=as_of)
        if value is None:
            value = read()
            cache.put(key, value, data_time=as_of)
        return value


_runtimes: dict[tuple, _Runtime] = {}
_runtimes_lock = threading.Lock()
# Runtimes no source uses any more, kept warm (loop, HTTP connections, ccxt client, Redis
# clients) for the next source with the same settings: a scan's batches each build and close a
# source, and rebuilding all of that per batch cost more than the batch's own requests. The
# oldest idle ones beyond this many are closed.
IDLE_RUNTIMES = 2
_idle: list[_Runtime] = []


def _acquire_runtime(**config: Any) -> _Runtime:
    key = (os.getpid(), *sorted(config.items()))
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is None or not runtime.thread.is_alive():
            runtime = _Runtime(**config)
            _runtimes[key] = runtime
        if runtime in _idle:
            _idle.remove(runtime)
        runtime.users += 1
        return runtime


def _release_runtime(runtime: _Runtime) -> None:
    """One source fewer uses `runtime`; unused, it stays warm among the IDLE_RUNTIMES newest."""
    retired: list[_Runtime] = []
    with _runtimes_lock:
        runtime.users -= 1
        if runtime.users > 0:
            return
        _idle.append(runtime)
        while len(_idle) > IDLE_RUNTIMES:
            retired.append(_idle.pop(0))
        _forget_locked(retired)
    for old in retired:
        old.close()


@atexit.register
def close_idle_runtimes() -> None:
    """Close the runtimes no source uses (at exit; tests)."""
    with _runtimes_lock:
        retired = [runtime for runtime in _idle if runtime.users == 0]
        _idle.clear()
        _forget_locked(retired)
    for old in retired:
        old.close()


def _forget_locked(retired: list[_Runtime]) -> None:
    """Drop `retired` from the registry (under _runtimes_lock): no source can acquire them."""
    for key, value in list(_runtimes.items()):
        if value in retired:
            del _runtimes[key]


# --- exchange metadata -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """One market of the exchange, from exchangeInfo."""

    symbol: str  # unified: BTC/USDT, BTC/USDT:USDT
    exchange_id: str  # BTCUSDT
    base: str
    quote: str
    market_type: str
    active: bool
    onboard: datetime | None  # perpetuals: onboardDate


@dataclass(frozen=True)
class _ExchangeInfo:
    spot: dict[str, _Listing]
    futures: dict[str, _Listing]

    def get(self, symbol: str) -> _Listing | None:
        return (self.futures if ":" in symbol else self.spot).get(symbol)


def _parse_exchange_info(data: Any, *, futures: bool) -> dict[str, _Listing]:
    symbols = data.get("symbols") if isinstance(data, dict) else None
    if not isinstance(symbols, list):
        raise BadResponse(f"{'futures' if futures else 'spot'} exchangeInfo has no symbol list")
    found: dict[str, _Listing] = {}
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
        found[symbol] = _Listing(
            symbol=symbol,
            exchange_id=exchange_id,
            base=base,
            quote=quote,
            market_type=MarketType.FUTURES if futures else MarketType.SPOT,
            active=item.get("status") == "TRADING",
            onboard=onboard_at,
        )
    return found


# --- parsing helpers ---------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    """A finite float from Binance's string or number, else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _klines_table(rows: Any, what: str) -> np.ndarray:
    """Raw klines rows (as _KLINES_DECODER or a generic parse reads them) as a float table
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
    """The row-by-row reading of _klines_table, which names the first bad kline."""
    table = np.empty((len(rows), 7), dtype=np.float64)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < 10:
            raise BadResponse(f"{what}: kline {index + 1} is not a 12-field row")
        open_time = _int(row[0])
        if open_time is None:
            raise BadResponse(f"{what}: kline {index + 1} has no open time")
        values = [_float(row[i]) for i in (1, 2, 3, 4, 5, 9)]
        for name, value in zip(("open", "high", "low", "close", "volume"), values, strict=False):
            if value is None:
                raise BadResponse(f"{what}: kline {index + 1} has no valid {name}")
        taker = values[5] if values[5] is not None else math.nan
        table[index] = (open_time, *values[:5], taker)
    return table


def _trades_table(data: Any, what: str) -> np.ndarray:
    """aggTrades (as _AGG_TRADES_DECODER or a generic parse reads them) as a float table
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


# --- the source ----------------------------------------------------------------------------------


class BinanceSource(MarketDataSource):
    """Live market data: Binance (spot + USDT-M), CoinGecko and LunarCrush; see the module.

    `clock` replaces the wall clock as `now()` (tests against a fake exchange living at another
    time); `engines` replaces the process's request engines (by name); the URLs and keys default
    to the settings.
    """

    name = "binance"
    # Every method hands its requests to the source's own event loop; calls from several threads
    # overlap their network waits there.
    parallel_reads = True

    def __init__(
        self,
        *,
        exchange: str | None = None,
        clock: Callable[[], datetime] | None = None,
        engines: dict[str, RequestEngine] | None = None,
        spot_url: str | None = None,
        futures_url: str | None = None,
        coingecko_url: str | None = None,
        coingecko_key: str | None = None,
        lunarcrush_url: str | None = None,
        lunarcrush_key: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.exchange = exchange or settings.EXCHANGE
        self._clock = clock
        self._engines = dict(engines or {})
        self.timeout = float(timeout or settings.REQUEST_TIMEOUT_SECONDS)
        self._runtime = _acquire_runtime(
            spot_url=(spot_url or settings.BINANCE_SPOT_URL).rstrip("/"),
            futures_url=(futures_url or settings.BINANCE_FUTURES_URL).rstrip("/"),
            timeout=self.timeout,
            connections=2 * int(settings.PARALLEL_MAX_CONCURRENT) + 10,
        )
        self._closed = False
        self.coingecko = CoinGeckoClient(
            base_url=coingecko_url or settings.COINGECKO_API_URL,
            api_key=settings.COINGECKO_API_KEY if coingecko_key is None else coingecko_key,
            engine=self._engine("coingecko"),
            session=self._runtime.session,
            timeout=self.timeout,
        )
        key = settings.LUNARCRUSH_API_KEY if lunarcrush_key is None else lunarcrush_key
        self.lunarcrush = LunarCrushClient(
            base_url=lunarcrush_url or settings.LUNARCRUSH_API_URL,
            api_key=key,
            engine=self._engine("lunarcrush") if key else None,
            session=self._runtime.session,
            timeout=self.timeout,
        )
        # Keyed by the exchange's hosts, so two exchanges (a fake, the real one) never mix.
        urls = f"{self._runtime.spot_url} {self._runtime.futures_url}"
        host = f"binance:{zlib.crc32(urls.encode()):08x}"
        # Bulk 24h tickers and the premium index, and the exchange's metadata: one read serves
        # every source of the process (each batch of a scan builds one).
        self._prices = process_cache(f"{host}:prices", 60)
        self._metadata = process_cache(f"{host}:metadata", EXCHANGE_INFO_SECONDS)
        # Per-coin derived data and trade tallies are shared by every process through Redis
        # when there is one. Tallies live longer: a tally is exact whatever its age (it says
        # which trades it has read), and an older one still saves the pages it holds.
        redis_url = shared_redis_url()
        self._derived: TimedCache | RedisTimedCache
        self._tallies: TimedCache | RedisTimedCache
        if redis_url:
            self._derived = RedisTimedCache(redis_url, 300, prefix=f"cryptosatx:{host}")
            self._tallies = RedisTimedCache(
                redis_url, TRADE_TALLY_SECONDS, prefix=f"cryptosatx:{host}:tally"
            )
        else:
            self._derived = process_cache(f"{host}:derived", 300)
            self._tallies = process_cache(f"{host}:tallies", TRADE_TALLY_SECONDS)

    # --- plumbing ------------------------------------------------------------------------------

    def _engine(self, name: str) -> RequestEngine:
        if name not in self._engines:
            self._engines[name] = engine_for(name)
        return self._engines[name]

    def now(self) -> datetime:
        if self._clock is not None:
            return require_aware(self._clock(), "clock time")
        return datetime.now(UTC)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_runtime(self._runtime)

    def _run(
        self, coroutine: Coroutine[Any, Any, T], work: Callable[[float], object] | None = None
    ) -> T:
        """Run a coroutine on the source's loop; whole-source failures become SourceError.
        `work(timeout)` runs in the calling thread meanwhile (see `_Runtime.run`)."""
        if self._closed:
            coroutine.close()
            raise SourceError(self.name, "the source is closed")
        try:
            return self._runtime.run(coroutine, work)
        except Banned as error:
            until = show_time(datetime.fromtimestamp(error.until, tz=UTC))
            raise SourceError(
                self.name,
                f"Binance banned this IP (HTTP 418) until {until}; no request is sent before then",
            ) from error
        except RequestError as error:
            if _unreachable(error):
                raise SourceError(
                    self.name,
                    f"cannot reach Binance at {self._runtime.spot_url} / "
                    f"{self._runtime.futures_url}: {error}",
                ) from error
            raise SourceError(self.name, str(error)) from error

    def _live(self, as_of: datetime) -> bool:
        """True when as_of is close enough to now for the "now" endpoints to describe it."""
        return require_aware(as_of) >= self.now() - LIVE_TOLERANCE

    async def _call(
        self,
        api: str,
        method: str,
        params: dict[str, Any],
        *,
        weight: int,
        what: str,
        follow_up: bool = False,
        decoder: msgspec.json.Decoder | None = None,
        quota: str | None = None,
    ) -> Any:
        """One ccxt implicit-API call through the API's engine; `follow_up` for the next page of
        a read under way (it waits for a slot ahead of reads not yet started). With a `decoder`,
        a body of its type comes back decoded by it, any other body as generic JSON; a 2xx body
        is then read after the request's slot is given back (`Reply.finish`). `quota`: the
        endpoint's own limit within the engine (RequestEngine.run)."""
        runtime = self._runtime
        engine = self._engine(api)
        # The weight header counts the API's weight per minute: no measure of a quota's requests.
        reads_weight = quota is None

        async def call() -> Reply[Any]:
            _RESPONSE.set(None)
            _DECODER.set(decoder)
            function = getattr(runtime.exchange(), method)
            try:
                data = await function(params)
            except (ccxt.BaseError, aiohttp.ClientError, TimeoutError) as error:
                raise _to_engine_error(error, _RESPONSE.get(), what) from error
            response = _RESPONSE.get() or {}
            used = (
                _int(header(response.get("headers"), "x-mbx-used-weight-1m"))
                if reads_weight
                else None
            )
            if isinstance(data, str):
                raise BadResponse(f"{what}: body is not JSON")
            if isinstance(data, _Unread):
                return Reply(data.text, used_weight=used, finish=read)
            return Reply(data, used_weight=used)

        def read(text: str) -> Any:
            try:
                return _decoded(text, decoder)
            except ValueError:
                raise BadResponse(f"{what}: body is not JSON") from None

        return await engine.run(call, weight=weight, what=what, follow_up=follow_up, quota=quota)

    async def _each(
        self, keys: Iterable[str], fetch: Callable[[str], Awaitable[Maybe[T]]], what: str
    ) -> dict[str, Maybe[T]]:
        """fetch(key) for every key at once; a key's failure is its Missing, except bans and an
        unreachable exchange, which fail the whole batch."""
        keys = list(keys)
        results = await asyncio.gather(*(fetch(key) for key in keys), return_exceptions=True)
        out: dict[str, Maybe[T]] = {}
        fatal: BaseException | None = None
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, Banned) or (
                isinstance(result, RequestError) and _unreachable(result)
            ):
                fatal = fatal or result
            elif isinstance(result, RequestError):
                out[key] = Missing(f"{what} of {key} unavailable: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                out[key] = result
        if fatal is not None:
            raise fatal
        return out

    # --- exchange metadata --------------------------------------------------------------------

    def _exchange_info(self) -> _ExchangeInfo:
        # Metadata, not market data: cached by the wall clock whatever the source's clock says.
        return _read_once(
            self._metadata, "exchange_info", datetime.now(UTC), self._read_exchange_info
        )

    def _read_exchange_info(self) -> _ExchangeInfo:
        async def fetch() -> _ExchangeInfo:
            spot, futures = await asyncio.gather(
                self._call(
                    SPOT_API,
                    "publicGetExchangeInfo",
                    {},
                    weight=WEIGHT["spot_exchange_info"],
                    what="spot exchangeInfo",
                ),
                self._call(
                    FUTURES_API,
                    "fapiPublicGetExchangeInfo",
                    {},
                    weight=WEIGHT["futures_exchange_info"],
                    what="futures exchangeInfo",
                ),
            )
            return _ExchangeInfo(
                _parse_exchange_info(spot, futures=False),
                _parse_exchange_info(futures, futures=True),
            )

        return self._run(fetch())

    def _market_rows(self, listings: Sequence[_Listing]) -> dict[str, Market]:
        """The store's Market rows of these exchange markets, created where missing."""
        found = candle_store.markets_by_symbol(
            [listing.symbol for listing in listings], exchange=self.exchange
        )
        new = [
            Market(
                exchange=self.exchange,
                symbol=listing.symbol,
                base=listing.base,
                quote=listing.quote,
                market_type=listing.market_type,
                active=listing.active,
            )
            for listing in listings
            if listing.symbol not in found
        ]
        if new:
            Market.objects.bulk_create(new, ignore_conflicts=True)
            found = candle_store.markets_by_symbol(
                [listing.symbol for listing in listings], exchange=self.exchange
            )
        return found

    def _no_market(self, symbol: str) -> Missing:
        if ":" in symbol:
            return Missing(f"no USDT-M perpetual {symbol} on Binance")
        return Missing(f"no spot market {symbol} on Binance")

    def markets(self, *, as_of: datetime, market_type: str = MarketType.SPOT) -> list[MarketInfo]:
        require_aware(as_of)
        info = self._exchange_info()
        listings = info.futures if market_type == MarketType.FUTURES else info.spot
        listed = self._listing_times(list(listings.values()))
        result = []
        for symbol, listing in sorted(listings.items()):
            when, source = listed.get(symbol, (None, ""))
            if when is not None and when > as_of:
                continue
            result.append(
                MarketInfo(
                    exchange=self.exchange,
                    symbol=symbol,
                    base=listing.base,
                    quote=listing.quote,
                    market_type=listing.market_type,
                    listed_at=when,
                    listed_at_source=source,
                    active=listing.active,
                )
            )
        return result

    def listing_times(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[datetime]]:
        require_aware(as_of)
        symbols = unique(symbols)
        info = self._exchange_info()
        known = [info.get(symbol) for symbol in symbols]
        listed = self._listing_times([listing for listing in known if listing is not None])
        result: dict[str, Maybe[datetime]] = {}
        for symbol in symbols:
            when, _source = listed.get(symbol, (None, ""))
            if info.get(symbol) is None:
                result[symbol] = self._no_market(symbol)
            elif when is None:
                result[symbol] = Missing(f"Binance has no candle of {symbol}: listing unknown")
            elif when > as_of:
                result[symbol] = Missing(
                    f"{symbol} was listed at {show_time(when)}, after {show_time(as_of)}"
                )
            else:
                result[symbol] = when
        return result

    def _listing_times(
        self, listings: Sequence[_Listing]
    ) -> dict[str, tuple[datetime | None, str]]:
        """{symbol: (listed at, ListingSource)}: a perpetual's onboardDate; a spot market's
        first candle, from the store or else one klines call from time 0 (then remembered in
        Market.listed_at)."""
        result: dict[str, tuple[datetime | None, str]] = {}
        spot = []
        for listing in listings:
            if listing.market_type == MarketType.FUTURES:
                result[listing.symbol] = (listing.onboard, ListingSource.EXCHANGE)
            else:
                spot.append(listing)
        if not spot:
            return result
        rows = self._market_rows(spot)
        unknown: list[_Listing] = []
        for listing in spot:
            row = rows[listing.symbol]
            # Market.listed_at, not the store's first candle: candles written through by live
            # calls cover only recent windows, and would make every coin look newly listed.
            if row.listed_at is not None:
                result[listing.symbol] = (row.listed_at, row.listed_at_source)
            else:
                unknown.append(listing)
        if unknown:
            by_symbol = {item.symbol: item for item in unknown}

            async def first_candle(symbol: str) -> Maybe[datetime]:
                listing = by_symbol[symbol]
                rows_ = await self._call(
                    SPOT_API,
                    "publicGetKlines",
                    {"symbol": listing.exchange_id, "interval": "1h", "startTime": 0, "limit": 1},
                    weight=WEIGHT["spot_klines"],
                    what=f"first kline of {symbol}",
                    decoder=_KLINES_DECODER,
                )
                table = _klines_table(rows_, f"first kline of {symbol}")
                if not len(table):
                    return Missing(f"Binance has no candle of {symbol}")
                return ms_to_datetime(int(table[0, 0]))

            found = self._run(
                self._each([item.symbol for item in unknown], first_candle, "first candle")
            )
            learned: list[Market] = []
            for symbol, when in found.items():
                if isinstance(when, Missing):
                    result[symbol] = (None, "")
                    continue
                row = rows[symbol]
                row.listed_at, row.listed_at_source = when, ListingSource.FIRST_CANDLE
                learned.append(row)
                result[symbol] = (when, ListingSource.FIRST_CANDLE)
            Market.objects.bulk_update(learned, ["listed_at", "listed_at_source"], batch_size=500)
        return result

    # --- candles -----------------------------------------------------------------------------

    def candles(
        self, symbols: Sequence[str], *, timeframe: str = "1h", as_of: datetime, limit: int
    ) -> dict[str, Maybe[CandleSeries]]:
        require_aware(as_of)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        step = timeframe_duration(timeframe)
        step_ms = step // timedelta(milliseconds=1)
        symbols = unique(symbols)
        info = self._exchange_info()
        listings = {s: info.get(s) for s in symbols}
        rows = self._market_rows([item for item in listings.values() if item is not None])
        stored = candle_store.closed_candles_bulk(
            list(rows.values()), timeframe=timeframe, as_of=as_of, limit=limit
        )
        # The newest candle closed by as_of opens here.
        last_open = datetime_to_ms(as_of) // step_ms * step_ms - step_ms
        plans: dict[str, tuple[int | None, int]] = {}  # symbol -> (start ms or None, count)
        for symbol, listing in listings.items():
            if listing is None:
                continue
            row = rows[symbol]
            series = stored[row.pk]
            plan = _fetch_plan(series, row, limit=limit, last_open=last_open, step_ms=step_ms)
            if plan is not None:
                plans[symbol] = plan

        fetched: dict[str, Maybe[np.ndarray]] = {}
        if plans:

            async def fetch(symbol: str) -> Maybe[np.ndarray]:
                start, count = plans[symbol]
                return await self._klines(
                    listings[symbol], timeframe, step_ms, start=start, end=last_open, count=count
                )

            # Each coin's candles are checked and written (in this thread, in the caller's
            # transaction) as soon as they arrive, while the other coins' requests are in flight.
            arrived: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
            checked: dict[str, ParsedFile] = {}
            problems: dict[str, Maybe[np.ndarray]] = {}

            async def fetch_and_hand_over(symbol: str) -> Maybe[np.ndarray]:
                table = await fetch(symbol)
                arrived.put((symbol, table))
                return table

            def write_arrived(timeout: float) -> None:
                ready: dict[str, np.ndarray] = {}
                try:
                    symbol, table = arrived.get(timeout=timeout)
                    while True:
                        if not isinstance(table, Missing):
                            ready[symbol] = table
                        symbol, table = arrived.get_nowait()
                except queue.Empty:
                    pass
                if ready:
                    done = self._check_candles(ready, listings, timeframe, problems)
                    self._write_candles(done, rows, timeframe)
                    checked.update(done)

            fetched = self._run(
                self._each(list(plans), fetch_and_hand_over, f"{timeframe} candles"),
                write_arrived,
            )
            write_arrived(0)
            fetched.update(problems)
            # The answer is built from what was just checked and written, merged with what the
            # store held (stored rows win, as INSERT OR IGNORE keeps them): no read-back.
            for symbol, parsed in checked.items():
                pk = rows[symbol].pk
                stored[pk] = _merged(stored[pk], parsed, symbol, timeframe, limit)

        result: dict[str, Maybe[CandleSeries]] = {}
        for symbol in symbols:
            listing = listings[symbol]
            problem = fetched.get(symbol)
            if listing is None:
                result[symbol] = self._no_market(symbol)
            elif isinstance(problem, Missing):
                result[symbol] = problem
            elif not len(series := stored[rows[symbol].pk]):
                result[symbol] = Missing(
                    f"no {timeframe} candle of {symbol} closed at or before {show_time(as_of)}"
                )
            else:
                result[symbol] = series
        return result

    async def _klines(
        self,
        listing: _Listing,
        timeframe: str,
        step_ms: int,
        *,
        start: int | None,
        end: int,
        count: int,
    ) -> np.ndarray:
        """Closed klines of one market: `count` ending at `end` (start None), or from `start`."""
        futures = listing.market_type == MarketType.FUTURES
        method = "fapiPublicGetKlines" if futures else "publicGetKlines"
        api = FUTURES_API if futures else SPOT_API
        what = f"{timeframe} klines of {listing.symbol}"
        pages: list[np.ndarray] = []
        remaining = count
        cursor_end, cursor_start = end, start
        while remaining > 0:
            page_size = min(remaining, KLINES_PAGE)
            params: dict[str, Any] = {
                "symbol": listing.exchange_id,
                "interval": timeframe,
                "limit": page_size,
                "endTime": cursor_end,
            }
            if cursor_start is not None:
                params["startTime"] = cursor_start
            weight = futures_klines_weight(page_size) if futures else WEIGHT["spot_klines"]
            raw = await self._call(
                api,
                method,
                params,
                weight=weight,
                what=what,
                follow_up=bool(pages),
                decoder=_KLINES_DECODER,
            )
            table = _klines_table(raw, what)
            table = table[table[:, 0] <= end]  # never the candle still open at as_of
            if cursor_start is not None:
                table = table[table[:, 0] >= cursor_start]
            else:
                table = table[table[:, 0] <= cursor_end]
            pages.append(table)
            remaining -= len(table)
            if len(raw) < page_size or not len(table):
                break
            if cursor_start is not None:
                cursor_start = int(table[-1, 0]) + step_ms
                if cursor_start > end:
                    break
            else:
                cursor_end = int(table[0, 0]) - 1
        if not pages:
            return np.empty((0, 7))
        table = np.concatenate(pages)
        table = table[np.argsort(table[:, 0], kind="stable")]
        keep = np.ones(len(table), dtype=bool)
        keep[1:] = table[1:, 0] != table[:-1, 0]
        return table[keep]

    def _store_candles(
        self,
        tables: dict[str, np.ndarray],
        listings: dict[str, _Listing | None],
        rows: dict[str, Market],
        timeframe: str,
        fetched: dict[str, Maybe[np.ndarray]],
    ) -> int:
        """Check and write fetched candles (existing ones kept); a bad answer is its coin's
        Missing in `fetched`, with the importer's reason. Returns the number of rows inserted."""
        checked = self._check_candles(tables, listings, timeframe, fetched)
        return self._write_candles(checked, rows, timeframe)

    @staticmethod
    def _check_candles(
        tables: dict[str, np.ndarray],
        listings: dict[str, _Listing | None],
        timeframe: str,
        fetched: dict[str, Maybe[np.ndarray]],
    ) -> dict[str, ParsedFile]:
        """Fetched candles checked by the importer's rules, per coin; a coin whose answer breaks
        one becomes its Missing in `fetched` (with the importer's reason) and is left out."""
        checked: dict[str, ParsedFile] = {}
        for symbol, table in tables.items():
            listing = listings[symbol]
            assert listing is not None
            parsed = _parsed(table, listing, timeframe)
            if isinstance(parsed, Missing):
                fetched[symbol] = parsed
                continue
            checked[symbol] = parsed
        return checked

    @staticmethod
    def _write_candles(
        checked: dict[str, ParsedFile], rows: dict[str, Market], timeframe: str
    ) -> int:
        """Write checked candles of many coins in one transaction through the candle writer
        (every coin's rows at once), keeping rows already stored; the number of rows inserted."""
        batch = [
            CandleRows(
                rows[symbol].pk, timeframe, PriceSeries.TRADES, parsed.times_ms, parsed.values
            )
            for symbol, parsed in checked.items()
            if parsed.rows
        ]
        if not batch:
            return 0
        with transaction.atomic():
            return insert_new_rows(batch)

    # --- history downloads (manage.py fetch_ohlcv) ----------------------------------------------

    def fetch_history(
        self,
        symbol: str,
        *,
        timeframe: str = "1h",
        since: datetime,
        until: datetime,
        on_progress: Callable[[int], object] | None = None,
        on_plan: Callable[[int], object] | None = None,
    ) -> HistoryResult:
        """Download the closed candles of `symbol` opened in [since, until) into the store.

        Resumable: only what the store lacks in that range is asked for (before its first
        candle, holes, after its last one), in pages of 1,000 from the oldest. A hole the exchange
        has no candles for stays a hole and is reported in `gaps`. `on_plan(n)` is told how many
        candles at most will be fetched, `on_progress(n)` each page's count. UnknownSymbol when
        Binance does not list the symbol.
        """
        require_aware(since, "since")
        require_aware(until, "until")
        step_ms = timeframe_duration(timeframe) // timedelta(milliseconds=1)
        listing = self._exchange_info().get(symbol)
        if listing is None:
            kind = "USDT-M perpetual" if ":" in symbol else "spot market"
            raise UnknownSymbol(f"Binance lists no {kind} {symbol}")
        row = self._market_rows([listing])[symbol]
        first_ms = -(-datetime_to_ms(since) // step_ms) * step_ms
        last_ms = min(datetime_to_ms(until), datetime_to_ms(self.now())) // step_ms * step_ms
        last_ms -= step_ms  # the newest candle that has closed by until
        ranges = _missing_ranges(
            _stored_open_times(row, timeframe, first_ms, last_ms), first_ms, last_ms, step_ms
        )
        if on_plan is not None:
            on_plan(sum((end - start) // step_ms + 1 for start, end in ranges))
        fetched = inserted = requests = 0
        for start, end in ranges:
            cursor = start
            while cursor <= end:
                count = min(KLINES_PAGE, (end - cursor) // step_ms + 1)
                page = self._run(
                    self._klines(listing, timeframe, step_ms, start=cursor, end=end, count=count)
                )
                requests += 1
                answers: dict[str, Maybe[np.ndarray]] = {symbol: page}
                added = self._store_candles(
                    {symbol: page}, {symbol: listing}, {symbol: row}, timeframe, answers
                )
                if isinstance(answers[symbol], Missing):
                    raise BadResponse(answers[symbol].reason)
                fetched += len(page)
                inserted += added
                if on_progress is not None:
                    on_progress(len(page))
                if len(page) < count or not len(page):
                    break  # the exchange has nothing more in this range: a gap stays a gap
                cursor = int(page[-1, 0]) + step_ms
        stored = _stored_open_times(row, timeframe, first_ms, last_ms)
        return HistoryResult(
            symbol=symbol,
            timeframe=timeframe,
            fetched=fetched,
            inserted=inserted,
            requests=requests,
            first=ms_to_datetime(int(stored[0])) if len(stored) else None,
            last=ms_to_datetime(int(stored[-1])) if len(stored) else None,
            gaps=_gaps(stored, step_ms),
        )

    # --- tickers -----------------------------------------------------------------------------

    def tickers(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Ticker]]:
        symbols = unique(symbols)
        if not self._live(as_of):
            return self._tickers_from_candles(symbols, as_of)
        info = self._exchange_info()
        bulk = _read_once(
            self._prices,
            "tickers",
            as_of,
            lambda: self._run(self._bulk("spot_ticker_all", "publicGetTicker24hr", "24h tickers")),
        )
        result: dict[str, Maybe[Ticker]] = {}
        for symbol in symbols:
            listing = info.get(symbol)
            if listing is None:
                result[symbol] = self._no_market(symbol)
            elif isinstance(bulk, Missing):
                result[symbol] = bulk
            else:
                result[symbol] = _parse_ticker(symbol, bulk.get(listing.exchange_id))
        return result

    def _tickers_from_candles(
        self, symbols: list[str], as_of: datetime
    ) -> dict[str, Maybe[Ticker]]:
        """As the replay does: rolling 24h figures from the 1h candles closed by as_of."""
        return tickers_from_candles(
            self.candles(symbols, timeframe="1h", as_of=as_of, limit=24), as_of
        )

    async def _bulk(self, weight_key: str, method: str, what: str) -> dict[str, dict] | Missing:
        """A no-symbol endpoint answering a list of per-symbol objects, keyed by symbol.

        A failure of the whole call (after retries) is Missing for every coin; a ban or an
        unreachable exchange is raised."""
        api = FUTURES_API if weight_key.startswith("futures") else SPOT_API
        try:
            data = await self._call(api, method, {}, weight=WEIGHT[weight_key], what=what)
        except RequestError as error:
            if isinstance(error, Banned) or _unreachable(error):
                raise
            return Missing(f"Binance {what} unavailable: {error}")
        if not isinstance(data, list):
            return Missing(f"Binance {what}: the answer is not a list")
        return {
            item["symbol"]: item
            for item in data
            if isinstance(item, dict) and isinstance(item.get("symbol"), str)
        }

    # --- funding -----------------------------------------------------------------------------

    def _perps(self, symbols: Sequence[str]) -> tuple[dict[str, _Listing], dict[str, Missing]]:
        """The perpetual of each symbol, or why there is none."""
        info = self._exchange_info()
        perps: dict[str, _Listing] = {}
        missing: dict[str, Missing] = {}
        for symbol in unique(symbols):
            listing = info.futures.get(perpetual_symbol(symbol))
            if listing is None:
                missing[symbol] = Missing(f"no USDT-M perpetual for {symbol} on Binance")
            else:
                perps[symbol] = listing
        return perps, missing

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
            result[symbol] = _parse_funding(symbol, perp, premium.get(perp.exchange_id), intervals)
        return {symbol: result[symbol] for symbol in unique(symbols)}

    def _premium(self, as_of: datetime) -> dict[str, dict] | Missing:
        return _read_once(
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
        return _read_once(
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
                if isinstance(error, Banned) or _unreachable(error):
                    raise
                return Missing(f"funding intervals unknown (fundingInfo failed: {error})")
            intervals: dict[str, timedelta] = {}
            for item in data if isinstance(data, list) else []:
                hours = _float(item.get("fundingIntervalHours")) if isinstance(item, dict) else None
                if hours and hours > 0 and isinstance(item.get("symbol"), str):
                    intervals[item["symbol"]] = timedelta(hours=hours)
            return intervals

        # A failed read is remembered as long as an answer: funding then assumes 8 h, saying so.
        return self._run(fetch())

    def _funding_history(
        self, perps: dict[str, _Listing], as_of: datetime
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
                when = _int(item.get("fundingTime")) if isinstance(item, dict) else None
                rate = _float(item.get("fundingRate")) if isinstance(item, dict) else None
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
                return _open_interest_from_history(symbol, perp, history, as_of)
            now_call = self._call(
                FUTURES_API,
                "fapiPublicGetOpenInterest",
                {"symbol": perp.exchange_id},
                weight=WEIGHT["futures_open_interest"],
                what=f"open interest of {perp.symbol}",
            )
            current, history = await asyncio.gather(now_call, history_task)
            return _open_interest_now(symbol, perp, current, history, premium, as_of)

        result.update(self._run(self._each(perps, fetch, "open interest")))
        self._record_open_interest(perps, result)
        return {symbol: result[symbol] for symbol in unique(symbols)}

    def _record_open_interest(
        self, perps: dict[str, _Listing], result: dict[str, Maybe[OpenInterestNow]]
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
            points = [_oi_point(row) for row in rows if row["timestamp"] > after]
            return points or Missing(
                f"Binance has no open interest of {perp.symbol} in the {hours} h before "
                f"{show_time(as_of)}"
            )

        return self._run(self._each([symbol], fetch, "open interest history"))[symbol]

    async def _stats(
        self, perp: _Listing, endpoint: str, *, as_of: datetime, hours: int, period: str = "1h"
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
        cached = await _cache_get(self._derived, key, as_of)
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
                stamp = _int(item.get("timestamp"))
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
        await _cache_put(self._derived, key, rows, as_of)
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
                _float(row.get(name)) for name in ("longShortRatio", "longAccount", "shortAccount")
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
            buys = [_float(row.get("buyVol")) for row in rows]
            sells = [_float(row.get("sellVol")) for row in rows]
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

    # --- large trades ------------------------------------------------------------------------

    def large_trades(
        self,
        symbols: Sequence[str],
        *,
        as_of: datetime,
        min_usd: float,
        window: timedelta = HOUR,
    ) -> dict[str, Maybe[LargeTrades]]:
        """Large trades of the `window` of whole minutes that ends at the last minute boundary at
        or before as_of: the minutes are the buckets of each coin's trade tally (trade_tally),
        which lets a scan read only the trades since the previous scan read that coin."""
        require_aware(as_of)
        window_ms = window // timedelta(milliseconds=1)
        if window_ms <= 0 or window_ms % MINUTE_MS:
            raise ValueError(f"the trade window must be whole minutes, got {window}")
        symbols = unique(symbols)
        info = self._exchange_info()
        listings = {s: info.get(s) for s in symbols}
        result: dict[str, Maybe[LargeTrades]] = {
            s: self._no_market(s) for s, listing in listings.items() if listing is None
        }
        known = {s: listing for s, listing in listings.items() if listing is not None}
        end_ms = datetime_to_ms(as_of) // MINUTE_MS * MINUTE_MS
        start_ms = end_ms - window_ms

        async def fetch(symbol: str) -> Maybe[LargeTrades]:
            listing = known[symbol]
            return await self._large_trades(listing, symbol, start_ms, end_ms, min_usd)

        result.update(self._run(self._each(known, fetch, "trades")))
        return {symbol: result[symbol] for symbol in symbols}

    async def _large_trades(
        self, listing: _Listing, symbol: str, start_ms: int, end_ms: int, min_usd: float
    ) -> Maybe[LargeTrades]:
        """The window's large trades from the coin's tally, after reading the trades the tally
        lacks: those after its last trade id (or, for a new tally, from the window's start),
        paged by trade id until a trade after the window's end or the last trade there is."""
        key = f"tally:{listing.market_type}:{listing.exchange_id}:{min_usd:g}"
        end = ms_to_datetime(end_ms)
        tally = TradeTally.from_json(await _cache_get(self._tallies, key, end))
        if tally is None or tally.min_usd != min_usd or tally.from_ms > start_ms:
            tally = TradeTally(min_usd=min_usd, from_ms=start_ms, to_ms=start_ms)
        if not tally.covers(start_ms, end_ms):
            problem = await self._read_trades(listing, tally, end_ms)
            tally.forget_before(start_ms)
            # Kept also when the window was too busy to finish: the next scan goes on from there
            # instead of reading the same pages again, and catches up.
            await _cache_put(
                self._tallies, key, tally.to_json(), min(end, ms_to_datetime(tally.to_ms))
            )
            if problem is not None:
                return problem
        total, buy, sell, count = tally.window(start_ms, end_ms)
        return LargeTrades(
            symbol=symbol,
            window_start=ms_to_datetime(start_ms),
            window_end=end,
            min_usd=min_usd,
            buy_usd=buy,
            sell_usd=sell,
            total_usd=total,
            count=count,
        )

    async def _read_trades(
        self, listing: _Listing, tally: TradeTally, end_ms: int
    ) -> Missing | None:
        """Read every trade after the tally's frontier up to `end_ms` into it; Missing (and the
        tally untouched) when that takes more than AGG_TRADES_MAX_PAGES pages."""
        futures = listing.market_type == MarketType.FUTURES
        method = "fapiPublicGetAggTrades" if futures else "publicGetAggTrades"
        api = FUTURES_API if futures else SPOT_API
        weight = 20 if futures else WEIGHT["spot_agg_trades"]
        what = f"aggTrades of {listing.symbol}"
        params: dict[str, Any] = {"symbol": listing.exchange_id, "limit": AGG_TRADES_PAGE}
        if tally.last_id is not None:
            params["fromId"] = tally.last_id + 1
        else:
            params["startTime"] = tally.to_ms + 1
        tables: list[np.ndarray] = []
        for page in range(AGG_TRADES_MAX_PAGES):
            data = await self._call(
                api,
                method,
                dict(params),
                weight=weight,
                what=what,
                follow_up=page > 0,
                decoder=_AGG_TRADES_DECODER,
            )
            table = _trades_table(data, what)
            tables.append(table)
            if len(table) < AGG_TRADES_PAGE or table[-1, 2] > end_ms:
                break
            params = {
                "symbol": listing.exchange_id,
                "fromId": int(table[-1, 3]) + 1,
                "limit": AGG_TRADES_PAGE,
            }
        else:
            most = AGG_TRADES_MAX_PAGES * AGG_TRADES_PAGE
            since = show_time(ms_to_datetime(tally.to_ms))
            # Keep what was read: every trade before the last one's millisecond (trades of that
            # millisecond may go on in the next page).
            read = np.concatenate(tables)
            tally.add(read, up_to_ms=int(read[-1, 2]) - 1)
            return Missing(
                f"{listing.symbol} traded more than {most:,} aggregate trades since {since}; "
                "too many to read in one scan (the next scan goes on from where this one stopped)"
            )
        tally.add(np.concatenate(tables), up_to_ms=end_ms)
        return None

    # --- vendors -----------------------------------------------------------------------------

    def fundamentals(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Fundamentals]]:
        require_aware(as_of)
        return self._run(
            self.coingecko.fundamentals(bases_of(symbols), as_of=as_of, now=self.now())
        )

    def trending(self, *, as_of: datetime) -> Maybe[list[TrendingCoin]]:
        require_aware(as_of)
        return self._run(self.coingecko.trending(as_of=as_of, now=self.now()))

    def social(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Social]]:
        require_aware(as_of)
        return self._run(self.lunarcrush.social(bases_of(symbols), as_of=as_of, now=self.now()))

    # --- reporting ---------------------------------------------------------------------------

    def unmapped_coins(self) -> list[str]:
        """Coins of the last vendor refreshes that are not on a vendor or are ambiguous there."""
        lines: list[str] = []
        for client in (self.coingecko, self.lunarcrush):
            if client.last_map is not None:
                lines += client.last_map.problems()
        return lines


# --- helpers ------------------------------------------------------------------------------------


class UnknownSymbol(ValueError):
    """The exchange does not list the symbol."""


@dataclass(frozen=True)
class Gap:
    """Candles absent between two stored ones: `after` is the last open before the hole."""

    after: datetime
    before: datetime
    missing: int


@dataclass(frozen=True)
class HistoryResult:
    """What `fetch_history` did for one symbol; `first`/`last` are the stored range's open times
    within the requested window."""

    symbol: str
    timeframe: str
    fetched: int
    inserted: int
    requests: int
    first: datetime | None
    last: datetime | None
    gaps: list[Gap]

    @property
    def missing_candles(self) -> int:
        return sum(gap.missing for gap in self.gaps)


def _stored_open_times(row: Market, timeframe: str, first_ms: int, last_ms: int) -> np.ndarray:
    if last_ms < first_ms:
        return np.empty(0, dtype=np.int64)
    times = Candle.objects.filter(
        market=row,
        timeframe=timeframe,
        series=PriceSeries.TRADES,
        open_time__gte=ms_to_datetime(first_ms),
        open_time__lte=ms_to_datetime(last_ms),
    ).order_by("open_time")
    return np.array(
        [datetime_to_ms(t) for t in times.values_list("open_time", flat=True)], np.int64
    )


def _missing_ranges(
    stored: np.ndarray, first_ms: int, last_ms: int, step_ms: int
) -> list[tuple[int, int]]:
    """Inclusive [start, end] open-time ranges in [first_ms, last_ms] without stored candles."""
    if last_ms < first_ms:
        return []
    if not len(stored):
        return [(first_ms, last_ms)]
    ranges = []
    if stored[0] > first_ms:
        ranges.append((first_ms, int(stored[0]) - step_ms))
    holes = np.flatnonzero(np.diff(stored) > step_ms)
    ranges += [(int(stored[i]) + step_ms, int(stored[i + 1]) - step_ms) for i in holes]
    if stored[-1] < last_ms:
        ranges.append((int(stored[-1]) + step_ms, last_ms))
    return ranges


def _gaps(stored: np.ndarray, step_ms: int) -> list[Gap]:
    holes = np.flatnonzero(np.diff(stored) > step_ms)
    return [
        Gap(
            after=ms_to_datetime(int(stored[i])),
            before=ms_to_datetime(int(stored[i + 1])),
            missing=int((stored[i + 1] - stored[i]) // step_ms - 1),
        )
        for i in holes
    ]


def _fetch_plan(
    series: CandleSeries, row: Market, *, limit: int, last_open: int, step_ms: int
) -> tuple[int | None, int] | None:
    """What to ask Binance for so the store holds the last `limit` candles up to `last_open`:
    None (it does), (None, limit) (the whole window, newest first) or (start, count) (the tail
    after the newest stored candle)."""
    if len(series):
        newest = int(series.open_time[-1])
        if newest >= last_open:
            if len(series) >= limit:
                return None
            # Fewer than asked: complete when the history starts there (listing known).
            listed = row.listed_at
            if listed is not None and int(series.open_time[0]) <= datetime_to_ms(listed):
                return None
            return (None, limit)
        behind = (last_open - newest) // step_ms
        if behind < limit and len(series) + behind >= limit:
            return (newest + step_ms, behind)
    return (None, limit)


def _merged(
    stored: CandleSeries, parsed: ParsedFile, symbol: str, timeframe: str, limit: int
) -> CandleSeries:
    """The last `limit` candles of the stored series and the fetched (checked) ones; where both
    have an open time, the stored candle is kept, as the store keeps it."""
    names = ("open", "high", "low", "close", "volume", "taker_buy_volume")
    times = np.concatenate([stored.open_time, parsed.times_ms.astype(np.int64)])
    columns = [
        np.concatenate([getattr(stored, name), parsed.values[name].astype(np.float64)])
        for name in names
    ]
    # np.unique keeps the first index of each time: the stored row, as it comes first.
    _, first = np.unique(times, return_index=True)
    keep = first[-limit:]
    return CandleSeries(symbol, timeframe, times[keep], *(column[keep] for column in columns))


def _parsed(table: np.ndarray, listing: _Listing, timeframe: str) -> ParsedFile | Missing:
    """Fetched klines checked by the importer's rules (prices > 0, high >= low, on the grid...)."""
    settle = listing.symbol.partition(":")[2]
    layout = FileLayout(
        kind=ImportKind.CANDLES,
        base=listing.base,
        quote=listing.quote,
        settle=settle,
        timeframe=timeframe,
        series=PriceSeries.TRADES,
        file_format="json",
        compressed=False,
    )
    raw = RawTable(
        times_ms=table[:, 0].astype(np.int64),
        values={name: table[:, index] for index, name in enumerate(CANDLE_FIELDS[:5], start=1)},
    )
    taker = table[:, 6]
    raw.values["taker_buy_volume"] = np.where(np.isnan(taker), 0.0, taker)
    if np.isnan(taker).any():
        raw.nulls["taker_buy_volume"] = np.isnan(taker)
    try:
        return validate_table(
            Path(f"Binance {timeframe} klines of {listing.symbol}"), "", layout, raw
        )
    except ImportFileError as error:
        return Missing(str(error))


def _parse_ticker(symbol: str, item: dict | None) -> Maybe[Ticker]:
    if item is None:
        return Missing(f"Binance's 24h tickers do not include {symbol}")
    values = {
        name: _float(item.get(name))
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
    close_time = _int(item.get("closeTime"))
    open_time = _int(item.get("openTime"))
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


def _parse_funding(
    symbol: str,
    perp: _Listing,
    item: dict | None,
    intervals: dict[str, timedelta] | Missing,
) -> Maybe[Funding]:
    if item is None:
        return Missing(f"Binance's premium index does not include {perp.symbol}")
    rate = _float(item.get("lastFundingRate"))
    next_time = _int(item.get("nextFundingTime"))
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


def _oi_point(row: dict[str, Any]) -> OpenInterestPoint:
    amount = _float(row.get("sumOpenInterest"))
    value = _float(row.get("sumOpenInterestValue"))
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
    return _oi_point(older[-1]).open_interest


def _change_pct(now: float, before: Maybe[float]) -> Maybe[float]:
    if isinstance(before, Missing):
        return before
    if before <= 0:
        return Missing("open interest 24 h earlier was 0, so no percentage change")
    return (now - before) / before * 100


def _open_interest_from_history(
    symbol: str, perp: _Listing, history: list[dict[str, Any]], as_of: datetime
) -> Maybe[OpenInterestNow]:
    latest = _oi_point(history[-1])
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


def _open_interest_now(
    symbol: str,
    perp: _Listing,
    current: Any,
    history: Maybe[list[dict[str, Any]]],
    premium: dict[str, dict] | Missing | None,
    as_of: datetime,
) -> Maybe[OpenInterestNow]:
    if not isinstance(current, dict):
        raise BadResponse(f"open interest of {perp.symbol} is not an object")
    if current.get("symbol") not in (None, perp.exchange_id):
        return Missing(
            f"asked for the open interest of {perp.exchange_id}, Binance answered "
            f"{current.get('symbol')}"
        )
    amount = _float(current.get("openInterest"))
    stamp = _int(current.get("time"))
    if amount is None or amount < 0 or stamp is None:
        return Missing(f"the open interest of {perp.symbol} is not a valid number")
    timestamp = min(ms_to_datetime(stamp), as_of)
    mark = None
    if isinstance(premium, dict) and isinstance(premium.get(perp.exchange_id), dict):
        mark = _float(premium[perp.exchange_id].get("markPrice"))
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


async def _cache_get(cache: TimedCache | RedisTimedCache, key: str, as_of: datetime) -> Any:
    if isinstance(cache, RedisTimedCache):
        try:
            return await cache.aget(key, as_of=as_of)
        except Exception:  # a cache outage is a miss, never a failed scan
            logger.debug("derived-data cache unavailable", exc_info=True)
            return None
    return cache.get(key, as_of=as_of)


async def _cache_put(
    cache: TimedCache | RedisTimedCache, key: str, value: Any, as_of: datetime
) -> None:
    if isinstance(cache, RedisTimedCache):
        try:
            await cache.aput(key, value, data_time=as_of)
        except Exception:
            logger.debug("derived-data cache unavailable", exc_info=True)
        return
    cache.put(key, value, data_time=as_of)
