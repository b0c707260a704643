"""Benchmark `GET /api/performance/report` over 10k, 100k and 1M stored outcomes.

    .venv/bin/python bench/analytics.py [--sizes 10000 100000 1000000] [--requests 50]
                                        [--warmups 3] [--span-days 180] [--symbols 100]

One PostgreSQL database `cryptosatx_benchan_<pid>` (migrated, dropped at the end, also on Ctrl-C
or SIGTERM); for each size the signal and check tables are emptied and refilled: size / 5 signals
in as_of order (chronological ids, as the product writes them) and their five outcome checks
(1h, 4h, 24h, 7d, 30d), every check DONE with a result (exit price, returns, WIN /
LOSS / NEUTRAL, excursions, first barrier, BTC and excess return; 5 % without an excess return).
The signals are spread uniformly over the last --span-days of wall time (MARKET_SOURCE=replay
without a clock: `market_now()` is the wall clock), over 100 symbols (Zipf-like popularity), the
scanners smart_money / mss / rsi / social / unified (+1 % manual), LONG 60 % / SHORT 40 %,
unified signals in TIER_1 / TIER_2 and a third of the others with a tier. The loading is
`COPY FROM STDIN` (the rollup triggers append the daily rollups as the rows arrive, as they do
for every write; tracking/rollups.py), then the rollups are rebuilt (one row per key, as the
sweeper's compaction leaves them) and `VACUUM ANALYZE` (what autovacuum leaves a steady database
in).

All checks DONE is the worst case for the aggregation: in a live database the most recent
horizons would still be pending.

The server: gunicorn on 127.0.0.1, **1 sync worker**, DEBUG off, persistent database connections
(`conn_max_age=60`, as in settings), the same settings as the Procfile's except the worker count.
Each request is a new HTTP connection (gunicorn's sync worker closes it after the response),
authenticated with `Authorization: Token ...`. Per size and URL: --warmups requests, then
--requests timed ones (client-side wall time, connect to last byte); median and p95 (nearest
rank). The URLs: `/api/performance/report` (the defaults: days=7, horizon 24h) and
`/api/performance/report?days=180` (every stored signal).

Queries per request are counted in-process (Django's test Client + CaptureQueriesContext, same
database, same settings); at the largest size the slowest query of each URL (median over 3
in-process requests) is run again under `EXPLAIN (ANALYZE, BUFFERS)` and printed.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from bench_support import (  # noqa: E402
    PG,
    cleanup,
    create_database,
    free_port,
    http_get,
    migrate,
    percentile,
    sigterm_as_interrupt,
    spawn,
    stop_process,
    wait_listening,
)

DATABASE = os.environ.get("BENCH_DATABASE", f"cryptosatx_benchan_{os.getpid()}")
TARGET_P95_MS = 100.0
URLS = ["/api/performance/report", "/api/performance/report?days=180"]
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}

HORIZONS = [("1h", 1 / 24), ("4h", 4 / 24), ("24h", 1.0), ("7d", 7.0), ("30d", 30.0)]
HORIZON_DELTA = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
SCANNERS = [
    ("smart_money", 0.22),
    ("mss", 0.22),
    ("rsi", 0.27),
    ("social", 0.13),
    ("unified", 0.15),
    ("manual", 0.01),
]
WIN_THRESHOLD = 2.0  # percent, direction-adjusted


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_connect():
    import psycopg2

    return psycopg2.connect(dbname=DATABASE, **PG)


def product_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DATABASE}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/11",  # never used by these requests
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/11",
        "RATE_BUDGET_REDIS_URL": "",
        "SECRET_KEY": "bench-only-not-a-secret",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "MARKET_SOURCE": "replay",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }


# --- the data --------------------------------------------------------------------------------


def _weighted(choices: list[tuple[str, float]]):
    names = [name for name, _ in choices]
    weights = [weight for _, weight in choices]
    return names, weights


def _json(value) -> str:
    """A JSON value as a COPY text field (backslashes doubled)."""
    return json.dumps(value).replace("\\", "\\\\")


def _num(value: float | None, digits: int = 6) -> str:
    return "\\N" if value is None else f"{value:.{digits}f}"


def load(count: int, now: datetime, args, rng: random.Random) -> float:
    """Empty the signal and check tables, COPY `count` signals (ids 1.., in as_of order) and their
    5 DONE checks each, VACUUM ANALYZE; returns seconds."""
    started = time.perf_counter()
    symbols = [f"SYM{i:03d}/USDT" for i in range(1, args.symbols + 1)]
    symbol_weights = [1 / (rank**0.8) for rank in range(1, args.symbols + 1)]
    base_price = {s: 10 ** rng.uniform(-3, 4) for s in symbols}
    scanner_names, scanner_weights = _weighted(SCANNERS)
    span = args.span_days * 86400.0
    # Chronological ids, as the product inserts them (a signal and its five checks together):
    # the newest signals and their checks sit at the end of each table.
    ages = sorted((rng.random() * span for _ in range(count)), reverse=True)
    chunk = 50_000
    connection = pg_connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE tracking_outcomecheck, tracking_signal, tracking_outcomerollup "
                "RESTART IDENTITY CASCADE"
            )
            for start in range(0, count, chunk):
                size = min(chunk, count - start)
                signals, checks = io.StringIO(), io.StringIO()
                scanners = rng.choices(scanner_names, scanner_weights, k=size)
                picked = rng.choices(symbols, symbol_weights, k=size)
                for offset in range(size):
                    signal_id = 1 + start + offset
                    scanner, symbol = scanners[offset], picked[offset]
                    direction = "LONG" if rng.random() < 0.6 else "SHORT"
                    as_of = now - timedelta(seconds=ages[start + offset])
                    entry = base_price[symbol] * rng.uniform(0.7, 1.3)
                    if scanner == "unified":
                        tier = "TIER_1" if rng.random() < 0.35 else "TIER_2"
                        unified = rng.uniform(65, 95)
                        confidence = rng.randint(40, 100)
                    else:
                        tier = (
                            rng.choice(["TIER_1", "TIER_2", "TIER_3", "TIER_4"])
                            if (rng.random() < 1 / 3)
                            else ""
                        )
                        unified = rng.uniform(20, 95) if tier else None
                        confidence = rng.randint(20, 100) if tier else None
                    score = rng.uniform(50, 100)
                    completeness = rng.uniform(0.6, 1.0)
                    scores = {scanner: round(score, 2)}
                    reasons = [f"{scanner} score {score:.0f}"]
                    signals.write(
                        "\t".join(
                            [
                                str(signal_id),
                                scanner,
                                symbol,
                                direction,
                                as_of.isoformat(),
                                _num(entry, 8),
                                _num(score, 4),
                                _json(scores),
                                _num(unified, 4),
                                tier,
                                "\\N" if confidence is None else str(confidence),
                                _num(completeness, 4),
                                _json(reasons),
                                "\\N",
                                as_of.isoformat(),
                            ]
                        )
                        + "\n"
                    )
                    sign = 1 if direction == "LONG" else -1
                    for horizon, days in HORIZONS:
                        due = as_of + HORIZON_DELTA[horizon]
                        sigma = 1.2 * math.sqrt(days * 24) ** 0.6
                        adjusted = rng.gauss(0.15, sigma)
                        raw = sign * adjusted
                        btc = rng.gauss(0.0, sigma * 0.6)
                        excess = None if rng.random() < 0.05 else adjusted - sign * btc
                        outcome = (
                            "WIN"
                            if adjusted >= WIN_THRESHOLD
                            else "LOSS"
                            if adjusted <= -WIN_THRESHOLD
                            else "NEUTRAL"
                        )
                        barrier = {"WIN": "win", "LOSS": "loss"}.get(outcome, "none")
                        if outcome != "NEUTRAL" and rng.random() < 0.03:
                            barrier = "both_in_one_candle"
                        mfe = max(adjusted, 0) + abs(rng.gauss(0, sigma / 2))
                        mae = min(adjusted, 0) - abs(rng.gauss(0, sigma / 2))
                        checks.write(
                            "\t".join(
                                [
                                    str(signal_id),
                                    horizon,
                                    due.isoformat(),
                                    due.isoformat(),
                                    "done",
                                    due.isoformat(),
                                    "1",
                                    (due + timedelta(seconds=40)).isoformat(),
                                    _num(entry * (1 + raw / 100), 8),
                                    _num(raw),
                                    _num(adjusted),
                                    outcome,
                                    _num(mfe),
                                    _num(mae),
                                    barrier,
                                    _num(btc),
                                    _num(excess),
                                    "",
                                ]
                            )
                            + "\n"
                        )
                signals.seek(0)
                checks.seek(0)
                cursor.copy_expert(
                    "COPY tracking_signal (id, scanner, symbol, direction, as_of, entry_price, "
                    "scanner_score, scores, unified_score, tier, confidence, completeness, "
                    "reasons, scan_run_id, created_at) FROM STDIN",
                    signals,
                )
                cursor.copy_expert(
                    "COPY tracking_outcomecheck (signal_id, horizon, due_at, run_at, status, "
                    "claimed_at, attempts, checked_at, exit_price, return_pct, "
                    "adjusted_return_pct, outcome, mfe_pct, mae_pct, first_barrier, "
                    "btc_return_pct, excess_return_pct, unavailable_reason) FROM STDIN",
                    checks,
                )
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('tracking_signal', 'id'), "
                "(SELECT max(id) FROM tracking_signal))"
            )
        connection.commit()
        # The rollups as the sweeper's compaction leaves them (the same merged rows, from one
        # grouped pass instead of folding every COPY chunk's appended rows).
        from tracking.rollups import rollups_rebuild

        rollups_rebuild()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tracking_signal")
            cursor.execute("VACUUM ANALYZE tracking_outcomecheck")
            cursor.execute("VACUUM ANALYZE tracking_outcomerollup")
    finally:
        connection.close()
    return time.perf_counter() - started


def table_sizes() -> dict[str, object]:
    connection = pg_connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM tracking_signal), "
                "(SELECT count(*) FROM tracking_outcomecheck WHERE status = 'done'), "
                "pg_size_pretty(pg_total_relation_size('tracking_signal')), "
                "pg_size_pretty(pg_total_relation_size('tracking_outcomecheck')), "
                "(SELECT count(*) FROM tracking_outcomerollup), "
                "pg_size_pretty(pg_total_relation_size('tracking_outcomerollup'))"
            )
            signals, checks, signal_size, check_size, rollups, rollup_size = cursor.fetchone()
    finally:
        connection.close()
    return {
        "signals": signals,
        "checks": checks,
        "signal_table": signal_size,
        "check_table": check_size,
        "rollup_rows": rollups,
        "rollup_table": rollup_size,
    }


# --- the server and the requests -------------------------------------------------------------


def start_gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "cryptosatx.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--timeout",
        "120",
    ]
    process = spawn(command, env, log)
    wait_listening(port, process, log)
    return process


def get(port: int, url: str, token: str) -> tuple[float, int, bytes]:
    """One request on a new connection: (milliseconds from connect to last byte, status, body)."""
    started = time.perf_counter()
    status, body = http_get(port, url, {"Authorization": f"Token {token}"}, timeout=120)
    return (time.perf_counter() - started) * 1000, status, body


def measure(port: int, url: str, token: str, args) -> dict:
    for _ in range(args.warmups):
        _, status, body = get(port, url, token)
        if status != 200:
            raise SystemExit(f"GET {url}: {status} {body[:500]!r}")
    times = []
    deadline = time.monotonic() + args.max_seconds
    for index in range(args.requests):
        if index >= 10 and time.monotonic() > deadline:
            break
        elapsed, status, body = get(port, url, token)
        if status != 200:
            raise SystemExit(f"GET {url}: {status} {body[:500]!r}")
        times.append(elapsed)
    summary = json.loads(body)["data"]["summary"]
    return {
        "median": statistics.median(times),
        "p95": percentile(times, 0.95),
        "min": min(times),
        "max": max(times),
        "bytes": len(body),
        "total_signals": summary["total_signals"],
        "outcomes_checked": summary["outcomes_checked"],
        "n": len(times),
        "times": times,
    }


def queries(url: str, token: str, runs: int = 3) -> tuple[int, list[dict]]:
    """In-process: the number of queries of one request and, per query, its median time."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    captured: list[list[dict]] = []
    for _ in range(runs):
        timings: list[float] = []

        def timed(execute, sql, params, many, context, timings=timings):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append(time.perf_counter() - started)

        with CaptureQueriesContext(connection) as context, connection.execute_wrapper(timed):
            response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        # Django also logs BEGIN / COMMIT / ROLLBACK (a request in a transaction), which never
        # pass through execute wrappers: they are not queries and have no timing here.
        statements = [q for q in context.captured_queries if q["sql"] not in TRANSACTION_CONTROL]
        assert len(timings) == len(statements)
        captured.append(
            [
                {"sql": query["sql"], "time": seconds}
                for query, seconds in zip(statements, timings, strict=True)
            ]
        )
    counts = {len(run) for run in captured}
    if len(counts) != 1:
        print(f"  note: query counts differ between runs: {counts}", file=sys.stderr)
    per_query = [
        {
            "sql": captured[-1][index]["sql"],
            "ms": 1000 * statistics.median(float(run[index]["time"]) for run in captured),
        }
        for index in range(len(captured[-1]))
    ]
    return len(captured[-1]), per_query


