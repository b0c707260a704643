"""Benchmark one full scan's market-data fetch through BinanceSource against the fake exchange.

    .venv/bin/python bench/fetch.py --coins 100|500|1000 [--runs 3] [--no-baseline]

Starts the fake exchange (`python -m fakes.exchange`, a subprocess so it does not share
this process's CPU) on 127.0.0.1 with 50 ms latency, Binance's weight limits (spot 6,000,
futures 2,400 per minute) and synthetic data (seed 1). The data folder is a **synthetic
universe**: the bundled sample's 46 spot coins, repeated under new names (BTC, BTCX1, BTCX2...)
until there are N coins, so every coin has real candles but the "market" is made up.

One run = everything one full scan asks for N coins, timed as a whole, side by side as a scan's
batch reads them (scanners/inputs.py), one thread per chain sharing the source's event loop and
its one concurrency cap: listing times (exchangeInfo + a first-candle lookup per spot coin),
then CoinGecko fundamentals; 500 closed 1h candles per coin (written through to the store); open
interest with its 24h change, then the 24h open-interest history per coin; long/short ratio;
24h taker flow; whale trades (aggTrades of the last hour, WHALE_TRADE_USD); and the bulk reads
(24h tickers in one call, funding in one premiumIndex call, CoinGecko trending, LunarCrush
social with a key). A scan asks long/short and fundamentals for new listings only; this bench
asks them for every coin. Every run starts cold: an empty SQLite store, empty
caches (also the process-wide ones and the trade tallies), new engines and a reset fake (its
weight counters forgotten, as after a quiet minute). The bench process tunes its garbage
collector as every worker process of the product does (cryptosatx/gc_tuning.py).

`--phases-one-by-one` runs the phases one after another instead and reports each one's wall and
CPU seconds: where the time goes, not a scan's timing.

Reported per run: wall time, requests (the fake's count), weight used per API, the CPU seconds
of this process and of the fake's (the machine's two cores are shared by both), and the floor:
the larger of the weight floor (weight beyond one minute's budget, at the budget's rate: the
first minute's budget is there at once; likewise each /futures/data endpoint's requests beyond
its 5-minute limit) and the latency floor (latency x requests / concurrency
cap). The naive baseline makes the same calls one at a time (concurrency 1), in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
from bench_support import free_port  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "spot-1h"
LATENCY_MS = 50.0
SEED = 1
CANDLES = 500
FUTURES_DATA_REQUESTS = 1000  # per /futures/data endpoint and 5 minutes, as the fake's default
# --phases-one-by-one: where the time and CPU go, phase by phase (not a scan's timing).
ONE_BY_ONE = bool(os.environ.get("BENCH_ONE_BY_ONE"))


def build_universe(coins: int, folder: Path) -> Path:
    """A data folder of `coins` spot coins: the sample's files, repeated under new names."""
    spot = folder / "spot-1h"
    spot.mkdir(parents=True, exist_ok=True)
    files = sorted(SAMPLE.glob("*_USDT-1h.csv.gz"))
    for index in range(coins):
        original = files[index % len(files)]
        base = original.name.split("_")[0]
        copy = index // len(files)
        name = base if copy == 0 else f"{base}X{copy}"
        target = spot / f"{name}_USDT-1h.csv.gz"
        if not target.exists():
            target.symlink_to(original)
    return folder


