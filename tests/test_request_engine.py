"""The request engine: shared weight budget, bans, retries, adaptive concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from httpengine import registry
from httpengine.bans import LocalBanRegistry, RedisBanRegistry
from httpengine.budgets import LocalBudget, RedisBudget
from httpengine.calls import (
    BadResponse,
    Banned,
    PermanentError,
    RateLimited,
    Reply,
    TransientError,
    show_epoch,
)
from httpengine.engine import RequestEngine
from httpengine.limiter import AdaptiveLimiter

REDIS_URL = "redis://127.0.0.1:6379/14"
ROOT = Path(__file__).resolve().parent.parent
MINUTE = 60
START = 60 * 28_333_333 + 10  # 10 s into a wall-clock minute


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = START) -> None:
        self.t = float(start)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)


class Script:
    """A call that answers with the given outcomes in turn (the last one repeats)."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = outcomes
        self.calls = 0

    async def __call__(self) -> Reply:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, Reply)
        return outcome


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_prefix():
    import redis

    prefix = f"test-engine:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def make_engine(clock: FakeClock, **options: object) -> RequestEngine:
    settings: dict[str, object] = {
        "name": "binance-spot",
        "limit_per_minute": 1000,
        "budget": LocalBudget(now=clock, sleep=clock.sleep),
        "max_concurrent": 8,
        "retries": 3,
        "bans": LocalBanRegistry(now=clock),
        "now": clock,
        "sleep": clock.sleep,
        "rng": random.Random(7),
    }
    settings.update(options)
    return RequestEngine(**settings)  # type: ignore[arg-type]


def budgets(clock: FakeClock, prefix: str | None) -> LocalBudget | RedisBudget:
    if prefix is None:
        return LocalBudget(now=clock, sleep=clock.sleep, jitter_seconds=0.2)
    return RedisBudget(REDIS_URL, prefix=prefix, now=clock, sleep=clock.sleep, jitter_seconds=0.2)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def budget_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def budget(budget_kind: str, clock: FakeClock, request: pytest.FixtureRequest):
    if budget_kind == "local":
        return budgets(clock, None)
    return budgets(clock, request.getfixturevalue("redis_prefix"))


async def _close(budget: object) -> None:
    if isinstance(budget, RedisBudget):
        await budget.aclose()


# --- budget ------------------------------------------------------------------------------------