def explain(sql: str) -> str:
    connection = pg_connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.close()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60,
        help="stop timing a URL after this long (at least 10 requests)",
    )
    parser.add_argument("--span-days", type=int, default=180)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    if any(size % len(HORIZONS) for size in args.sizes) or args.sizes != sorted(args.sizes):
        parser.error("sizes: increasing multiples of 5 (outcomes = signals x 5 horizons)")
    sigterm_as_interrupt()
    started = datetime.now(UTC)
    env = product_env()
    results: list[dict] = []
    explains: dict[str, dict] = {}
    log = Path(f"/tmp/cryptosatx-bench-analytics-{os.getpid()}.log")
    try:
        create_database(DATABASE)
        print(f"database {DATABASE}: migrating...", file=sys.stderr, flush=True)
        migrate(env)
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        user = get_user_model().objects.create_user("bench", password="bench-only")
        token = Token.objects.create(user=user).key
        port = free_port()
        server = start_gunicorn(env, port, log)
        rng = random.Random(args.seed)
        for size in args.sizes:
            now = datetime.now(UTC)
            seconds = load(size // len(HORIZONS), now, args, rng)
            sizes = table_sizes()
            print(
                f"size {size:,}: loaded in {seconds:.1f} s ({sizes}), load "
                f"{os.getloadavg()[0]:.2f}",
                file=sys.stderr,
                flush=True,
            )
            for url in URLS:
                load_before = os.getloadavg()
                timing = measure(port, url, token, args)
                count, per_query = queries(url, token)
                slowest = max(per_query, key=lambda q: q["ms"])
                result = {
                    "size": size,
                    "url": url,
                    **timing,
                    "queries": count,
                    "db_ms": sum(q["ms"] for q in per_query),
                    "slowest_ms": slowest["ms"],
                    "per_query_ms": [round(q["ms"], 2) for q in per_query],
                    "load_before": load_before,
                    "load_after": os.getloadavg(),
                    **sizes,
                }
                results.append(result)
                print(
                    f"  {url}: median {timing['median']:.1f} ms, p95 {timing['p95']:.1f} ms, "
                    f"{count} queries (db {result['db_ms']:.1f} ms in-process, slowest "
                    f"{slowest['ms']:.1f} ms), {timing['total_signals']:,} signals / "
                    f"{timing['outcomes_checked']:,} checked in the window, load "
                    f"{load_before[0]:.2f} -> {result['load_after'][0]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
                if size == args.sizes[-1]:
                    explains[url] = {
                        "ms": slowest["ms"],
                        "sql": slowest["sql"],
                        "plan": explain(slowest["sql"]),
                        "per_query": per_query,
                    }
        stop_process(server)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        cleanup()
        if results:
            report(results, explains, args, started)
        raise SystemExit(130) from None
    finally:
        cleanup()
        log.unlink(missing_ok=True)
    report(results, explains, args, started)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "explains": explains}, indent=2, default=str)
        )


