"""The request engine every live market-data source sends its requests through.

One `RequestEngine` per upstream API (`binance-spot`, `binance-futures`, `coingecko`,
`lunarcrush`) keeps the scanner inside what the API allows, for every process and host at once:

- a **budget** of request weight per calendar minute, shared through Redis (`RedisBudget`) or kept
  in-process (`LocalBudget`); the server's own count (`X-MBX-USED-WEIGHT-1M`) corrects it;
- a **ban registry**: after an HTTP 418 nobody calls the API again before the ban ends (a
  request checks it before it waits and again right before it leaves);
- an **adaptive concurrency limit**: halved when more than 5 % of the last results were errors,
  raised step by step when fewer than 2 % were;
- **retries**: transient failures (timeouts, 5xx, network) with exponential backoff and full
  jitter, 429 after its Retry-After, permanent failures never.

A source wraps each request in a `call` that returns a `Reply` and maps its library's failures to
`TransientError`, `RateLimited`, `Banned`, `PermanentError` or `BadResponse`; the engine does the
rest: ``await engine.run(call, weight=2, what="klines BTC/USDT 1h")``.

Engines are per process (`engine_for(name)`) and can be used from successive event loops and
threads: they hold no loop-bound object beyond the futures of one wait and per-loop Redis clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

ENGINE_NAMES = (
    "binance-spot",
    "binance-futures",
    "binance-futures-data",
    "coingecko",
    "lunarcrush",
)
# Binance's /futures/data endpoints weigh 0 but each allows an IP 1,000 requests per 5 minutes.
FUTURES_DATA_WINDOW_SECONDS = 300.0

BUDGET_PREFIX = "cryptosatx:budget"
BANS_KEY = "cryptosatx:bans"


# --- what a call returns and raises ------------------------------------------------------------


@dataclass(frozen=True)
class Reply(Generic[T]):
    """What one request gave: its data and the weight the server says is used.

    `finish`, when given, turns `data` (a body not read yet) into the caller's answer once the
    request's concurrency slot is given back (see `RequestEngine.run`); it raises BadResponse
    when the body is not what the API promises."""

    data: Any
    used_weight: int | None = None  # the X-MBX-USED-WEIGHT-1M the server answered, if any
    finish: Callable[[Any], T] | None = None


class RequestError(Exception):
    """Base of every failure the engine raises or understands."""


class RateLimited(RequestError):
    """HTTP 429: too many requests; wait `retry_after` seconds before the next one."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = max(float(retry_after), 0.0)
        super().__init__(message or f"rate limited (HTTP 429), retry after {self.retry_after:g} s")


class Banned(RequestError):
    """HTTP 418: the IP is banned until `until` (epoch seconds)."""

    def __init__(self, until: float, message: str | None = None) -> None:
        self.until = float(until)
        super().__init__(message or f"banned (HTTP 418) until {show_epoch(self.until)}")


class _BannedWhileWaiting(Exception):
    """A ban recorded while a request waited for its budget or slot: it was not sent."""


class TransientError(RequestError):
    """A failure that may pass: timeout, 5xx, refused or dropped connection."""


class PermanentError(RequestError):
    """A failure a retry cannot fix: 4xx other than 418/429, unknown symbol."""


class BadResponse(PermanentError):
    """The body is not what the API promises (not JSON, wrong shape)."""


def show_epoch(moment: float) -> str:
    """Epoch seconds as log lines show them: 2024-01-01 05:00:07 UTC."""
    return f"{datetime.fromtimestamp(moment, tz=UTC):%Y-%m-%d %H:%M:%S} UTC"


# --- per-loop async Redis clients --------------------------------------------------------------


class _LoopClients:
    """One `redis.asyncio` client per running event loop (their connections are loop-bound)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> Any:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                # Forget the clients of loops that are gone (successive asyncio.run calls).
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]
                client = redis.asyncio.Redis.from_url(self.url)
                self._clients[loop] = client
            return client

    async def aclose(self) -> None:
        """Close the client of the running loop, if any."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


# --- budget ------------------------------------------------------------------------------------


class Budget(Protocol):
    async def acquire(self, name: str, weight: int, limit: int) -> int: ...

    async def sync_used(self, name: str, used_weight: int) -> None: ...


@dataclass
class _Window:
    """The fixed window (aligned to the wall clock) that an instant falls in."""

    index: int
    ends_at: float


