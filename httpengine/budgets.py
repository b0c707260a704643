"""Request-weight budgets per calendar window: in-process (`LocalBudget`) or shared by every
process through Redis (`RedisBudget`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from httpengine.calls import Clock, Sleep
from httpengine.redis_clients import LoopRedisClients

logger = logging.getLogger(__name__)

BUDGET_PREFIX = "cryptosatx:budget"
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
        self._clients = LoopRedisClients(url)
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
