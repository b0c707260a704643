"""The performance services' answers, cached (core/read_cache.py, namespace PERFORMANCE).

`cached_performance` wraps a service whose answer is a function of its `filters` (a
PerformanceFilters) and its other arguments, so the API and the pages, which call the same
services, share one cache. The answer's key holds:

- the service and every argument (dimension, limit, ...);
- every field of the filters that changes the answer: the window (days, since, until), horizon,
  scanner, tier, direction, symbol, watchlist;
- the watchlist's coins as they are now (editing a watchlist changes its answers without a bump);
- the user (`owner_id`) when the answer is theirs: their manual signals (scanner=manual) or their
  watchlist (one user's watchlist answer is never another's, whatever the ids);
- ANALYTICS_MIN_SAMPLE (it decides the judgements);
- the moment the window ends at, when it is pinned: `now` given by the caller, or the replay
  clock's time (in a replay the answer is exact for the clock's position). Live, a window ending
  now is not pinned: its answer is served for at most READ_CACHE_SECONDS and says the `as_of` it
  was computed for. A window with `until` does not depend on now at all.

Writers bump PERFORMANCE whenever a signal or an outcome check changes (tracking/services.py,
tracking/outcomes.py, tracking/receivers.py); a claim moving a check from pending to claimed
changes no answer (both count as pending) and bumps nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from core import read_cache
from core.api import RenderedJSON
from scanners.models import WatchlistCoin
from tracking.metrics import min_sample
from tracking.outcomes import sweep_time
from tracking.performance_filters import PerformanceFilters

F = TypeVar("F", bound=Callable[..., Any])


def pinned_filters(filters: PerformanceFilters) -> tuple[PerformanceFilters, bool]:
    """The filters with `now` fixed (the caller's, else the replay clock's or the wall clock's),
    and whether the answer's key must hold it: the caller's or the clock's time, not the wall
    clock's, and only for a window that ends at now (no `until`)."""
    if filters.now is not None:
        pinned = True
    else:
        now, on_clock = sweep_time()
        filters = replace(filters, now=now)
        pinned = on_clock
    return filters, pinned and filters.until is None


def filters_key(filters: PerformanceFilters, *, now_in_key: bool) -> tuple:
    """What of the filters (and of the data they name but no writer bumps) changes an answer."""
    mine = filters.manual or filters.watchlist_id is not None
    coins: tuple[str, ...] = ()
    if filters.watchlist_id is not None:
        coins = tuple(
            sorted(
                WatchlistCoin.objects.filter(watchlist_id=filters.watchlist_id).values_list(
                    "symbol", flat=True
                )
            )
        )
    return (
        filters.days,
        filters.since,
        filters.until,
        filters.horizon,
        filters.scanner,
        filters.tier,
        filters.direction,
        filters.symbol,
        filters.watchlist_id,
        coins,
        filters.owner_id if mine else None,
        filters.now if now_in_key else None,
        min_sample(),
    )


def cached_performance(function: F) -> F:
    """Serve `function(…, filters, …)` from the read cache (see the module's docstring). The
    function is called with the filters' `now` fixed, so the answer and its key agree on it.

    `function.rendered(…)` is the same answer already encoded for the API's renderer (a
    RenderedJSON, cached as well): the API serves a cached answer without decoding and encoding
    it again; the pages read the answer itself."""
    signature = inspect.signature(function)
    name = f"{function.__module__}.{function.__qualname__}"

    def keyed(args: tuple, kwargs: dict) -> tuple[tuple, inspect.BoundArguments]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        filters, now_in_key = pinned_filters(bound.arguments["filters"])
        bound.arguments["filters"] = filters
        others = tuple(
            (argument, value)
            for argument, value in bound.arguments.items()
            if argument != "filters"
        )
        return (name, others, filters_key(filters, now_in_key=now_in_key)), bound

    def answer(key: tuple, bound: inspect.BoundArguments) -> Any:
        return read_cache.cached(
            (read_cache.PERFORMANCE,), key, lambda: function(*bound.args, **bound.kwargs)
        )

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return answer(*keyed(args, kwargs))

    def rendered(*args: Any, **kwargs: Any) -> RenderedJSON:
        key, bound = keyed(args, kwargs)
        return read_cache.cached(
            (read_cache.PERFORMANCE,),
            ("rendered", key),
            lambda: RenderedJSON.of(answer(key, bound)),
        )

    wrapper.uncached = function  # type: ignore[attr-defined]
    wrapper.rendered = rendered  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
