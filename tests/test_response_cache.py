"""Cached reads (core/read_cache.py, issue 17): the performance answers and the unified ranking are
served from the read cache, equal to a fresh computation, fresh again after the writes that change
them (through the real writers, and across processes), and never shared between users, watchlists
or windows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core import read_cache
from market.models import ReplayClock
from scanners.models import RunStatus, WatchlistCoin
from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalFactory,
    UnifiedRankingFactory,
    UserFactory,
    WatchlistFactory,
    hourly_candles,
)
from tests.killed_worker import worker_env
from tests.processes import celery_worker, flushed_redis_db, sending_app
from tracking.models import CheckStatus, OutcomeCheck
from tracking.outcomes import checks_create_for, checks_run
from tracking.services import scan_finish

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
NOW = START + 10 * DAY
RANKING = "/api/scan/unified-ranking"
PERFORMANCE = [
    f"/api/performance/{name}?days=30"
    for name in (
        "stats",
        "report",
        "by-scanner",
        "by-tier",
        "by-interval",
        "by-signal-type",
        "by-symbol",
        "top-performers",
        "recommendations",
    )
]
RANKINGS = [RANKING, f"{RANKING}?tier=TIER_1", f"{RANKING}?limit=1&offset=1"]
# The tables the answers are computed from: a request that reads none was served from the cache.
SOURCES = ("tracking_outcomerollup", "tracking_outcomecheck", "tracking_signal", "scoring_")


@pytest.fixture
def clock(settings):
    """A replay standing at NOW: the window's end is the clock's, the same for every request."""
    settings.MARKET_SOURCE = "replay"
    return ReplayClock.objects.create(
        pk=1, market_time=NOW, start=START, end=NOW + DAY, step=timedelta(hours=1)
    )


@pytest.fixture
def outcomes(clock):
    """Four checked 24h outcomes of BTC and ETH signals in the last week, and a ranking."""
    for index, (symbol, direction, tier, return_pct) in enumerate(
        [
            ("BTC/USDT", "LONG", "TIER_1", 8.0),
            ("ETH/USDT", "SHORT", "TIER_2", 4.0),
            ("BTC/USDT", "SHORT", "TIER_1", -6.0),
            ("ETH/USDT", "LONG", "", 1.0),
        ]
    ):
        signal = SignalFactory(
            scanner=("rsi", "mss")[index % 2],
            symbol=symbol,
            direction=direction,
            tier=tier,
            as_of=NOW - (index + 2) * DAY,
        )
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct)
    run = ScanRunFactory(scanner="all", as_of=NOW - DAY)
    for symbol, score, tier in [("BTC/USDT", 90.0, "TIER_1"), ("ETH/USDT", 72.0, "TIER_2")]:
        UnifiedRankingFactory(scan_run=run, symbol=symbol, unified_score=score, tier=tier)


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def reads_sources(path: str, client: APIClient) -> tuple[bytes, bool]:
    """The answer's body, and whether answering it read any table it is computed from."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    read = any(source in query["sql"] for query in queries for source in SOURCES)
    return response.content, read


def results(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["symbol"] for row in response.json()["data"]["results"]]


# --- a cached answer is the fresh one ------------------------------------------------------------


@pytest.mark.parametrize("path", PERFORMANCE + RANKINGS)
def test_a_cached_answer_is_byte_for_byte_the_fresh_one(api, outcomes, settings, path):
    computed, computing_read = reads_sources(path, api)
    cached, cached_read = reads_sources(path, api)
    settings.READ_CACHE_SECONDS = 0  # the cache off: computed again
    fresh, fresh_read = reads_sources(path, api)
    assert (computing_read, cached_read, fresh_read) == (True, False, True)
    assert cached == computed == fresh


def test_a_window_with_until_is_cached_live_and_equals_the_fresh_one(api, settings):
    # Live (no replay clock): an explicit window does not depend on the wall clock's now.
    settings.MARKET_SOURCE = "binance"
    CheckedOutcomeFactory(signal=SignalFactory(as_of=START + DAY), return_pct=9.0)
    path = "/api/performance/report?since=2024-01-01&until=2024-01-10"
    computed, _ = reads_sources(path, api)
    cached, cached_read = reads_sources(path, api)
    settings.READ_CACHE_SECONDS = 0
    fresh, _ = reads_sources(path, api)
    assert not cached_read
    assert cached == computed == fresh


def test_the_replay_clock_moving_on_gives_a_fresh_window(api, outcomes, clock):
    before = api.get("/api/performance/stats?days=4").json()["data"]
    clock.market_time = NOW + DAY
    clock.save()
    after = api.get("/api/performance/stats?days=4").json()["data"]
    assert (before["as_of"], before["total_signals"]) == ("2024-01-11T00:00:00Z", 2)
    assert (after["as_of"], after["total_signals"]) == ("2024-01-12T00:00:00Z", 1)


