"""Replaying stored history through the whole product: the engine of `manage.py replay` and of the
demo's history fill (`make run`).

The replay clock stands at each market hour from the plan's start to its end in turn; at each step
the scans due by their market-time schedules (the scanners' PeriodicTask rows, else the
*_INTERVAL_HOURS settings) run, then the outcome checks due by the clock.

Two ways to run a step, same services, same numbers:
- **through the broker** (`--speed N`, or `in_process=False`): each scan's chord and each batch
  of outcome checks is a Celery task, run by the workers (an embedded worker when there is no
  broker); the replay waits for them.
- **in this process** (`--speed max`): the same service functions the tasks call —
  `scan_batch_run` per batch, `scan_finish_hour`, `checks_run` — are called here, one after another,
  with one replay source for the whole replay. No broker round trips, no polling. Alerts still go
  through the outbox and the workers.

Progress is kept in the `ReplayProgress` row (one replay at a time: there is one clock): the last
market hour whose work is done, the scheduler's next due times, the runs started and the clock the
replay found. `stop()` (Ctrl-C in the command) ends the replay at the next hour boundary with a
consistent database; `resume()` continues an interrupted one where it stopped. At its end the
replay puts the clock back as it found it. The whole row is written when the replay stops (also on
an error) or ends, which is all a resume reads (only an interrupted replay resumes); meanwhile only
the hour reached is written, at most every PROGRESS_SHOWN_EVERY seconds, for the health page: so a
long replay does not rewrite the growing list of its runs every hour.

The replay lives in the project package because it drives every app: scans, rankings, signals,
outcome checks and alert digests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from alerts.models import Alert
from core import read_cache
from cryptosatx.models import ReplayProgress, ReplayPurpose, ReplayState
from market.candle_store import CandleMemory
from market.models import ReplayClock
from market.replay_clock import CLOCK_PK, ensure_clock, get_clock
from market.sources.replay import ReplaySource
from market.times import show_time
from scanners import scanning, schedules
from scanners.models import RunStatus, RunTrigger, ScanBatch, ScanRun
from scoring.models import RankedRun
from tracking import services as tracking_services
from tracking.models import CheckStatus, OutcomeCheck, OutcomeRollup, Signal
from tracking.outcomes import checks_sweep
from tracking.rollups import rollups_compact

logger = logging.getLogger(__name__)

STEP = timedelta(hours=1)
POLL_SECONDS = 0.05
PROGRESS_PK = 1
_CLOCK_FIELDS = ("market_time", "start", "end", "step", "ticks", "finished")
# How long the clock stays held after the replay's last hour: far above an hour's work.
HOLD = timedelta(minutes=2)
# Wall seconds between two writes of the hour reached (what the health page shows of a replay).
PROGRESS_SHOWN_EVERY = 1.0
# Wall seconds the scanners' schedules are read again after: an operator's change in the admin
# (a pause, a new interval) reaches a replay under way within seconds, as it reaches beat.
SCHEDULES_READ_EVERY = 5.0


class ReplayError(Exception):
    """The replay cannot go on (refused scope, work not done in time); the message says why."""


@dataclass(frozen=True)
class ReplayPlan:
    start: datetime
    end: datetime
    symbols: list[str] | None = None
    speed: float | None = None  # market seconds per real second at most; None: as fast as it goes
    in_process: bool = True  # run the step's work here (see the module docstring)
    # Leave the clock where the replay ends (the demo's history fill, after which the live clock
    # goes on from there) instead of putting it back as the replay found it.
    keep_clock: bool = False
    purpose: str = ReplayPurpose.REPLAY


@dataclass
class ReplayTally:
    started: datetime
    runs: list[int] = field(default_factory=list)
    refused: int = 0
    hours: int = 0


@dataclass(frozen=True)
class _HourMark:
    """Where the replay stood after its last whole hour: what the progress row records of it.
    `runs`: how many of the tally's runs were started by then (the list is not copied)."""

    reached: datetime
    hours_done: int
    next_due: dict[str, datetime]  # a copy: the scheduler's goes on changing
    runs: int
    refused: int


@dataclass(frozen=True)
class HourDone:
    """What `on_hour` receives after each market hour."""

    market_time: datetime
    hours_done: int
    hours_total: int
    seconds: float  # wall time this hour took
    # CPU time the replaying thread spent on this hour: what the hour costs whatever else the
    # machine runs (the wall time follows the machine's load). The in-process path does the
    # hour's work in this thread; through the broker, the workers' CPU is not in it.
    cpu_seconds: float = 0.0


