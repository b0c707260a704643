"""The adaptive concurrency limit: halved on errors, raised step by step when calls succeed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)


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