def start_fake(data: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fakes.exchange",
            "--port",
            str(port),
            "--data",
            str(data),
            "--latency-ms",
            str(LATENCY_MS),
            "--synthetic-seed",
            str(SEED),
            "--coingecko-calls-per-minute",
            "1000",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the fake exchange exited:\n{process.stderr.read()}")
        try:
            fake_call(f"http://127.0.0.1:{port}", "GET", "stats")
            return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the fake exchange did not start within 5 minutes")


def fake_call(base: str, method: str, what: str) -> dict:
    request = Request(
        f"{base}/__fake__/{what}", method=method, data=b"" if method == "POST" else None
    )
    with urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


# --- one scan --------------------------------------------------------------------------------


def scan(
    source, symbols: list[str], as_of, threads: int, one_by_one: bool = False
) -> tuple[dict, dict]:
    """Every fetch one full scan makes; (Missing inputs by kind, seconds by phase). With
    `one_by_one` the phases run one after another, each with its CPU seconds."""
    from django.conf import settings
    from django.db import connection

    from market.values import Missing

    missing: dict[str, int] = {}
    phases: dict[str, float] = {}

    def timed(kind: str, fetch):
        started, cpu = time.perf_counter(), time.process_time()
        values = fetch()
        phases[kind] = round(time.perf_counter() - started, 3)
        if one_by_one:  # the process's CPU is this phase's alone only when nothing overlaps
            phases[f"{kind} cpu"] = round(time.process_time() - cpu, 3)
        if isinstance(values, dict):
            values = values.values()
        if isinstance(values, list | type({}.values())):
            missing[kind] = sum(isinstance(v, Missing) for v in values)
        else:
            missing[kind] = int(isinstance(values, Missing))
        return values

    def history() -> list:
        # The interface takes one symbol here; a scan asks for each coin from a thread pool.
        with ThreadPoolExecutor(threads) as pool:
            return list(
                pool.map(lambda s: source.open_interest_history(s, as_of=as_of, hours=24), symbols)
            )

    def chain(*steps: tuple[str, Callable[[], object]]) -> None:
        try:
            for kind, fetch in steps:
                timed(kind, fetch)
        finally:
            connection.close()  # this thread's (candle write-through)

    # The reads side by side, as a scan's batch reads them (scanners.inputs): one thread per
    # chain, all sharing the source's loop and its cap. A scan asks for long/short ratios and
    # fundamentals of new listings only, once it knows the listing times; this bench asks them
    # for every coin, so they need not wait.
    trades = settings.WHALE_TRADE_USD
    chains = [
        [
            ("markets", lambda: source.listing_times(symbols, as_of=as_of)),
            ("fundamentals", lambda: source.fundamentals(symbols, as_of=as_of)),
        ],
        [("long_short", lambda: source.long_short_ratio(symbols, as_of=as_of))],
        [("candles", lambda: source.candles(symbols, as_of=as_of, limit=CANDLES))],
        [
            ("open_interest", lambda: source.open_interest(symbols, as_of=as_of)),
            ("oi_history", history),  # after open interest: it reads the same history
        ],
        [("taker_flow", lambda: source.taker_flow(symbols, as_of=as_of))],
        [("large_trades", lambda: source.large_trades(symbols, as_of=as_of, min_usd=trades))],
        [
            ("tickers", lambda: source.tickers(symbols, as_of=as_of)),
            ("funding", lambda: source.funding_rates(symbols, as_of=as_of)),
            ("trending", lambda: source.trending(as_of=as_of)),
            ("social", lambda: source.social(symbols, as_of=as_of)),
        ],
    ]
    if one_by_one:
        for steps in chains:
            chain(*steps)
        return missing, phases
    with ThreadPoolExecutor(len(chains), thread_name_prefix="bench-read") as pool:
        for future in [pool.submit(chain, *steps) for steps in chains]:
            future.result()
    return missing, phases


def make_source(base: str, now, concurrency: int):
    """A BinanceSource on the fake as a scan builds it (one concurrency cap for Binance spot and
    futures), with an in-process weight budget; (source, its engines)."""
    from httpengine.bans import LocalBanRegistry
    from httpengine.budgets import LocalBudget
    from httpengine.engine import RequestEngine
    from httpengine.limiter import AdaptiveLimiter
    from httpengine.registry import FUTURES_DATA_WINDOW_SECONDS
    from market.sources.binance.source import BinanceSource

    limits = {
        "binance-spot": 6000,
        "binance-futures": 2400,
        "binance-futures-data": FUTURES_DATA_REQUESTS,
        "coingecko": 1000,
        "lunarcrush": 1000,
    }
    budget, bans = LocalBudget(), LocalBanRegistry()
    budgets = {"binance-futures-data": LocalBudget(window_seconds=FUTURES_DATA_WINDOW_SECONDS)}
    binance = AdaptiveLimiter(concurrency, name="binance")  # one cap for the source, as built
    engines = {
        name: RequestEngine(
            name=name,
            limit_per_minute=limit,
            budget=budgets.get(name, budget),
            max_concurrent=concurrency,
            retries=3,
            bans=bans,
            call_timeout=25,
            limiter=binance if name.startswith("binance-") else None,
        )
        for name, limit in limits.items()
    }
    source = BinanceSource(
        clock=lambda: now,
        engines=engines,
        spot_url=base,
        futures_url=base,
        coingecko_url=f"{base}/coingecko/api/v3",
        coingecko_key="",
        lunarcrush_url=f"{base}/lunarcrush/api4",
        lunarcrush_key="bench",
        timeout=10,
    )
    return source, engines


def one_run(base: str, coins: int, concurrency: int) -> dict:
    from market.models import Candle, Market
    from market.sources.cache import clear_process_caches
    from market.times import ms_to_datetime

    clear_process_caches()  # every run cold: the process-wide caches outlive sources
    Candle.objects.all().delete()
    Market.objects.all().delete()
    fake_call(base, "POST", "reset")
    now = ms_to_datetime(fake_call(base, "GET", "stats")["now_ms"])
    with urlopen(f"{base}/api/v3/exchangeInfo", timeout=30) as answer:
        listed = json.loads(answer.read())["symbols"]
    symbols = sorted(f"{m['baseAsset']}/{m['quoteAsset']}" for m in listed)[:coins]
    source, engines = make_source(base, now, concurrency)
    try:
        fake_call(base, "POST", "reset")
        fake_cpu = _fake_cpu_seconds()
        loop_cpu = _loop_cpu_seconds()
        own_cpu = time.process_time()
        started = time.perf_counter()
        missing, phases = scan(source, symbols, now, threads=concurrency, one_by_one=ONE_BY_ONE)
        seconds = time.perf_counter() - started
        cpu = {
            "client": round(time.process_time() - own_cpu, 2),
            "client loop thread": round(_loop_cpu_seconds() - loop_cpu, 2),
            "fake": round(_fake_cpu_seconds() - fake_cpu, 2),
        }
        # The fake's counts before the reasons are sampled: the Missing ones are asked again.
        stats = fake_call(base, "GET", "stats")
        reasons = _sample_reasons(source, symbols, now)
    finally:
        source.close()
    metrics = [engine.metrics() for engine in engines.values()]
    return _result(stats, seconds, symbols, missing, phases, reasons, cpu, metrics)


def _result(stats, seconds, symbols, missing, phases, reasons, cpu, metrics) -> dict:
    from market.models import Candle

    weights = {api: sum(minutes.values()) for api, minutes in stats["weight_per_minute"].items()}
    return {
        "seconds": seconds,
        "coins": len(symbols),
        "requests": stats["requests_total"],
        "requests_by_path": stats["requests"],
        "weight": weights,
        "max_weight_per_minute": stats["max_weight_per_minute"],
        "sent_429": stats["sent_429"],
        "sent_418": stats["sent_418"],
        "retries": sum(m["retries"] for m in metrics),
        "missing": missing,
        "phases": phases,
        "reasons": reasons,
        "stored_candles": Candle.objects.count(),
        "cpu_seconds": cpu,
    }


def _cpu_seconds(stat: str) -> float:
    """CPU seconds (user + system) of a Linux /proc stat file's process or thread so far."""
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fake_cpu_seconds() -> float:
    """CPU seconds the fake exchange's process has used so far."""
    return _cpu_seconds(f"/proc/{os.environ.get('BENCH_FAKE_PID')}/stat")


def _loop_cpu_seconds() -> float:
    """CPU seconds the source's event-loop thread has used so far: the thread every request,
    parse and table goes through, so the one whose CPU bounds the run."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "market-data-loop":
            return _cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")
    return 0.0


def _sample_reasons(source, symbols: list[str], as_of) -> list[str]:
    """A few distinct Missing reasons of the run (Missing answers are not cached: asked again)."""
    from market.values import Missing

    reasons = set()
    for values in (source.taker_flow(symbols[:200], as_of=as_of),):
        reasons |= {v.reason for v in values.values() if isinstance(v, Missing)}
    return sorted(reasons)[:5]


def floor_seconds(result: dict, concurrency: int) -> dict[str, float]:
    budgets = {"spot": 6000 * 0.95, "futures": 2400 * 0.95}
    weight_floor = max(
        max(0.0, result["weight"].get(api, 0) - budget) / budget * 60
        for api, budget in budgets.items()
    )
    # Each /futures/data endpoint's own limit: requests per 5 minutes.
    quota = FUTURES_DATA_REQUESTS * 0.95
    weight_floor = max(
        [weight_floor]
        + [
            max(0.0, requests - quota) / quota * 300
            for path, requests in result["requests_by_path"].items()
            if path.startswith("/futures/data/")
        ]
    )
    latency_floor = LATENCY_MS / 1000 * result["requests"] / concurrency
    return {
        "weight": weight_floor,
        "latency": latency_floor,
        "floor": max(weight_floor, latency_floor),
    }


def worker(base: str, coins: int, runs: int, baseline: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cryptosatx.gc_tuning import tune_for_throughput

    tune_for_throughput()  # as every worker process of the product does at start
    concurrency = int(settings.PARALLEL_MAX_CONCURRENT)
    results = []
    for index in range(runs):
        result = one_run(base, coins, concurrency)
        result["floor"] = floor_seconds(result, concurrency)
        results.append(result)
        print(
            f"run {index + 1}: {result['seconds']:.1f} s, {result['requests']} requests, "
            f"weight {result['weight']}, floor {result['floor']['floor']:.1f} s, "
            f"cpu {result['cpu_seconds']}, 429s {result['sent_429']}, "
            f"missing {result['missing']}, phases {result['phases']}, retries {result['retries']}",
            file=sys.stderr,
            flush=True,
        )
    sequential = None
    if baseline:
        sequential = one_run(base, coins, 1)
        print(
            f"sequential baseline: {sequential['seconds']:.1f} s, "
            f"{sequential['requests']} requests",
            file=sys.stderr,
            flush=True,
        )
    print(json.dumps({"runs": results, "baseline": sequential, "concurrency": concurrency}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coins", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the sequential run")
    parser.add_argument(
        "--phases-one-by-one",
        action="store_true",
        help="run the phases one after another and report each one's CPU seconds (diagnosis)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.coins, args.runs, not args.no_baseline)
        return

    with tempfile.TemporaryDirectory(prefix="cryptosatx-bench-fetch-") as tmp:
        data = build_universe(args.coins, Path(tmp) / "market")
        env = {
            **os.environ,
            "VAR_DIR": str(Path(tmp) / "var"),
            "DATABASE_URL": "",
            "CELERY_BROKER_URL": "memory://",
            "RATE_BUDGET_REDIS_URL": "",
            "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
            "SECRET_KEY": "bench-only-not-a-secret",
        }
        port = free_port()
        print(f"starting the fake exchange with {args.coins} coins...", file=sys.stderr)
        fake = start_fake(data, port, env)
        try:
            command = [sys.executable, __file__, "--worker", f"http://127.0.0.1:{port}"]
            command += ["--coins", str(args.coins), "--runs", str(args.runs)]
            if args.no_baseline:
                command.append("--no-baseline")
            extra = {"BENCH_FAKE_PID": str(fake.pid)}
            if args.phases_one_by_one:
                extra["BENCH_ONE_BY_ONE"] = "1"
            completed = subprocess.run(
                command,
                env={**env, **extra},
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            fake.terminate()
            fake.wait(timeout=30)
        sys.stderr.write(completed.stderr[-4000:])
        if completed.returncode != 0:
            raise SystemExit(f"the benchmark worker failed:\n{completed.stdout}")
        report(json.loads(completed.stdout.strip().splitlines()[-1]), args)


def report(output: dict, args: argparse.Namespace) -> None:
    runs = output["runs"]
    concurrency = output["concurrency"]
    seconds = statistics.median(r["seconds"] for r in runs)
    middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    floor = middle["floor"]
    baseline = output["baseline"]
    print(f"\ncoins {middle['coins']}, runs {len(runs)}, concurrency cap {concurrency}")
    print(f"wall time (median): {seconds:.1f} s   all: {[round(r['seconds'], 1) for r in runs]}")
    print(f"requests: {middle['requests']:,}   weight: {middle['weight']}")
    print(f"largest weight in one minute (fake): {middle['max_weight_per_minute']}")
    print(
        f"floor: {floor['floor']:.1f} s (weight {floor['weight']:.1f} s, "
        f"latency {floor['latency']:.1f} s) -> ratio {seconds / floor['floor']:.2f}x"
    )
    print(f"429s {middle['sent_429']}, 418s {middle['sent_418']}, retries {middle['retries']}")
    print(f"Missing inputs per kind: {middle['missing']}")
    print(f"seconds per phase: {middle['phases']}")
    print(f"requests per path: {middle['requests_by_path']}")
    if middle["reasons"]:
        print(f"some Missing reasons: {middle['reasons']}")
    if baseline:
        print(
            f"sequential baseline: {baseline['seconds']:.1f} s "
            f"({baseline['seconds'] / seconds:.1f}x slower)"
        )
    cpu = platform.processor() or platform.machine()
    base_cell = f"{baseline['seconds']:.1f} s" if baseline else "—"
    print(
        f"\n| coins | wall time (median of {len(runs)}) | requests | weight spot / futures "
        "| floor | ratio | sequential | machine |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {middle['coins']} | {seconds:.1f} s | {middle['requests']:,} | "
        f"{middle['weight'].get('spot', 0):,} / {middle['weight'].get('futures', 0):,} | "
        f"{floor['floor']:.1f} s | {seconds / floor['floor']:.2f}x | {base_cell} | "
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()} |"
    )


if __name__ == "__main__":
    main()
