"""One source's way to Binance: `BinanceConnection` holds a source's runtime, request engines
and caches, and makes its calls. `BinanceSource` is one.

How a call runs. The interface is synchronous and batch-oriented; inside, every request of a batch
runs concurrently on the runtime's background event loop (see `runtime`: shared by the sources of
the same configuration and kept between calls). Database reads and writes stay in the calling
thread, so they see the caller's transaction.

Every request goes through the request engine of its API (`engine_for("binance-spot")`,
`"binance-futures"`) with the endpoint's real weight (Binance's docs, not ccxt's outdated table);
the /futures/data endpoints (weight 0) through `"binance-futures-data"`, which counts each
endpoint's requests against its own limit of 1,000 per 5 minutes. ccxt's own rate limiter is off.

What fails where. A problem of one coin (unknown symbol, empty or malformed answer, NaN or negative
prices, another symbol echoed back, retries exhausted) is that coin's `Missing(reason)`; the batch
goes on (`_each`). A ban, or an exchange that cannot be reached at all, is a `SourceError`
(`_run`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import ccxt
import msgspec
from django.conf import settings

from httpengine.calls import BadResponse, Banned, Reply, RequestError
from httpengine.engine import RequestEngine
from httpengine.registry import engine_for, shared_redis_url
from market import candle_store
from market.models import Market
from market.sources.base import SourceError
from market.sources.binance.decoding import (
    WEIGHT,
    ExchangeInfo,
    Listing,
    decoded,
    parse_exchange_info,
    to_int,
)
from market.sources.binance.runtime import (
    DECODER,
    RESPONSE,
    Unread,
    acquire_runtime,
    release_runtime,
    to_engine_error,
    unreachable,
)
from market.sources.cache import RedisTimedCache, TimedCache, process_cache
from market.sources.coingecko import header
from market.times import require_aware, show_time
from market.values import Maybe, Missing

logger = logging.getLogger(__name__)

T = TypeVar("T")

SPOT_API = "binance-spot"
FUTURES_API = "binance-futures"
# /futures/data: weight 0, but 1,000 requests per 5 minutes per endpoint and IP.
FUTURES_DATA_API = "binance-futures-data"
# "Now" endpoints answer for an as_of at most this far behind the clock.
LIVE_TOLERANCE = timedelta(minutes=5)
EXCHANGE_INFO_SECONDS = 600.0
# How long a coin's trade tally is kept (see trade_tally): past an hour it holds nothing a
# one-hour whale window can use.
TRADE_TALLY_SECONDS = 3600.0


_read_locks: dict[tuple[int, str], threading.Lock] = {}
_read_locks_guard = threading.Lock()


def read_once(cache: TimedCache, key: str, as_of: datetime, read: Callable[[], T]) -> T:
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


class BinanceConnection:
    """A source's runtime, request engines and caches, and the calls it makes through them.

    `clock` replaces the wall clock as `now()`; `engines` replaces the process's request engines
    (by name); the URLs default to the settings. `name` (the source's name in a SourceError) is
    the subclass's.
    """

    name: str

    def __init__(
        self,
        *,
        exchange: str | None = None,
        clock: Callable[[], datetime] | None = None,
        engines: dict[str, RequestEngine] | None = None,
        spot_url: str | None = None,
        futures_url: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.exchange = exchange or settings.EXCHANGE
        self._clock = clock
        self._engines = dict(engines or {})
        self.timeout = float(timeout or settings.REQUEST_TIMEOUT_SECONDS)
        self._runtime = acquire_runtime(
            spot_url=(spot_url or settings.BINANCE_SPOT_URL).rstrip("/"),
            futures_url=(futures_url or settings.BINANCE_FUTURES_URL).rstrip("/"),
            timeout=self.timeout,
            connections=2 * int(settings.PARALLEL_MAX_CONCURRENT) + 10,
        )
        self._closed = False
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
            release_runtime(self._runtime)

    def _run(
        self, coroutine: Coroutine[Any, Any, T], work: Callable[[float], object] | None = None
    ) -> T:
        """Run a coroutine on the source's loop; whole-source failures become SourceError.
        `work(timeout)` runs in the calling thread meanwhile (see `Runtime.run`)."""
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
            if unreachable(error):
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
            RESPONSE.set(None)
            DECODER.set(decoder)
            function = getattr(runtime.exchange(), method)
            try:
                data = await function(params)
            except (ccxt.BaseError, aiohttp.ClientError, TimeoutError) as error:
                raise to_engine_error(error, RESPONSE.get(), what) from error
            response = RESPONSE.get() or {}
            used = (
                to_int(header(response.get("headers"), "x-mbx-used-weight-1m"))
                if reads_weight
                else None
            )
            if isinstance(data, str):
                raise BadResponse(f"{what}: body is not JSON")
            if isinstance(data, Unread):
                return Reply(data.text, used_weight=used, finish=read)
            return Reply(data, used_weight=used)

        def read(text: str) -> Any:
            try:
                return decoded(text, decoder)
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
                isinstance(result, RequestError) and unreachable(result)
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

    def _exchange_info(self) -> ExchangeInfo:
        # Metadata, not market data: cached by the wall clock whatever the source's clock says.
        return read_once(
            self._metadata, "exchange_info", datetime.now(UTC), self._read_exchange_info
        )

    def _read_exchange_info(self) -> ExchangeInfo:
        async def fetch() -> ExchangeInfo:
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
            return ExchangeInfo(
                parse_exchange_info(spot, futures=False),
                parse_exchange_info(futures, futures=True),
            )

        return self._run(fetch())

    def _market_rows(self, listings: Sequence[Listing]) -> dict[str, Market]:
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

    async def _bulk(self, weight_key: str, method: str, what: str) -> dict[str, dict] | Missing:
        """A no-symbol endpoint answering a list of per-symbol objects, keyed by symbol.

        A failure of the whole call (after retries) is Missing for every coin; a ban or an
        unreachable exchange is raised."""
        api = FUTURES_API if weight_key.startswith("futures") else SPOT_API
        try:
            data = await self._call(api, method, {}, weight=WEIGHT[weight_key], what=what)
        except RequestError as error:
            if isinstance(error, Banned) or unreachable(error):
                raise
            return Missing(f"Binance {what} unavailable: {error}")
        if not isinstance(data, list):
            return Missing(f"Binance {what}: the answer is not a list")
        return {
            item["symbol"]: item
            for item in data
            if isinstance(item, dict) and isinstance(item.get("symbol"), str)
        }


async def cache_get(cache: TimedCache | RedisTimedCache, key: str, as_of: datetime) -> Any:
    """`cache[key]` fit for as_of, else None; a Redis cache that cannot be reached is a miss."""
    if isinstance(cache, RedisTimedCache):
        try:
            return await cache.aget(key, as_of=as_of)
        except Exception:  # a cache outage is a miss, never a failed scan
            logger.debug("derived-data cache unavailable", exc_info=True)
            return None
    return cache.get(key, as_of=as_of)


async def cache_put(
    cache: TimedCache | RedisTimedCache, key: str, value: Any, as_of: datetime
) -> None:
    """Keep `value` as `cache[key]` for data time as_of; a Redis cache that cannot be reached
    keeps nothing."""
    if isinstance(cache, RedisTimedCache):
        try:
            await cache.aput(key, value, data_time=as_of)
        except Exception:
            logger.debug("derived-data cache unavailable", exc_info=True)
        return
    cache.put(key, value, data_time=as_of)