class _FixedWindows:
    """Shared logic of the budgets: window arithmetic and waiting for the next window."""

    def __init__(
        self,
        *,
        window_seconds: float,
        now: Clock | None,
        sleep: Sleep | None,
        jitter_seconds: float,
        rng: random.Random | None,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.window_seconds = float(window_seconds)
        self.now = now or time.time
        self.sleep = sleep or asyncio.sleep
        self.jitter_seconds = max(float(jitter_seconds), 0.0)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def window(self, moment: float | None = None) -> _Window:
        moment = self.now() if moment is None else moment
        index = math.floor(moment / self.window_seconds)
        return _Window(index, (index + 1) * self.window_seconds)

    @property
    def expire_ms(self) -> int:
        return max(int(2 * self.window_seconds * 1000), 1000)

    async def wait_for_next_window(self, window: _Window) -> None:
        delay = max(window.ends_at - self.now(), 0.0)
        await self.sleep(delay + self.rng.uniform(0, self.jitter_seconds))

    async def acquire_loop(
        self, take: Callable[[_Window], Awaitable[bool]], name: str, weight: int, limit: int
    ) -> int:
        if weight < 0 or limit < 1:
            raise ValueError(f"bad budget request: weight {weight}, limit {limit}")
        while True:
            window = self.window()
            if await take(window):
                return window.index
            logger.debug(
                "budget %s spent (%s per %gs window): waiting %.2f s",
                name,
                limit,
                self.window_seconds,
                window.ends_at - self.now(),
            )
            await self.wait_for_next_window(window)


class LocalBudget(_FixedWindows):
    """The weight budget of one process: what one process may send per window (minute).

    Safe across threads and event loops; a weight larger than the whole limit is granted alone
    in an untouched window, so it cannot wait forever.
    """

    def __init__(
        self,
        *,
        window_seconds: float = 60.0,
        now: Clock | None = None,
        sleep: Sleep | None = None,
        jitter_seconds: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            window_seconds=window_seconds,
            now=now,
            sleep=sleep,
            jitter_seconds=jitter_seconds,
            rng=rng,
        )
        self._used: dict[str, tuple[int, int]] = {}  # name -> (window index, weight used)
        self._lock = threading.Lock()

    def _take(self, name: str, window: _Window, weight: int, limit: int) -> bool:
        with self._lock:
            index, used = self._used.get(name, (window.index, 0))
            if index != window.index:
                used = 0
            if used + weight <= limit or (used == 0 and weight > limit):
                self._used[name] = (window.index, used + weight)
                return True
            return False

    async def acquire(self, name: str, weight: int, limit: int) -> int:
        """Take `weight` from this window's budget, waiting for the next window while it is spent.

        Returns the index of the window the weight was taken from.
        """

        async def take(window: _Window) -> bool:
            return self._take(name, window, weight, limit)

        return await self.acquire_loop(take, name, weight, limit)

    async def sync_used(self, name: str, used_weight: int) -> None:
        """Raise this window's counter to what the server says is used (never lower it)."""
        window = self.window()
        with self._lock:
            index, used = self._used.get(name, (window.index, 0))
            if index != window.index:
                used = 0
            self._used[name] = (window.index, max(used, int(used_weight)))

    def used(self, name: str) -> int:
        """Weight taken in the current window."""
        window = self.window()
        with self._lock:
            index, used = self._used.get(name, (window.index, 0))
        return used if index == window.index else 0


# KEYS[1] the window's counter; ARGV weight, limit, expiry in ms. Returns {granted, used}.
_ACQUIRE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local weight = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if used + weight <= limit or (used == 0 and weight > limit) then
  used = redis.call('INCRBY', KEYS[1], weight)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, used}
end
return {0, used}
"""

# KEYS[1] the window's counter; ARGV the server's used weight, expiry in ms. Returns the counter.
_SYNC_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local server = tonumber(ARGV[1])
if server > used then
  redis.call('SET', KEYS[1], server, 'PX', ARGV[2])
  return server
end
return used
"""


