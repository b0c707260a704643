"""Benchmark GET /api/health under load: does it slow the other endpoints? (issue 13)

    .venv/bin/python bench/health.py [--runs 3] [--requests 200] [--clients 20]

Starts the distributed topology's parts as the Procfile does, on loopback only, each of its own:
a PostgreSQL database `cryptosatx_benchhealth_<pid>` (migrated, dropped after), a `redis-server`
on a free port (broker, results, bans), gunicorn with 3 sync workers, one Celery worker
(`-Q alerts,default`, the queue of the health probe's ping) and beat. The database holds a
ranking of --symbols coins over 3 scan runs and a staff user with an API token.

Each run measures, one after the other:

* **alone**: --requests sequential authenticated calls of `GET /api/scan/unified-ranking`
  (latency p50/p95);
* **under health load**: the same calls while --clients anonymous clients (threads of a separate
  process, so this one's timing shares no GIL with them) call `GET /api/health` back to back,
  no pause (--pause: seconds each waits between calls); their requests per second, latency and
  status codes.

The table gives the median over --runs of each figure and the ratio loaded / alone. Ctrl-C (or
SIGTERM) stops every process started here and drops the database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import bench_support  # noqa: E402
from bench_support import (  # noqa: E402
    PG,
    cleanup,
    create_database,
    forget,
    free_port,
    http_get,
    migrate,
    percentile,
    sigterm_as_interrupt,
    spawn,
)

SEED = """
from datetime import UTC, datetime, timedelta
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from scanners.models import ScanRun
from scoring.models import UnifiedRanking
from tests.factories import ScanRunFactory, UnifiedRankingFactory

symbols = int({symbols})
start = datetime(2024, 5, 1, tzinfo=UTC)
for index in range(3):
    run = ScanRunFactory(scanner="all", as_of=start + timedelta(hours=index))
    UnifiedRanking.objects.bulk_create(
        UnifiedRankingFactory.build(
            scan_run=run, symbol=f"C{{n}}/USDT", unified_score=float((n * 37 + index) % 100)
        )
        for n in range(symbols)
    )
staff = User.objects.create_user("bench", is_staff=True)
print(Token.objects.create(user=staff).key)
"""


def time_ranking(port: int, token: str, count: int) -> list[float]:
    """Latencies (ms) of `count` sequential ranking calls; each must answer 200."""
    headers = {"Authorization": f"Token {token}"}
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        status, body = http_get(port, "/api/scan/unified-ranking?limit=100", headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"ranking answered {status}: {body[:300]!r}")
    return latencies


def hammer(port: int, clients: int, seconds: float, pause: float) -> None:
    """The load process: `clients` anonymous clients call /api/health, `pause` seconds apart (0:
    back to back), until SIGTERM or `seconds`; prints "started" once they run, then
    bench_support.hammer's summary as JSON."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    summary = bench_support.hammer(
        port,
        "/api/health",
        [{} for _ in range(clients)],
        seconds,
        pause=pause,
        stop=stop,
        on_started=lambda: print("started", flush=True),
    )
    print(json.dumps(summary), flush=True)


