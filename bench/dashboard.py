"""Benchmark the dashboard's reads at 1M outcome checks: server time of each page and API path
(cold and warm cache), the time until the overview's charts are drawn in headless Chromium, and
the API's report and ranking under 20 concurrent clients, cached and uncached (issue 17).

    flock /tmp/cryptosatx-bench.lock .venv/bin/python bench/dashboard.py [--runs 3]
        [--outcomes 1000000] [--span-days 140] [--coins 300] [--hours 168]
        [--requests 50] [--visits 10] [--clients 20] [--seconds 20] [--json FILE]

The data: a fresh PostgreSQL database `cryptosatx_benchdash_<pid>` (migrated, dropped at the end,
also on Ctrl-C or SIGTERM) holding --outcomes outcome checks, all DONE, of --outcomes / 5 signals
(five horizons each, as the product stores them), loaded by bench/analytics.py's `load` (COPY,
the rollup triggers, a rollup rebuild, VACUUM ANALYZE), spread over the last --span-days of wall
time: the default 200k signals over 140 days put ~10k signals in the report's default 7-day
window. The unified ranking: --coins coins ranked every hour for the last --hours hours (one scan
run per hour; 50,400 rows by default), with six-component breakdowns.

The product runs live (MARKET_SOURCE=binance, never called: no beat, no scans), so a window ends at
the wall clock's now and a cached answer is served for at most READ_CACHE_SECONDS (60). A
redis-server of the bench's own on a free port holds the read cache and the throttles' counts.
API_THROTTLE_USER is raised to 10000000/min: at the default 600/min (10 a second) a client
answered within 100 ms would get 429s; the throttle still counts every request.

(a) **Server time**: the in-process Django test client (signed in by session, as the pages will
be), for each path of SERVER_PATHS: --requests requests with the read cache emptied before each
(cold: every request computes) and --requests with it warm; p50/p95 of the time `client.get`
takes; the dashboard's pages are among them (the signal page: the newest signal's). Target:
p95 < 150 ms per page.

(c) **Charts drawn**: Debian's headless Chromium (Playwright), signed in by a session cookie,
opens the overview --visits times on each gunicorn server below (cached and uncached), each visit
in a new browser context (nothing cached: a first visit) and then reloaded (the static files
cached: a return visit); the time from navigation start until every chart of the page has been
drawn (a Chart.js chart on each `[data-chart]` canvas, with painted pixels), read in the page
(`performance.now()`, checked at every frame by a script that runs before the page's own);
p50/p95, after 6 untimed visits (every gunicorn worker has served
the page before, as on a server that has been up). The same for the performance page (six
charts), for comparison. Target: the overview's charts drawn in < 1 s.

(b) **Load**: gunicorn with 3 sync workers (as the Procfile), 20 concurrent clients (threads of a
separate process, each a user of its own with its token in `Authorization: Token`, a new HTTP
connection per request), each of
LOAD_PATHS for --seconds after 3 warm-up requests; requests per second, p50/p95 latency. Once
against a server with the cache (the default READ_CACHE_SECONDS=60) and once against one with
READ_CACHE_SECONDS=0, the baseline, started side by side; --runs times, the table gives the median
of the runs and the ratio cached / uncached.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = f"cryptosatx_benchdash_{os.getpid()}"
# bench/analytics.py's loader writes to the database this names.
os.environ["BENCH_DATABASE"] = DATABASE
import analytics  # noqa: E402  (bench/analytics.py: the outcome loader)
import bench_support  # noqa: E402
from bench_support import (  # noqa: E402
    PG,
    cleanup,
    create_database,
    free_port,
    http_get,
    percentile,
    sigterm_as_interrupt,
    spawn,
    wait_listening,
)

# Server time (in-process): the API's answers; the coordinator appends the dashboard's pages.
SERVER_PATHS = [
    "/api/performance/report",
    "/api/performance/report?days=30",
    "/api/performance/by-scanner",
    "/api/performance/stats",
    "/api/scan/unified-ranking",
    "/api/scan/unified-ranking?tier=TIER_1",
    # The dashboard's pages (issue 17), signed in by session, the same services as the API's.
    "/",
    "/signals/",
    "/performance/",
    "/scans/",
    "/alerts/",
    # + "/signals/<the newest signal>/", known once the data is loaded (main).
]
LOAD_PATHS = ["/api/performance/report", "/api/scan/unified-ranking"]
TARGET_PAGE_P95_MS = 150.0
# The pages whose charts are timed in Chromium; the overview's is the target.
BROWSER_PATHS = ["/", "/performance/"]
TARGET_CHARTS_MS = 1000.0
WARM_UP_VISITS = 6  # untimed, per page and server: more than its 3 workers
TARGET_RPS = 150.0
CPU_PARTS = ("web", "database", "redis", "client")
TARGET_P95_MS = 200.0
COMPONENTS = ["smart_money", "mss", "rsi", "social", "whale", "volume"]
WEIGHTS = {"smart_money": 0.3, "mss": 0.2, "rsi": 0.15, "social": 0.15, "whale": 0.1, "volume": 0.1}
TIERS = [(85, "TIER_1"), (70, "TIER_2"), (55, "TIER_3"), (0, "TIER_4")]

# --- the ranking -------------------------------------------------------------------------------


def seed_ranking(coins: int, hours: int, now: datetime, rng: random.Random) -> int:
    """One finished scan run per hour of the last `hours`, ranking every coin in it; rows written
    with bulk_create (the product's own upsert computes them from scan results, which this
    bench does not need). Returns the number of rows."""
    from scanners.models import ScanRun
    from scoring.models import UnifiedRanking

    symbols = [f"SYM{index:03d}/USDT" for index in range(1, coins + 1)]
    first = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    runs = ScanRun.objects.bulk_create(
        ScanRun(
            scanner="all",
            status="finished",
            as_of=first + timedelta(hours=hour),
            symbols=symbols,
            coins_total=coins,
            coins_done=coins,
            batches_total=1,
            batches_done=1,
        )
        for hour in range(hours)
    )
    written = 0
    for run in runs:
        rows = []
        for symbol in symbols:
            scores = {name: rng.uniform(0, 100) for name in COMPONENTS}
            missing = rng.sample(COMPONENTS, rng.randint(0, 2))
            present = [name for name in COMPONENTS if name not in missing]
            total = sum(WEIGHTS[name] for name in present)
            unified = sum(WEIGHTS[name] * scores[name] for name in present) / total
            tier = next(name for floor, name in TIERS if unified >= floor)
            direction = "LONG" if rng.random() < 0.6 else "SHORT"
            breakdown = {
                name: {
                    "label": name.replace("_", " "),
                    "direction": direction,
                    "score": None if name in missing else round(scores[name], 2),
                    "weight": WEIGHTS[name],
                    "renormalised_weight": 0.0 if name in missing else WEIGHTS[name] / total,
                    "contribution": None
                    if name in missing
                    else round(WEIGHTS[name] / total * scores[name], 2),
                    "available": name not in missing,
                    "missing": "no data from the source" if name in missing else None,
                    "fired": direction if scores[name] > 75 else None,
                    "confirms": scores[name] > 60 and name not in missing,
                    "as_of": run.as_of.isoformat(),
                }
                for name in COMPONENTS
            }
            confirmed = [name for name in present if scores[name] > 60]
            rows.append(
                UnifiedRanking(
                    scan_run=run,
                    symbol=symbol,
                    hour=run.as_of,
                    as_of=run.as_of,
                    direction=direction,
                    unified_score=round(unified, 2),
                    score_long=round(unified, 2),
                    score_short=round(100 - unified, 2),
                    tier=tier,
                    score_tier=tier,
                    confirmations=len(confirmed),
                    confirmed_by=confirmed,
                    confidence=rng.randint(20, 100),
                    recommendation="BUY" if unified >= 70 else "WATCHLIST",
                    completeness=round(total, 2),
                    breakdown=breakdown,
                    reasons=[f"{name} {scores[name]:.0f}" for name in confirmed],
                    notes=[f"{name}: no data" for name in missing],
                )
            )
        UnifiedRanking.objects.bulk_create(rows, batch_size=1000)
        written += len(rows)
    return written


# --- (a) server time, in-process ------------------------------------------------------------------


def server_times(user, requests: int) -> list[dict]:
    """Per SERVER_PATHS path: p50/p95 of `requests` cold requests (read cache invalidated before
    each) and `requests` warm ones, in this process."""
    from django.test import Client

    from core import read_cache

    client = Client()
    client.force_login(user)
    measured = []
    for path in SERVER_PATHS:
        timings: dict[str, list[float]] = {"cold": [], "warm": []}
        for phase in ("cold", "warm"):
            for _ in range(requests):
                if phase == "cold":
                    read_cache.invalidate_all()
                started = time.perf_counter()
                response = client.get(path)
                timings[phase].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(
                        f"GET {path}: {response.status_code} {response.content[:300]!r}"
                    )
        measured.append(
            {
                "path": path,
                **{
                    f"{phase}_{name}": percentile(values, share)
                    for phase, values in timings.items()
                    for name, share in (("p50", 0.5), ("p95", 0.95))
                },
                "bytes": len(response.content),
            }
        )
        print(
            f"  {path}: cold p50 {measured[-1]['cold_p50']:.1f} / p95 "
            f"{measured[-1]['cold_p95']:.1f} ms, warm p50 {measured[-1]['warm_p50']:.1f} / p95 "
            f"{measured[-1]['warm_p95']:.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    return measured


# --- (c) charts drawn, in Chromium ---------------------------------------------------------------

# Truthy (the page's own clock, ms since navigation start) once every chart of the page is drawn.
CHARTS_DRAWN = """() => {
  const canvases = Array.from(document.querySelectorAll('[data-chart] canvas'));
  if (!canvases.length || !window.Chart) return false;
  for (const canvas of canvases) {
    if (!Chart.getChart(canvas) || !canvas.width || !canvas.height) return false;
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = false;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) { painted = true; break; }
    if (!painted) return false;
  }
  return {ms: performance.now(), charts: canvases.length};
}"""
# Runs before the page's own scripts and checks at every frame from the start, keeping the first
# moment every chart is drawn: the page's own time, not when Playwright asks (after `goto` has
# waited for the load event).
WATCH_CHARTS = f"""(() => {{
  const drawn = {CHARTS_DRAWN};
  const tick = () => {{
    const found = drawn();
    if (found) window.__chartsDrawn = found; else requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}})();"""
# When the HTML had arrived and when the document was parsed (its deferred scripts run).
NAVIGATION = """() => {
  const navigation = performance.getEntriesByType('navigation')[0];
  return {html: navigation.responseEnd, ready: navigation.domContentLoadedEventEnd};
}"""


def browser_times(ports: dict[str, int], session: str, visits: int) -> list[dict]:
    """Per BROWSER_PATHS path and server (`ports`: mode -> port), `visits` first visits (a new
    browser context each) and as many return visits (a reload in that context): milliseconds from
    navigation start until every chart is drawn. `session`: a signed-in session's cookie value.
    No Django call may run meanwhile (Playwright's sync API runs an event loop in this thread)."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    cookie = [{"name": "sessionid", "value": session, "domain": "127.0.0.1", "path": "/"}]
    measured = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            for path in BROWSER_PATHS:
                for mode, port in ports.items():
                    # A server that has served the page before (each of its workers has
                    # loaded its templates and opened its database connection).
                    warm_up = browser.new_context()
                    warm_up.add_cookies(cookie)
                    warm_up.add_init_script(WATCH_CHARTS)
                    warm_page = warm_up.new_page()
                    for _ in range(WARM_UP_VISITS):
                        warm_page.goto(f"http://127.0.0.1:{port}{path}")
                        warm_page.wait_for_function("() => window.__chartsDrawn", timeout=60_000)
                    warm_up.close()
                    timings: dict[str, list[float]] = {"first": [], "return": []}
                    # When the HTML had arrived and when the document was parsed (scripts run).
                    steps: dict[str, list[float]] = {"html": [], "ready": []}
                    charts = 0
                    for _ in range(visits):
                        context = browser.new_context(viewport={"width": 1280, "height": 900})
                        context.add_cookies(cookie)
                        context.add_init_script(WATCH_CHARTS)
                        page = context.new_page()
                        for visit in ("first", "return"):
                            if visit == "first":
                                response = page.goto(f"http://127.0.0.1:{port}{path}")
                            else:
                                response = page.reload()
                            if response is None or response.status != 200:
                                raise SystemExit(
                                    f"Chromium GET {path}: {response and response.status}"
                                )
                            drawn = page.wait_for_function(
                                "() => window.__chartsDrawn", timeout=60_000
                            )
                            found = drawn.json_value()
                            timings[visit].append(found["ms"])
                            if visit == "first":
                                navigation = page.evaluate(NAVIGATION)
                                steps["html"].append(navigation["html"])
                                steps["ready"].append(navigation["ready"])
                            charts = found["charts"]
                        context.close()
                    measured.append(
                        {
                            "path": path,
                            "mode": mode,
                            "charts": charts,
                            **{
                                f"{visit}_{name}": percentile(values, share)
                                for visit, values in timings.items()
                                for name, share in (("p50", 0.5), ("p95", 0.95))
                            },
                            **{
                                f"{step}_p50": percentile(values, 0.5)
                                for step, values in steps.items()
                            },
                        }
                    )
                    row = measured[-1]
                    print(
                        f"  {path} ({mode}, {charts} charts): first visit p50 "
                        f"{row['first_p50']:.0f} / p95 {row['first_p95']:.0f} ms, return p50 "
                        f"{row['return_p50']:.0f} / p95 {row['return_p95']:.0f} ms (first visit: "
                        f"HTML {row['html_p50']:.0f} ms, parsed {row['ready_p50']:.0f} ms)",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            browser.close()
    return measured


# --- (b) load -------------------------------------------------------------------------------------


def hammer(port: int, path: str, tokens: list[str], seconds: float) -> None:
    """The load process: one client thread per token (each its own user) GETs `path` back to
    back for `seconds` (`bench_support.hammer`); prints its figures as one line of JSON."""
    headers = [{"Authorization": f"Token {token}"} for token in tokens]
    print(json.dumps(bench_support.hammer(port, path, headers, seconds, timeout=120)), flush=True)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Per process, the user + system CPU time it has used so far (/proc/PID/stat); a process
    gone is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings: a process there at both counts its difference,
    one started meanwhile (a new database connection) all of its time, one gone meanwhile
    nothing more (its last part is lost: a small undercount)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def server_pids(gunicorn: subprocess.Popen, redis: subprocess.Popen) -> dict[str, list[int]]:
    """The processes that serve a request: gunicorn's master and workers, the database's
    backends of this database, redis-server."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return {
        "web": [gunicorn.pid, *children(gunicorn.pid)],
        "database": backends,
        "redis": [redis.pid],
    }


def load_phase(
    port: int, path: str, tokens: list[str], args: argparse.Namespace, pids: Callable
) -> dict:
    for _ in range(3):
        status, body = http_get(port, path, {"Authorization": f"Token {tokens[0]}"}, timeout=120)
        if status != 200:
            raise SystemExit(f"GET {path}: {status} {body[:300]!r}")
    load_before = os.getloadavg()[0]
    # Known after the warm-ups: each gunicorn worker has its database connection by then.
    serving = pids()
    cpu_before = {part: cpu_seconds(ids) for part, ids in serving.items()}
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = subprocess.run(
        [
            sys.executable,
            __file__,
            "--hammer",
            str(port),
            "--path",
            path,
            "--tokens",
            ",".join(tokens),
            "--seconds",
            str(args.seconds),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    serving_after = pids()
    cpu = {
        part: cpu_used(cpu_before[part], cpu_seconds(sorted({*ids, *serving_after[part]})))
        for part, ids in serving.items()
    }
    cpu["client"] = (client_after.ru_utime - client_before.ru_utime) + (
        client_after.ru_stime - client_before.ru_stime
    )
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    bad = {status: n for status, n in result["statuses"].items() if status != "200"}
    if bad:
        raise SystemExit(f"GET {path} under load answered {bad}")
    return {
        "rps": result["requests"] / result["seconds"],
        "p50": result["p50_ms"],
        "p95": result["p95_ms"],
        "requests": result["requests"],
        "load": load_before,
        # CPU milliseconds per request, by part: what the answer costs, whatever else runs.
        **{f"cpu_{part}": 1000 * used / result["requests"] for part, used in cpu.items()},
    }


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--span-days", type=int, default=140)
    parser.add_argument("--symbols", type=int, default=100, help="coins of the signals")
    parser.add_argument("--coins", type=int, default=300, help="coins in the ranking")
    parser.add_argument("--hours", type=int, default=168, help="hours of ranking rows")
    parser.add_argument("--requests", type=int, default=50, help="server-time requests per phase")
    parser.add_argument(
        "--visits", type=int, default=10, help="Chromium visits per page and server"
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20, help="each load phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--hammer", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hammer:
        hammer(args.hammer, args.path, args.tokens.split(","), args.seconds)
        return
    if args.outcomes % 5:
        parser.error("--outcomes: a multiple of 5 (outcomes = signals x 5 horizons)")

    sigterm_as_interrupt()
    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="cryptosatx-bench-dashboard-"))
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{DATABASE}",
        "CELERY_BROKER_URL": redis_url,  # never used by these requests
        "CELERY_RESULT_BACKEND": redis_url,
        "RATE_BUDGET_REDIS_URL": "",
        "SECRET_KEY": "bench-only-not-a-secret",
        "DEBUG": "false",
        "VAR_DIR": str(tmp / "var"),
        "LOG_LEVEL": "WARNING",
        "MARKET_SOURCE": "binance",  # live: a window ends at the wall clock; never called
        "TRADE_TALLY_REFRESH_SECONDS": "0",
        "API_THROTTLE_USER": "10000000/min",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }
    results: dict = {"server": [], "browser": [], "load": []}
    try:
        create_database(DATABASE)
        redis = spawn(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            env,
            tmp / "redis.log",
        )
        wait_listening(redis_port, redis, tmp / "redis.log")
        print(f"database {DATABASE}: migrating...", file=sys.stderr, flush=True)
        for command in (["migrate"], ["collectstatic"]):  # gunicorn serves the static files
            subprocess.run(
                [sys.executable, "manage.py", *command, "--noinput", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        # One user per client, as 20 people would be (a user's throttle history is theirs).
        users = [
            get_user_model().objects.create_user(f"bench{index}", password="bench-only")
            for index in range(args.clients)
        ]
        tokens = [Token.objects.create(user=each).key for each in users]
        rng = random.Random(args.seed)
        now = datetime.now(UTC)
        seconds = analytics.load(args.outcomes // 5, now, args, rng)
        sizes = analytics.table_sizes()
        began = time.perf_counter()
        rows = seed_ranking(args.coins, args.hours, now, rng)
        ranking_seconds = time.perf_counter() - began
        print(
            f"loaded {sizes} in {seconds:.1f} s; {rows:,} ranking rows in {ranking_seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        results["sizes"] = {**sizes, "ranking_rows": rows}

        from django.test import Client

        from tracking.models import Signal

        newest = Signal.objects.order_by("-as_of", "-pk").values_list("pk", flat=True).first()
        SERVER_PATHS.append(f"/signals/{newest}/")
        print("server time (in-process):", file=sys.stderr, flush=True)
        results["server"] = server_times(users[0], args.requests)
        # The pages started this process's health prober: stopped while its broker is up.
        from cryptosatx import services

        services.health_prober().stop()
        browser_client = Client()
        browser_client.force_login(users[0])
        session = browser_client.cookies["sessionid"].value

        ports = {"cached": free_port(), "uncached": free_port()}
        servers = {}
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        for mode, port in ports.items():
            mode_env = {**env, "READ_CACHE_SECONDS": "60" if mode == "cached" else "0"}
            log = tmp / f"gunicorn-{mode}.log"
            server = spawn(
                [gunicorn, "cryptosatx.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
                mode_env,
                log,
            )
            wait_listening(port, server, log)
            servers[mode] = server
        print("charts drawn (Chromium):", file=sys.stderr, flush=True)
        results["browser"] = browser_times(ports, session, args.visits)
        for run in range(1, args.runs + 1):
            for path in LOAD_PATHS:
                for mode, port in ports.items():
                    measured = load_phase(
                        port,
                        path,
                        tokens,
                        args,
                        functools.partial(server_pids, servers[mode], redis),
                    )
                    results["load"].append({"run": run, "path": path, "mode": mode, **measured})
                    print(
                        f"run {run} {path} {mode}: {measured['rps']:.1f} req/s, p50 "
                        f"{measured['p50']:.1f} ms, p95 {measured['p95']:.1f} ms (load "
                        f"{measured['load']:.2f}); CPU ms/request: web {measured['cpu_web']:.2f}, "
                        f"database {measured['cpu_database']:.2f}, redis "
                        f"{measured['cpu_redis']:.2f}, client {measured['cpu_client']:.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        cleanup()
    # The servers' logs are kept only when the run did not finish (they say why).
    shutil.rmtree(tmp, ignore_errors=True)
    report(results, args, started)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def report(results: dict, args: argparse.Namespace, started: datetime) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"\n{started:%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), Python "
        f"{platform.python_version()}, PostgreSQL and Redis on the same machine"
    )
    print("```bash\n.venv/bin/python bench/dashboard.py " + " ".join(sys.argv[1:]) + "\n```")
    sizes = results.get("sizes", {})
    print(
        f"\n{sizes.get('checks', 0):,} outcome checks of {sizes.get('signals', 0):,} signals, "
        f"{sizes.get('ranking_rows', 0):,} ranking rows.\n"
    )
    print(f"Server time, in-process, {args.requests} requests per phase:\n")
    print("| path | cold p50 | cold p95 | warm p50 | warm p95 | bytes |")
    print("|---|---|---|---|---|---|")
    for row in results["server"]:
        print(
            f"| `{row['path']}` | {row['cold_p50']:.1f} ms | {row['cold_p95']:.1f} ms "
            f"| {row['warm_p50']:.1f} ms | {row['warm_p95']:.1f} ms | {row['bytes']:,} |"
        )
    print(
        f"\nTarget: p95 < {TARGET_PAGE_P95_MS:.0f} ms per page (cold: the read cache emptied "
        "before each request; warm: served from it).\n"
    )
    if results["browser"]:
        print(
            f"Charts drawn in headless Chromium, {args.visits} visits per page and server, ms "
            "from navigation start until every chart is drawn (target for the overview: "
            f"< {TARGET_CHARTS_MS:.0f} ms):\n"
        )
        print(
            "| page | server | charts | first visit p50 / p95 | return visit p50 / p95 "
            "| first visit: HTML in, parsed (p50) |"
        )
        print("|---|---|---|---|---|---|")
        for row in results["browser"]:
            print(
                f"| `{row['path']}` | {row['mode']} | {row['charts']} "
                f"| {row['first_p50']:.0f} / {row['first_p95']:.0f} ms "
                f"| {row['return_p50']:.0f} / {row['return_p95']:.0f} ms "
                f"| {row['html_p50']:.0f} / {row['ready_p50']:.0f} ms |"
            )
    print(
        f"\nLoad: gunicorn 3 sync workers, {args.clients} clients, {args.seconds:g} s per phase, "
        f"median of {args.runs} runs:\n"
    )
    print(
        "| endpoint | uncached req/s | cached req/s | ratio | uncached p50 / p95 | "
        f"cached p50 / p95 | target (≥ {TARGET_RPS:.0f} req/s, p95 < {TARGET_P95_MS:.0f} ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    cpu_rows = []
    for path in LOAD_PATHS:

        def median(mode: str, key: str, path: str = path) -> float:
            return statistics.median(
                row[key] for row in results["load"] if row["path"] == path and row["mode"] == mode
            )

        if not any(row["path"] == path for row in results["load"]):
            continue
        cached_rps, plain_rps = median("cached", "rps"), median("uncached", "rps")
        met = cached_rps >= TARGET_RPS and median("cached", "p95") < TARGET_P95_MS
        for mode in ("uncached", "cached"):
            parts = {part: median(mode, f"cpu_{part}") for part in CPU_PARTS}
            cpu_rows.append((path, mode, parts, median(mode, "rps")))
        print(
            f"| `{path}` | {plain_rps:.1f} | {cached_rps:.1f} | {cached_rps / plain_rps:.1f}× "
            f"| {median('uncached', 'p50'):.1f} / {median('uncached', 'p95'):.1f} ms "
            f"| {median('cached', 'p50'):.1f} / {median('cached', 'p95'):.1f} ms "
            f"| {'met' if met else '**not met**'} |"
        )

    print(
        "\nCPU per request (median of the runs), every process that serves it, from /proc and "
        "getrusage: what a request costs whatever else runs on the machine. `ceiling` = "
        f"{os.cpu_count()} CPUs / the total: the rate the machine could serve with nothing "
        "else running (an estimate, not a measurement):\n"
    )
    print("| endpoint | cache | web | database | redis | client | total | ceiling | measured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path, mode, parts, rps in cpu_rows:
        total = sum(parts.values())
        print(
            f"| `{path}` | {mode} | "
            + " | ".join(f"{parts[part]:.2f} ms" for part in CPU_PARTS)
            + f" | {total:.2f} ms | {1000 * (os.cpu_count() or 1) / total:.0f} req/s "
            f"| {rps:.1f} req/s |"
        )


if __name__ == "__main__":
    main()