# --- fresh after the writes that change them ------------------------------------------------


@pytest.fixture
def priced_coin() -> str:
    """X/USDT and BTC with hourly closes of 100 from START for ten days (the clock's NOW)."""
    for base in ("X", "BTC"):
        hourly_candles(MarketFactory(base=base), [100.0] * 240)
    return "X/USDT"


def test_an_outcome_check_written_by_the_checks_worker_code_is_in_the_next_answer(
    api, clock, priced_coin
):
    signal = SignalFactory(symbol=priced_coin, as_of=NOW - 3 * DAY, entry_price=90.0)
    checks_create_for(signal)
    path = "/api/performance/stats?days=30"
    before = api.get(path).json()["data"]
    daily = OutcomeCheck.objects.get(signal=signal, horizon="24h")
    assert checks_run([daily.pk])["done"] == 1
    after = api.get(path).json()["data"]
    assert (before["outcomes_checked"], before["outcomes_pending"]) == (0, 1)
    assert (after["outcomes_checked"], after["wins"]) == (1, 1)


def test_a_recorded_signal_is_in_the_next_answer(api, outcomes):
    before = api.get("/api/performance/stats?days=30").json()["data"]
    SignalFactory(symbol="SOL/USDT", as_of=NOW - DAY)
    after = api.get("/api/performance/stats?days=30").json()["data"]
    assert after["total_signals"] == before["total_signals"] + 1


def test_a_finished_scan_is_in_the_next_ranking(api, outcomes, priced_coin):
    before = results(api.get(RANKING))
    run = ScanRunFactory(scanner="rsi", as_of=NOW, symbols=[priced_coin], status=RunStatus.RUNNING)
    ScanResultFactory(run=run, symbol=priced_coin, component={"LONG": 99.0, "SHORT": 0.0})
    scan_finish(run.pk)
    after = results(api.get(RANKING))
    assert before == ["BTC/USDT", "ETH/USDT"]
    assert priced_coin in after
    assert set(after) - {priced_coin} == set(before)


def test_with_read_cache_seconds_0_a_write_no_writer_reports_is_seen_at_once(
    api, outcomes, settings
):
    settings.READ_CACHE_SECONDS = 0
    before = api.get("/api/performance/stats?days=30").json()["data"]
    # A queryset update sends no signal and bumps nothing: only an uncached read sees it.
    OutcomeCheck.objects.filter(outcome="NEUTRAL").update(status=CheckStatus.PENDING)
    after = api.get("/api/performance/stats?days=30").json()["data"]
    assert after["outcomes_pending"] == before["outcomes_pending"] + 1


def test_an_unreachable_cache_still_answers_the_fresh_answer(api, outcomes, settings):
    fresh = api.get("/api/performance/report?days=30").content
    settings.CACHES = {
        **settings.CACHES,
        settings.READ_CACHE: {
            "BACKEND": "core.redis_cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        },
    }
    response = api.get("/api/performance/report?days=30")
    assert response.status_code == 200
    assert response.content == fresh


# --- never shared ------------------------------------------------------------------------------


def test_each_users_watchlist_ranking_is_their_own(outcomes):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    lists = {}
    for owner, symbol in ((alice, "BTC/USDT"), (bob, "ETH/USDT")):
        lists[owner] = WatchlistFactory(owner=owner)
        WatchlistCoin.objects.create(watchlist=lists[owner], symbol=symbol)
    mine = results(client_of(alice).get(RANKING, {"watchlist": lists[alice].pk}))
    theirs = results(client_of(bob).get(RANKING, {"watchlist": lists[bob].pk}))
    refused = client_of(bob).get(RANKING, {"watchlist": lists[alice].pk})
    assert (mine, theirs) == (["BTC/USDT"], ["ETH/USDT"])
    assert refused.status_code == 400


def test_each_users_watchlist_performance_is_their_own(outcomes):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    counts = {}
    for owner, symbols in ((alice, ["BTC/USDT"]), (bob, ["BTC/USDT", "ETH/USDT"])):
        watchlist = WatchlistFactory(owner=owner)
        for symbol in symbols:
            WatchlistCoin.objects.create(watchlist=watchlist, symbol=symbol)
        path = f"/api/performance/stats?days=30&watchlist={watchlist.pk}"
        counts[owner.username] = client_of(owner).get(path).json()["data"]["total_signals"]
    assert counts == {"alice": 2, "bob": 4}


def test_a_coin_added_to_a_watchlist_is_in_its_next_answer(api, user, outcomes):
    watchlist = WatchlistFactory(owner=user)
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="BTC/USDT")
    before = results(api.get(RANKING, {"watchlist": watchlist.pk}))
    WatchlistCoin.objects.bulk_create([WatchlistCoin(watchlist=watchlist, symbol="ETH/USDT")])
    after = results(api.get(RANKING, {"watchlist": watchlist.pk}))
    assert (before, after) == (["BTC/USDT"], ["BTC/USDT", "ETH/USDT"])


