"""Worker, beat and Redis all restarted while checks are pending: every check completes, once.

Real processes: `celery -A cryptosatx worker -Q outcomes`, `celery -A cryptosatx beat` (sweeping
every second) and a redis-server of this test's own on a free port (the shared Redis must not be
restarted under other tests), with the PostgreSQL test database. Live mode (no replay clock): the
sweeper claims the checks due in the next minutes and sends them with eta, so the worker holds them
unacknowledged when it is killed. Redis runs without persistence, so its restart loses every
message; the checks are still CLAIMED in the database, and once their claim is stale
(OUTCOME_CLAIM_STALE_SECONDS, shortened here) the sweeper of the restarted beat sends them again.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from market.models import Candle
from tests.factories import MarketFactory, SignalFactory
from tests.killed_worker import doomed_worker, worker_env
from tests.processes import CELERY, celery_worker, free_port, process, redis_server, wait_until
from tracking.models import CheckStatus, OutcomeCheck
from tracking.outcomes import checks_create_for

HOUR = timedelta(hours=1)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WORKER_SETTINGS = """
MARKET_SOURCE = "replay"  # and no replay clock: live mode on the wall clock, store-only data
OUTCOME_CLAIM_STALE_SECONDS = 3
OUTCOME_SWEEP_SECONDS = 1
"""


def beat(env: dict[str, str], tmp_path: Path, log: Path):
    return process(
        [
            CELERY,
            "-A",
            "cryptosatx",
            "beat",
            "--scheduler",
            "celery.beat:PersistentScheduler",
            "--schedule",
            str(tmp_path / "beat-schedule"),
            "--max-interval",
            "1",
            "--loglevel",
            "INFO",
        ],
        log,
        env,
    )


def coins_with_candles(count: int) -> list[str]:
    """Coins and BTC with hourly candles for the last day up to the hour after the next one."""
    last_open = timezone.now().replace(minute=0, second=0, microsecond=0) + HOUR
    symbols = []
    for number, base in enumerate(["BTC"] + [f"R{n}" for n in range(count)]):
        market = MarketFactory(base=base)
        Candle.objects.bulk_create(
            Candle(
                market=market,
                timeframe="1h",
                open_time=last_open - hour * HOUR,
                open=100.0 + number,
                high=101.0 + number,
                low=99.0 + number,
                close=100.0 + number + hour % 3,
                volume=10.0,
            )
            for hour in range(26)
        )
        symbols.append(market.symbol)
    return symbols[1:]


@pytest.mark.django_db(transaction=True)
def test_worker_beat_and_redis_restarted_while_checks_are_pending_every_check_completes_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    env = worker_env(tmp_path, "outcome_restart_settings", WORKER_SETTINGS, broker)
    # Ten signals whose 1h checks fall due 20 to 29 s from now, one per second.
    now = timezone.now()
    signals = [
        SignalFactory(symbol=symbol, as_of=now - HOUR + timedelta(seconds=20 + i))
        for i, symbol in enumerate(coins_with_candles(10))
    ]
    for recorded in signals:
        checks_create_for(recorded)
    hourly = OutcomeCheck.objects.filter(horizon="1h")
    open_statuses = [CheckStatus.PENDING, CheckStatus.CLAIMED]

    with (
        redis_server(port, tmp_path / "redis.log"),
        doomed_worker(
            queues="outcomes",
            name="outcomes-first",
            env=env,
            log=tmp_path / "first.log",
            concurrency=2,
        ) as kill_when,
        beat(env, tmp_path, tmp_path / "b1.log"),
    ):
        # The first sweep claims all ten (due within the lookahead) and sends them with eta:
        # the worker holds them, unacknowledged, until their due time.
        kill_when(
            lambda: hourly.filter(status=CheckStatus.CLAIMED).count() == 10,
            "the sweeper to claim the checks",
        )
        assert not hourly.filter(status=CheckStatus.DONE).exists()
        # Beat stopped with the worker; now Redis goes, and every message with it.
    assert timezone.now() < min(check.due_at for check in hourly), "too slow: checks came due"

    with (
        redis_server(port, tmp_path / "redis.log"),
        celery_worker(
            queues="outcomes",
            name="outcomes-second",
            env=env,
            log=tmp_path / "second.log",
            concurrency=2,
        ),
        beat(env, tmp_path, tmp_path / "b2.log"),
    ):
        wait_until(
            lambda: (
                not OutcomeCheck.objects.filter(horizon="1h", status__in=open_statuses).exists()
            ),
            120,
            f"every 1h check to complete (logs in {tmp_path})",
        )

    done = list(hourly.values_list("status", "attempts", "checked_at", "due_at"))
    assert [(status, attempts) for status, attempts, _, _ in done] == [(CheckStatus.DONE, 1)] * 10
    # Each ran at or after its own T (the eta), never before.
    assert all(checked_at >= due_at for _, _, checked_at, due_at in done)
    # The other horizons are still waiting in the table, not in the broker.
    assert (
        OutcomeCheck.objects.exclude(horizon="1h").filter(status=CheckStatus.PENDING).count() == 40
    )