class RedisBudget(_FixedWindows):
    """The weight budget shared by every process and host through one Redis.

    One counter per name and window (`{prefix}:{name}:{window index}`), checked and raised by one
    Lua script so two processes can never both take the last weight; counters expire after two
    windows. Windows are aligned to the wall clock (Binance counts per calendar minute), so hosts
    sharing a budget need synchronised clocks (NTP).

    When Redis cannot be reached the budget logs a warning (at most once a minute) and falls back
    to a `LocalBudget`, so a Redis outage slows nothing down but is no longer shared.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = BUDGET_PREFIX,
        window_seconds: float = 60.0,
        now: Clock | None = None,
        sleep: Sleep | None = None,
        jitter_seconds: float = 0.25,
        rng: random.Random | None = None,
        fallback_on_error: bool = True,
    ) -> None:
        super().__init__(
            window_seconds=window_seconds,
            now=now,
            sleep=sleep,
            jitter_seconds=jitter_seconds,
            rng=rng,
        )
        self.url = url
        self.prefix = prefix
        self._clients = _LoopClients(url)
        self._fallback = (
            LocalBudget(
                window_seconds=window_seconds,
                now=now,
                sleep=sleep,
                jitter_seconds=jitter_seconds,
                rng=rng,
            )
            if fallback_on_error
            else None
        )
        self._warned_at = -math.inf
        # name -> (window index, the highest value of its shared counter this process has seen).
        # The counter never falls within a window, so a server count at or below it changes
        # nothing: `sync_used` then skips its round trip (most answers: the server counts what
        # this process already took).
        self._seen: dict[str, tuple[int, int]] = {}
        self._seen_lock = threading.Lock()

    def key(self, name: str, window_index: int) -> str:
        return f"{self.prefix}:{name}:{window_index}"

    def _saw(self, name: str, window_index: int, counter: int) -> None:
        with self._seen_lock:
            index, seen = self._seen.get(name, (window_index, 0))
            if index != window_index or counter > seen:
                self._seen[name] = (window_index, counter)

    def _already_seen(self, name: str, window_index: int, counter: int) -> bool:
        with self._seen_lock:
            index, seen = self._seen.get(name, (None, 0))
        return index == window_index and counter <= seen

    def _redis_failed(self, error: Exception) -> None:
        if self._fallback is None:
            raise error
        moment = time.monotonic()
        if moment - self._warned_at >= 60:
            self._warned_at = moment
            logger.warning(
                "request budget: Redis at %s failed (%s); using an in-process budget",
                _redact(self.url),
                error,
            )

    async def acquire(self, name: str, weight: int, limit: int) -> int:
        """Take `weight` from this window's shared budget, waiting for the next window while it
        is spent. Returns the index of the window the weight was taken from."""
        import redis

        async def take(window: _Window) -> bool:
            client = self._clients.get()
            result = await client.eval(
                _ACQUIRE_LUA, 1, self.key(name, window.index), weight, limit, self.expire_ms
            )
            self._saw(name, window.index, int(result[1]))
            return bool(int(result[0]))

        try:
            return await self.acquire_loop(take, name, weight, limit)
        except (redis.RedisError, OSError) as error:
            self._redis_failed(error)
            assert self._fallback is not None
            return await self._fallback.acquire(name, weight, limit)

    async def sync_used(self, name: str, used_weight: int) -> None:
        """Raise this window's shared counter to the server's count when that is higher: the
        server also counts the other clients on the same IP."""
        import redis

        window = self.window()
        if self._already_seen(name, window.index, int(used_weight)):
            return
        try:
            client = self._clients.get()
            counter = await client.eval(
                _SYNC_LUA, 1, self.key(name, window.index), int(used_weight), self.expire_ms
            )
            self._saw(name, window.index, int(counter))
        except (redis.RedisError, OSError) as error:
            self._redis_failed(error)
            assert self._fallback is not None
            await self._fallback.sync_used(name, used_weight)

    async def used(self, name: str) -> int:
        """Weight taken in the current window."""
        client = self._clients.get()
        value = await client.get(self.key(name, self.window().index))
        return int(value or 0)

    async def aclose(self) -> None:
        await self._clients.aclose()


def _redact(url: str) -> str:
    """A Redis URL without its password, for log lines."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


# --- bans --------------------------------------------------------------------------------------


class BanRegistry(Protocol):
    async def ban(self, name: str, until: float, reason: str) -> float | None: ...

    async def banned_until(self, name: str) -> float | None: ...

    def active_bans(self) -> dict[str, float]: ...


