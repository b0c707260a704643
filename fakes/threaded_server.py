"""Run an asyncio server (the local fakes) on its own event loop in a thread, for synchronous
callers such as Django tests and ccxt clients living in other loops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any


@contextlib.contextmanager
def serve_in_thread(
    start: Callable[[str, int], Awaitable[str]],
    stop: Callable[[], Awaitable[None]],
    *,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[str]:
    """`await start(host, port)` (returning the base URL) on a new loop in thread `name`; yields
    the URL; on exit stops the loop and awaits `stop()`. A failing start is raised here."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            result["url"] = loop.run_until_complete(start(host, port))
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(stop())
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    started.wait()
    if "error" in result:
        raise result["error"]
    try:
        yield result["url"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