class Replay:
    """One replay of `plan`. `run()` does it; `stop()` (from another thread or a signal handler)
    ends it at the next hour boundary, leaving it resumable."""

    def __init__(
        self,
        plan: ReplayPlan,
        *,
        timeout: float = 600,
        on_hour: Callable[[HourDone], None] | None = None,
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.timeout = timeout
        self.on_hour = on_hour or (lambda done: None)
        self.on_refusal = on_refusal or (lambda message: logger.warning("%s", message))
        self._stop = threading.Event()
        self.tally = ReplayTally(started=datetime.now(tz=UTC))
        self.stopped = False
        self._schedules: list[schedules.ScannerSchedule] = []
        self._schedules_read_at = -SCHEDULES_READ_EVERY

    @property
    def hours_total(self) -> int:
        return int((self.plan.end - self.plan.start) / STEP) + 1

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- running ----------------------------------------------------------------------------

    def run(self, *, resume_from: ReplayProgress | None = None) -> ReplayTally:
        """Replay the plan (or the rest of an interrupted one); the clock is put back as found
        at the end, or kept at the replay's place when it is stopped (so it can resume)."""
        if resume_from is None:
            progress = _progress_begin(self.plan)
            next_due: dict[str, datetime] = {}
            now = self.plan.start
        else:
            progress = resume_from
            ReplayProgress.objects.filter(pk=progress.pk).update(state=ReplayState.RUNNING)
            next_due = {name: _parse(value) for name, value in progress.next_due.items()}
            self.tally.runs = list(progress.run_ids)
            self.tally.refused = progress.refused
            self.tally.hours = progress.hours_done
            now = progress.reached + STEP
        # Held past the pause between two hours at --speed N, renewed every hour.
        hold = HOLD + (STEP / self.plan.speed if self.plan.speed else timedelta(0))
        # A replay that puts the clock back stands it on its own window meanwhile; a fill that
        # leaves it where it ends moves only its market time (the live clock goes on to its end).
        window = {} if self.plan.keep_clock else {"start": self.plan.start, "end": self.plan.end}
        _set_clock(now, hold=hold, **window)
        source = ReplaySource(memory=CandleMemory()) if self.plan.in_process else None
        mark: _HourMark | None = None  # None: the row holds where the replay stands
        shown = time.monotonic()
        try:
            with _commits_unsynchronised(self.plan.in_process):
                while now <= self.plan.end:
                    if self._stop.is_set():
                        self.stopped = True
                        break
                    began, began_cpu = time.monotonic(), time.thread_time()
                    _set_clock(now, hold=hold)
                    self._hour(now, next_due, source)
                    self.tally.hours += 1
                    if _statistics_due(self.tally.hours):
                        _planner_statistics_refresh()
                    mark = _HourMark(
                        reached=now,
                        hours_done=self.tally.hours,
                        next_due=dict(next_due),
                        runs=len(self.tally.runs),
                        refused=self.tally.refused,
                    )
                    if time.monotonic() - shown >= PROGRESS_SHOWN_EVERY:
                        _progress_show(progress, mark)
                        shown = time.monotonic()
                    self.on_hour(
                        HourDone(
                            now,
                            self.tally.hours,
                            self.hours_total,
                            time.monotonic() - began,
                            time.thread_time() - began_cpu,
                        )
                    )
                    if self.plan.speed is not None and now < self.plan.end:
                        pause = STEP.total_seconds() / self.plan.speed - (time.monotonic() - began)
                        self._stop.wait(max(0.0, pause))
                    now += STEP
        except BaseException:
            _interrupted(progress, mark, self.tally)
            raise
        finally:
            if source is not None:
                source.close()
        if self.stopped:
            _interrupted(progress, mark, self.tally)
            return self.tally
        _progress_record(progress, mark, self.tally, state=ReplayState.FINISHED)
        if self.plan.keep_clock:
            ReplayClock.objects.filter(pk=CLOCK_PK).update(held_until=None)
        else:
            _restore_clock(progress.saved_clock)
        return self.tally

    def _hour(
        self, now: datetime, next_due: dict[str, datetime], source: ReplaySource | None
    ) -> None:
        """The work of the market hour `now`: its due scans, then its outcome checks."""
        if self.plan.in_process:
            # The hour's writes move the cached reads' generations once, at its end.
            with read_cache.bumps_deferred():
                runs = self._start_due_scans(now, next_due, source)
                _run_scans_here(runs, source)
                # The replay stands the clock at `now`: the sweep need not read it back.
                checks_sweep(now=now, run_here=True)
                # What the sweeper's task does after each sweep: fold the rollup rows the hour
                # appended, so what reads the analytics (alerts, the bot) reads a row per key.
                rollups_compact()
        else:
            runs = self._start_due_scans(now, next_due, source)
            self._wait(lambda: _runs_done(runs), f"scans at {show_time(now)}")
            checks_sweep()
            self._wait(lambda: _checks_done(now), f"checks at {show_time(now)}")
            rollups_compact()

    def _scan_schedules(self) -> list[schedules.ScannerSchedule]:
        """The scanners' schedules, read again every SCHEDULES_READ_EVERY seconds."""
        if time.monotonic() - self._schedules_read_at >= SCHEDULES_READ_EVERY:
            self._schedules = schedules.scan_schedules()
            self._schedules_read_at = time.monotonic()
        return self._schedules

    def _start_due_scans(
        self, now: datetime, next_due: dict[str, datetime], source: ReplaySource | None
    ) -> list[ScanRun]:
        """The scheduler of `schedules.start_due_scans`, kept here in memory so that the replay
        leaves the live ScanSchedule rows alone and the plan's symbols narrow every scan. In
        process, the universe is picked from the replay's source (the candles in memory, cut at
        `now`), whose markets and tickers are read once for all the hour's scans."""
        runs = []
        symbols = self.plan.symbols
        for schedule in self._scan_schedules():
            if not schedule.enabled or now < next_due.get(schedule.scanner, now):
                continue
            try:
                run = scanning.scan_start(
                    schedule.scanner,
                    watchlist_id=None if symbols else schedule.watchlist_id,
                    symbols=symbols,
                    as_of=now,
                    trigger=RunTrigger.SCHEDULE,
                    send=not self.plan.in_process,
                    source=source,
                )
            except scanning.UnknownSymbols as unknown:
                raise ReplayError(str(unknown)) from None
            except scanning.ScanRefused as refusal:
                self.tally.refused += 1
                self.on_refusal(f"{schedule.scanner} scan at {show_time(now)}: {refusal}")
                continue
            next_due[schedule.scanner] = now + schedule.interval
            runs.append(run)
            self.tally.runs.append(run.pk)
        return runs

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        pause = threading.Event()
        while not condition():
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"{what} not done after {self.timeout:g} s; is a worker running on the "
                    "scans and outcomes queues?"
                )
            pause.wait(POLL_SECONDS)


