"""When each scanner runs: beat's PeriodicTask rows (django-celery-beat); market time in a replay.

Live, beat's DatabaseScheduler sends `scanners.scheduled_scan(scanner, watchlist_id=None)` from one
PeriodicTask per scanner ("scan rsi", ...), each at its *_INTERVAL_HOURS. `sync_schedules` creates
the rows from the settings only when they are missing, so an operator's pause, re-time or
watchlist (the task's kwargs: {"scanner": "rsi", "watchlist_id": 3}) in the admin survives restarts.

In a replay the interval is *market* time: a 1 h smart-money interval means once per market hour
however fast the replay runs. The replay clock's tick (`scanners.advance_replay_clock`) calls
`start_due_scans(market_time)`, which reads the same PeriodicTask rows (enabled flag, interval,
kwargs) and keeps per scanner `ScanSchedule.next_due` in market time: a scanner whose next_due has
come is started with as_of = the clock, and its next_due moves to as_of + interval. A refused scan
(the previous one is still running) leaves next_due alone, so it starts at the first tick after.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.db import transaction

from market.times import show_time
from scanners import scanning
from scanners.models import RUN_SCANNERS, RunTrigger, ScanSchedule

logger = logging.getLogger(__name__)

TASK = "scanners.scheduled_scan"


def periodic_task_name(scanner: str) -> str:
    return f"scan {scanner}"


@dataclass(frozen=True)
class ScannerSchedule:
    scanner: str
    interval: timedelta
    enabled: bool
    watchlist_id: int | None = None


def beat_in_database() -> bool:
    return apps.is_installed("django_celery_beat")


def scan_schedules() -> list[ScannerSchedule]:
    """The scanners' schedules: the PeriodicTask rows when django-celery-beat is installed and
    they exist, else the *_INTERVAL_HOURS settings."""
    defaults = {
        scanner: ScannerSchedule(scanner, scanning.scanner_interval(scanner), True)
        for scanner in RUN_SCANNERS
    }
    if not beat_in_database():
        return list(defaults.values())
    from django_celery_beat.models import PeriodicTask

    found: dict[str, ScannerSchedule] = {}
    for task in PeriodicTask.objects.filter(task=TASK).select_related("interval"):
        try:
            kwargs = json.loads(task.kwargs or "{}")
        except ValueError:
            logger.warning("periodic task %r has kwargs that are not JSON; ignored", task.name)
            continue
        scanner = kwargs.get("scanner")
        if scanner not in defaults or scanner in found:
            continue
        interval = defaults[scanner].interval
        if task.interval is not None:
            interval = task.interval.schedule.run_every
        found[scanner] = ScannerSchedule(
            scanner, interval, bool(task.enabled), kwargs.get("watchlist_id")
        )
    return [found.get(scanner, default) for scanner, default in defaults.items()]


def start_due_scans(now: datetime) -> list[int]:
    """Start every enabled scanner whose next_due (market time) has come; returns the run ids."""
    started = []
    for schedule in scan_schedules():
        if not schedule.enabled:
            continue
        with transaction.atomic():
            ScanSchedule.objects.bulk_create(
                [ScanSchedule(scanner=schedule.scanner)], ignore_conflicts=True
            )
            state = ScanSchedule.objects.select_for_update().get(scanner=schedule.scanner)
            if state.next_due is not None and now < state.next_due:
                continue
            try:
                run = scanning.scan_start(
                    schedule.scanner,
                    watchlist_id=schedule.watchlist_id,
                    as_of=now,
                    trigger=RunTrigger.SCHEDULE,
                )
            except (scanning.ScanRefused, scanning.UnknownSymbols) as refusal:
                logger.warning("scheduled %s scan not started: %s", schedule.scanner, refusal)
                continue
            ScanSchedule.objects.filter(pk=state.pk).update(next_due=now + schedule.interval)
            started.append(run.pk)
            logger.info(
                "scheduled %s scan #%d as of %s; next due %s",
                schedule.scanner,
                run.pk,
                show_time(now),
                show_time(now + schedule.interval),
            )
    return started


def sync_schedules() -> list[str]:
    """Create the missing PeriodicTask rows of the scanners from the settings; existing rows (and
    an operator's changes to them) are left alone. Returns the names created."""
    if not beat_in_database():
        return []
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = []
    for scanner in RUN_SCANNERS:
        name = periodic_task_name(scanner)
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        seconds = int(scanning.scanner_interval(scanner).total_seconds())
        if seconds % 60 == 0:
            every, period = seconds // 60, IntervalSchedule.MINUTES
        else:
            every, period = seconds, IntervalSchedule.SECONDS
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        _, made = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": TASK,
                "interval": interval,
                "kwargs": json.dumps({"scanner": scanner}),
                "description": f"The {scanner} scan. In a replay the interval is market time. "
                'Limit it to a watchlist with kwargs {"scanner": "%s", "watchlist_id": <id>}.'
                % scanner,
            },
        )
        if made:
            created.append(name)
    return created