def test_each_users_manual_signals_are_their_own(outcomes):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for owner, return_pct in ((alice, 10.0), (bob, -10.0)):
        signal = SignalFactory(scanner="manual", owner=owner, as_of=NOW - DAY)
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct)
    path = "/api/performance/stats?days=30&scanner=manual"
    alices = client_of(alice).get(path).json()["data"]
    bobs = client_of(bob).get(path).json()["data"]
    assert (alices["wins"], alices["losses"]) == (1, 0)
    assert (bobs["wins"], bobs["losses"]) == (0, 1)


def test_windows_and_pages_are_cached_apart(api, outcomes):
    week = api.get("/api/performance/stats?days=4").json()["data"]["total_signals"]
    month = api.get("/api/performance/stats?days=30").json()["data"]["total_signals"]
    first = results(api.get(RANKING, {"limit": 1}))
    second = results(api.get(RANKING, {"limit": 1, "offset": 1}))
    assert (week, month) == (2, 4)
    assert (first, second) == (["BTC/USDT"], ["ETH/USDT"])


# --- across processes ----------------------------------------------------------------------------

WORKER_SETTINGS = """
MARKET_SOURCE = "replay"  # with the test's replay clock: market time and stored candles only
"""


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_check_written_by_a_celery_worker_is_in_the_web_processs_next_answer(
    settings, clock, priced_coin, tmp_path: Path
):
    with flushed_redis_db("redis://127.0.0.1:6379/12") as redis_url:
        # This process reads the cache the worker bumps, as gunicorn's workers do.
        settings.CACHES = {
            **settings.CACHES,
            settings.READ_CACHE: {
                "BACKEND": "core.redis_cache.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": "cryptosatx-reads",
            },
        }
        env = worker_env(
            tmp_path,
            "read_cache_worker",
            WORKER_SETTINGS,
            redis_url,
            READ_CACHE_REDIS_URL=redis_url,
        )
        signal = SignalFactory(symbol=priced_coin, as_of=NOW - 3 * DAY, entry_price=90.0)
        checks_create_for(signal)
        daily = OutcomeCheck.objects.get(signal=signal, horizon="24h")
        api = client_of(UserFactory(username="alice"))
        path = "/api/performance/stats?days=30"
        before = api.get(path).json()["data"]
        _, cached_read = reads_sources(path, api)
        with (
            celery_worker(
                queues="outcomes", name="read-cache", env=env, log=tmp_path / "worker.log"
            ),
            sending_app(redis_url, "cryptosatx-read-cache-test") as app,
        ):
            # The task's result comes back once checks_run has returned: written, committed and
            # bumped (the row turns DONE at the commit, a moment before the bump).
            sent = app.send_task("tracking.run_outcome_checks", args=[[daily.pk]], queue="outcomes")
            # An in-process worker of an earlier test leaves Celery's "inside a task" flag set in
            # this process; this wait is the test's, not a task's.
            counts = sent.get(timeout=60, disable_sync_subtasks=False)
        after = api.get(path).json()["data"]
    assert not cached_read
    assert counts["done"] == 1
    assert (before["outcomes_checked"], after["outcomes_checked"], after["wins"]) == (0, 1, 1)


# --- a page encoded once ----------------------------------------------------------------------

ROWS = [
    {"symbol": "BTC/USDT", "score": 91.25, "as_of": START, "note": "line\u2028break", "gone": None},
    {"symbol": "ÉTH/USDT", "score": float("1e-7"), "breakdown": {"rsi": {"weight": 0.15}}},
]


@pytest.mark.parametrize("accepted", ["application/json", "application/json; indent=2"])
def test_rows_encoded_once_render_as_the_rows_themselves(accepted):
    from core.api import EnvelopeJSONRenderer, RenderedJSON

    renderer = EnvelopeJSONRenderer()
    plain = renderer.render({"count": 2, "results": ROWS}, accepted)
    rendered = renderer.render({"count": 2, "results": RenderedJSON.of(ROWS)}, accepted)
    assert rendered == plain


def test_bumps_deferred_move_each_namespace_once_when_the_block_ends(settings) -> None:
    settings.READ_CACHE_SECONDS = 60
    before = read_cache.generations(read_cache.NAMESPACES)
    with read_cache.bumps_deferred():
        for _ in range(3):
            read_cache.bump(read_cache.RANKING)
        with read_cache.bumps_deferred():
            read_cache.bump(read_cache.PERFORMANCE)
        inside = read_cache.generations(read_cache.NAMESPACES)
    after = read_cache.generations(read_cache.NAMESPACES)

    assert inside == before
    assert after == {name: before[name] + 1 for name in read_cache.NAMESPACES}
