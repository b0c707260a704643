"""`python manage.py replay --start 2024-03-01 --end 2024-04-01 [--speed max|N] [--symbols ...]`
and `python manage.py replay --resume [--speed max|N]`.

Replays a period of the stored history through the same machinery as `make run`
(cryptosatx/replay.py): the replay clock stands at each market hour from --start to --end in
turn; at each step the scans due by their market-time schedules run, then the outcome checks due
by the clock. `--speed max` runs each step's work in this process, by the same services the
tasks call, as fast as it completes; `--speed N` runs N market seconds per real second at most
(like REPLAY_SPEED), through Celery: with no broker configured (CELERY_BROKER_URL=memory://) an
embedded worker runs in this process, as `manage.py scan` does; with Redis the running workers do
the work (stop beat's replay tick meanwhile, or it moves the same clock). Alerts go through the
outbox and the workers either way.

The progress bar shows the market hour, market hours per second and the time left. Ctrl-C stops
after the market hour under way, with a consistent database; `--resume` continues from there.

A summary follows: scans, coins, signals, checks done and unavailable, then the outcomes of the
window [--start, --end] (both included, as the replay steps at both) by scanner, direction, tier
(at the 24h horizon) and horizon, with n, win rate, 95 % Wilson interval and judgement ("too few
to judge" below ANALYTICS_MIN_SAMPLE), read by the analytics service (tracking/analytics.py, the
report's numbers), and the `performance_report --since … --until …` command that prints the
whole report of that window.

The clock: the replay needs the one replay clock. It saves it, moves it, and puts it back as it
found it at the end (or deletes it when there was none, so the next `make run` creates it
from the store as usual): `make run` continues where it was. The signals and checks the replay
recorded stay, with their as_of in the replayed period; a report of `--days` counts back from
the restored clock (or the wall clock), so the replayed period is reported by its dates, with the
printed command.

A database without its migrations is refused with what to run (CommandError), before anything
else reads it. Who may run it: whoever runs manage.py (the operator).
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from tqdm import tqdm

from core.embedded_celery import worker_if_embedded
from cryptosatx.replay import (
    POLL_SECONDS,
    STEP,
    HourDone,
    Replay,
    ReplayError,
    ReplayPlan,
    ReplayTally,
    interrupted_replay,
    plan_of,
)
from market.replay_clock import store_span
from market.times import parse_utc, show_time
from scanners.models import RunStatus, ScanRun
from tracking import analytics, metrics, windows
from tracking.management.commands.performance_report import GROUP_HEADER, group_line
from tracking.models import CheckStatus, OutcomeCheck, Signal
from tracking.outcomes import OPEN
from tracking.performance_filters import PerformanceFilters


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


def _stop_on_first_interrupt(replay: Replay, command: BaseCommand):
    """The first Ctrl-C stops the replay after the hour it is in; a second one stops at once."""

    def handler(signum, frame) -> None:
        if replay.stop_requested:
            raise KeyboardInterrupt
        command.stderr.write("\nstopping after this market hour (Ctrl-C again to stop now) ...")
        replay.stop()

    return handler


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


class Command(BaseCommand):
    help = "Replay a period of the stored history: scans, signals and outcome checks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", help="Market time to start at (2024-03-01).")
        parser.add_argument("--end", help="Market time to stop at (2024-04-01).")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Continue the replay that was interrupted (Ctrl-C) where it stopped.",
        )
        parser.add_argument(
            "--speed",
            default="max",
            help="max (as fast as the work completes, in this process) or market seconds per "
            "real second (through the workers).",
        )
        parser.add_argument("--symbols", help="Comma-separated coins to scan (default: universe).")
        parser.add_argument(
            "--timeout", type=float, default=600, help="Seconds to wait for one step's work."
        )

    def handle(self, *args, **options) -> None:
        if settings.MARKET_SOURCE != "replay":
            raise CommandError("replay needs MARKET_SOURCE=replay")
        _migrations_check()
        speed = _speed(options["speed"])
        resume_from = None
        if options["resume"]:
            if options["start"] or options["end"] or options["symbols"]:
                raise CommandError("--resume continues the interrupted replay's own period and "
                                   "coins: leave out --start, --end and --symbols")  # fmt: skip
            resume_from = interrupted_replay()
            if resume_from is None:
                raise CommandError("there is no interrupted replay to resume")
            plan = plan_of(resume_from, speed=speed)
        else:
            if not (options["start"] and options["end"]):
                raise CommandError("--start and --end are required (or --resume)")
            plan = self._plan(options, speed)

        bar = tqdm(
            total=int((plan.end - plan.start) / STEP) + 1,
            initial=resume_from.hours_done if resume_from else 0,
            desc="replay",
            unit="market h",
            file=self.stderr._out,
        )

        def on_hour(done: HourDone) -> None:
            bar.update(1)
            bar.set_postfix_str(show_time(done.market_time), refresh=False)

        replay = Replay(
            plan, timeout=options["timeout"], on_hour=on_hour, on_refusal=self.stderr.write
        )
        with worker_if_embedded():
            previous_handler = signal.signal(signal.SIGINT, _stop_on_first_interrupt(replay, self))
            try:
                tally = replay.run(resume_from=resume_from)
            except ReplayError as error:
                raise CommandError(str(error)) from None
            finally:
                bar.close()
                signal.signal(signal.SIGINT, previous_handler)
            if replay.stopped:
                self.stderr.write(
                    "replay stopped after the market hour it was in; the database is consistent. "
                    "`python manage.py replay --resume` continues it."
                )
                return
            self._send_digests(options["timeout"])
        self.stdout.write(self._summary(plan.start, plan.end, tally))

    @staticmethod
    def _plan(options: dict, speed: float | None) -> ReplayPlan:
        start = _moment(options["start"], "--start")
        end = _moment(options["end"], "--end")
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
        return ReplayPlan(
            start=start, end=end, symbols=symbols, speed=speed, in_process=speed is None
        )

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
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while unsent.exists():
            if time.monotonic() > deadline:
                self.stderr.write(
                    f"the digest of held-back alerts not sent after {timeout:g} s; it stays in "
                    "the outbox and is sent later"
                )
                return
            pause.wait(POLL_SECONDS)

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
    report = analytics.performance_report(PerformanceFilters(days=None, since=start, until=end))
    summary = report["summary"]
    lines = [
        f"Outcomes of the signals of {windows.show(start)} to {windows.show(end)} (both "
        f"included): {summary['total_signals']} signals, {summary['outcomes_checked']} checked "
        f"at {summary['horizon']}; a group with n < {summary['min_sample']} is "
        f"'{metrics.TOO_FEW}'",
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