def wait_for_health(port: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    report: dict = {}
    while time.monotonic() < deadline:
        try:
            status, body = http_get(port, "/api/health")
            report = json.loads(body)
            if status == 200 and report.get("status") == "ok":
                return report
        except (OSError, ValueError):
            pass  # not listening yet, or a half-started server's answer: ask again
        time.sleep(0.5)  # another process's HTTP endpoint: nothing to await
    raise RuntimeError(f"health never said ok; last answer: {report}")


def one_run(port: int, token: str, args: argparse.Namespace) -> dict:
    alone = time_ranking(port, token, args.requests)
    load = spawn(
        [
            sys.executable,
            __file__,
            "--hammer",
            str(port),
            "--clients",
            str(args.clients),
            "--pause",
            str(args.pause),
        ],
        dict(os.environ),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdout is not None
    load.stdout.readline()  # "started"
    time.sleep(1.0)  # let the clients fill the server's queue before timing
    loaded = time_ranking(port, token, args.requests)
    load.send_signal(signal.SIGTERM)
    health = json.loads(load.stdout.readline())
    load.wait(30)
    forget(load)
    return {
        "alone_p50": percentile(alone, 0.5),
        "alone_p95": percentile(alone, 0.95),
        "loaded_p50": percentile(loaded, 0.5),
        "loaded_p95": percentile(loaded, 0.95),
        "health_rps": health["requests"] / health["seconds"],
        "health_p50": health["p50_ms"],
        "health_p95": health["p95_ms"],
        "health_statuses": health["statuses"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="ranking calls per phase")
    parser.add_argument("--clients", type=int, default=20, help="concurrent health clients")
    parser.add_argument("--symbols", type=int, default=300, help="coins in the ranking")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds each health client waits between calls"
    )
    parser.add_argument("--hammer", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hammer:
        hammer(args.hammer, args.clients, args.seconds, args.pause)
        return

    database = f"cryptosatx_benchhealth_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="cryptosatx-bench-health-"))
    redis_port, web_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "RATE_BUDGET_REDIS_URL": "",
        "SECRET_KEY": "bench-only-not-a-secret",
        "DEBUG": "false",
        "VAR_DIR": str(tmp / "var"),
        "LOG_LEVEL": "WARNING",
        # A live source that is never called: no scan is scheduled and no trade tally refreshed.
        "MARKET_SOURCE": "binance",
        "TRADE_TALLY_REFRESH_SECONDS": "0",
    }
    sigterm_as_interrupt()
    bin_dir = Path(sys.executable).parent
    create_database(database)
    try:
        spawn(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            env,
            tmp / "redis.log",
        )
        migrate(env)
        manage = [sys.executable, "manage.py"]
        seed = SEED.format(symbols=args.symbols)
        token = subprocess.run(
            [*manage, "shell", "-c", seed],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        # As the Procfile: web (gunicorn, 3 workers), the alerts/default worker, beat.
        spawn(
            [
                str(bin_dir / "gunicorn"),
                "cryptosatx.wsgi",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                "3",
            ],
            env,
            tmp / "web.log",
        )
        celery = str(bin_dir / "celery")
        spawn(
            [
                celery,
                "-A",
                "cryptosatx",
                "worker",
                "-Q",
                "alerts,default",
                "-n",
                "alerts@%h",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
            env,
            tmp / "worker.log",
        )
        spawn([celery, "-A", "cryptosatx", "beat", "--loglevel", "WARNING"], env, tmp / "beat.log")
        wait_for_health(web_port, 90)

        runs = []
        for number in range(1, args.runs + 1):
            result = one_run(web_port, token, args)
            runs.append(result)
            print(
                f"run {number}: ranking p50 {result['alone_p50']:.1f} ms alone, "
                f"{result['loaded_p50']:.1f} ms under load; health {result['health_rps']:.0f} "
                f"req/s, statuses {result['health_statuses']}",
                flush=True,
            )
    finally:
        cleanup(grace=20)  # a Celery worker's warm shutdown may take a while

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), Python "
        f"{platform.python_version()}; {args.runs} runs, {args.requests} ranking calls per "
        f"phase, {args.clients} health clients ({args.pause:g} s apart), {args.symbols} coins"
    )
    print("| figure (median of runs) | alone | under health load | ratio |")
    print("|---|---|---|---|")
    for share in ("p50", "p95"):
        alone, loaded = median(f"alone_{share}"), median(f"loaded_{share}")
        print(f"| ranking {share} | {alone:.1f} ms | {loaded:.1f} ms | {loaded / alone:.2f}x |")
    print(
        f"| health | | {median('health_rps'):.0f} req/s, p50 {median('health_p50'):.1f} ms, "
        f"p95 {median('health_p95'):.1f} ms | |"
    )


if __name__ == "__main__":
    main()
