"""Benchmark whole scans (`manage.py scan all`) through real Celery workers, Redis and PostgreSQL.

    .venv/bin/python bench/scan.py [--coins 100 500 1000] [--workers 1 2] [--runs 3] [--threads 4]

The market is bench/fetch.py's: the fake exchange (`python -m fakes.exchange`, a
subprocess) on 127.0.0.1 with 50 ms latency, Binance's weight limits (spot 6,000, futures 2,400
per minute), synthetic data (seed 1) and CoinGecko at 1,000 calls per minute, serving a synthetic
universe of N coins (the bundled sample's 46 spot coins repeated under new names). One thing
differs: each coin's candles are **shifted in time** (whole hours) so that all of them end a few
hours after the wall clock, and the fake's "now" is set to the wall clock before every run. A scan
started with no --as-of scans as of the wall clock, and BinanceSource answers "now" endpoints
(tickers, premium index, open interest, ratios) live only within 5 minutes of the wall clock:
without the shift, the sample's 2024 candles would make every coin's live inputs Missing and the
scan a different workload (and coins whose sample ends early would have no 24h volume and drop out
of the universe).

For every N and W (worker processes), one configuration:

* a fresh PostgreSQL database `cryptosatx_benchscan_<pid>_<N>_<W>` (migrated, dropped after) and
  Redis db 11 (flushed before and after), MARKET_SOURCE=binance pointed at the fake,
  LUNARCRUSH_API_KEY set (so social inputs are fetched), the vendor call budgets at
  --vendor-calls-per-minute (1,000 by default, as bench/fetch.py; the product defaults are 30 for
  CoinGecko and 10 for LunarCrush);
* W processes of `celery -A cryptosatx worker -Q scans,default --pool threads --concurrency T`.
  Threads, because a batch is I/O-bound and already runs its requests concurrently on the process's
  event loop: the threads of one process share its request engines (PARALLEL_MAX_CONCURRENT
  requests in flight) and its connection pool, and a second process is what adds CPU (the GIL);
* --runs scans, each `manage.py scan all --coins N --json` as a subprocess (what a user types),
  timed from launching the command to the run's `finished_at` in the database (the JSON output
  written after that is not counted). Run 1 is **cold** (empty candle store, no trade tally);
  later runs are **warm**: the candle store holds the previous run's candles and the coins' trade
  tallies (market/sources/trade_tally.py) the trades read so far, so a warm run reads only
  the trades since the previous one, as a scan minutes after another does (each warm run starts
  in a later wall-clock minute than the previous run, so it has new trades to read). The fake's
  weight counters, the shared request budget, bans and the Redis request caches are cleared before
  every run, as after a quiet minute. `--forget-tallies` clears the tallies too: the cost of
  scans an hour or more apart, each reading its whole hour of trades again.
  `--tally-refresh-minutes M`: before each warm run the tallies are refreshed as beat's
  `scanners.refresh_trade_tallies` does (every TRADE_TALLY_REFRESH_SECONDS in the product), and
  the scan starts M minutes later: an hourly scan M minutes after the last refresh. The worker
  processes keep their in-process caches (60 s prices, 10 min exchange metadata) between runs, as a
  running worker does.

The floor is bench/fetch.py's for the same N: its fetch of everything one scan needs, measured once
per N against the same fake (`bench/fetch.py --worker`, one run, concurrency cap
PARALLEL_MAX_CONCURRENT), with its `floor_seconds` (weight beyond one minute's budget at the
budget's rate, or latency x requests / cap, whichever is larger). ratio = scan wall time / floor.
The scan's own requests and weight (the fake's counts for the run) are reported beside it.

Ctrl-C (or SIGTERM) stops every process started here, drops the databases and flushes db 11.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import bench_support  # noqa: E402
from bench_support import (  # noqa: E402
    PG,
    adopt,
    create_database,
    drop_database,
    forget,
    migrate,
    sigterm_as_interrupt,
    spawn,
    start_celery_workers,
    stop_process,
)

REDIS_URL = "redis://127.0.0.1:6379/11"
SHIFT_AHEAD = timedelta(hours=6)  # candles end this far after the wall clock's hour


def _load_fetch():
    """bench/fetch.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_fetch", ROOT / "bench" / "fetch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch = _load_fetch()