class LocalBanRegistry:
    """Bans known to this process only."""

    def __init__(self, *, now: Clock | None = None) -> None:
        self.now = now or time.time
        self._bans: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    async def ban(self, name: str, until: float, reason: str) -> float | None:
        """Record a ban of `name` until `until` (never shortening a longer one); returns the end
        of the ban that was in force before, if any."""
        with self._lock:
            before = self._bans.get(name)
            previous = before[0] if before and before[0] > self.now() else None
            if previous is None or until > previous:
                self._bans[name] = (float(until), reason)
            return previous

    async def banned_until(self, name: str) -> float | None:
        """When the ban of `name` ends, or None when it is not banned."""
        with self._lock:
            entry = self._bans.get(name)
        if entry is None or entry[0] <= self.now():
            return None
        return entry[0]

    def active_ban_details(self) -> dict[str, dict[str, Any]]:
        """{name: {"until": epoch seconds, "reason": text}} of the bans in force."""
        moment = self.now()
        with self._lock:
            return {
                name: {"until": until, "reason": reason}
                for name, (until, reason) in self._bans.items()
                if until > moment
            }

    def active_bans(self) -> dict[str, float]:
        """{name: until} of the bans in force (sync, for the health endpoint)."""
        return {name: ban["until"] for name, ban in self.active_ban_details().items()}


