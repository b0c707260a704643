"""Benchmark outcome checks: 100,000 checks falling due at once, run by 2 worker processes.

    .venv/bin/python bench/outcomes.py [--runs 3] [--signals 20000] [--coins 100]
        [--pool prefork] [--concurrency 2] [--noop-tasks 10000]

Target (the issue): all 100,000 done within a minute, on Redis and PostgreSQL.

Setup, once per invocation: a fresh PostgreSQL database `cryptosatx_benchout_<pid>` (migrated,
dropped on exit) and Redis db 9 (flushed before and after). The store holds 1h candles (a random
walk) of --coins coins and BTC/USDT from a day before the signals to the current hour. --signals
signals (scanner, direction and coin varied) share one as_of on the hour, 30 days and one hour
ago — a scan's signals share their as_of — so each has its five checks (1h, 4h, 24h, 7d, 30d;
rows made as `checks_create_for` makes them: due_at = run_at = as_of + horizon) and all of them
are due now: 5 x --signals checks at 5 due times, the 30d ones reading 720 candles each.
MARKET_SOURCE=replay without a replay clock: live mode on the wall clock, store-only data (as
tests/test_outcome_restarts.py), so nothing is fetched.

Then 2 processes of `celery -A cryptosatx worker -Q outcomes --pool P --concurrency C` (the
Procfile's outcomes worker is prefork, concurrency 2), and per run, on the same database, Redis and
workers:

* **checks**: every check reset to PENDING (and VACUUM ANALYZE), then one `checks_sweep()` in
  this process (claims, sends tasks of at most BATCH_SIZE ids sharing a due time with eta = that
  due time, already past); timed from the sweep's start until no check is open (the database is
  polled every 0.25 s). checks/s = checks / that time.
* **bulk update**: one `UPDATE` of the same rows setting result columns (the ORM's
  `.update()`, autocommit) — the database's floor for writing that many rows.
* **no-op tasks**: --noop-tasks `cryptosatx.ping` tasks sent to the `outcomes` queue (same Redis,
  same 2 workers), timed from the first send until every result is in Redis.

Medians of --runs. The worker side is profiled afterwards in this process: one batch of
BATCH_SIZE 30d checks (and one of 1h checks) through `checks_run` with the queries counted, and
the per-task times the workers logged.

Ctrl-C (or SIGTERM) stops the workers, drops the database and flushes db 9.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from bench_support import (  # noqa: E402
    create_database,
    percentile,
    sigterm_as_interrupt,
    start_celery_workers,
)

REDIS_URL = "redis://127.0.0.1:6379/9"
HOUR = timedelta(hours=1)


def _load_scan():
    """bench/scan.py as a module (bench/ is not a package): its product environment, Redis client
    and cleanup, pointed at this benchmark's Redis db."""
    spec = importlib.util.spec_from_file_location("bench_scan", ROOT / "bench" / "scan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.REDIS_URL = REDIS_URL
    return module


scan = _load_scan()


def bench_env(database: str, var_dir: Path) -> dict[str, str]:
    env = scan.product_env("http://127.0.0.1:9", database, var_dir, 1000)
    env.update({"MARKET_SOURCE": "replay", "LUNARCRUSH_API_KEY": ""})
    return env


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- data ------------------------------------------------------------------------------------


def build_store(coins: int, signals: int) -> dict:
    """Markets, candles, signals and their checks (bulk), as described above."""
    import numpy as np
    from django.utils import timezone

    from market.models import Candle
    from tests.factories import MarketFactory
    from tracking.models import HORIZON_DELTAS, Direction, OutcomeCheck, Signal, SignalScanner

    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    as_of = this_hour - max(HORIZON_DELTAS.values()) - HOUR  # the 30d check due an hour ago
    first_open = as_of - 24 * HOUR
    hours = int((this_hour - first_open) / HOUR)  # last candle opens an hour ago: closed by now
    rng = np.random.default_rng(1)
    markets, entry = [], {}
    for number, base in enumerate(["BTC"] + [f"B{n}" for n in range(coins)]):
        market = MarketFactory(base=base)
        closes = (100.0 + number) * np.exp(np.cumsum(rng.normal(0, 0.01, hours)))
        candles = [
            Candle(
                market=market,
                timeframe="1h",
                open_time=first_open + i * HOUR,
                open=float(close),
                high=float(close * 1.004),
                low=float(close * 0.996),
                close=float(close),
                volume=10.0,
            )
            for i, close in enumerate(closes)
        ]
        Candle.objects.bulk_create(candles, batch_size=5000)
        markets.append(market)
        # The close of the candle that closed at as_of: the entry a scan at as_of would record.
        entry[market.symbol] = float(closes[int((as_of - first_open) / HOUR) - 1])
    symbols = [market.symbol for market in markets[1:]]
    scanners = [s for s in SignalScanner.values if s != SignalScanner.MANUAL]
    rows = [
        Signal(
            scanner=scanners[i % len(scanners)],
            symbol=symbols[i % len(symbols)],
            direction=Direction.LONG if i % 3 else Direction.SHORT,
            as_of=as_of,
            entry_price=entry[symbols[i % len(symbols)]],
            completeness=1.0,
            reasons=["bench"],
        )
        for i in range(signals)
    ]
    created = Signal.objects.bulk_create(rows, batch_size=5000)
    checks = [
        OutcomeCheck(signal=s, horizon=h, due_at=as_of + d, run_at=as_of + d)
        for s in created
        for h, d in HORIZON_DELTAS.items()
    ]
    OutcomeCheck.objects.bulk_create(checks, batch_size=5000)
    return {
        "as_of": as_of,
        "candles": Candle.objects.count(),
        "signals": len(created),
        "checks": OutcomeCheck.objects.count(),
    }


def reset_checks() -> None:
    """Every check back to PENDING with no result, and the table vacuumed (the previous run's
    dead tuples would otherwise slow the next)."""
    from django.db import connection
    from django.db.models import F

    from tracking.models import CheckStatus, OutcomeCheck

    OutcomeCheck.objects.update(
        status=CheckStatus.PENDING,
        run_at=F("due_at"),
        claimed_at=None,
        attempts=0,
        checked_at=None,
        exit_price=None,
        return_pct=None,
        adjusted_return_pct=None,
        outcome="",
        mfe_pct=None,
        mae_pct=None,
        first_barrier="",
        btc_return_pct=None,
        excess_return_pct=None,
        unavailable_reason="",
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tracking_outcomecheck")


# --- measurements ----------------------------------------------------------------------------


def run_checks(total: int, timeout: float) -> dict:
    from tracking.models import CheckStatus, OutcomeCheck
    from tracking.outcomes import OPEN, checks_sweep

    reset_checks()
    started = time.perf_counter()
    sent = checks_sweep()
    swept = time.perf_counter() - started
    open_checks = OutcomeCheck.objects.filter(status__in=OPEN)
    progress = []
    while True:
        remaining = open_checks.count()
        elapsed = time.perf_counter() - started
        progress.append((elapsed, remaining))
        if remaining == 0:
            break
        if elapsed > timeout:
            raise SystemExit(f"timed out: {remaining} checks still open after {elapsed:.0f} s")
        time.sleep(0.25)
    seconds = time.perf_counter() - started
    statuses = {
        str(status): OutcomeCheck.objects.filter(status=status).count()
        for status in (CheckStatus.DONE, CheckStatus.UNAVAILABLE)
    }
    half = next(t for t, r in progress if r <= total / 2)
    return {
        "seconds": seconds,
        "sweep_seconds": swept,
        "sent": sent,
        "half_seconds": half,
        "statuses": statuses,
    }


def run_bulk_update() -> dict:
    from django.utils import timezone

    from tracking.models import OutcomeCheck

    started = time.perf_counter()
    rows = OutcomeCheck.objects.update(return_pct=1.5, mfe_pct=2.0, checked_at=timezone.now())
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_noops(count: int, timeout: float) -> dict:
    import redis
    from celery import current_app

    client = redis.Redis.from_url(REDIS_URL)
    started = time.perf_counter()
    ids = [current_app.send_task("cryptosatx.ping", queue="outcomes").id for _ in range(count)]
    sent = time.perf_counter() - started
    waiting = ids
    while waiting:
        pipe = client.pipeline(transaction=False)
        for task_id in waiting:
            pipe.exists(f"celery-task-meta-{task_id}")
        waiting = [t for t, found in zip(waiting, pipe.execute(), strict=True) if not found]
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out: {len(waiting)} no-op tasks unfinished")
        if waiting:
            time.sleep(0.1)
    return {"tasks": count, "seconds": time.perf_counter() - started, "send_seconds": sent}


def profile_batches(logs: Path) -> list[str]:
    """One batch of 30d checks and one of 1h checks through checks_run in this process, queries
    counted; and the per-task times the workers logged."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from tracking.models import CheckStatus, OutcomeCheck
    from tracking.outcomes import BATCH_SIZE, checks_run

    lines = []
    for horizon, one_transaction in (("30d", False), ("1h", False), ("30d", True), ("1h", True)):
        ids = list(
            OutcomeCheck.objects.filter(horizon=horizon)
            .order_by("id")
            .values_list("id", flat=True)[:BATCH_SIZE]
        )
        OutcomeCheck.objects.filter(pk__in=ids).update(
            status=CheckStatus.CLAIMED, attempts=0, checked_at=None
        )
        # As checks_run is, a commit per check written; and inside one transaction (one commit
        # per batch), what wrapping its writes in transaction.atomic() would give.
        wrap = transaction.atomic() if one_transaction else contextlib.nullcontext()
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries, wrap:
            counts = checks_run(ids)
        seconds = time.perf_counter() - started  # the commit included
        sql = sum(float(q["time"]) for q in queries.captured_queries)
        kinds: dict[str, int] = {}
        for query in queries.captured_queries:
            text = query["sql"].lstrip()
            kind = text.split(" ", 1)[0]
            if kind == "SELECT" and "scanners_candle" in text:
                kind = "SELECT candles"
            kinds[kind] = kinds.get(kind, 0) + 1
        lines.append(
            f"checks_run of {len(ids)} {horizon} checks in this process"
            f"{' in one transaction' if one_transaction else ''}: {seconds * 1000:.0f} ms "
            f"({seconds / len(ids) * 1000:.2f} ms/check), {len(queries)} queries "
            f"({len(queries) / len(ids):.1f}/check: {kinds}), {sql * 1000:.0f} ms of it in SQL "
            f"as timed by Django; {counts}"
        )
    pattern = re.compile(r"tracking\.run_outcome_checks\[[^\]]+\] succeeded in ([0-9.]+)s")
    times = []
    for log in sorted(logs.glob("worker*.log")):
        times += [float(m) for m in pattern.findall(log.read_text(errors="replace"))]
    if times:
        times.sort()
        lines.append(
            f"worker-logged run_outcome_checks tasks: {len(times)}, per task median "
            f"{statistics.median(times):.2f} s, p90 {percentile(times, 0.9):.2f} s, "
            f"max {times[-1]:.2f} s, sum {sum(times):.0f} s"
        )
    return lines


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--signals", type=int, default=20_000, help="5 checks each")
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    parser.add_argument("--concurrency", type=int, default=2, help="per worker process")
    parser.add_argument("--noop-tasks", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=900, help="per measurement, seconds")
    parser.add_argument("--target", type=float, default=60, help="seconds for all checks")
    args = parser.parse_args()
    sigterm_as_interrupt()
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="cryptosatx-bench-outcomes-"))
    logs = tmp / "logs"
    logs.mkdir()
    database = f"cryptosatx_fastout_bench_{os.getpid()}"
    results: dict[str, list[dict]] = {"checks": [], "bulk": [], "noop": []}
    profile: list[str] = []
    try:
        scan.redis_client().ping()
        scan.redis_client().flushdb()
        create_database(database)
        env = bench_env(database, tmp / "var")
        setup_django(env)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        built_at = time.perf_counter()
        store = build_store(args.coins, args.signals)
        print(
            f"store: {store['candles']:,} candles, {store['signals']:,} signals, "
            f"{store['checks']:,} checks (as_of {store['as_of']:%Y-%m-%d %H:%M}) in "
            f"{time.perf_counter() - built_at:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        start_celery_workers(
            args.workers,
            queues="outcomes",
            name="benchout",
            pool=args.pool,
            concurrency=args.concurrency,
            env=env,
            logs=logs,
        )
        for index in range(args.runs):
            checks = run_checks(store["checks"], args.timeout)
            bulk = run_bulk_update()
            noop = run_noops(args.noop_tasks, args.timeout)
            results["checks"].append(checks)
            results["bulk"].append(bulk)
            results["noop"].append(noop)
            print(
                f"run {index + 1}: checks {checks['seconds']:.1f} s "
                f"({store['checks'] / checks['seconds']:.0f}/s; sweep {checks['sweep_seconds']:.2f}"
                f" s, {checks['sent']} sent, half done at {checks['half_seconds']:.1f} s, "
                f"{checks['statuses']}); bulk update {bulk['seconds']:.2f} s "
                f"({bulk['rows'] / bulk['seconds']:.0f} rows/s); no-op {noop['seconds']:.1f} s "
                f"({noop['tasks'] / noop['seconds']:.0f}/s, sending {noop['send_seconds']:.1f} s)"
                f"; load {os.getloadavg()[0]:.2f}",
                file=sys.stderr,
                flush=True,
            )
        profile = profile_batches(logs)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        scan.cleanup()  # bench_support's (Django's connections closed first), then Redis db 9
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, store, profile, args, started_at, load_before)


def report(results, store, profile, args, started_at, load_before) -> None:
    checks = store["checks"]
    seconds = statistics.median(r["seconds"] for r in results["checks"])
    bulk = statistics.median(r["rows"] / r["seconds"] for r in results["bulk"])
    noop = statistics.median(r["tasks"] / r["seconds"] for r in results["noop"])
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    command = ".venv/bin/python bench/outcomes.py " + " ".join(sys.argv[1:])
    load_after = os.getloadavg()
    print(
        f"\n{started_at:%Y-%m-%d}, {machine}, PostgreSQL and Redis on the same machine; load "
        f"average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f} "
        f"before, {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} after.\n"
    )
    print(f"```bash\n{command.strip()}\n```\n")
    print(
        f"| date | machine | command | checks/s | time for {checks:,} "
        f"| target ≤ {args.target:.0f} s | bulk-update rows/s | no-op tasks/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {started_at:%Y-%m-%d} | {machine} | `{command.strip()}` | {checks / seconds:,.0f} "
        f"| {seconds:.1f} s | {'met' if seconds <= args.target else 'missed'} | {bulk:,.0f} "
        f"| {noop:,.0f} |"
    )
    print(
        f"\n{args.workers} x `celery -A cryptosatx worker -Q outcomes --pool {args.pool} "
        f"--concurrency {args.concurrency}`; medians of {args.runs} runs; "
        f"{store['signals']:,} signals x 5 horizons, {args.coins} coins + BTC, "
        f"{store['candles']:,} candles; {args.noop_tasks:,} no-op tasks (`cryptosatx.ping`)."
    )
    print("\nall runs:")
    for index, (c, b, n) in enumerate(
        zip(results["checks"], results["bulk"], results["noop"], strict=True)
    ):
        print(
            f"  run {index + 1}: checks {c['seconds']:.1f} s (sweep {c['sweep_seconds']:.2f} s, "
            f"{c['sent']:,} sent, half done {c['half_seconds']:.1f} s, {c['statuses']}); bulk "
            f"update {b['seconds']:.2f} s; no-op {n['seconds']:.1f} s (sending "
            f"{n['send_seconds']:.1f} s)"
        )
    for line in profile:
        print(f"  {line}")


if __name__ == "__main__":
    main()