# --- the database, Redis, cleanup ------------------------------------------------------------


def pg_query(database: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(dbname=database, **PG)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def clear_request_state(*, keep_tallies: bool) -> None:
    """Budget counters, bans and request caches of the shared Redis (not Celery's keys); the
    coins' trade tallies too unless `keep_tallies` (see market/sources/trade_tally.py)."""
    client = redis_client()
    keys = [
        key
        for key in client.scan_iter("cryptosatx:*", count=1000)
        if not (keep_tallies and b":tally:" in key)
    ]
    if keys:
        client.delete(*keys)


def cleanup() -> None:
    """bench_support's cleanup (every process and database this bench made), then the Redis db
    flushed."""
    bench_support.cleanup()
    try:
        redis_client().flushdb()
    except Exception as error:
        print(f"could not flush {REDIS_URL}: {error}", file=sys.stderr)


# --- the market ------------------------------------------------------------------------------


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def shifted_sample(folder: Path) -> Path:
    """The bundled sample's spot candles, each coin's moved in time to end SHIFT_AHEAD after this
    hour (whole hours, so candle boundaries stay on the hour)."""
    target = int((floor_hour(datetime.now(UTC)) + SHIFT_AHEAD).timestamp() * 1000)
    out = folder / "spot-1h"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(fetch.SAMPLE.glob("*_USDT-1h.csv.gz")):
        with gzip.open(path, "rt") as handle:
            header, *rows = handle.read().splitlines()
        # Each coin on its own: every one of them ends at the same hour, so all N are trading.
        delta = target - int(rows[-1].split(",", 1)[0])
        delta -= delta % 3_600_000
        name = path.name
        shifted = []
        for row in rows:
            stamp, rest = row.split(",", 1)
            shifted.append(f"{int(stamp) + delta},{rest}")
        with gzip.open(out / name, "wt", compresslevel=1) as handle:
            handle.write(header + "\n" + "\n".join(shifted) + "\n")
    return out


def set_fake_now(base: str) -> None:
    """Reset the fake's counters and move its now to the wall clock."""
    from urllib.request import Request, urlopen

    fetch.fake_call(base, "POST", "reset")
    body = json.dumps({"now": int(time.time() * 1000)}).encode()
    request = Request(
        f"{base}/__fake__/config",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urlopen(request, timeout=10) as answer:
        answer.read()


def fetch_floor(base: str, coins: int, env: dict[str, str]) -> dict:
    """bench/fetch.py's one-run fetch for `coins` against the running fake, with its floor."""
    set_fake_now(base)
    command = [sys.executable, str(ROOT / "bench" / "fetch.py"), "--worker", base]
    command += ["--coins", str(coins), "--runs", "1", "--no-baseline"]
    process = spawn(command, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate()
    forget(process)
    if process.returncode != 0:
        raise SystemExit(f"bench/fetch.py failed:\n{err[-3000:]}")
    output = json.loads(out.strip().splitlines()[-1])
    result = output["runs"][0]
    floor = fetch.floor_seconds(result, output["concurrency"])
    return {
        "seconds": result["seconds"],
        "requests": result["requests"],
        "weight": result["weight"],
        "floor": floor,
        "concurrency": output["concurrency"],
    }


# --- one configuration -----------------------------------------------------------------------


def product_env(base: str, database: str, var_dir: Path, vendor_calls: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_RESULT_BACKEND": REDIS_URL,
        "RATE_BUDGET_REDIS_URL": "",
        "SECRET_KEY": "bench-only-not-a-secret",
        "DEBUG": "false",
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        "MARKET_SOURCE": "binance",
        "BINANCE_SPOT_URL": base,
        "BINANCE_FUTURES_URL": base,
        "COINGECKO_API_URL": f"{base}/coingecko/api/v3",
        "COINGECKO_API_KEY": "",
        "COINGECKO_CALLS_PER_MINUTE": str(vendor_calls),
        "LUNARCRUSH_API_URL": f"{base}/lunarcrush/api4",
        "LUNARCRUSH_API_KEY": "bench",
        "LUNARCRUSH_CALLS_PER_MINUTE": str(vendor_calls),
    }


def one_scan(
    base: str,
    coins: int,
    env: dict[str, str],
    database: str,
    logs: Path,
    n: int,
    *,
    keep_tallies: bool,
):
    clear_request_state(keep_tallies=keep_tallies and n > 1)
    set_fake_now(base)
    command = [sys.executable, "manage.py", "scan", "all", "--coins", str(coins), "--json"]
    command += ["--timeout", "1800"]
    out_path, err_path = logs / f"scan{n}.json", logs / f"scan{n}.err"
    started_epoch = time.time()
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = spawn(command, env, stdout=out, stderr=err)
        returncode = process.wait()
        forget(process)
    command_seconds = time.perf_counter() - started
    stats = fetch.fake_call(base, "GET", "stats")
    rows = pg_query(
        database,
        "SELECT id, status, coins_total, coins_done, coins_failed, batches_total, created_at, "
        "finished_at, signals_recorded, error FROM scanners_scanrun ORDER BY id DESC LIMIT 1",
    )
    if not rows:
        raise SystemExit(f"no scan run was created:\n{err_path.read_text()[-3000:]}")
    run_id, status, total, done, failed, batches, created, finished, signals, error = rows[0]
    failures = pg_query(
        database,
        "SELECT error, count(*) FROM scanners_coinfailure WHERE run_id = %s GROUP BY error "
        "ORDER BY count(*) DESC LIMIT 5",
        (run_id,),
    )
    completeness = pg_query(
        database,
        "SELECT scanner, round(avg(completeness)::numeric, 3), count(*) FROM scanners_scanresult "
        "WHERE run_id = %s GROUP BY scanner ORDER BY scanner",
        (run_id,),
    )
    candles = pg_query(database, "SELECT count(*) FROM scanners_candle")[0][0]
    wall = (finished.timestamp() - started_epoch) if finished else command_seconds
    return {
        "run_id": run_id,
        "status": status,
        "returncode": returncode,
        "coins": total,
        "done": done,
        "failed": failed,
        "batches": batches,
        "signals": signals,
        "error": error,
        "seconds": wall,
        "run_seconds": (finished - created).total_seconds() if finished else None,
        "command_seconds": command_seconds,
        "requests": stats["requests_total"],
        "requests_by_path": stats["requests"],
        "weight": {api: sum(m.values()) for api, m in stats["weight_per_minute"].items()},
        "max_weight_per_minute": stats["max_weight_per_minute"],
        "sent_429": stats["sent_429"],
        "sent_418": stats["sent_418"],
        "failures": [[reason[:200], count] for reason, count in failures],
        "completeness": {s: [float(c), k] for s, c, k in completeness},
        "stored_candles": candles,
        "stderr_tail": err_path.read_text(errors="replace")[-1500:] if returncode else "",
    }


def configuration(base: str, coins: int, workers: int, args, tmp: Path) -> dict:
    database = f"cryptosatx_benchscan_{os.getpid()}_{coins}_{workers}"
    logs = tmp / f"logs-{coins}-{workers}"
    logs.mkdir(parents=True, exist_ok=True)
    env = product_env(base, database, tmp / "var", args.vendor_calls_per_minute)
    create_database(database)
    redis_client().flushdb()
    processes: list[subprocess.Popen] = []
    try:
        migrate(env)
        processes = start_celery_workers(
            workers,
            queues="scans,default",
            name="benchscan",
            pool="threads",
            concurrency=args.threads,
            env=env,
            logs=logs,
        )
        runs = []
        for index in range(args.runs):
            if index:
                wait_for_next_minute()
                if args.tally_refresh_minutes is not None:
                    refresh_tallies(base, env, args.tally_refresh_minutes)
            result = one_scan(
                base, coins, env, database, logs, index + 1, keep_tallies=not args.forget_tallies
            )
            result["scan_floor"] = fetch.floor_seconds(result, fetch_concurrency() * workers)
            runs.append(result)
            print(
                f"  N={coins} W={workers} run {index + 1} ({'cold' if index == 0 else 'warm'}): "
                f"{result['seconds']:.1f} s, {result['status']}, {result['done']}/{result['coins']}"
                f" done, {result['failed']} failed, {result['requests']} requests, "
                f"weight {result['weight']}, 429s {result['sent_429']}, 418s {result['sent_418']}",
                file=sys.stderr,
                flush=True,
            )
            print(f"    requests per path: {result['requests_by_path']}", file=sys.stderr)
            if result["failures"]:
                print(f"    failures: {result['failures']}", file=sys.stderr, flush=True)
            if result["stderr_tail"]:
                print(f"    command stderr: {result['stderr_tail']}", file=sys.stderr, flush=True)
        return {"coins": coins, "workers": workers, "runs": runs, "logs": str(logs)}
    finally:
        for process in processes:
            stop_process(process, grace=20)
        if args.keep_logs:
            keep = ROOT / "var" / "bench-scan-logs" / logs.name
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(logs, keep)
        drop_database(database)
        redis_client().flushdb()


def refresh_tallies(base: str, env: dict[str, str], then_wait_minutes: float) -> None:
    """What beat's `scanners.refresh_trade_tallies` does, in its own process against the same
    database, Redis and fake; then `then_wait_minutes` of wall time, so the next scan has that
    many minutes of new trades to read."""
    clear_request_state(keep_tallies=True)
    set_fake_now(base)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from scanners import scanning; print(scanning.refresh_trade_tallies())",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    took = time.perf_counter() - started
    print(
        f"    tallies refreshed in {took:.1f} s; the scan runs {then_wait_minutes:g} min later",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(max(0.0, then_wait_minutes * 60 - took))


def wait_for_next_minute() -> None:
    """Sleep into the next wall-clock minute: a warm run then scans at least a minute after the
    previous one, so its whale window has new trades to read (a window ends on a whole minute)."""
    time.sleep(61 - time.time() % 60)


def fetch_concurrency() -> int:
    return int(os.environ.get("PARALLEL_MAX_CONCURRENT") or 50)


# --- report ----------------------------------------------------------------------------------


def report(results: list[dict], floors: dict[int, dict], args, started: datetime) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    command = "  .venv/bin/python bench/scan.py " + " ".join(sys.argv[1:])
    print("\nfetch floor per N (bench/fetch.py, one run against the same fake):")
    for coins, floor in sorted(floors.items()):
        print(
            f"  N={coins}: fetch {floor['seconds']:.1f} s, {floor['requests']:,} requests, "
            f"weight {floor['weight']}, floor {floor['floor']['floor']:.2f} s "
            f"(weight {floor['floor']['weight']:.2f} s, latency {floor['floor']['latency']:.2f} s,"
            f" cap {floor['concurrency']})"
        )
    print(f"\n{started:%Y-%m-%d}, {machine}, PostgreSQL 15 and Redis on the same machine.\n")
    print("```bash\n" + command.strip() + "\n```\n")
    print(
        f"| coins | workers | cold (run 1) | warm (median of {max(args.runs - 1, 1)}) "
        "| coins/s cold / warm | failed coins | requests cold / warm | fetch floor "
        "| ratio cold / warm |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        runs = result["runs"]
        cold, warm_runs = runs[0], runs[1:]
        warm = statistics.median(r["seconds"] for r in warm_runs) if warm_runs else None
        warm_requests = (
            int(statistics.median(r["requests"] for r in warm_runs)) if warm_runs else None
        )
        floor = floors[result["coins"]]["floor"]["floor"]
        coins = cold["coins"]
        failed = "/".join(str(r["failed"]) for r in runs)
        statuses = {r["status"] for r in runs}
        failed_cell = failed if statuses == {"finished"} else f"{failed} ({', '.join(statuses)})"
        warm_cell = f"{warm:.1f} s" if warm is not None else "—"
        rate = f"{coins / cold['seconds']:.0f} / " + (
            f"{coins / warm:.0f}" if warm is not None else "—"
        )
        ratio = f"{cold['seconds'] / floor:.1f}x / " + (
            f"{warm / floor:.1f}x" if warm is not None else "—"
        )
        requests = f"{cold['requests']:,} / " + (
            f"{warm_requests:,}" if warm_requests is not None else "—"
        )
        print(
            f"| {coins} | {result['workers']} | {cold['seconds']:.1f} s | {warm_cell} | {rate} "
            f"| {failed_cell} | {requests} | {floor:.1f} s | {ratio} |"
        )
    print(
        f"\nworkers: `celery -A cryptosatx worker -Q scans,default --pool threads --concurrency "
        f"{args.threads}` per process; batches of SCAN_BATCH_SIZE "
        f"({os.environ.get('SCAN_BATCH_SIZE') or 50}) coins; vendor budgets "
        f"{args.vendor_calls_per_minute} calls/min."
    )
    print("\nall runs (seconds from the command's start to the run's finished_at):")
    for result in results:
        for index, run in enumerate(result["runs"]):
            print(
                f"  N={result['coins']} W={result['workers']} run {index + 1}: "
                f"{run['seconds']:.2f} s (run row {run['run_seconds']:.2f} s, command "
                f"{run['command_seconds']:.2f} s), {run['requests']:,} requests, weight "
                f"{run['weight']}, max/min {run['max_weight_per_minute']}, 429s {run['sent_429']}"
                f", scan floor {run['scan_floor']['floor']:.2f} s, signals {run['signals']}, "
                f"completeness {run['completeness']}, candles {run['stored_candles']:,}"
            )
            for reason, count in run["failures"]:
                print(f"      {count} x {reason}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "floors": floors}, indent=2, default=str)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coins", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3, help="run 1 cold, the others warm")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument(
        "--vendor-calls-per-minute",
        type=int,
        default=1000,
        help="CoinGecko and LunarCrush budgets (bench/fetch.py uses 1000)",
    )
    parser.add_argument(
        "--forget-tallies",
        action="store_true",
        help="clear the coins' trade tallies before every run too (scans an hour or more apart)",
    )
    parser.add_argument(
        "--tally-refresh-minutes",
        type=float,
        default=None,
        help="before each warm run, refresh the tallies as beat's task does (product code, its "
        "own process), then wait this long: scans that many minutes after the last refresh",
    )
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument(
        "--keep-logs", action="store_true", help="copy worker logs to var/bench-scan-logs/"
    )
    args = parser.parse_args()
    sigterm_as_interrupt()
    started = datetime.now(UTC)
    results: list[dict] = []
    floors: dict[int, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="cryptosatx-bench-scan-"))
    try:
        redis_client().ping()
        sample = shifted_sample(tmp / "sample")
        fetch.SAMPLE = sample  # build_universe repeats these files under new names
        for coins in args.coins:
            data = fetch.build_universe(coins, tmp / f"market-{coins}")
            fake_env = {
                **os.environ,
                "VAR_DIR": str(tmp / "fake-var"),
                "DATABASE_URL": "",
                "CELERY_BROKER_URL": "memory://",
                "RATE_BUDGET_REDIS_URL": "",
                "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
                "SECRET_KEY": "bench-only-not-a-secret",
            }
            port = fetch.free_port()
            print(f"N={coins}: starting the fake exchange...", file=sys.stderr, flush=True)
            fake = adopt(fetch.start_fake(data, port, fake_env))
            base = f"http://127.0.0.1:{port}"
            try:
                fetch_env = {**fake_env, "VAR_DIR": str(tmp / f"fetch-var-{coins}")}
                floors[coins] = fetch_floor(base, coins, fetch_env)
                print(
                    f"N={coins}: fetch floor {floors[coins]['floor']['floor']:.2f} s "
                    f"(fetch itself {floors[coins]['seconds']:.1f} s, "
                    f"{floors[coins]['requests']:,} requests)",
                    file=sys.stderr,
                    flush=True,
                )
                for workers in args.workers:
                    results.append(configuration(base, coins, workers, args, tmp))
            finally:
                stop_process(fake, grace=30)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        if results:
            report(results, floors, args, started)
        raise SystemExit(130) from None
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, floors, args, started)


if __name__ == "__main__":
    main()
