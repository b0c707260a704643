"""Celery tasks of the scanners app: thin wrappers around services, named and routed by name."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import current_app, shared_task
from django.conf import settings
from django.db import DatabaseError

from market.replay_clock import advance_clock
from market.times import show_time
from scanners import scanning, schedules, watchdog
from scanners.models import RunTrigger

logger = logging.getLogger(__name__)

OUTCOME_SWEEP_TASK = "tracking.sweep_outcome_checks"
# A batch of SCAN_BATCH_SIZE coins is killed after this long; SCAN_STALE_SECONDS must exceed it
# (checked at start-up, cryptosatx/broker_checks.py), so a batch still running is never re-sent.
BATCH_TIME_LIMIT = 600


@shared_task(
    name="scanners.advance_replay_clock", ignore_result=True, soft_time_limit=50, time_limit=60
)
def advance_replay_clock() -> None:
    """Beat's tick of the replay clock (every REPLAY_TICK_SECONDS); does nothing outside a replay
    or while the store is empty. After the tick, starts the scans due by market time and sends
    the outcome sweep, which claims the checks due by the clock's new market time."""
    if settings.MARKET_SOURCE != "replay":
        return
    clock = advance_clock()
    if clock is not None:
        schedules.start_due_scans(clock.market_time)
        # By name: scanners does not import tracking (it sits below it).
        current_app.send_task(OUTCOME_SWEEP_TASK)
        current_app.send_task("alerts.replay_summaries")  # summaries due by market time


@shared_task(
    name="scanners.refresh_trade_tallies", ignore_result=True, soft_time_limit=240, time_limit=300
)
def refresh_trade_tallies() -> dict:
    """Beat's read of the universe's new aggregate trades (every TRADE_TALLY_REFRESH_SECONDS,
    live sources only): a scan then reads only the minutes since. {"coins": n, "unread": n}."""
    refresh = scanning.refresh_trade_tallies()
    return {"coins": refresh.coins, "unread": len(refresh.unread)}


@shared_task(name="scanners.start_scan", soft_time_limit=240, time_limit=300)
def start_scan(
    scanner: str,
    watchlist_id: int | None = None,
    symbols: list[str] | None = None,
    coins: int | None = None,
    as_of: str | None = None,
    trigger: str = RunTrigger.MANUAL,
    requested_by_id: int | None = None,
) -> dict:
    """Create a scan run and launch its chord. `as_of`: ISO 8601 (default: market_now()).

    Returns {"run_id": id}, or {"refused": reason} for an overlapping run or nothing to scan.
    """
    try:
        run = scanning.scan_start(
            scanner,
            watchlist_id=watchlist_id,
            symbols=symbols,
            coins=coins,
            as_of=datetime.fromisoformat(as_of.replace("Z", "+00:00")) if as_of else None,
            trigger=trigger,
            requested_by_id=requested_by_id,
        )
    except (scanning.ScanRefused, scanning.UnknownSymbols) as refusal:
        logger.warning("%s scan refused: %s", scanner, refusal)
        return {"refused": str(refusal)}
    return {"run_id": run.pk, "coins": run.coins_total, "as_of": show_time(run.as_of)}


@shared_task(
    name="scanners.scan_batch",
    acks_late=True,  # idempotent by the unique ScanBatch key: a redelivery writes nothing twice
    reject_on_worker_lost=True,  # a killed worker's batch goes back to the queue
    # The database being briefly unavailable is the one failure a batch does not absorb.
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=BATCH_TIME_LIMIT - 60,
    time_limit=BATCH_TIME_LIMIT,
)
def scan_batch(run_id: int, symbols: list[str], batch: int = 0) -> dict:
    """Scan one batch of a run's coins and record results and failures; never fails as a whole,
    so the chord always reaches finish_scan."""
    return scanning.scan_batch_run(run_id, symbols, batch).as_dict()


@shared_task(name="scanners.watch_scans", ignore_result=True, soft_time_limit=50, time_limit=60)
def watch_scans() -> dict:
    """Beat's scan watchdog (every SCAN_WATCHDOG_SECONDS, queue `default` so a backlog of batches
    on `scans` cannot delay it): re-sends a stalled run's lost batches or final step, fails a run
    that stalled SCAN_WATCHDOG_MAX_RESENDS times in a row (scanners/watchdog.py)."""
    return watchdog.scans_watch().as_dict()


@shared_task(name="scanners.scheduled_scan", soft_time_limit=240, time_limit=300)
def scheduled_scan(scanner: str, watchlist_id: int | None = None) -> dict:
    """What beat's PeriodicTask "scan <scanner>" sends. Live: starts the scan now. In a replay the
    interval is market time, so the replay clock's tick starts due scans and this does nothing."""
    if settings.MARKET_SOURCE == "replay":
        return {"skipped": "replay: scans are started by the replay clock in market time"}
    return start_scan(scanner, watchlist_id=watchlist_id, trigger=RunTrigger.SCHEDULE)