class RedisBanRegistry:
    """Bans shared by every process through one Redis hash (`{key}`: name -> JSON until/reason).

    `banned_until` remembers an answer for `cache_seconds` so a busy engine does not ask Redis
    before every request; a ban recorded by another process is seen within that time.
    """

    def __init__(
        self,
        url: str,
        *,
        key: str = BANS_KEY,
        now: Clock | None = None,
        cache_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.key = key
        self.now = now or time.time
        self.cache_seconds = cache_seconds
        self._clients = _LoopClients(url)
        self._sync_client: Any = None
        self._cache: dict[str, tuple[float, float | None]] = {}  # name -> (asked at, until)
        self._fallback = LocalBanRegistry(now=self.now)
        self._lock = threading.Lock()

    def _sync(self) -> Any:
        import redis

        with self._lock:
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(self.url)
            return self._sync_client

    @staticmethod
    def _decode(raw: Any) -> tuple[float, str] | None:
        try:
            entry = json.loads(raw)
            return float(entry["until"]), str(entry.get("reason", ""))
        except (TypeError, ValueError, KeyError):
            return None

    async def ban(self, name: str, until: float, reason: str) -> float | None:
        """Record a ban of `name` until `until` (never shortening a longer one); returns the end
        of the ban that was in force before, if any."""
        import redis

        previous = await self._fallback.ban(name, until, reason)
        try:
            client = self._clients.get()
            raw = await client.hget(self.key, name)
            entry = self._decode(raw) if raw is not None else None
            if entry is not None and entry[0] > self.now():
                previous = max(previous or entry[0], entry[0])
            if previous is None or until > previous:
                value = json.dumps({"until": float(until), "reason": reason})
                await client.hset(self.key, name, value)
        except (redis.RedisError, OSError) as error:
            logger.warning("ban registry: Redis failed (%s); the ban is kept in-process", error)
        with self._lock:
            self._cache.pop(name, None)
        return previous

    async def banned_until(self, name: str) -> float | None:
        """When the ban of `name` ends, or None when it is not banned."""
        import redis

        moment = self.now()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and 0 <= moment - cached[0] < self.cache_seconds:
            until = cached[1]
        else:
            try:
                raw = await self._clients.get().hget(self.key, name)
            except (redis.RedisError, OSError):
                return await self._fallback.banned_until(name)
            entry = self._decode(raw) if raw is not None else None
            until = entry[0] if entry is not None else None
            with self._lock:
                self._cache[name] = (moment, until)
        local = await self._fallback.banned_until(name)
        candidates = [t for t in (until, local) if t is not None and t > moment]
        return max(candidates) if candidates else None

    def active_ban_details(self) -> dict[str, dict[str, Any]]:
        """{name: {"until": epoch seconds, "reason": text}} of the bans in force (sync)."""
        moment = self.now()
        details = self._fallback.active_ban_details()
        raw_bans = self._sync().hgetall(self.key)
        for raw_name, raw in raw_bans.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            entry = self._decode(raw)
            if entry is None or entry[0] <= moment:
                continue
            if name not in details or details[name]["until"] < entry[0]:
                details[name] = {"until": entry[0], "reason": entry[1]}
        return details

    def active_bans(self) -> dict[str, float]:
        """{name: until} of the bans in force (sync, for the health endpoint)."""
        return {name: ban["until"] for name, ban in self.active_ban_details().items()}

    def clear(self, name: str) -> None:
        """Forget the ban of `name` (an operator's override)."""
        self._sync().hdel(self.key, name)
        with self._lock:
            self._cache.pop(name, None)
        self._fallback._bans.pop(name, None)

    async def aclose(self) -> None:
        await self._clients.aclose()


# --- adaptive concurrency ----------------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AdaptiveLimiter:
    """A concurrency limit that halves under errors and climbs back when they stop.

    Over the last `window` results (counted since the limit last changed): an error share above
    `cut_above` halves the limit (at least 1), one below `raise_below` raises it by `step` up to
    `maximum`. Usable from several threads and event loops at once.

    Waiters are served in order, except that those acquiring with `ahead=True` (the next page of
    a read already under way) are served before every plain waiter: a read of many pages, one
    after another, would otherwise queue behind the whole backlog once per page.
    """

    def __init__(
        self,
        maximum: int,
        *,
        window: int = 50,
        cut_above: float = 0.05,
        raise_below: float = 0.02,
        step: int | None = None,
        name: str = "",
    ) -> None:
        if maximum < 1:
            raise ValueError("maximum concurrency must be at least 1")
        self.maximum = maximum
        self.limit = maximum
        self.window = window
        self.cut_above = cut_above
        self.raise_below = raise_below
        self.step = step if step is not None else max(1, maximum // 10)
        self.name = name
        self.in_flight = 0
        self._results: deque[bool] = deque(maxlen=window)
        self._waiters: deque[_Waiter] = deque()
        self._ahead: deque[_Waiter] = deque()  # served before `_waiters`
        self._lock = threading.Lock()

    async def acquire(self, *, ahead: bool = False) -> None:
        """Wait for a slot; `ahead` puts the caller before every waiter that did not ask so."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.in_flight < self.limit and not self._waiters and not self._ahead:
                self.in_flight += 1
                return
            waiter = _Waiter(loop, loop.create_future())
            line = self._ahead if ahead else self._waiters
            line.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                if waiter.granted:
                    self.in_flight -= 1
                    self._wake_locked()
                else:
                    with contextlib.suppress(ValueError):
                        line.remove(waiter)
            raise

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._wake_locked()

    def waiting(self) -> int:
        """How many callers wait for a slot."""
        with self._lock:
            return len(self._ahead) + len(self._waiters)

    def _wake_locked(self) -> None:
        here = _running_loop()
        while (self._ahead or self._waiters) and self.in_flight < self.limit:
            waiter = (self._ahead or self._waiters).popleft()
            if waiter.future.done():
                continue
            waiter.granted = True
            self.in_flight += 1
            if waiter.loop is here:
                _grant(waiter.future)  # this thread's loop: no wake-up of the loop needed
                continue
            try:
                waiter.loop.call_soon_threadsafe(_grant, waiter.future)
            except RuntimeError:  # its loop is closed: nobody will use the slot
                self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self, *, ahead: bool = False) -> AsyncIterator[None]:
        await self.acquire(ahead=ahead)
        try:
            yield
        finally:
            self.release()

    def record(self, error: bool) -> int | None:
        """Count one result; returns the new limit when this result changed it."""
        with self._lock:
            self._results.append(error)
            if len(self._results) < self.window:
                return None
            share = sum(self._results) / len(self._results)
            old = self.limit
            if share > self.cut_above:
                new = max(1, old // 2)
            elif share < self.raise_below:
                new = min(self.maximum, old + self.step)
            else:
                new = old
            if new == old:
                return None
            self.limit = new
            self._results.clear()
            self._wake_locked()
        logger.info(
            "%s: concurrency limit %s -> %s (%.0f %% errors in the last %s results)",
            self.name or "request engine",
            old,
            new,
            share * 100,
            self.window,
        )
        return new


# --- the engine --------------------------------------------------------------------------------


@dataclass
class _Metrics:
    requests: int = 0
    retries: int = 0
    http_429: int = 0
    http_418: int = 0
    errors: int = 0
    transient_errors: int = 0
    permanent_errors: int = 0
    failed_runs: int = 0
    weight_used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


class RequestEngine:
    """Sends the requests of one upstream API within its budget, bans and concurrency limit.

    `limit_per_minute` is the limit per window of `budget`: a minute for Binance's weights and
    the vendors' calls, 5 minutes for the /futures/data requests."""

    def __init__(
        self,
        *,
        name: str,
        limit_per_minute: int,
        budget: Budget,
        max_concurrent: int,
        retries: int,
        bans: BanRegistry,
        usable_share: float = 0.95,
        rate_limit_retries: int = 5,
        max_ban_wait: float = 60.0,
        backoff_base: float = 0.5,
        backoff_factor: float = 2.0,
        backoff_cap: float = 10.0,
        call_timeout: float | None = None,
        limiter_window: int = 50,
        limiter: AdaptiveLimiter | None = None,
        now: Clock | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < usable_share <= 1:
            raise ValueError("usable_share must be in (0, 1]")
        self.name = name
        self.limit_per_minute = int(limit_per_minute)
        # The safety margin: other clients on the IP and requests in flight can push the server's
        # count past ours between two syncs.
        self.usable_limit = max(1, math.floor(self.limit_per_minute * usable_share))
        self.budget = budget
        self.bans = bans
        self.retries = int(retries)
        self.rate_limit_retries = int(rate_limit_retries)
        self.max_ban_wait = float(max_ban_wait)
        self.backoff_base = backoff_base
        self.backoff_factor = backoff_factor
        self.backoff_cap = backoff_cap
        self.call_timeout = call_timeout
        self.now = now or time.time
        self.sleep = sleep or asyncio.sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        # A limiter passed in is shared with other engines: one cap for several APIs of a source.
        self.limiter = limiter or AdaptiveLimiter(max_concurrent, window=limiter_window, name=name)
        self._metrics = _Metrics()

    def __repr__(self) -> str:
        return f"<RequestEngine {self.name} {self.limit_per_minute}/min>"

    def metrics(self) -> dict[str, Any]:
        """Counters since the engine was built, and the current concurrency limit."""
        m = self._metrics
        with m.lock:
            counts = {
                "requests": m.requests,
                "retries": m.retries,
                "http_429": m.http_429,
                "http_418": m.http_418,
                "errors": m.errors,
                "transient_errors": m.transient_errors,
                "permanent_errors": m.permanent_errors,
                "failed_runs": m.failed_runs,
                "weight_used": m.weight_used,
            }
        return {
            "name": self.name,
            **counts,
            "concurrency_limit": self.limiter.limit,
            "max_concurrent": self.limiter.maximum,
            "in_flight": self.limiter.in_flight,
            "limit_per_minute": self.limit_per_minute,
            "usable_per_minute": self.usable_limit,
        }

    async def aclose(self) -> None:
        """Close the Redis connections this engine opened in the running event loop. Call it at
        the end of an `asyncio.run` that used the engine (the next loop opens new ones)."""
        for part in (self.budget, self.bans):
            closer = getattr(part, "aclose", None)
            if closer is not None:
                await closer()

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based): full jitter, capped."""
        ceiling = min(self.backoff_cap, self.backoff_base * self.backoff_factor ** (retry - 1))
        return self.rng.uniform(0, ceiling)

    async def _wait_while_banned(self, what: str) -> None:
        while True:
            until = await self.bans.banned_until(self.name)
            if until is None:
                return
            remaining = until - self.now()
            if remaining <= 0:
                return
            if remaining > self.max_ban_wait:
                self._metrics.add(failed_runs=1)
                raise Banned(
                    until,
                    f"{self.name} is banned until {show_epoch(until)}: {what} not sent",
                )
            logger.debug("%s: banned for %.1f s more; %s waits", self.name, remaining, what)
            await self.sleep(remaining + self.rng.uniform(0, 0.1))

    def budget_name(self, quota: str | None = None) -> str:
        """The budget counter a request of `quota` draws from: the engine's own, or one per
        quota (an endpoint with a limit of its own) within the engine's budget."""
        return self.name if quota is None else f"{self.name}:{quota}"

    async def _attempt(
        self,
        call: Callable[[], Awaitable[Reply[T]]],
        weight: int,
        ahead: bool,
        budget_name: str,
        quota: bool,
    ) -> Reply[T]:
        if quota:
            # A quota's wait can last minutes: taken before the slot, so the requests of the
            # other engines sharing the concurrency cap are not held up behind it.
            await self.budget.acquire(budget_name, weight, self.usable_limit)
        async with self.limiter.slot(ahead=ahead):
            if not quota:
                await self.budget.acquire(budget_name, weight, self.usable_limit)
            # The last look before the request leaves: a 418 that came while this one waited
            # for its weight, quota or slot (seen at once in this process, from another within
            # the registry's cache time) stops it here. Its weight stays spent: a budget only
            # errs on the safe side.
            until = await self.bans.banned_until(self.name)
            if until is not None and until > self.now():
                raise _BannedWhileWaiting(until)
            self._metrics.add(requests=1, weight_used=weight)
            try:
                if self.call_timeout is None:
                    reply = await call()
                else:
                    # Not wait_for: that runs the call in a task of its own, one more task
                    # and two more turns of the loop per request.
                    async with asyncio.timeout(self.call_timeout):
                        reply = await call()
            except (TimeoutError, ConnectionError) as error:
                raise TransientError(f"{type(error).__name__}: {error}") from error
        if not isinstance(reply, Reply):
            raise TypeError(f"a request engine call must return a Reply, got {type(reply)}")
        return reply

    async def run(
        self,
        call: Callable[[], Awaitable[Reply[T]]],
        *,
        weight: int,
        what: str,
        follow_up: bool = False,
        quota: str | None = None,
    ) -> T:
        """Send one request (`call`) within the budget, bans and concurrency limit; retried as
        its failure allows. Returns the reply's data or raises the engine's errors.

        `follow_up`: the request continues a read already under way (its next page); it waits
        for a slot ahead of requests that start a read (see `AdaptiveLimiter`).
        `quota`: the request counts against a limit of its own (`budget_name(quota)`), the
        engine's limit per budget window, instead of the engine's shared one."""
        budget_name = self.budget_name(quota)
        transient = 0
        rate_limited = 0
        while True:
            await self._wait_while_banned(what)
            try:
                reply = await self._attempt(call, weight, follow_up, budget_name, quota is not None)
            except _BannedWhileWaiting:
                # Unsent: the ban check at the top of the loop waits a short ban out or raises
                # Banned ("not sent") for a long one, as for a request that found it at once.
                continue
            except TransientError as error:
                self._metrics.add(errors=1, transient_errors=1)
                self.limiter.record(error=True)
                transient += 1
                attempts = transient + rate_limited
                if transient > self.retries:
                    self._metrics.add(failed_runs=1)
                    raise TransientError(
                        f"{self.name}: {what} failed after {attempts} attempt"
                        f"{'s' if attempts != 1 else ''}: {error}"
                    ) from error
                delay = self.backoff(transient)
                self._metrics.add(retries=1)
                logger.debug(
                    "%s: %s failed (%s); retry %s/%s in %.2f s",
                    self.name,
                    what,
                    error,
                    transient,
                    self.retries,
                    delay,
                )
                await self.sleep(delay)
            except RateLimited as error:
                self._metrics.add(errors=1, http_429=1)
                self.limiter.record(error=True)
                # The server says we are over: mark this window spent for every process.
                with contextlib.suppress(Exception):
                    await self.budget.sync_used(budget_name, self.limit_per_minute)
                rate_limited += 1
                attempts = transient + rate_limited
                if rate_limited > self.rate_limit_retries or error.retry_after > self.max_ban_wait:
                    self._metrics.add(failed_runs=1)
                    raise RateLimited(
                        error.retry_after,
                        f"{self.name}: {what} rate limited (HTTP 429) after {attempts} attempt"
                        f"{'s' if attempts != 1 else ''}; retry after {error.retry_after:g} s",
                    ) from error
                self._metrics.add(retries=1)
                logger.debug(
                    "%s: %s rate limited; retry %s/%s after %.1f s",
                    self.name,
                    what,
                    rate_limited,
                    self.rate_limit_retries,
                    error.retry_after,
                )
                await self.sleep(error.retry_after)
            except Banned as error:
                self._metrics.add(errors=1, http_418=1, failed_runs=1)
                previous = await self.bans.ban(self.name, error.until, str(error))
                if previous is None or error.until > previous + 1:
                    logger.warning(
                        "%s banned the scanner's IP (HTTP 418) until %s; no request to it "
                        "before then",
                        self.name,
                        show_epoch(error.until),
                    )
                raise
            except PermanentError:
                self._metrics.add(errors=1, permanent_errors=1, failed_runs=1)
                self.limiter.record(error=False)
                raise
            else:
                self.limiter.record(error=False)
                if reply.used_weight is not None:
                    await self.budget.sync_used(budget_name, reply.used_weight)
                if reply.finish is None:
                    return reply.data
                return await self._finish(reply)

    async def _finish(self, reply: Reply[T]) -> T:
        """The reply's answer, read after the loop has run what was ready before: the requests
        woken by this one's slot go out first. Reading a big answer (80-110 kB of klines or
        trades) takes the loop ~0.5 ms; answers arrive in bursts of up to the cap, and read
        inside their slots each would keep the next request waiting for the whole burst."""
        assert reply.finish is not None
        await asyncio.sleep(0)
        try:
            return reply.finish(reply.data)
        except PermanentError:
            self._metrics.add(errors=1, permanent_errors=1, failed_runs=1)
            raise


# --- engines of this process -------------------------------------------------------------------


def shared_redis_url() -> str | None:
    """The Redis that holds budgets and bans: RATE_BUDGET_REDIS_URL, else a Redis broker."""
    from django.conf import settings

    url = str(getattr(settings, "RATE_BUDGET_REDIS_URL", "") or "")
    if url:
        return url
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if broker.startswith(("redis://", "rediss://", "unix://")):
        return broker
    return None


def build_bans(url: str | None = None) -> BanRegistry:
    url = shared_redis_url() if url is None else url
    return RedisBanRegistry(url) if url else LocalBanRegistry()


def build_engines() -> dict[str, RequestEngine]:
    """A new engine per upstream API, configured from the settings, sharing one budget store
    and one ban registry. Binance's engines also share one concurrency limit:
    PARALLEL_MAX_CONCURRENT is the cap of the source, not of each of its hosts.
    `binance-futures-data` counts requests per endpoint (its quotas) in 5-minute windows."""
    from django.conf import settings

    url = shared_redis_url()

    def budget_of(window_seconds: float) -> Budget:
        if url:
            return RedisBudget(url, window_seconds=window_seconds)
        return LocalBudget(window_seconds=window_seconds)

    budget = budget_of(60.0)
    budgets = {"binance-futures-data": budget_of(FUTURES_DATA_WINDOW_SECONDS)}
    bans = build_bans(url or "")
    limits = {
        "binance-spot": settings.BINANCE_SPOT_WEIGHT_PER_MINUTE,
        "binance-futures": settings.BINANCE_FUTURES_WEIGHT_PER_MINUTE,
        "binance-futures-data": settings.BINANCE_FUTURES_DATA_REQUESTS_PER_5MIN,
        "coingecko": settings.COINGECKO_CALLS_PER_MINUTE,
        "lunarcrush": settings.LUNARCRUSH_CALLS_PER_MINUTE,
    }
    timeout = float(getattr(settings, "REQUEST_TIMEOUT_SECONDS", 10.0))
    cap = int(settings.PARALLEL_MAX_CONCURRENT)
    binance = AdaptiveLimiter(cap, name="binance")
    return {
        name: RequestEngine(
            name=name,
            limit_per_minute=int(limit),
            budget=budgets.get(name, budget),
            max_concurrent=cap,
            retries=int(settings.REQUEST_RETRIES),
            bans=bans,
            # A safety net above the client's own timeout, so no call can hang a scan.
            call_timeout=timeout * 2 + 5,
            limiter=binance if name.startswith("binance-") else None,
        )
        for name, limit in limits.items()
    }


_engines: dict[str, RequestEngine] | None = None
_engines_lock = threading.Lock()


def engines() -> dict[str, RequestEngine]:
    """This process's engines, built from the settings on first use."""
    global _engines
    with _engines_lock:
        if _engines is None:
            _engines = build_engines()
        return _engines


def engine_for(name: str) -> RequestEngine:
    """This process's engine for `name` (one of ENGINE_NAMES)."""
    try:
        return engines()[name]
    except KeyError:
        raise KeyError(f"no request engine {name!r}; known: {', '.join(ENGINE_NAMES)}") from None


async def close_loop_clients() -> None:
    """Close the Redis connections this process's engines opened in the running event loop."""
    with _engines_lock:
        built = list(_engines.values()) if _engines else []
    for engine in built:
        await engine.aclose()


def reset_engines() -> None:
    """Forget this process's engines (tests, changed settings); the next use builds new ones."""
    global _engines
    with _engines_lock:
        _engines = None


def engine_metrics() -> dict[str, dict[str, Any]]:
    """metrics() of every engine of this process."""
    return {name: engine.metrics() for name, engine in engines().items()}


def active_bans() -> dict[str, float]:
    """{engine name: until (epoch seconds)} of the bans in force, for the health endpoint."""
    bans = next(iter(engines().values())).bans
    return bans.active_bans()


def active_ban_details() -> dict[str, dict[str, Any]]:
    """{engine name: {"until": epoch seconds, "reason": text}} of the bans in force."""
    bans: Any = next(iter(engines().values())).bans
    return bans.active_ban_details()
