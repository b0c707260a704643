"""Caches of live market data that respect the caller's `as_of`.

Every entry carries `data_time`, the market time its data describes (aware UTC). A lookup at
`as_of` hits only when `data_time <= as_of` (never data from after the caller's moment) and
`as_of - data_time <= ttl` (never stale data). The TTL is measured in market time, so a replay at
an older as_of cannot be served a newer answer, and a live scan cannot be served an old one.

- `TimedCache`: in-process (default 60 s: prices, funding).
- `RedisTimedCache`: shared by every process through Redis, values stored as JSON (default 300 s:
  per-coin derived data). Sync methods (`get`, `put`) and async ones (`aget`, `aput`).

A stored value of None cannot be told from a miss by `get`; use `entry()` when None is a value.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CACHE_PREFIX = "cryptosatx:cache"


@dataclass(frozen=True)
class CacheEntry:
    value: Any
    data_time: datetime


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _ttl(ttl_seconds: float) -> timedelta:
    if ttl_seconds < 0:
        raise ValueError("ttl_seconds must not be negative")
    return timedelta(seconds=ttl_seconds)


def _fresh(data_time: datetime, as_of: datetime, ttl: timedelta) -> bool:
    return data_time <= as_of and as_of - data_time <= ttl


class TimedCache:
    """An in-process cache whose hits are never newer than as_of nor older than the TTL.

    Thread-safe; holds at most `max_entries` keys (the least recently written go first).
    """

    def __init__(self, ttl_seconds: float = 60, *, max_entries: int = 100_000) -> None:
        self.ttl = _ttl(ttl_seconds)
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, key: str, *, as_of: datetime) -> CacheEntry | None:
        """The entry of `key` when it is fit to serve at as_of, else None."""
        as_of = _aware(as_of, "as_of")
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not _fresh(entry.data_time, as_of, self.ttl):
            return None
        return entry

    def get(self, key: str, *, as_of: datetime) -> Any | None:
        """The value of `key` when its data_time is <= as_of and within the TTL of it."""
        entry = self.entry(key, as_of=as_of)
        return None if entry is None else entry.value

    def put(self, key: str, value: Any, *, data_time: datetime) -> None:
        """Store `value`, which describes the market at `data_time`."""
        entry = CacheEntry(value, _aware(data_time, "data_time"))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


_process_caches: dict[str, TimedCache] = {}
_process_caches_lock = threading.Lock()


def process_cache(name: str, ttl_seconds: float) -> TimedCache:
    """The process-wide TimedCache called `name`, made on first use. For answers every source of
    the process may reuse: a scan's batches each build their own source, and without it each
    batch would read the bulk endpoints (exchange metadata, all tickers, vendor lists) again."""
    with _process_caches_lock:
        cache = _process_caches.get(name)
        if cache is None:
            cache = _process_caches[name] = TimedCache(ttl_seconds)
        return cache


def clear_process_caches() -> None:
    """Empty every process-wide cache (tests; a changed exchange)."""
    with _process_caches_lock:
        caches = list(_process_caches.values())
    for cache in caches:
        cache.clear()


class RedisTimedCache:
    """A cache shared through Redis whose hits are never newer than as_of nor older than the TTL.

    Values are stored as JSON (`dumps`/`loads` replaceable) under `{prefix}:{key}`, with their
    data_time; Redis drops a key `expire_seconds` (wall clock, default twice the TTL) after it was
    written, which only keeps Redis tidy: freshness is judged against as_of.
    """

    def __init__(
        self,
        url: str,
        ttl_seconds: float = 300,
        *,
        prefix: str = CACHE_PREFIX,
        expire_seconds: float | None = None,
        dumps: Callable[[Any], str] = json.dumps,
        loads: Callable[[str | bytes], Any] = json.loads,
    ) -> None:
        self.url = url
        self.ttl = _ttl(ttl_seconds)
        self.prefix = prefix
        expire = 2 * ttl_seconds if expire_seconds is None else expire_seconds
        self.expire_ms = max(int(expire * 1000), 1000)
        self.dumps = dumps
        self.loads = loads
        self._sync_client: Any = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def _sync(self) -> Any:
        import redis

        with self._lock:
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(self.url)
            return self._sync_client

    def _async(self) -> Any:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                for old in [old for old in self._async_clients if old.is_closed()]:
                    del self._async_clients[old]
                client = redis.asyncio.Redis.from_url(self.url)
                self._async_clients[loop] = client
            return client

    def _encode(self, value: Any, data_time: datetime) -> str:
        data_time = _aware(data_time, "data_time")
        return json.dumps({"t": data_time.isoformat(), "v": self.dumps(value)})

    def _decode(self, raw: Any, as_of: datetime) -> CacheEntry | None:
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
            data_time = datetime.fromisoformat(stored["t"])
            value_text = stored["v"]
        except (TypeError, ValueError, KeyError):
            return None  # not ours or damaged: a miss
        if data_time.tzinfo is None or not _fresh(data_time, as_of, self.ttl):
            return None
        return CacheEntry(self.loads(value_text), data_time)

    # sync

    def entry(self, key: str, *, as_of: datetime) -> CacheEntry | None:
        """The entry of `key` when it is fit to serve at as_of, else None."""
        as_of = _aware(as_of, "as_of")
        return self._decode(self._sync().get(self.key(key)), as_of)

    def get(self, key: str, *, as_of: datetime) -> Any | None:
        """The value of `key` when its data_time is <= as_of and within the TTL of it."""
        entry = self.entry(key, as_of=as_of)
        return None if entry is None else entry.value

    def put(self, key: str, value: Any, *, data_time: datetime) -> None:
        """Store `value` (JSON-able), which describes the market at `data_time`."""
        self._sync().set(self.key(key), self._encode(value, data_time), px=self.expire_ms)

    def delete(self, key: str) -> None:
        self._sync().delete(self.key(key))

    # async

    async def aentry(self, key: str, *, as_of: datetime) -> CacheEntry | None:
        as_of = _aware(as_of, "as_of")
        return self._decode(await self._async().get(self.key(key)), as_of)

    async def aget(self, key: str, *, as_of: datetime) -> Any | None:
        entry = await self.aentry(key, as_of=as_of)
        return None if entry is None else entry.value

    async def aput(self, key: str, value: Any, *, data_time: datetime) -> None:
        await self._async().set(self.key(key), self._encode(value, data_time), px=self.expire_ms)

    async def aclose(self) -> None:
        """Close the async client of the running loop, if any."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        with self._lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()
