"""Cached reads: answers that change only when certain data is written, computed once and served
from the `READ_CACHE` cache until a writer of that data says otherwise (issue 17).

A **namespace** names what a family of answers is computed from (`PERFORMANCE`: the signals and
their outcome checks; `RANKING`: the unified ranking's rows). Each namespace has a **generation**,
a number kept in the same cache. An answer is stored under a key made of every parameter that
changes it (the caller's `key`), together with the generations of the namespaces it reads as they
were when it was computed; it is served only while those are still the current ones. A writer
calls `bump(namespace)`: the generation moves on, so no process serves the old answers any more.

Across processes: with Redis (`READ_CACHE_REDIS_URL`, default the Redis broker) every web
process and every Celery worker reads and bumps the same generations, so an outcome check written
by a worker is in the web processes' next answer. Without Redis (the embedded default, `make
run`) the cache is a folder of files under VAR_DIR, shared by the processes of one machine, so
a management command run beside `make run` invalidates the server's answers too.

Why the generation moves twice: `bump` increments it at once and again when the writer's
transaction commits. A reader that read the new generation before the commit may have computed
the old data and stored it under that generation; the second increment orphans that entry. A
reader after the commit sees the committed data. (Inside a transaction that never commits, such
as a test's, the first increment is what counts.) What no cache outside the database can close:
between the commit and the increment after it (the writer's next step) a reader may still be
served the answer from before; once the writer's call has returned, never.

Every answer is also dropped after `READ_CACHE_SECONDS` (0: nothing is cached), which bounds how
far a window ending "now" lags the clock, and how long a write that bypassed every writer (SQL by
hand) goes unseen. A cache that fails (Redis down) is logged and skipped: the answer is computed,
and a writer's transaction never fails for it.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.db import transaction

logger = logging.getLogger(__name__)

PERFORMANCE = "performance"  # signals and outcome checks: /api/performance/*, the pages' charts
RANKING = "ranking"  # the unified ranking's rows: /api/scan/unified-ranking, the overview
NAMESPACES = (PERFORMANCE, RANKING)

T = TypeVar("T")


def read_cache() -> BaseCache:
    return caches[settings.READ_CACHE]


def enabled() -> bool:
    """READ_CACHE_SECONDS > 0."""
    return settings.READ_CACHE_SECONDS > 0


def _generation_key(namespace: str) -> str:
    return f"generation:{namespace}"


def generations(namespaces: Iterable[str]) -> dict[str, int]:
    """The current generation of each namespace; one that has none (never bumped, or evicted)
    starts at the current time in nanoseconds, larger than any earlier generation it may have
    had, so an evicted counter never brings back the answers of a generation it already had."""
    cache = read_cache()
    names = list(namespaces)
    found = cache.get_many([_generation_key(name) for name in names])
    current = {}
    for name in names:
        key = _generation_key(name)
        if key not in found:
            cache.add(key, time.time_ns(), timeout=None)
            found[key] = cache.get(key)
        current[name] = int(found[key])
    return current


def _increment(namespaces: tuple[str, ...]) -> None:
    cache = read_cache()
    for name in namespaces:
        key = _generation_key(name)
        try:
            try:
                cache.incr(key)
            except ValueError:  # no counter yet (or evicted): start one past every earlier one
                cache.add(key, time.time_ns(), timeout=None)
        except Exception:
            logger.exception("read cache: could not move the generation of %s on", name)


def bump(*namespaces: str) -> None:
    """Invalidate every cached answer of `namespaces`, in every process: now, and again when the
    current transaction commits (see the module's docstring). Never raises. Inside
    `bumps_deferred()` (in this thread) the namespaces are noted and bumped when the block ends.
    """
    if not enabled() or not namespaces:
        return
    deferred = getattr(_deferred, "namespaces", None)
    if deferred is not None:
        deferred.update(namespaces)
        return
    _increment(namespaces)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _increment(namespaces))


_deferred = threading.local()


@contextmanager
def bumps_deferred() -> Iterator[None]:
    """Inside the block, this thread's `bump`s only note their namespaces; each noted namespace
    is bumped once as the block ends (also when it raises), as `bump` does there. For a writer
    that writes a namespace many times in one unit of work outside a transaction of its own
    (the replay's in-process hour: its scans' rankings, signals and outcome checks): its
    readers may be served the answers from before until the block ends, never after, and the
    cache sees two increments per namespace instead of two per write. Nested blocks: the
    outermost bumps."""
    if getattr(_deferred, "namespaces", None) is not None:
        yield
        return
    _deferred.namespaces = set()
    try:
        yield
    finally:
        noted, _deferred.namespaces = _deferred.namespaces, None
        if noted:
            bump(*sorted(noted))


def invalidate_all() -> None:
    """Orphan every cached answer of every namespace, at once (not `cache.clear()`: on Redis that
    empties the whole database, which the cache may share with others)."""
    if enabled():
        _increment(NAMESPACES)


def entry_key(key: Any) -> str:
    """The cache key of the answer named `key` (anything picklable: the function and every
    parameter of the answer)."""
    return "answer:" + hashlib.sha256(pickle.dumps(key, protocol=4)).hexdigest()


def cached(namespaces: Iterable[str], key: Any, compute: Callable[[], T]) -> T:
    """`compute()`'s answer, from the cache when the answer of `key` stored there was computed
    under the namespaces' current generations, else computed and stored (with those
    generations) for READ_CACHE_SECONDS.

    One round trip per answer served: the generations and the answer are read together (MGET on
    Redis), since the answer's key does not hold the generations: the stored value does, and an
    answer of older generations is computed again and overwritten. (A slow reader may overwrite
    a newer answer with one of older generations; the next reader then computes again. It can
    never be served, its generations being behind.)

    `key` must hold every input that changes the answer and that the namespaces' writers do not
    bump: the parameters, the user when the answer is theirs, the moment a window ends at. The
    answer must be picklable and is returned as a fresh copy each time (callers may change it).
    """
    if not enabled():
        return compute()
    cache = read_cache()
    names = sorted(set(namespaces))
    name = entry_key(key)
    try:
        found = cache.get_many([*(_generation_key(each) for each in names), name])
        if any(_generation_key(each) not in found for each in names):
            found.update({_generation_key(k): v for k, v in generations(names).items()})
        current = tuple(int(found[_generation_key(each)]) for each in names)
    except Exception:
        logger.exception("read cache unavailable: computing the answer")
        return compute()
    stored = found.get(name)
    if stored is not None and stored[0] == current:
        return stored[1]
    answer = compute()
    try:
        cache.set(name, (current, answer), timeout=settings.READ_CACHE_SECONDS)
    except Exception:
        logger.exception("read cache: could not store an answer")
    return answer
