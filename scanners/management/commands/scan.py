"""`python manage.py scan rsi|smart_money|mss|social|all`: one scan through Celery, with progress.

The run is created here and its batches go through Celery like any scan. With no broker configured
(CELERY_BROKER_URL=memory://) an embedded worker runs in this process for the command's duration;
with Redis the running workers do the work. A progress bar follows the run's counts; at the end a
table, or with --json one object per coin and scanner.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.embedded_celery import worker_if_embedded
from market.times import parse_utc
from scanners import scanning
from scanners.models import RunStatus, ScannerName, ScanRun, Watchlist

POLL_SECONDS = 0.2


def _as_of(raw: str) -> datetime:
    try:
        return parse_utc(raw)
    except ValueError:
        raise CommandError(
            f"--as-of {raw!r} is not an ISO 8601 time such as 2024-04-01T12:00Z"
        ) from None


class Command(BaseCommand):
    help = "Run one scan through Celery and print its results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scanner", choices=ScannerName.values)
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--symbols", help="Comma-separated coins: BTC,ETH or BTC/USDT,...")
        scope.add_argument("--watchlist", help="A watchlist's name (owner/name when ambiguous).")
        scope.add_argument("--coins", type=int, help="Top N of the universe by 24h quote volume.")
        parser.add_argument("--as-of", help="Market time to scan at, e.g. 2024-04-01T12:00Z.")
        parser.add_argument("--json", action="store_true", help="One JSON object per result.")
        parser.add_argument(
            "--timeout", type=float, default=3600, help="Seconds to wait for the scan."
        )

    def handle(self, *args, scanner: str, **options) -> None:
        if options["coins"] is not None and options["coins"] < 1:
            raise CommandError("--coins must be at least 1")
        watchlist_id = _watchlist_id(options["watchlist"]) if options["watchlist"] else None
        symbols = (
            [s for s in options["symbols"].split(",") if s.strip()] if options["symbols"] else None
        )
        as_of = _as_of(options["as_of"]) if options["as_of"] else None

        with worker_if_embedded():
            try:
                run = scanning.scan_start(
                    scanner,
                    watchlist_id=watchlist_id,
                    symbols=symbols,
                    coins=options["coins"],
                    as_of=as_of,
                )
            except (scanning.ScanRefused, scanning.UnknownSymbols) as refusal:
                raise CommandError(str(refusal)) from None
            run = self._follow(run, timeout=options["timeout"], quiet=options["json"])
        if options["json"]:
            self.stdout.write(json.dumps(run_results_json(run), indent=2))
        else:
            self.stdout.write(run_results_table(run))
        for symbol, error in run.failures.order_by("symbol").values_list("symbol", "error"):
            self.stderr.write(f"{symbol}: failed: {error}")
        if run.status != RunStatus.FINISHED:
            raise CommandError(f"scan #{run.pk} did not finish: {run.status} {run.error}".strip())

    def _follow(self, run: ScanRun, *, timeout: float, quiet: bool) -> ScanRun:
        """Show coins done/failed until the run is finished or failed; the run as it ended."""
        stop = threading.Event()
        bar = tqdm(
            total=run.coins_total,
            desc=f"{run.scanner} scan #{run.pk}",
            unit="coin",
            file=self.stderr._out,
            disable=quiet,
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                run.refresh_from_db()
                bar.n = run.coins_processed
                bar.set_postfix(done=run.coins_done, failed=run.coins_failed, refresh=False)
                bar.refresh()
                if run.status in (RunStatus.FINISHED, RunStatus.FAILED):
                    return run
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"scan #{run.pk} not finished after {timeout:g} s "
                        f"({run.coins_processed}/{run.coins_total} coins); is a worker running "
                        "on the scans queue?"
                    )
                stop.wait(POLL_SECONDS)
        finally:
            bar.close()


def _watchlist_id(raw: str) -> int:
    owner, _, name = raw.rpartition("/") if "/" in raw else ("", "", raw)
    found = Watchlist.objects.filter(name=name)
    if owner:
        found = found.filter(owner__username=owner)
    matches = list(found.select_related("owner"))
    if not matches:
        raise CommandError(f"no watchlist named {raw!r}")
    if len(matches) > 1:
        owners = ", ".join(f"{w.owner.username}/{w.name}" for w in matches)
        raise CommandError(f"several watchlists are named {name!r}; say which: {owners}")
    return matches[0].pk


def run_results_json(run: ScanRun) -> list[dict]:
    """One object per coin and scanner of the run."""
    return [
        {
            "symbol": result.symbol,
            "scanner": result.scanner,
            "as_of": result.as_of.isoformat(),
            "scores": result.scores,
            "direction": result.direction,
            "completeness": result.completeness,
            "inputs": result.inputs,
            "reasons": result.reasons,
        }
        for result in run.results.order_by("symbol", "scanner")
    ]


def run_results_table(run: ScanRun) -> str:
    rows = [("symbol", "scanner", "direction", "scores", "completeness")]
    for result in run.results.order_by("symbol", "scanner"):
        scores = ", ".join(
            f"{name} {value:.1f}" if isinstance(value, int | float) else f"{name} {value}"
            for name, value in result.scores.items()
        )
        rows.append(
            (
                result.symbol,
                result.scanner,
                result.direction or "-",
                scores or "-",
                f"{result.completeness:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]  # fmt: skip
    duration = run.duration.total_seconds() if run.duration else 0.0
    lines.append(
        f"\nscan #{run.pk} {run.scanner} as of {run.as_of:%Y-%m-%d %H:%M} UTC: {run.status}, "
        f"{run.coins_done} coins done, {run.coins_failed} failed, "
        f"{run.signals_recorded} signals, {duration:.1f} s"
    )
    return "\n".join(lines)
