"""Celery tasks of the tracking app: thin wrappers around services, named and routed by name."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from scanners.models import ScanRun
from tracking import outcomes, rollups, services

# Waits for batches the chord counted but whose rows are not there yet (a duplicate delivery of a
# batch completing the chord early): retry this often, then finish with what the run has.
FINISH_RETRY_SECONDS = 2
FINISH_MAX_RETRIES = 30


@shared_task(
    name="tracking.finish_scan",
    bind=True,
    acks_late=True,  # idempotent: a finished run is left as it is
    max_retries=FINISH_MAX_RETRIES,
    soft_time_limit=540,
    time_limit=600,
)
def finish_scan(self, run_id: int) -> dict:
    """The chord body of a scan: ranking, signals, run marked finished (queue `scans`)."""
    run = ScanRun.objects.filter(pk=run_id).only("batches_done", "batches_total").first()
    give_up = False
    if run is not None and run.batches_done < run.batches_total:
        if self.request.retries < FINISH_MAX_RETRIES:
            raise self.retry(countdown=FINISH_RETRY_SECONDS)
        give_up = True
    run = services.scan_finish(run_id, give_up=give_up)
    if run is None:
        return {"run_id": run_id, "status": "missing"}
    return {
        "run_id": run.pk,
        "status": run.status,
        "coins_done": run.coins_done,
        "coins_failed": run.coins_failed,
        "signals": run.signals_recorded,
    }


@shared_task(
    name="tracking.sweep_outcome_checks",
    ignore_result=True,
    # A second sweep finds the rows claimed and sends nothing twice: expiring is harmless.
    soft_time_limit=50,
    time_limit=60,
)
def sweep_outcome_checks() -> int:
    """Beat's sweeper (every minute) and the replay clock's tick: send the checks falling due,
    then fold the rollup rows the last minute's writes appended (tracking/rollups.py), so the
    analytics read about one row per key."""
    sent = outcomes.checks_sweep()
    rollups.rollups_compact()
    return sent


@shared_task(
    name="tracking.run_outcome_checks",
    acks_late=True,  # idempotent: the conditional update writes each check once
    reject_on_worker_lost=True,  # a killed worker's batch goes back to the queue
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def run_outcome_checks(check_ids: list[int]) -> dict:
    """Compute and write a batch of outcome checks that share a due time (queue `outcomes`)."""
    return outcomes.checks_run(check_ids)