def test_a_budget_never_gives_more_than_its_limit_within_a_minute(budget, clock):
    async def scenario() -> dict[int, int]:
        taken: dict[int, int] = defaultdict(int)
        for _ in range(40):
            window = await budget.acquire("binance-spot", 7, 50)
            assert window == int(clock() // MINUTE), "weight is counted in the minute it is sent"
            taken[window] += 7
        await _close(budget)
        return taken

    taken = asyncio.run(scenario())
    assert all(total <= 50 for total in taken.values())
    assert sum(taken.values()) == 40 * 7
    assert len(taken) == 6  # 7 takes of 7 fit in each minute


def test_a_spent_budget_waits_until_the_next_minute_starts(budget, clock):
    async def scenario() -> tuple[int, int]:
        first = await budget.acquire("binance-futures", 50, 50)
        assert clock.sleeps == []
        second = await budget.acquire("binance-futures", 1, 50)
        await _close(budget)
        return first, second

    first, second = asyncio.run(scenario())
    assert second == first + 1
    assert len(clock.sleeps) == 1
    assert 50 <= clock.sleeps[0] <= 50.2  # the rest of the minute plus a little jitter
    assert clock() >= (first + 1) * MINUTE


def test_budgets_of_different_names_do_not_share_weight(budget, clock):
    async def scenario() -> None:
        await budget.acquire("binance-spot", 50, 50)
        await budget.acquire("binance-futures", 50, 50)
        await _close(budget)

    asyncio.run(scenario())
    assert clock.sleeps == []


def test_sync_used_raises_the_counter_to_the_servers_count_but_never_lowers_it(budget, clock):
    async def scenario() -> list[int]:
        seen = []
        await budget.acquire("binance-spot", 10, 100)
        await budget.sync_used("binance-spot", 95)
        seen.append(await _used(budget))
        await budget.sync_used("binance-spot", 20)
        seen.append(await _used(budget))
        await budget.acquire("binance-spot", 5, 100)  # 95 + 5 still fits
        seen.append(await _used(budget))
        await budget.acquire("binance-spot", 1, 100)  # does not: the next minute
        seen.append(await _used(budget))
        await _close(budget)
        return seen

    assert asyncio.run(scenario()) == [95, 95, 100, 1]
    assert len(clock.sleeps) == 1


@pytest.mark.redis
def test_a_server_count_no_higher_than_the_shared_counter_costs_no_redis_round_trip(
    redis_prefix, clock
):
    budget = budgets(clock, redis_prefix)
    sent: list[int] = []

    async def scenario() -> int:
        await budget.acquire("binance-spot", 10, 100)
        client = budget._clients.get()
        original = client.eval

        async def counted(script, keys, *args):
            sent.append(int(args[1]))
            return await original(script, keys, *args)

        client.eval = counted
        await budget.sync_used("binance-spot", 10)  # what this process took: known already
        await budget.sync_used("binance-spot", 4)
        await budget.sync_used("binance-spot", 30)  # other clients on the IP: sent
        await budget.sync_used("binance-spot", 30)
        used = await budget.used("binance-spot")
        await _close(budget)
        return used

    assert asyncio.run(scenario()) == 30
    assert sent == [30]


async def _used(budget: LocalBudget | RedisBudget) -> int:
    if isinstance(budget, RedisBudget):
        return await budget.used("binance-spot")
    return budget.used("binance-spot")


def test_a_weight_larger_than_the_whole_limit_is_granted_alone_in_a_fresh_minute(clock):
    budget = budgets(clock, None)

    async def scenario() -> tuple[int, int]:
        await budget.acquire("coingecko", 1, 10)
        return await budget.acquire("coingecko", 25, 10), await budget.acquire("coingecko", 1, 10)

    big, after = asyncio.run(scenario())
    assert after == big + 1
    assert len(clock.sleeps) == 2


CHILD = r"""
import asyncio, json, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
from httpengine.budgets import RedisBudget

url, prefix, limit, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
# Imports done: say so, then wait for the common start time (slow imports on a busy machine
# must not eat into the measured seconds).
print("ready", flush=True)
start_at = float(sys.stdin.readline())

async def main():
    budget = RedisBudget(url, prefix=prefix, window_seconds=1.0, jitter_seconds=0.01)
    got = {}
    while time.time() < start_at:
        await asyncio.sleep(0.001)
    end = start_at + seconds

    async def worker(weight):
        while time.time() < end:
            window = await budget.acquire("binance-spot", weight, limit)
            got[window] = got.get(window, 0) + weight

    await asyncio.gather(*(worker(weight) for weight in (1, 2, 3, 1, 2)))
    await budget.aclose()
    print(json.dumps(got))

asyncio.run(main())
"""


@pytest.mark.redis
def test_two_processes_sharing_one_redis_budget_never_exceed_the_limit_together(redis_prefix):
    limit = 50
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                REDIS_URL,
                redis_prefix,
                str(limit),
                "2.0",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
    start_at = time.time() + 0.2  # both children start taking at once
    for child in children:
        child.stdin.write(f"{start_at}\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        results.append({int(window): weight for window, weight in json.loads(out).items()})

    together: dict[int, int] = defaultdict(int)
    for got in results:
        for window, weight in got.items():
            together[window] += weight
    assert all(total <= limit for total in together.values()), dict(together)
    assert len(together) >= 2  # the limit did bind: the processes had to wait for new windows
    assert any(total == limit for total in together.values())  # and they used all of it
    shared = set(results[0]) & set(results[1])
    assert shared, "both processes took weight in the same windows"


# --- retries, 429 and 418 ----------------------------------------------------------------------


def test_a_429_waits_its_retry_after_then_succeeds(clock):
    engine = make_engine(clock)
    call = Script(RateLimited(7), Reply("ok", used_weight=3))

    assert asyncio.run(engine.run(call, weight=2, what="klines BTC/USDT")) == "ok"
    assert call.calls == 2
    assert 7 in clock.sleeps
    metrics = engine.metrics()
    assert metrics["http_429"] == 1
    assert metrics["retries"] == 1
    assert metrics["requests"] == 2


def test_a_429_marks_the_minute_spent_so_no_process_sends_again_before_the_next(clock):
    budget = LocalBudget(now=clock, sleep=clock.sleep, jitter_seconds=0)
    engine = make_engine(clock, budget=budget, limit_per_minute=100)
    call = Script(RateLimited(1), Reply("ok"))

    asyncio.run(engine.run(call, weight=1, what="ticker"))
    assert clock() >= (START // MINUTE + 1) * MINUTE


def test_repeated_429s_give_up_after_their_own_cap(clock):
    engine = make_engine(clock, rate_limit_retries=2)
    call = Script(RateLimited(1))

    with pytest.raises(RateLimited, match="3 attempts"):
        asyncio.run(engine.run(call, weight=1, what="ticker BTC/USDT"))
    assert call.calls == 3


def test_a_418_records_the_ban_and_later_calls_fail_at_once_until_it_ends(clock, caplog):
    bans = LocalBanRegistry(now=clock)
    engine = make_engine(clock, bans=bans, max_ban_wait=60)
    until = clock() + 300
    call = Script(Banned(until), Reply("ok"))

    with caplog.at_level(logging.WARNING, logger="httpengine.engine"):
        with pytest.raises(Banned):
            asyncio.run(engine.run(call, weight=1, what="klines BTC/USDT"))
        assert asyncio.run(bans.banned_until("binance-spot")) == until
        with pytest.raises(Banned, match="not sent") as refused:
            asyncio.run(engine.run(call, weight=1, what="klines ETH/USDT"))

    assert refused.value.until == until
    assert call.calls == 1  # the banned engine sent nothing more
    assert clock.sleeps == []  # and did not hang
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "binance-spot" in warnings[0].getMessage()
    assert show_epoch(until) in warnings[0].getMessage()
    assert bans.active_bans() == {"binance-spot": until}
    assert engine.metrics()["http_418"] == 1

    clock.t = until + 1
    assert asyncio.run(engine.run(call, weight=1, what="klines ETH/USDT")) == "ok"
    assert bans.active_bans() == {}


async def _pings(engine: RequestEngine, base: str, clock: FakeClock, count: int) -> list:
    """`count` concurrent pings of the fake exchange through `engine`; the answers or errors."""
    import aiohttp

    async with aiohttp.ClientSession() as session:

        async def ping() -> Reply:
            async with session.get(f"{base}/api/v3/ping") as response:
                if response.status == 418:
                    raise Banned(clock() + float(response.headers["Retry-After"]))
                if response.status == 429:
                    raise RateLimited(float(response.headers["Retry-After"]))
                response.raise_for_status()
                used = int(response.headers["X-MBX-USED-WEIGHT-1M"])
                return Reply(await response.json(), used_weight=used)

        return await asyncio.gather(
            *(engine.run(ping, weight=1, what=f"ping {n}") for n in range(count)),
            return_exceptions=True,
        )


def test_after_a_418_no_request_waiting_for_weight_or_a_slot_reaches_the_exchange(clock, tmp_path):
    from fakes.exchange import FakeExchange

    # The engine allows 4 weight a minute, the fake 3, and the fake bans at the first excess:
    # the 4th ping gets the 418 while 16 wait, one for the next minute's weight, the rest for
    # the one concurrency slot.
    fake = FakeExchange(
        tmp_path, now=START * 1000, clock=clock, spot_weight_limit=3, ban_after=0, ban_seconds=600
    )
    engine = make_engine(
        clock, limit_per_minute=4, usable_share=1.0, max_concurrent=1, max_ban_wait=60
    )
    with fake.running_in_thread() as base:
        answers = asyncio.run(_pings(engine, base, clock, 20))
        reached_during_the_ban = sum(fake.requests.values())
        waited_until = clock()
        banned_until = START + 600
        clock.t = banned_until + 1
        after_the_ban = asyncio.run(_pings(engine, base, clock, 2))

    assert reached_during_the_ban == 4
    assert fake.sent_418["spot"] == 1
    assert answers[:3] == [{}, {}, {}]
    assert all(isinstance(answer, Banned) for answer in answers[3:])
    assert all("not sent" in str(answer) for answer in answers[4:])
    assert waited_until > START + 60  # the waiting ones saw the next minutes open
    assert after_the_ban == [{}, {}]
    assert sum(fake.requests.values()) == 6


def test_a_ban_shorter_than_the_longest_wait_is_waited_out(clock):
    bans = LocalBanRegistry(now=clock)
    asyncio.run(bans.ban("coingecko", clock() + 20, "HTTP 418"))
    engine = make_engine(clock, name="coingecko", bans=bans, max_ban_wait=60)
    call = Script(Reply([1, 2]))

    assert asyncio.run(engine.run(call, weight=1, what="trending")) == [1, 2]
    assert 20 <= clock.sleeps[0] <= 20.1


def test_transient_errors_are_retried_with_backoff_then_raised_with_the_attempt_count(clock):
    engine = make_engine(clock, retries=3)
    call = Script(TransientError("HTTP 503"))

    with pytest.raises(TransientError) as failure:
        asyncio.run(engine.run(call, weight=1, what="funding BTC/USDT:USDT"))

    message = str(failure.value)
    assert "funding BTC/USDT:USDT" in message
    assert "4 attempts" in message
    assert "HTTP 503" in message
    assert call.calls == 4
    assert len(clock.sleeps) == 3
    for retry, delay in enumerate(clock.sleeps, start=1):
        assert 0 <= delay <= min(10, 0.5 * 2 ** (retry - 1))
    assert engine.metrics()["retries"] == 3
    assert engine.metrics()["transient_errors"] == 4


def test_a_transient_error_that_passes_gives_the_answer(clock):
    engine = make_engine(clock)
    call = Script(TransientError("timeout"), TimeoutError(), Reply({"a": 1}))

    assert asyncio.run(engine.run(call, weight=1, what="open interest")) == {"a": 1}
    assert call.calls == 3


def test_backoff_has_full_jitter_and_a_cap_of_ten_seconds(clock):
    engine = make_engine(clock)
    delays = [engine.backoff(12) for _ in range(500)]
    assert max(delays) <= 10
    assert min(delays) < 1 < 9 < max(delays)


@pytest.mark.parametrize("error", [PermanentError("HTTP 400 bad symbol"), BadResponse("not JSON")])
def test_permanent_errors_are_not_retried(clock, error):
    engine = make_engine(clock)
    call = Script(error)

    with pytest.raises(type(error)):
        asyncio.run(engine.run(call, weight=1, what="klines NOPE/USDT"))
    assert call.calls == 1
    assert clock.sleeps == []


def test_the_servers_used_weight_is_synced_into_the_budget(clock):
    budget = LocalBudget(now=clock, sleep=clock.sleep)
    engine = make_engine(clock, budget=budget, limit_per_minute=100)

    asyncio.run(engine.run(Script(Reply("ok", used_weight=60)), weight=2, what="x"))
    assert budget.used("binance-spot") == 60


def test_the_engine_keeps_a_safety_margin_below_the_limit(clock):
    budget = LocalBudget(now=clock, sleep=clock.sleep, jitter_seconds=0)
    engine = make_engine(clock, budget=budget, limit_per_minute=100, usable_share=0.95)

    async def scenario() -> None:
        for _ in range(96):
            await engine.run(Script(Reply(None)), weight=1, what="x")

    asyncio.run(scenario())
    assert engine.usable_limit == 95
    assert len(clock.sleeps) == 1  # the 96th waited for the next minute


def test_requests_of_one_quota_wait_for_its_next_window_while_another_quota_goes_at_once(clock):
    window = 300
    budget = LocalBudget(window_seconds=window, now=clock, sleep=clock.sleep, jitter_seconds=0)
    engine = make_engine(
        clock, name="binance-futures-data", budget=budget, limit_per_minute=2, usable_share=1
    )

    async def send(quota: str) -> None:
        await engine.run(Script(Reply(None)), weight=1, what=quota, quota=quota)

    async def scenario() -> None:
        await send("openInterestHist")
        await send("openInterestHist")
        await send("takerlongshortRatio")
        assert clock.sleeps == []
        await send("openInterestHist")

    asyncio.run(scenario())
    assert clock() >= (START // window + 1) * window  # the third waited for the next window
    assert budget.used("binance-futures-data:openInterestHist") == 1
    assert budget.used("binance-futures-data") == 0


def test_a_request_waiting_for_its_quotas_next_window_holds_no_shared_slot(clock):
    window_opens = asyncio.Event()

    async def sleep_until_the_window_opens(seconds: float) -> None:
        await window_opens.wait()
        clock.t += seconds

    budget = LocalBudget(now=clock, sleep=sleep_until_the_window_opens, jitter_seconds=0)
    shared = AdaptiveLimiter(1, name="binance")
    ratios = make_engine(
        clock, name="binance-futures-data", budget=budget, limit_per_minute=1, limiter=shared
    )
    klines = make_engine(clock, budget=budget, limiter=shared)

    async def scenario() -> None:
        await ratios.run(Script(Reply(None)), weight=1, what="ratio", quota="ratio")
        waiting = asyncio.create_task(
            ratios.run(Script(Reply("ratio")), weight=1, what="ratio", quota="ratio")
        )
        answer = await asyncio.wait_for(
            klines.run(Script(Reply("klines")), weight=2, what="klines"), timeout=5
        )
        assert answer == "klines"
        assert not waiting.done()
        window_opens.set()
        assert await waiting == "ratio"

    asyncio.run(scenario())


def test_a_429_of_a_quota_marks_only_that_quota_spent(clock):
    budget = LocalBudget(now=clock, sleep=clock.sleep, jitter_seconds=0)
    engine = make_engine(clock, budget=budget, limit_per_minute=100, rate_limit_retries=0)

    with pytest.raises(RateLimited):
        asyncio.run(engine.run(Script(RateLimited(1)), weight=1, what="x", quota="ratio"))
    assert budget.used("binance-spot:ratio") == 100
    assert budget.used("binance-spot") == 0


# --- adaptive concurrency ----------------------------------------------------------------------


def test_the_limiter_halves_above_five_percent_errors_and_climbs_back_under_two(caplog):
    limiter = AdaptiveLimiter(16, window=50, name="binance-spot")
    changes = []
    with caplog.at_level(logging.INFO, logger="httpengine.engine"):
        for index in range(50):
            changes.append(limiter.record(error=index % 16 == 0))  # 4 of 50 = 8 %
    assert changes[-1] == 8
    assert limiter.limit == 8
    assert "concurrency limit 16 -> 8" in caplog.text

    for index in range(50):
        limiter.record(error=index == 0)  # 2 %: neither cut nor raised
    assert limiter.limit == 8
    for _ in range(50):
        limiter.record(error=False)
    assert limiter.limit == 9
    for _ in range(50 * 10):
        limiter.record(error=False)
    assert limiter.limit == 16  # never above the maximum


def test_the_limiter_never_goes_below_one():
    limiter = AdaptiveLimiter(2, window=10)
    for _ in range(100):
        limiter.record(error=True)
    assert limiter.limit == 1


def test_a_follow_up_page_is_sent_before_requests_that_start_a_read(clock):
    engine = make_engine(clock, max_concurrent=1)
    order: list[str] = []
    release_first = asyncio.Event()

    def recording(name: str):
        async def call() -> Reply:
            order.append(name)
            if name == "first":
                await release_first.wait()  # holds the only slot while the others queue
            return Reply(name)

        return call

    async def scenario() -> None:
        first = asyncio.create_task(engine.run(recording("first"), weight=1, what="x"))
        queued = [
            asyncio.create_task(engine.run(recording(name), weight=1, what="x", follow_up=ahead))
            for name, ahead in (("new read 1", False), ("new read 2", False), ("next page", True))
        ]
        while engine.limiter.waiting() < len(queued):
            await asyncio.sleep(0)
        release_first.set()
        await asyncio.gather(first, *queued)

    asyncio.run(scenario())
    assert order == ["first", "next page", "new read 1", "new read 2"]


def test_a_reply_is_finished_after_its_slot_went_to_the_next_request(clock):
    engine = make_engine(clock, max_concurrent=1)
    order: list[str] = []

    def recording(name: str):
        async def call() -> Reply:
            order.append(f"{name} sent")
            return Reply(name, finish=lambda body: order.append(f"{body} read") or body)

        return call

    async def scenario() -> list[str]:
        first = asyncio.create_task(engine.run(recording("first"), weight=1, what="x"))
        second = asyncio.create_task(engine.run(recording("second"), weight=1, what="x"))
        return await asyncio.gather(first, second)

    assert asyncio.run(scenario()) == ["first", "second"]
    assert order.index("second sent") < order.index("first read")


def test_a_finish_that_finds_a_bad_body_is_a_permanent_error_not_retried(clock):
    engine = make_engine(clock)

    def unreadable(body: str) -> str:
        raise BadResponse(f"klines: {body} is not JSON")

    call = Script(Reply("[[1,", finish=unreadable))

    with pytest.raises(BadResponse, match="is not JSON"):
        asyncio.run(engine.run(call, weight=1, what="klines"))
    assert call.calls == 1
    assert engine.metrics()["permanent_errors"] == 1


def test_an_engine_cuts_its_concurrency_under_errors_and_recovers(clock):
    engine = make_engine(clock, max_concurrent=8, retries=0)
    failing = Script(TransientError("HTTP 502"))
    working = Script(Reply("ok"))

    async def scenario() -> None:
        for index in range(50):
            call = failing if index % 10 == 0 else working
            with contextlib.suppress(TransientError):
                await engine.run(call, weight=1, what="x")
        assert engine.metrics()["concurrency_limit"] == 4
        for _ in range(200):
            await engine.run(working, weight=1, what="x")

    asyncio.run(scenario())
    assert engine.metrics()["concurrency_limit"] == 8


def _concurrency_probe():
    state = {"now": 0, "most": 0}

    async def call() -> Reply:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(0.002)
        state["now"] -= 1
        return Reply("ok")

    return state, call


def test_no_more_requests_are_in_flight_than_the_limit_even_over_successive_event_loops(clock):
    engine = make_engine(clock, max_concurrent=3)
    state, call = _concurrency_probe()

    async def burst() -> list[str]:
        return await asyncio.gather(*(engine.run(call, weight=1, what="x") for _ in range(20)))

    assert asyncio.run(burst()) == ["ok"] * 20
    assert asyncio.run(burst()) == ["ok"] * 20  # a new loop: nothing bound to the old one
    assert state["most"] == 3
    assert engine.metrics()["in_flight"] == 0


def test_threads_with_their_own_event_loops_share_one_concurrency_limit(clock):
    engine = make_engine(clock, max_concurrent=2)
    lock = threading.Lock()
    state = {"now": 0, "most": 0}

    async def call() -> Reply:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(0.002)
        with lock:
            state["now"] -= 1
        return Reply("ok")

    async def burst() -> None:
        await asyncio.gather(*(engine.run(call, weight=1, what="x") for _ in range(15)))

    threads = [threading.Thread(target=asyncio.run, args=(burst(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert state["most"] <= 2
    assert engine.metrics()["requests"] == 45
    assert engine.metrics()["in_flight"] == 0


def test_a_cancelled_waiter_does_not_leak_a_slot(clock):
    engine = make_engine(clock, max_concurrent=1)

    async def scenario() -> None:
        release = asyncio.Event()

        async def slow() -> Reply:
            await release.wait()
            return Reply("slow")

        first = asyncio.create_task(engine.run(slow, weight=1, what="slow"))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(engine.run(Script(Reply("x")), weight=1, what="x"))
        await asyncio.sleep(0)
        waiting.cancel()
        release.set()
        assert await first == "slow"
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await engine.run(Script(Reply("after")), weight=1, what="x") == "after"

    asyncio.run(scenario())
    assert engine.metrics()["in_flight"] == 0


# --- Redis-backed bans and engines -------------------------------------------------------------


@pytest.mark.redis
def test_a_ban_recorded_in_redis_is_seen_by_every_registry(redis_prefix):
    key = f"{redis_prefix}:bans"
    writer = RedisBanRegistry(REDIS_URL, key=key)
    reader = RedisBanRegistry(REDIS_URL, key=key, cache_seconds=0)
    until = time.time() + 120

    async def scenario() -> float | None:
        await writer.ban("binance-futures", until, "HTTP 418 from /fapi/v1/klines")
        await writer.ban("coingecko", time.time() - 1, "long over")
        seen = await reader.banned_until("binance-futures")
        await writer.aclose()
        await reader.aclose()
        return seen

    assert asyncio.run(scenario()) == pytest.approx(until)
    assert reader.active_bans() == {"binance-futures": pytest.approx(until)}
    details = reader.active_ban_details()
    assert details["binance-futures"]["reason"] == "HTTP 418 from /fapi/v1/klines"


@pytest.mark.redis
def test_an_engine_on_redis_works_across_successive_event_loops(redis_prefix, clock):
    engine = make_engine(
        clock,
        budget=RedisBudget(REDIS_URL, prefix=redis_prefix, now=clock, sleep=clock.sleep),
        bans=RedisBanRegistry(REDIS_URL, key=f"{redis_prefix}:bans", now=clock),
        limit_per_minute=1000,
    )

    async def one_batch() -> object:
        try:
            return await engine.run(Script(Reply(1, used_weight=40)), weight=5, what="x")
        finally:
            await engine.aclose()

    for _ in range(3):
        assert asyncio.run(one_batch()) == 1
    assert engine.metrics()["weight_used"] == 15


# --- engines from the settings -----------------------------------------------------------------


def test_engines_are_built_from_the_settings_in_process_without_redis(settings):
    settings.RATE_BUDGET_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://"
    settings.BINANCE_SPOT_WEIGHT_PER_MINUTE = 1234
    settings.COINGECKO_CALLS_PER_MINUTE = 12
    settings.PARALLEL_MAX_CONCURRENT = 7
    settings.REQUEST_RETRIES = 2

    engines = registry.build_engines()
    assert set(engines) == {
        "binance-spot",
        "binance-futures",
        "binance-futures-data",
        "coingecko",
        "lunarcrush",
    }
    spot = engines["binance-spot"]
    assert isinstance(spot.budget, LocalBudget)
    assert isinstance(spot.bans, LocalBanRegistry)
    assert spot.limit_per_minute == 1234
    assert spot.retries == 2
    assert spot.metrics()["concurrency_limit"] == 7
    assert engines["coingecko"].limit_per_minute == 12
    assert engines["coingecko"].budget is spot.budget
    futures_data = engines["binance-futures-data"]
    assert futures_data.limit_per_minute == 1000
    assert futures_data.budget.window_seconds == 300  # per 5 minutes, not per minute


def test_binance_spot_and_futures_share_one_concurrency_cap(settings):
    settings.RATE_BUDGET_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://"
    settings.PARALLEL_MAX_CONCURRENT = 7
    engines = registry.build_engines()
    assert engines["binance-spot"].limiter is engines["binance-futures"].limiter
    assert engines["coingecko"].limiter is not engines["binance-spot"].limiter
    assert engines["binance-futures"].metrics()["max_concurrent"] == 7


def test_engines_share_redis_from_the_budget_url_or_a_redis_broker(settings):
    settings.RATE_BUDGET_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/3"
    assert isinstance(registry.build_engines()["lunarcrush"].budget, RedisBudget)
    settings.RATE_BUDGET_REDIS_URL = "redis://127.0.0.1:6379/4"
    engine = registry.build_engines()["binance-futures"]
    assert isinstance(engine.budget, RedisBudget)
    assert engine.budget.url == "redis://127.0.0.1:6379/4"
    assert isinstance(engine.bans, RedisBanRegistry)


def test_engine_for_gives_the_same_engine_each_time_in_a_process(settings):
    settings.RATE_BUDGET_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://"
    registry.reset_engines()
    try:
        assert registry.engine_for("binance-spot") is registry.engine_for("binance-spot")
        assert registry.active_bans() == {}
        with pytest.raises(KeyError, match="known"):
            registry.engine_for("kraken")
    finally:
        registry.reset_engines()
