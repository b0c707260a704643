"""Caches of live data: a hit is never newer than the caller's as_of, nor older than the TTL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from market.sources.cache import RedisTimedCache, TimedCache

REDIS_URL = "redis://127.0.0.1:6379/14"
DATA_TIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def redis_cache():
    import redis

    prefix = f"test-cache:{uuid.uuid4().hex}"
    cache = RedisTimedCache(REDIS_URL, ttl_seconds=300, prefix=prefix)
    yield cache
    cache.close()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache(request: pytest.FixtureRequest):
    if request.param == "memory":
        return TimedCache(ttl_seconds=300)
    return request.getfixturevalue("redis_cache")


def test_a_cache_never_serves_data_newer_than_as_of(cache):
    cache.put("price:BTC/USDT", {"last": 100.5}, data_time=DATA_TIME)
    assert cache.get("price:BTC/USDT", as_of=DATA_TIME - SECOND) is None
    assert cache.get("price:BTC/USDT", as_of=DATA_TIME) == {"last": 100.5}


def test_a_cache_never_serves_data_older_than_its_ttl(cache):
    cache.put("price:BTC/USDT", [1, 2, 3], data_time=DATA_TIME)
    assert cache.get("price:BTC/USDT", as_of=DATA_TIME + 300 * SECOND) == [1, 2, 3]
    assert cache.get("price:BTC/USDT", as_of=DATA_TIME + 301 * SECOND) is None


def test_a_cache_misses_a_key_it_never_stored(cache):
    assert cache.get("nothing", as_of=DATA_TIME) is None


def test_a_cache_compares_times_across_time_zones(cache):
    paris = DATA_TIME.astimezone(datetime.now(UTC).astimezone().tzinfo)
    cache.put("k", 1, data_time=paris)
    assert cache.get("k", as_of=DATA_TIME) == 1
    entry = cache.entry("k", as_of=DATA_TIME)
    assert entry is not None
    assert entry.data_time == DATA_TIME


def test_a_cache_refuses_naive_times(cache):
    with pytest.raises(ValueError, match="aware"):
        cache.put("k", 1, data_time=datetime(2026, 1, 5, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        cache.get("k", as_of=datetime(2026, 1, 5, 12, 0))


def test_a_newer_put_replaces_the_older_entry(cache):
    cache.put("k", "old", data_time=DATA_TIME)
    cache.put("k", "new", data_time=DATA_TIME + 60 * SECOND)
    assert cache.get("k", as_of=DATA_TIME + 60 * SECOND) == "new"
    assert cache.get("k", as_of=DATA_TIME + 30 * SECOND) is None  # "new" is after that as_of


def test_the_in_process_cache_defaults_to_sixty_seconds():
    cache = TimedCache()
    cache.put("funding:BTC/USDT", 0.0001, data_time=DATA_TIME)
    assert cache.get("funding:BTC/USDT", as_of=DATA_TIME + 60 * SECOND) == 0.0001
    assert cache.get("funding:BTC/USDT", as_of=DATA_TIME + 61 * SECOND) is None


def test_the_in_process_cache_forgets_the_oldest_writes_beyond_its_size():
    cache = TimedCache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, key, data_time=DATA_TIME)
    assert len(cache) == 2
    assert cache.get("a", as_of=DATA_TIME) is None
    assert cache.get("c", as_of=DATA_TIME) == "c"


@pytest.mark.redis
def test_the_redis_cache_is_shared_between_instances_and_has_an_async_api(redis_cache):
    other = RedisTimedCache(REDIS_URL, ttl_seconds=300, prefix=redis_cache.prefix)

    async def scenario() -> tuple[object, object, object]:
        await redis_cache.aput("derived:ETH/USDT", {"score": 71.5}, data_time=DATA_TIME)
        seen = await other.aget("derived:ETH/USDT", as_of=DATA_TIME + 10 * SECOND)
        too_early = await other.aget("derived:ETH/USDT", as_of=DATA_TIME - SECOND)
        too_late = await other.aget("derived:ETH/USDT", as_of=DATA_TIME + 301 * SECOND)
        await redis_cache.aclose()
        await other.aclose()
        return seen, too_early, too_late

    assert asyncio.run(scenario()) == ({"score": 71.5}, None, None)
    assert other.get("derived:ETH/USDT", as_of=DATA_TIME) == {"score": 71.5}  # sync sees it too
    other.close()


@pytest.mark.redis
def test_the_redis_cache_lets_redis_drop_entries_after_twice_the_ttl(redis_cache):
    import redis

    redis_cache.put("k", 1, data_time=DATA_TIME)
    client = redis.Redis.from_url(REDIS_URL)
    expires_in_ms = client.pttl(redis_cache.key("k"))
    client.close()
    assert 590_000 < expires_in_ms <= 600_000


@pytest.mark.redis
def test_the_redis_cache_treats_a_damaged_entry_as_a_miss(redis_cache):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.set(redis_cache.key("k"), b"not json")
    client.close()
    assert redis_cache.get("k", as_of=DATA_TIME) is None
