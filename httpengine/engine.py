"""The request engine: budget, bans, concurrency limit and retries around one request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from httpengine.bans import BanRegistry
from httpengine.budgets import Budget
from httpengine.calls import (
    Banned,
    Clock,
    PermanentError,
    RateLimited,
    Reply,
    Sleep,
    TransientError,
    show_epoch,
)
from httpengine.limiter import AdaptiveLimiter

logger = logging.getLogger(__name__)
T = TypeVar("T")


class _BannedWhileWaiting(Exception):
    """A ban recorded while a request waited for its budget or slot: it was not sent."""


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
