"""The engines of this process, one per upstream API, built from the settings."""

from __future__ import annotations

import logging
import threading
from typing import Any

from httpengine.bans import BanRegistry, LocalBanRegistry, RedisBanRegistry
from httpengine.budgets import Budget, LocalBudget, RedisBudget
from httpengine.engine import RequestEngine
from httpengine.limiter import AdaptiveLimiter

ENGINE_NAMES = (
    "binance-spot",
    "binance-futures",
    "binance-futures-data",
    "coingecko",
    "lunarcrush",
)

logger = logging.getLogger(__name__)
# Binance's /futures/data endpoints weigh 0 but each allows an IP 1,000 requests per 5 minutes.
FUTURES_DATA_WINDOW_SECONDS = 300.0
# --- engines of this process -------------------------------------------------------------------


def shared_redis_url() -> str | None:
    """The Redis that holds budgets and bans: RATE_BUDGET_REDIS_URL, else a Redis broker."""
    from django.conf import settings

    if settings.RATE_BUDGET_REDIS_URL:
        return settings.RATE_BUDGET_REDIS_URL
    broker = settings.CELERY_BROKER_URL
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
    timeout = settings.REQUEST_TIMEOUT_SECONDS
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