def report(results: list[dict], explains: dict[str, dict], args, started: datetime) -> None:
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        "PostgreSQL on the same machine"
    )
    command = ".venv/bin/python bench/analytics.py " + " ".join(sys.argv[1:])
    print(f"\n{started:%Y-%m-%d}, {machine}; gunicorn, 1 sync worker, 127.0.0.1.\n")
    print("```bash\n" + command.strip() + "\n```\n")
    print(
        f"| date | outcomes (signals) | request | median | p95 | queries/request | signals / "
        f"checked in window | load (1 min) | p95 < {TARGET_P95_MS:.0f} ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        met = "yes" if r["p95"] < TARGET_P95_MS else "**no**"
        print(
            f"| {started:%Y-%m-%d} | {r['size']:,} ({r['size'] // 5:,}) | `{r['url']}` "
            f"| {r['median']:.1f} ms | {r['p95']:.1f} ms (n={r['n']}) | {r['queries']} "
            f"| {r['total_signals']:,} / {r['outcomes_checked']:,} "
            f"| {r['load_before'][0]:.2f}–{r['load_after'][0]:.2f} | {met} |"
        )
    print(
        f"\nUp to {args.requests} timed requests (fewer once {args.max_seconds:.0f} s have "
        f"passed, at least 10) after {args.warmups} warm-ups per row; n = the number timed."
    )
    for url, found in explains.items():
        print(f"\nper-query time at {results[-1]['size']:,} for `{url}` (in-process, ms):")
        for index, query in enumerate(found["per_query"]):
            print(f"  {index + 1:2d}. {query['ms']:8.2f}  {query['sql'][:160]}")
        print(f"\nslowest query ({found['ms']:.1f} ms):\n{found['sql']}\n")
        print("EXPLAIN (ANALYZE, BUFFERS):\n" + found["plan"])


if __name__ == "__main__":
    main()