def interrupted_replay() -> ReplayProgress | None:
    """The replay that was stopped before its end, if the last one was."""
    return ReplayProgress.objects.filter(pk=PROGRESS_PK, state=ReplayState.INTERRUPTED).first()


def plan_of(progress: ReplayProgress, *, speed: float | None = None) -> ReplayPlan:
    """The plan an interrupted replay was running (at `speed`, which a resume may change)."""
    return ReplayPlan(
        start=progress.start,
        end=progress.end,
        symbols=progress.symbols,
        speed=speed,
        in_process=speed is None,
        keep_clock=progress.keep_clock,
        purpose=progress.purpose,
    )


# --- the work of one hour ---------------------------------------------------------------------


def _run_scans_here(runs: list[ScanRun], source: ReplaySource | None) -> None:
    """Each run's batches, then the hour's final steps, here, by the services the scan tasks
    call. The final steps go together (`scan_finish_hour`): all the hour's results are written
    by then, so its ranking is computed once, and it is the one the hour's last final step
    writes when each run ranks on its own."""
    for run in runs:
        for number in range(run.batches_total):
            scanning.scan_batch_run(
                run.pk, scanning.batch_symbols(run, number), number, source=source, run=run
            )
    tracking_services.scan_finish_hour([run.pk for run in runs])


def _runs_done(runs: list[ScanRun]) -> bool:
    return not ScanRun.objects.filter(
        pk__in=[run.pk for run in runs], status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).exists()


def _checks_done(now: datetime) -> bool:
    """Every check the sweep sent for this step has been run (done, unavailable or back to
    pending for a retry later in market time)."""
    return not OutcomeCheck.objects.filter(status=CheckStatus.CLAIMED, run_at__lte=now).exists()


# --- progress and the clock --------------------------------------------------------------------


def _interrupted(progress: ReplayProgress, mark: _HourMark | None, tally: ReplayTally) -> None:
    """Stopped before its end: resumable from the last whole hour; beat may move the clock
    again meanwhile."""
    _progress_record(progress, mark, tally, state=ReplayState.INTERRUPTED)
    ReplayClock.objects.filter(pk=CLOCK_PK).update(held_until=None)


def _progress_begin(plan: ReplayPlan) -> ReplayProgress:
    clock = get_clock()
    saved = (
        None if clock is None else {name: _jsonable(getattr(clock, name)) for name in _CLOCK_FIELDS}
    )
    progress, _created = ReplayProgress.objects.update_or_create(
        pk=PROGRESS_PK,
        defaults={
            "start": plan.start,
            "end": plan.end,
            "symbols": plan.symbols,
            "state": ReplayState.RUNNING,
            "purpose": plan.purpose,
            "keep_clock": plan.keep_clock,
            "reached": None,
            "hours_done": 0,
            "hours_total": int((plan.end - plan.start) / STEP) + 1,
            "next_due": {},
            "run_ids": [],
            "refused": 0,
            "saved_clock": saved,
        },
    )
    return progress


