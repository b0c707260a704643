"""The scan watchdog: no scan stays queued or running for good.

A run is *stalled* when it is queued or running and its progress (`ScanRun.progressed_at`: set at
creation, when a batch starts or is written, and by the watchdog) has not moved for
SCAN_STALE_SECONDS, which the start-up check keeps above the batch time limit, so a batch still
running is never taken for a lost one. Beat runs `scans_watch` every SCAN_WATCHDOG_SECONDS; for
each stalled run, under a row lock (two watchdogs never rescue a run twice):

- batches not written (a killed worker's, or every one of a run whose messages Redis lost): they
  are re-sent as a new chord whose body is the final step. A batch written meanwhile by its first
  delivery writes nothing again (the unique `ScanBatch` key), and finish_scan finishes once.
- every batch written but the run not finished (the chord's final step lost, e.g. Redis down
  between the last batch and the chord unlock): `tracking.finish_scan` is sent again. It is
  idempotent: the ranking rows are unique per (run, symbol), a signal is recorded under its key's
  lock and the cooldown, outcome checks and alerts hang off a new signal only.
- the run stalled SCAN_WATCHDOG_MAX_RESENDS times in a row already (a batch written resets the
  count): it is finished as failed with the reason, each unscanned coin recorded as a
  `CoinFailure`; it is never left running.

Every rescue is counted on the run (`watchdog_resends`, `watchdog_finishes`, `watchdog_stalls`)
and described in `watchdog_log`, which the admin and the API show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from scanners.models import RunStatus, ScanBatch, ScanRun
from scanners.scanning import (
    age_text,
    finish_signature,
    run_fail_missing_coins,
    send_batches,
    stale_window,
)

logger = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass
class WatchReport:
    """What one pass of the watchdog did, by run id."""

    resent: dict[int, list[int]] = field(default_factory=dict)  # run -> batch numbers re-sent
    finishes: list[int] = field(default_factory=list)  # runs whose final step was re-sent
    failed: dict[int, str] = field(default_factory=dict)  # run -> reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "resent": {str(run): numbers for run, numbers in self.resent.items()},
            "finishes": self.finishes,
            "failed": {str(run): reason for run, reason in self.failed.items()},
        }


def max_resends() -> int:
    return int(settings.SCAN_WATCHDOG_MAX_RESENDS)


def stalled_runs(now: datetime | None = None) -> list[int]:
    """Ids of the queued or running runs without progress for the stale window, oldest first."""
    now = now or timezone.now()
    return list(
        ScanRun.objects.filter(status__in=ACTIVE, progressed_at__lt=now - stale_window())
        .order_by("progressed_at")
        .values_list("pk", flat=True)
    )


def scans_watch(now: datetime | None = None) -> WatchReport:
    """Rescue or fail every stalled run (see the module docstring); what was done, by run."""
    report = WatchReport()
    for run_id in stalled_runs(now):
        run_rescue(run_id, report, now=now)
    return report


def run_rescue(run_id: int, report: WatchReport, *, now: datetime | None = None) -> None:
    """Rescue one run if it is (still) stalled: re-send its unwritten batches or its final step,
    or fail it after SCAN_WATCHDOG_MAX_RESENDS stalls in a row. Messages are sent after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        run = (
            ScanRun.objects.select_for_update()
            .filter(pk=run_id, status__in=ACTIVE, progressed_at__lt=now - stale_window())
            .first()
        )
        if run is None:  # it moved, finished or was rescued since it was listed
            return
        idle = age_text(now - run.progressed_at)
        written = set(ScanBatch.objects.filter(run=run).values_list("number", flat=True))
        missing = [number for number in range(run.batches_total) if number not in written]
        if run.watchdog_stalls >= max_resends():
            reason = _fail(run, now=now, idle=idle, missing=missing)
            report.failed[run.pk] = reason
            return
        if missing:
            _note(
                run,
                now,
                f"no progress for {idle}: re-sent batch(es) {_numbers(missing)} "
                f"of {run.batches_total} and the final step",
                watchdog_resends=F("watchdog_resends") + len(missing),
            )
            transaction.on_commit(lambda: send_batches(run, missing))
            report.resent[run.pk] = missing
            logger.warning(
                "scan #%d %s stalled for %s: re-sent batches %s", run.pk, run.scanner, idle,
                _numbers(missing),
            )  # fmt: skip
        else:
            _note(
                run,
                now,
                f"no progress for {idle} with all {run.batches_total} batches written: "
                "re-sent the final step",
                watchdog_finishes=F("watchdog_finishes") + 1,
            )
            transaction.on_commit(lambda: finish_signature(run).apply_async())
            report.finishes.append(run.pk)
            logger.warning(
                "scan #%d %s stalled for %s after its last batch: final step re-sent", run.pk,
                run.scanner, idle,
            )  # fmt: skip


def _fail(run: ScanRun, *, now: datetime, idle: str, missing: list[int]) -> str:
    if missing:
        reason = (
            f"the watchdog gave up: batch(es) {_numbers(missing)} of {run.batches_total} never "
            f"completed after {run.watchdog_stalls} re-send(s) (no progress for {idle})"
        )
        lost = run_fail_missing_coins(run, reason)
    else:
        reason = (
            f"the watchdog gave up: the final step never completed after {run.watchdog_stalls} "
            f"re-send(s) (no progress for {idle})"
        )
        lost = 0
    _note(run, now, reason, status=RunStatus.FAILED, finished_at=now, error=reason)
    ScanRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=now)
    logger.error("scan #%d %s failed: %s; %d coins recorded as failed", run.pk, run.scanner,
                 reason, lost)  # fmt: skip
    return reason


def _note(run: ScanRun, now: datetime, line: str, **changes: Any) -> None:
    """Record one rescue: a log line, a stall counted, and progress set to now (so the re-sent
    work gets a whole stale window before the next look)."""
    changes.setdefault("watchdog_stalls", F("watchdog_stalls") + 1)
    ScanRun.objects.filter(pk=run.pk).update(
        progressed_at=now,
        watchdog_log=Concat(
            F("watchdog_log"),
            Value(f"{now:%Y-%m-%d %H:%M:%S} UTC {line}\n", output_field=TextField()),
        ),
        **changes,
    )


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(number) for number in numbers)
