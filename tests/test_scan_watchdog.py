"""No scan stays stuck: the watchdog finishes a run whose worker died or whose chord was lost.

The faults are real: `celery -A cryptosatx worker` processes killed with SIGKILL, and a
redis-server of this module's own (on a free port: the shared Redis is never stopped) stopped and
started again between a run's last batch and its final step. The broker's visibility timeout is
the product's (15 min), so nothing in these tests is rescued by a redelivery: only the watchdog,
called as its service function (`scans_watch`) with SCAN_STALE_SECONDS made short in the test
process, as an operator may set it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from alerts.models import Alert
from cryptosatx.broker_checks import broker_timing_problems
from cryptosatx.celery import app as product_app
from scanners import scanning, watchdog
from scanners.models import CoinFailure, RunStatus, ScanBatch, ScanResult, ScanRun
from scoring.models import UnifiedRanking
from tests.factories import (
    START,
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    hourly_candles,
)
from tests.killed_worker import doomed_worker, worker_env
from tests.processes import (
    celery_worker,
    free_port,
    process,
    redis_server,
    sending_app,
    wait_until,
)
from tests.test_scan_pipeline import AS_OF, HOURS, make_coins
from tracking import services
from tracking.models import OutcomeCheck, Signal

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# What a worker logs when a task's result (and so its part of a chord) cannot reach the backend.
CHORD_REPORT_LOST = "Exception raised outside body: network:ConnectionError"

# Each batch sits `delay` seconds after marking its run running, before it reads the market:
# the tests kill its worker, or stop Redis, right there.
WORKER_SETTINGS = """
from tests.killed_worker import slow_in_worker