def _progress_record(
    progress: ReplayProgress, mark: _HourMark | None, tally: ReplayTally, *, state: str
) -> None:
    """Write the whole progress row as of `mark` (None: the row already holds where the replay
    stands, as begun or resumed), in `state`. One statement."""
    if mark is None:
        ReplayProgress.objects.filter(pk=progress.pk).update(state=state)
        return
    ReplayProgress.objects.filter(pk=progress.pk).update(
        reached=mark.reached,
        hours_done=mark.hours_done,
        next_due={name: due.isoformat() for name, due in mark.next_due.items()},
        run_ids=tally.runs[: mark.runs],
        refused=mark.refused,
        state=state,
    )


def _progress_show(progress: ReplayProgress, mark: _HourMark) -> None:
    """Write the hour reached, for the health page; what a resume reads is written at the end."""
    ReplayProgress.objects.filter(pk=progress.pk).update(
        reached=mark.reached, hours_done=mark.hours_done
    )


@contextmanager
def _commits_unsynchronised(in_process: bool) -> Iterator[None]:
    """PostgreSQL, in process: this connection's commits do not wait for their WAL to reach the
    disk (`synchronous_commit off`) while the block runs; reset as it ends, also on an error.
    A crash of the database server may lose the last few commits, in order, never consistency:
    the database is as at an earlier moment of the replay, which is then run again (a crash
    leaves it running, not resumable, either way). The other connections (the workers', the
    web's) keep their setting."""
    if not in_process or connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except DatabaseError:
            # The connection is gone or its transaction aborted: the setting goes with it.
            logger.debug("synchronous_commit not reset", exc_info=True)


# PostgreSQL: the tables whose rows a replay updates, deletes and writes again every market hour
# (the rollups compacted, the checks claimed and done, the runs' bookkeeping), which the hour's
# own reads filter by state or time. Their statistics are refreshed as the replay goes (see
# `_statistics_due`); the big append-only tables are read by key and keep their plans.
_CHURNED = (OutcomeRollup, OutcomeCheck, Signal, ScanRun, ScanBatch, RankedRun, Alert)
# The first refresh, in market hours replayed; then each time the hours replayed double.
STATISTICS_FIRST_HOURS = 24


def _statistics_due(hours_done: int) -> bool:
    """After 24, 48, 96, … market hours: the tables' statistics stay within 2× of their size at
    a cost that grows with the logarithm of the replay's length (~0.1 s each time)."""
    if hours_done < STATISTICS_FIRST_HOURS or hours_done % STATISTICS_FIRST_HOURS:
        return False
    doublings = hours_done // STATISTICS_FIRST_HOURS
    return doublings & (doublings - 1) == 0


def _planner_statistics_refresh() -> None:
    """PostgreSQL: ANALYZE the tables a replay churns. A replay writes days of rows a second,
    faster than autovacuum's minute-long nap follows (and some servers run without it): a
    planner that still believes such a table empty or half unmerged scans it whole every hour
    (the rollups' compaction grew from 1.7 to 9.4 ms an hour over the sample) where an index
    answers it at any size. No-op on SQLite, whose planner prefers the indexes without them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in _CHURNED)
        cursor.execute(f"ANALYZE {tables}")


def _set_clock(market_time: datetime, *, hold: timedelta = HOLD, **fields: Any) -> None:
    """Stand the clock at `market_time`, held by the replay for `hold` (renewed every hour), so
    beat's tick does not move it too; a replay that dies lets go of it when the hold runs out."""
    values = {"market_time": market_time, "finished": False, "held_until": timezone.now() + hold}
    values.update(fields)
    if ReplayClock.objects.filter(pk=CLOCK_PK).update(**values):
        return  # the clock exists (every hour but a replay's first): one statement
    with transaction.atomic():
        if get_clock() is None:
            ensure_clock()
        ReplayClock.objects.filter(pk=CLOCK_PK).update(**values)


def _restore_clock(saved: dict[str, Any] | None) -> None:
    if saved is None:
        ReplayClock.objects.filter(pk=CLOCK_PK).delete()
        return
    values = dict(saved)
    for name in ("market_time", "start", "end"):
        values[name] = _parse(values[name])
    values["step"] = timedelta(seconds=values["step"])
    ReplayClock.objects.filter(pk=CLOCK_PK).update(**values, held_until=None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)
