"""The process's machinery under the Binance source: ccxt's client on our hosts, its failures as
the request engine's errors, and the background event loops the calls run on.

ccxt's failures are mapped, by the HTTP status each call captured (`_Binance.on_rest_response`
keeps it in the context variable RESPONSE, so concurrent calls never mix them up), to the engine's
RateLimited (429, after Retry-After), Banned (418), TransientError (timeouts, 5xx, network;
retried) and PermanentError/BadResponse (4xx, bodies that are not what the API promises); a call
that got no HTTP answer at all is `_Unreachable`, which `unreachable` finds behind the engine's
retries.

A `Runtime` is one thread running an event loop, one pooled aiohttp session and one ccxt client.
Sources of the same configuration share one (`acquire_runtime`); released by the last of them, it
stays warm for the next source (`release_runtime`, `IDLE_RUNTIMES`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import msgspec
import orjson
import uvloop

from httpengine.calls import BadResponse, Banned, PermanentError, RateLimited, TransientError
from httpengine.registry import close_loop_clients
from market.sources.coingecko import header

T = TypeVar("T")

# The status, URL and headers of the response the call under way received (see
# `_Binance.on_rest_response`).
RESPONSE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "binance_response", default=None
)
# The typed decoder of the call under way (see `_Binance.on_json_response`), if it has one.
DECODER: contextvars.ContextVar[msgspec.json.Decoder | None] = contextvars.ContextVar(
    "binance_decoder", default=None
)


@dataclass(frozen=True)
class Unread:
    """A 2xx body of a call with a typed decoder, handed back by ccxt unparsed."""

    text: str


class _Binance(ccxt_async.binance):
    """ccxt's Binance, keeping each response's status and headers for the call that made it,
    handing back unparsed the 2xx bodies of calls that name a typed decoder
    (`BinanceConnection._call` reads them), and refusing 2xx bodies that are not JSON (ccxt
    would hand back the raw text)."""

    def on_json_response(self, response_body: str) -> Any:
        response = RESPONSE.get()
        if DECODER.get() is not None and response and 200 <= response["status"] < 300:
            return Unread(response_body)  # read by the engine, after the slot (connection._call)
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
        RESPONSE.set({"status": code, "url": url, "headers": dict(response_headers or {})})
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


def to_engine_error(error: Exception, response: dict[str, Any] | None, what: str) -> Exception:
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


def unreachable(error: BaseException) -> bool:
    """True for an engine error whose cause (after the engine's retries) was no answer at all."""
    seen = error
    while seen is not None:
        if isinstance(seen, _Unreachable):
            return True
        seen = seen.__cause__
    return False


class Runtime:
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


_runtimes: dict[tuple, Runtime] = {}
_runtimes_lock = threading.Lock()
# Runtimes no source uses any more, kept warm (loop, HTTP connections, ccxt client, Redis
# clients) for the next source with the same settings: a scan's batches each build and close a
# source, and rebuilding all of that per batch cost more than the batch's own requests. The
# oldest idle ones beyond this many are closed.
IDLE_RUNTIMES = 2
_idle: list[Runtime] = []


def acquire_runtime(**config: Any) -> Runtime:
    key = (os.getpid(), *sorted(config.items()))
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is None or not runtime.thread.is_alive():
            runtime = Runtime(**config)
            _runtimes[key] = runtime
        if runtime in _idle:
            _idle.remove(runtime)
        runtime.users += 1
        return runtime


def release_runtime(runtime: Runtime) -> None:
    """One source fewer uses `runtime`; unused, it stays warm among the IDLE_RUNTIMES newest."""
    retired: list[Runtime] = []
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


def _forget_locked(retired: list[Runtime]) -> None:
    """Drop `retired` from the registry (under _runtimes_lock): no source can acquire them."""
    for key, value in list(_runtimes.items()):
        if value in retired:
            del _runtimes[key]