SCAN_BATCH_SIZE = 2
slow_in_worker("scanners.scanning.get_market_source", {delay})
"""


def scan_worker_env(tmp_path: Path, broker: str, *, delay: float = 2.0, **extra: str) -> dict:
    """The environment of a scans worker on `broker` and the test database, its batches slow."""
    settings = WORKER_SETTINGS.format(delay=delay)
    return worker_env(tmp_path, "watchdog_worker_settings", settings, broker, **extra)


def falling_coin(base: str) -> str:
    """A coin whose closes fall every hour: RSI 0, so the RSI rule fires LONG (a signal)."""
    market = MarketFactory(base=base)
    hourly_candles(market, [500.0 - 2 * hour for hour in range(HOURS)])
    return market.symbol


def run_of(run: ScanRun) -> ScanRun:
    return ScanRun.objects.get(pk=run.pk)


def stalled(run: ScanRun) -> bool:
    return run.pk in watchdog.stalled_runs()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A redis-server of the test's own, and a sending app on it made current."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with redis_server(port, tmp_path / "redis.log"), sending_app(url, "cryptosatx-watchdog-test"):
        yield url, port


@pytest.mark.django_db(transaction=True)
def test_a_scan_whose_worker_was_killed_is_finished_by_the_watchdog_with_its_final_step(
    tmp_path: Path, settings, broker: tuple[str, int]
) -> None:
    url, _port = broker
    settings.SCAN_BATCH_SIZE = 2
    settings.SCAN_STALE_SECONDS = 1
    symbols = [falling_coin("DIP"), *make_coins("AAA", "BBB", "CCC", "DDD", "EEE")]  # 3 batches
    env = scan_worker_env(tmp_path, url)

    with doomed_worker(
        queues="scans", name="doomed", env=env, log=tmp_path / "doomed.log"
    ) as kill_when:
        run = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)
        # The first batch marks the run running, then sits in its delay: kill it right there.
        kill_when(lambda: run_of(run).status == RunStatus.RUNNING, "the first batch")
    assert run_of(run).batches_done == 0, "the batch finished before its worker was killed"

    with celery_worker(queues="scans", name="rescuer", env=env, log=tmp_path / "rescuer.log"):
        # The two batches still queued run; the killed one stays unacknowledged in Redis, for the
        # 15 min visibility timeout: the chord cannot complete.
        wait_until(lambda: run_of(run).batches_done == 2, 60, f"batches 1, 2 (logs: {tmp_path})")
        wait_until(lambda: stalled(run), 30, "the run to stall")
        report = watchdog.scans_watch()
        assert report.resent == {run.pk: [0]}
        wait_until(
            lambda: run_of(run).status == RunStatus.FINISHED,
            120,
            f"the watchdog's chord to finish the run (logs: {tmp_path})",
        )

    run.refresh_from_db()
    assert (run.coins_total, run.coins_done, run.coins_failed) == (6, 6, 0)
    assert (run.batches_total, run.batches_done) == (3, 3)
    assert ScanBatch.objects.filter(run=run).count() == 3
    assert sorted(ScanResult.objects.filter(run=run).values_list("symbol", flat=True)) == sorted(
        symbols
    )
    assert UnifiedRanking.objects.filter(scan_run=run).count() == 6
    assert Signal.objects.filter(scan_run=run, scanner="rsi", symbol="DIP/USDT").exists()
    assert run.signals_recorded == Signal.objects.filter(scan_run=run).count()
    assert (run.watchdog_resends, run.watchdog_finishes) == (1, 0)
    assert "re-sent batch(es) 0 of 3" in run.watchdog_log


@pytest.mark.django_db(transaction=True)
def test_a_final_step_lost_to_a_redis_outage_is_run_again_by_the_watchdog(
    tmp_path: Path, settings, broker: tuple[str, int]
) -> None:
    url, port = broker
    settings.SCAN_BATCH_SIZE = 2
    settings.SCAN_STALE_SECONDS = 1
    symbols = [falling_coin("DIP"), *make_coins("AAA", "BBB")]  # two batches, run side by side
    env = scan_worker_env(tmp_path, url, delay=3.0)
    unacked = redis.Redis(port=port)
    log = tmp_path / "worker.log"

    with (
        ExitStack() as restarted,
        celery_worker(queues="scans", name="survivor", env=env, log=log, concurrency=2),
    ):
        run = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)
        # Both batches are in the worker's hands (unacknowledged), sitting in their delay.
        wait_until(lambda: unacked.hlen("unacked") == 2, 60, "both batches to be delivered")
        wait_until(lambda: run_of(run).status == RunStatus.RUNNING, 60, "a batch to start")
        # Redis goes down (and comes back empty: no persistence); the batches still write to
        # PostgreSQL, but their chord's count, kept in Redis, is gone with it.
        redis.Redis(port=port).shutdown(nosave=True)
        wait_until(lambda: run_of(run).batches_done == 2, 60, "both batches to be written")
        # Only once both have failed to report to the chord may Redis come back.
        wait_until(
            lambda: log.read_text().count(CHORD_REPORT_LOST) == 2, 60, "the chord reports to fail"
        )
        restarted.enter_context(redis_server(port, tmp_path / "redis-again.log"))
        wait_until(lambda: stalled(run), 30, "the run to stall")
        assert run_of(run).status == RunStatus.RUNNING, "the chord finished after all"
        report = watchdog.scans_watch()
        assert report.finishes == [run.pk]
        wait_until(
            lambda: run_of(run).status == RunStatus.FINISHED,
            120,
            f"the re-sent final step to finish the run (logs: {tmp_path})",
        )

    run.refresh_from_db()
    assert (run.batches_done, run.coins_done, run.coins_failed) == (2, 3, 0)
    assert UnifiedRanking.objects.filter(scan_run=run).count() == 3
    assert Signal.objects.filter(scan_run=run, scanner="rsi", symbol="DIP/USDT").exists()
    assert (run.watchdog_resends, run.watchdog_finishes) == (0, 1)
    assert "re-sent the final step" in run.watchdog_log


@pytest.mark.django_db
def test_a_run_without_progress_for_the_stale_window_does_not_block_a_new_scan(settings) -> None:
    symbols = make_coins("AAA")
    dead = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)
    ScanRun.objects.filter(pk=dead.pk).update(
        status=RunStatus.RUNNING,
        progressed_at=timezone.now() - timedelta(seconds=settings.SCAN_STALE_SECONDS + 1),
    )

    fresh = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)

    assert fresh.status == RunStatus.QUEUED
    assert run_of(dead).status == RunStatus.RUNNING  # left to the watchdog, not marked here


@pytest.mark.django_db
def test_a_run_that_progressed_within_the_stale_window_still_blocks_a_new_scan(settings) -> None:
    symbols = make_coins("AAA")
    live = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)
    ScanRun.objects.filter(pk=live.pk).update(
        status=RunStatus.RUNNING,
        created_at=timezone.now() - timedelta(hours=5),  # old, but its last batch was just now
        progressed_at=timezone.now() - timedelta(seconds=settings.SCAN_STALE_SECONDS - 60),
    )

    with pytest.raises(scanning.ScanRefused, match=rf"already running \(run #{live.pk}"):
        scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)


@pytest.mark.django_db
def test_a_run_stalled_past_the_resend_limit_is_failed_with_each_lost_coin_recorded(
    settings,
) -> None:
    run = ScanRunFactory(
        status=RunStatus.RUNNING,
        symbols=["A/USDT", "B/USDT", "C/USDT"],
        batch_size=2,
        batches_total=2,
        batches_done=1,
        coins_done=2,
        watchdog_stalls=settings.SCAN_WATCHDOG_MAX_RESENDS,
        progressed_at=timezone.now() - timedelta(seconds=settings.SCAN_STALE_SECONDS + 1),
    )
    ScanBatch.objects.create(run=run, number=0, coins_done=2)
    for symbol in ("A/USDT", "B/USDT"):
        ScanResultFactory(run=run, symbol=symbol)

    report = watchdog.scans_watch()

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert report.failed == {run.pk: run.error}
    assert run.error.startswith("the watchdog gave up: batch(es) 1 of 2 never completed")
    assert list(CoinFailure.objects.filter(run=run).values_list("symbol", "error")) == [
        ("C/USDT", run.error)
    ]
    assert run.coins_failed == 1
    assert run.finished_at is not None
    assert run.error in run.watchdog_log


@pytest.mark.django_db
def test_the_watchdog_leaves_a_run_that_progressed_within_the_stale_window_alone() -> None:
    run = ScanRunFactory(status=RunStatus.RUNNING, batches_done=0, progressed_at=timezone.now())

    report = watchdog.scans_watch()

    assert report.as_dict() == {"resent": {}, "finishes": [], "failed": {}}
    assert run_of(run).watchdog_stalls == 0


# --- the final step is idempotent ------------------------------------------------------------


@pytest.mark.django_db
def test_a_final_step_run_again_after_dying_midway_creates_nothing_twice(monkeypatch) -> None:
    market = MarketFactory(base="SIG")
    hourly_candles(market, [100.0 + hour for hour in range(240)])
    as_of = START + timedelta(hours=48)
    run = ScanRunFactory(as_of=as_of, symbols=[market.symbol], status=RunStatus.RUNNING)
    # An RSI of 10 fires the screener and is a TIER 2 alert on its own (RSI < 25).
    ScanResultFactory(
        run=run,
        symbol=market.symbol,
        direction="LONG",
        scores={"rsi": 10.0},
        component={"LONG": 90.0, "SHORT": 10.0},
    )

    def worker_lost(*args, **kwargs):
        raise RuntimeError("the worker died before marking the run finished")

    # The first attempt writes the ranking, signals, outcome checks and alerts, then dies.
    monkeypatch.setattr(services, "run_mark_finished", worker_lost)
    with pytest.raises(RuntimeError):
        services.scan_finish(run.pk)
    monkeypatch.undo()
    written = final_step_rows(run)
    assert all(written.values()), written

    services.scan_finish(run.pk)  # what the watchdog's re-sent final step runs

    assert final_step_rows(run) == written
    assert run_of(run).status == RunStatus.FINISHED
    assert run_of(run).signals_recorded == written["signals"]


def final_step_rows(run: ScanRun) -> dict[str, int]:
    return {
        "ranking": UnifiedRanking.objects.filter(scan_run=run).count(),
        "signals": Signal.objects.filter(scan_run=run).count(),
        "outcome checks": OutcomeCheck.objects.filter(signal__scan_run=run).count(),
        "alerts": Alert.objects.filter(signal__scan_run=run).count(),
    }


# --- the visibility timeout, checked at start-up -----------------------------------------------


def test_the_default_broker_timing_passes_the_start_up_check() -> None:
    assert broker_timing_problems(product_app) == []


def test_a_visibility_timeout_below_the_longest_task_time_limit_is_refused() -> None:
    app = Celery("cryptosatx-timing-test")
    app.config_from_object("celeryconfig")
    app.conf.broker_transport_options = {"visibility_timeout": 10}

    [problem] = broker_timing_problems(app)

    assert problem.startswith("CELERY_VISIBILITY_TIMEOUT=10 is too short")
    assert "at least 660 s" in problem


def test_a_stale_window_not_above_the_batch_time_limit_is_refused(settings) -> None:
    settings.SCAN_STALE_SECONDS = 600

    [problem] = broker_timing_problems(product_app)

    assert problem.startswith("SCAN_STALE_SECONDS=600 is too short")


def test_manage_py_check_reports_a_too_short_visibility_timeout(monkeypatch) -> None:
    monkeypatch.setitem(product_app.conf.broker_transport_options, "visibility_timeout", 10)

    with pytest.raises(SystemCheckError, match="CELERY_VISIBILITY_TIMEOUT=10 is too short"):
        call_command("check")


def test_a_worker_with_a_too_short_visibility_timeout_refuses_to_start(tmp_path: Path) -> None:
    # Nothing listens on the broker's port: the worker must stop before it would connect.
    env = scan_worker_env(
        tmp_path, f"redis://127.0.0.1:{free_port()}/0", CELERY_VISIBILITY_TIMEOUT="10"
    )
    log = tmp_path / "refused.log"

    with process([*celery_worker_command(), "-Q", "scans", "-n", "refused@%h"], log, env) as worker:
        returncode = worker.wait(60)

    assert returncode != 0
    assert "start-up refused: CELERY_VISIBILITY_TIMEOUT=10 is too short" in log.read_text()


def celery_worker_command() -> list[str]:
    from tests.processes import CELERY

    return [CELERY, "-A", "cryptosatx", "worker", "--pool", "solo", "--loglevel", "INFO"]


def test_beat_runs_the_watchdog_every_minute_on_the_default_queue() -> None:
    from celeryconfig import build_beat_schedule

    entry = build_beat_schedule()["watch-scans"]

    assert entry["task"] == "scanners.watch_scans"
    assert entry["schedule"] == timedelta(seconds=60)
    assert product_app.amqp.router.route({}, "scanners.watch_scans")["queue"].name == "default"
