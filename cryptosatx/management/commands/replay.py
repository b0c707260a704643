"""`python manage.py replay --start 2024-03-01 --end 2024-04-01 [--speed max|N] [--symbols ...]`

Replays a period of the stored history through the same machinery as `make run`: the replay clock
stands at each market hour from --start to --end in turn; at each step the scans due by their
market-time schedules (the scanners' PeriodicTask rows, else the *_INTERVAL_HOURS settings) run
through Celery, then the outcome sweep sends the checks due by the clock to the `outcomes` queue.
With no broker configured (CELERY_BROKER_URL=memory://) an embedded worker runs in this process,
as `manage.py scan` does; with Redis the running workers do the work (stop beat's replay tick
meanwhile, or it moves the same clock).

`--speed max` steps as soon as the step's scans and checks are done; `--speed N` runs N market
seconds per real second at most (like REPLAY_SPEED). A summary follows: scans, coins, signals,
checks done and unavailable, then the outcomes of the window [--start, --end] (both included,
as the replay steps at both) by scanner, direction, tier (at the 24h horizon) and horizon, with
n, win rate, 95 % Wilson interval and judgement ("too few to judge" below ANALYTICS_MIN_SAMPLE),
read by the analytics service (tracking/analytics.py, the report's numbers), and the
`performance_report --since … --until …` command that prints the whole report of that window.

The clock: the replay needs the one replay clock. The command saves it, moves it, and puts it back
as it found it at the end (or deletes it when there was none, so the next `make run` creates it
from the store as usual): `make run` continues where it was. The signals and checks the replay
recorded stay, with their as_of in the replayed period; a report of `--days` counts back from
the restored clock (or the wall clock), so the replayed period is reported by its dates, with the
printed command.

A database without its migrations is refused with what to run (CommandError), before anything
else reads it. Who may run it: whoever runs manage.py (the operator).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from tqdm import tqdm

from market.models import ReplayClock
from market.replay_clock import CLOCK_PK, ensure_clock, get_clock, store_span
from market.times import parse_utc, show_time
from scanners import scanning, schedules
from scanners.models import RunStatus, RunTrigger, ScanRun
from tracking import analytics, windows
from tracking.management.commands.performance_report import GROUP_HEADER, group_line
from tracking.models import CheckStatus, OutcomeCheck, Signal
from tracking.outcomes import OPEN, checks_sweep

STEP = timedelta(hours=1)
POLL_SECONDS = 0.05
_CLOCK_FIELDS = ("market_time", "start", "end", "step", "ticks", "finished")


def _moment(raw: str, name: str) -> datetime:
    try:
        return parse_utc(raw)
    except ValueError:
        raise CommandError(f"{name} {raw!r} is not a date or ISO 8601 time") from None


def _migrations_check() -> None:
    """Refuse a database whose migrations are not all applied (a fresh VAR_DIR), naming the
    commands to run: the replay would otherwise end in a traceback of a missing table. It does not
    migrate itself: a fresh database has no candles either, which `make run` (migrate, then
    load_sample) sets up."""
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if unapplied:
        raise CommandError(
            f"the database has {len(unapplied)} unapplied migration(s) (a fresh VAR_DIR?): run "
            "`python manage.py migrate` and `python manage.py load_sample` first (`make run` does "
            "both), then the replay"
        )


def _speed(raw: str) -> float | None:
    if raw == "max":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(f"--speed {raw!r}: expected max or a number") from None
    if not value > 0:
        raise CommandError("--speed must be greater than 0")
    return value


@dataclass
class ReplayTally:
    started: datetime
    runs: list[int] = field(default_factory=list)
    refused: int = 0


class Command(BaseCommand):
    help = "Replay a period of the stored history: scans, signals and outcome checks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", required=True, help="Market time to start at (2024-03-01).")
        parser.add_argument("--end", required=True, help="Market time to stop at (2024-04-01).")
        parser.add_argument(
            "--speed",
            default="max",
            help="max (as fast as the work completes) or market seconds per real second.",
        )
        parser.add_argument("--symbols", help="Comma-separated coins to scan (default: universe).")
        parser.add_argument(
            "--timeout", type=float, default=600, help="Seconds to wait for one step's work."
        )

    def handle(self, *args, **options) -> None:
        if settings.MARKET_SOURCE != "replay":
            raise CommandError("replay needs MARKET_SOURCE=replay")
        _migrations_check()
        start = _moment(options["start"], "--start")
        end = _moment(options["end"], "--end")
        speed = _speed(options["speed"])
        symbols = (
            [s.strip() for s in options["symbols"].split(",") if s.strip()]
            if options["symbols"]
            else None
        )
        span = store_span()
        if span is None:
            raise CommandError(
                "the candle store is empty: import history first (`python manage.py load_sample` "
                "loads the bundled sample; `make run` does it on its first start)"
            )
        end = min(end, span.last_close_time)
        if start >= end:
            raise CommandError(
                f"nothing to replay: --start {show_time(start)} is not before the end "
                f"{show_time(end)} (the stored history ends at {show_time(span.last_close_time)})"
            )

        saved = self._save_clock()
        embedded = None
        if settings.EMBEDDED:
            from celery import current_app

            from core.embedded_celery import EmbeddedCelery

            embedded = EmbeddedCelery(
                current_app._get_current_object(),
                threads=settings.EMBEDDED_WORKER_THREADS,
                with_beat=False,
            )
            embedded.start()
        tally = ReplayTally(started=datetime.now(tz=UTC))
        try:
            self._set_clock(start, start=start, end=end)
            self._replay(
                start, end, speed=speed, symbols=symbols, tally=tally, timeout=options["timeout"]
            )
            self._send_digests(options["timeout"])
        finally:
            if embedded is not None:
                embedded.stop()
            self._restore_clock(saved)
        self.stdout.write(self._summary(start, end, tally))

    # --- the loop ---------------------------------------------------------------------------

    def _replay(
        self,
        start: datetime,
        end: datetime,
        *,
        speed: float | None,
        symbols: list[str] | None,
        tally: ReplayTally,
        timeout: float,
    ) -> None:
        next_due: dict[str, datetime] = {}
        steps = int((end - start) / STEP) + 1
        bar = tqdm(total=steps, desc="replay", unit="market h", file=self.stderr._out)
        wait = threading.Event()
        now = start
        try:
            while True:
                began = time.monotonic()
                self._set_clock(now)
                runs = self._start_due_scans(now, next_due, symbols, tally)
                self._wait(partial(self._runs_done, runs), timeout, f"scans at {show_time(now)}")
                checks_sweep()
                self._wait(partial(self._checks_done, now), timeout, f"checks at {show_time(now)}")
                bar.update(1)
                bar.set_postfix_str(show_time(now), refresh=False)
                if now >= end:
                    break
                step = min(STEP, end - now)
                if speed is not None:
                    wait.wait(max(0.0, step.total_seconds() / speed - (time.monotonic() - began)))
                now += step
        finally:
            bar.close()

    def _start_due_scans(
        self,
        now: datetime,
        next_due: dict[str, datetime],
        symbols: list[str] | None,
        tally: ReplayTally,
    ) -> list[int]:
        """The scheduler of `schedules.start_due_scans`, kept here in memory so that the replay
        leaves the live ScanSchedule rows alone and --symbols can narrow every scan."""
        runs = []
        for schedule in schedules.scan_schedules():
            if not schedule.enabled or now < next_due.get(schedule.scanner, now):
                continue
            try:
                run = scanning.scan_start(
                    schedule.scanner,
                    watchlist_id=None if symbols else schedule.watchlist_id,
                    symbols=symbols,
                    as_of=now,
                    trigger=RunTrigger.SCHEDULE,
                )
            except (scanning.ScanRefused, scanning.UnknownSymbols) as refusal:
                if isinstance(refusal, scanning.UnknownSymbols):
                    raise CommandError(str(refusal)) from None
                tally.refused += 1
                self.stderr.write(f"{schedule.scanner} scan at {show_time(now)}: {refusal}")
                continue
            next_due[schedule.scanner] = now + schedule.interval
            runs.append(run.pk)
            tally.runs.append(run.pk)
        return runs

    @staticmethod
    def _runs_done(runs: list[int]) -> bool:
        return not ScanRun.objects.filter(
            pk__in=runs, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ).exists()

    @staticmethod
    def _checks_done(now: datetime) -> bool:
        """Every check the sweep sent for this step has been run (done, unavailable or back to
        pending for a retry later in market time)."""
        return not OutcomeCheck.objects.filter(status=CheckStatus.CLAIMED, run_at__lte=now).exists()

    @staticmethod
    def _wait(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while not condition():
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{what} not done after {timeout:g} s; is a worker running on the scans "
                    "and outcomes queues?"
                )
            pause.wait(POLL_SECONDS)

    def _send_digests(self, timeout: float) -> None:
        """The open digest of alerts the caps held back waits for its market hour to end, which a
        replay's end may never reach: send it now, before the replay ends (and its worker stops).
        One that cannot be sent yet stays in the outbox, retried like any alert."""
        from alerts.models import Alert, AlertState
        from alerts.services import digests_flush

        digests = digests_flush()
        unsent = Alert.objects.filter(
            pk__in=digests, state__in=[AlertState.PENDING, AlertState.SENDING]
        )
        try:
            self._wait(lambda: not unsent.exists(), timeout, "the digest of held-back alerts")
        except CommandError as error:
            self.stderr.write(f"{error}; it stays in the outbox and is sent later")

    # --- the clock --------------------------------------------------------------------------

    @staticmethod
    def _save_clock() -> dict | None:
        clock = get_clock()
        return None if clock is None else {name: getattr(clock, name) for name in _CLOCK_FIELDS}

    @staticmethod
    def _set_clock(market_time: datetime, **fields) -> None:
        with transaction.atomic():
            if get_clock() is None:
                ensure_clock()
            ReplayClock.objects.filter(pk=CLOCK_PK).update(
                market_time=market_time, finished=False, **fields
            )

    @staticmethod
    def _restore_clock(saved: dict | None) -> None:
        if saved is None:
            ReplayClock.objects.filter(pk=CLOCK_PK).delete()
        else:
            ReplayClock.objects.filter(pk=CLOCK_PK).update(**saved)

    # --- the summary ------------------------------------------------------------------------

    def _summary(self, start: datetime, end: datetime, tally: ReplayTally) -> str:
        runs = ScanRun.objects.filter(pk__in=tally.runs)
        finished = runs.filter(status=RunStatus.FINISHED)
        coins = sum(runs.values_list("coins_done", flat=True))
        signals = Signal.objects.filter(scan_run__in=tally.runs)
        checks = OutcomeCheck.objects.filter(signal__in=signals)
        counts = dict(checks.values_list("status").annotate(n=Count("id")).order_by())
        elapsed = datetime.now(tz=UTC) - tally.started
        lines = [
            f"replay {show_time(start)} → {show_time(end)} in {elapsed.total_seconds():.1f} s",
            f"scans: {runs.count()} ({finished.count()} finished, "
            f"{runs.filter(status=RunStatus.FAILED).count()} failed, {tally.refused} refused), "
            f"{coins} coins scanned",
            f"signals: {signals.count()}",
            f"outcome checks: {counts.get(CheckStatus.DONE, 0)} done, "
            f"{counts.get(CheckStatus.UNAVAILABLE, 0)} unavailable, "
            f"{sum(counts.get(status, 0) for status in OPEN)} not yet due",
            "",
            *window_summary(start, end),
        ]
        return "\n".join(lines)


def report_command(start: datetime, end: datetime) -> str:
    """The command that prints the full report of the replayed window [start, end]."""
    return (
        f"python manage.py performance_report --since {windows.show(start)} "
        f"--until {windows.show(end)}"
    )


def window_summary(start: datetime, end: datetime) -> list[str]:
    """The window's outcomes by scanner, direction, tier (at the headline horizon) and horizon,
    from the analytics service's report of [start, end] (the report's own lines), then the
    command that prints that whole report. Every signal with as_of in the window counts, this
    replay's and any recorded there before."""
    report = analytics.performance_report(
        analytics.PerformanceFilters(days=None, since=start, until=end)
    )
    summary = report["summary"]
    lines = [
        f"Outcomes of the signals of {windows.show(start)} to {windows.show(end)} (both "
        f"included): {summary['total_signals']} signals, {summary['outcomes_checked']} checked "
        f"at {summary['horizon']}; a group with n < {summary['min_sample']} is "
        f"'{analytics.TOO_FEW}'",
    ]
    for title, key in (
        (f"By scanner ({summary['horizon']})", "by_scanner"),
        (f"By direction ({summary['horizon']})", "by_signal_type"),
        (f"By tier ({summary['horizon']})", "by_tier"),
        ("By horizon", "by_interval"),
    ):
        lines += ["", title, GROUP_HEADER]
        lines += [group_line(row, "group") for row in report[key]] or ["(none)"]
    lines += ["", "The full report of this window:", f"  {report_command(start, end)}"]
    return lines
