"""Async Redis clients, one per event loop, for the budgets and the ban registry."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from typing import Any

logger = logging.getLogger(__name__)


# --- per-loop async Redis clients --------------------------------------------------------------


class LoopRedisClients:
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
