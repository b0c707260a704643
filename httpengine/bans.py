"""Who is banned until when: after an HTTP 418 nobody calls that API before the ban ends."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Protocol

from httpengine.calls import Clock
from httpengine.redis_clients import LoopRedisClients

logger = logging.getLogger(__name__)

BANS_KEY = "cryptosatx:bans"
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
        self._clients = LoopRedisClients(url)
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
