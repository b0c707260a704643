"""Benchmark the replay (issue 16): how long stored history takes to replay, whether a market hour
costs the same at the end as at the start, and how far the replay is from its compute floor.

    .venv/bin/python bench/replay.py [--db sqlite,postgres] [--runs 3]
        [--start 2024-03-01 --end 2024-03-15 | --whole] [--data DIR] [--flatness] [--save FILE]

For each database (SQLite in a temporary VAR_DIR; PostgreSQL: a database
`cryptosatx_benchreplay_<pid>_<n>` on 127.0.0.1, dropped after) it migrates, imports the history
once (the bundled sample, or --data DIR through `import_ohlcv`), then runs the replay --runs times,
each on a fresh copy of that database, in a child process: `Replay` (cryptosatx/replay.py) at
--speed max, as `manage.py replay` runs it, every scanner at its interval, rankings, signals,
outcome checks, alerts into the outbox.

Per run it records the wall time, every market hour's cost (wall time, and the CPU time of the
thread that replays it: `HourDone.cpu_seconds`), the peak memory (max RSS) of the
child, and what the replay did (scans, coins scanned, signals, checks). It prints, per database,
the median over the runs of:

* **seconds** for the period (wall) and the child's **CPU seconds** (user + system, all its
  threads: less sensitive than wall time to other work on a shared machine), and **market hours
  per second**;
* **flatness**: the mean cost of an hour in the period's last 30 days (or last quarter, for a
  period under 120 days) over the first's; 1.0 is flat. On the replaying thread's CPU time per
  hour, which a shared machine's load barely moves, and on wall time per hour as before (which
  follows the load: on a loaded machine it cannot tell a growing hour from a busier machine);
* **compute floor**: the arithmetic the scanners do for the same coin scans — TA-Lib RSI over
  500 closes and a 72-candle taker share in NumPy, once per coin scanned — timed in the same
  run, and the replay's ratio to it;
* **peak memory** of the child;
* the **work** of the first and the last window: signals given, outcome checks done.

`--whole` replays the whole stored history after its warm-up month (the bundled sample:
2023-12-01 to 2024-05-08). Results go to docs/BENCHMARKS.md by hand (the table is printed as
Markdown); `--save FILE` also writes every run's measures, each hour's cost included, as JSON.
Ctrl-C stops the children and drops the databases.

`--flatness` measures the flat hour so that the host cannot move it. On a virtual machine the
same code's speed drifts by a third within minutes, so one run's first and last month, minutes
apart, compare the host as much as the code. Here three replays run **in lockstep**, one market
day each in turn, so each day of each sees the same host:

* **A**: the period's first 30 days, on a database holding no replay;
* **B**: its last 30 days, on a database that holds the replay of everything before them
  (replayed first, untimed);
* **C**: the same last 30 days, on a database holding no replay.

B / A is the goal's ratio (the last month's hours over the first month's). B / C is what the
database's growth alone costs: the same market hours and scans, with and without months of
results, rankings, signals and checks behind them (B also checks the earlier signals that fall
due: the work history brings). The period (`--whole`, or --start/--end within the stored
history) must span at least 60 days.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_support import PG, pg_admin  # noqa: E402

SAMPLE_START = "2023-12-01"
SAMPLE_END = "2024-05-08T23:00Z"
WINDOW = timedelta(days=30)
HOUR = timedelta(hours=1)
DAY_DONE = "day done"  # what a lockstep child prints after each market day


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--start", default="2024-03-01")
    parser.add_argument("--end", default="2024-03-15")
    parser.add_argument("--whole", action="store_true", help="the whole sample after warm-up")
    parser.add_argument("--data", help="a market-data folder to import instead of the sample")
    parser.add_argument(
        "--flatness", action="store_true", help="first and last month in lockstep (see above)"
    )
    parser.add_argument("--save", help="write every run's measures (each hour's cost) to this JSON")
    parser.add_argument("--lockstep", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.whole:
        args.start, args.end = SAMPLE_START, SAMPLE_END
    return args


# --- the child: one replay, measured --------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")
    import django

    django.setup()
    from core.embedded_celery import worker_if_embedded
    from cryptosatx.replay import Replay, ReplayPlan
    from market.replay_clock import store_span
    from market.times import parse_utc
    from scanners.models import ScanRun
    from tracking.models import CheckStatus, OutcomeCheck, Signal

    start, end = parse_utc(args.start), parse_utc(args.end)
    span = store_span()
    end = min(end, span.last_close_time)
    hours: list[tuple[str, float, float]] = []

    def on_hour(done) -> None:
        hours.append(
            (done.market_time.isoformat(), done.seconds, getattr(done, "cpu_seconds", None))
        )
        if args.lockstep and len(hours) % 24 == 0:
            _turn_over()

    if args.lockstep:
        _turn_over(ready=False)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    began = time.perf_counter()
    with worker_if_embedded():  # alerts go through the outbox and a worker, as in the command
        tally = Replay(ReplayPlan(start=start, end=end), on_hour=on_hour).run()
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_before
    runs = ScanRun.objects.filter(pk__in=tally.runs)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "hours": [wall for _hour, wall, _cpu in hours],
                # The replaying thread's CPU per hour (None: code whose HourDone has none).
                "hours_cpu": [cpu for _hour, _wall, cpu in hours],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "scans": runs.count(),
                "coins_scanned": sum(runs.values_list("coins_done", flat=True)),
                "signals": Signal.objects.filter(scan_run__in=tally.runs).count(),
                "checks_done": OutcomeCheck.objects.filter(status=CheckStatus.DONE).count(),
                "work": window_work([parse_utc(hour) for hour, _wall, _cpu in hours]),
                "floor_seconds": compute_floor(sum(runs.values_list("coins_done", flat=True))),
            }
        )
    )


def _turn_over(*, ready: bool = True) -> None:
    """Lockstep: say a market day is done (`ready`), then wait for the parent's word to go on."""
    if ready:
        print(DAY_DONE, flush=True)
    sys.stdin.readline()


def window_work(hours: list) -> dict[str, list[int]]:
    """Signals given and outcome checks done in the first and the last window of `flatness`,
    then in all of `hours`."""
    from tracking.models import CheckStatus, OutcomeCheck, Signal

    first, last = _windows(hours)
    if not first:
        return {"signals": [0, 0, 0], "checks": [0, 0, 0]}
    spans = [(first[0], first[-1]), (last[0], last[-1]), (hours[0], hours[-1])]
    return {
        "signals": [Signal.objects.filter(as_of__range=span).count() for span in spans],
        "checks": [
            OutcomeCheck.objects.filter(status=CheckStatus.DONE, due_at__range=span).count()
            for span in spans
        ],
    }


def compute_floor(coin_scans: int) -> float:
    """Seconds the scanners' arithmetic takes for `coin_scans` coins: RSI(14) over 500 closes
    (TA-Lib) and the taker-buy share of 72 candles (NumPy), on real closes of the store."""
    import numpy as np
    import talib

    from market.models import Candle

    closes = np.array(
        Candle.objects.filter(timeframe="1h").order_by("market_id", "open_time")
        .values_list("close", flat=True)[:500],
        dtype=np.float64,
    )  # fmt: skip
    volume = np.abs(np.diff(closes, prepend=closes[0])) + 1.0
    taker = volume * 0.55
    began = time.perf_counter()
    for _ in range(coin_scans):
        talib.RSI(closes, timeperiod=14)
        float(taker[-72:].sum() / volume[-72:].sum())
    return time.perf_counter() - began


# --- the parent: databases, runs, the table -------------------------------------------------------


def prepare(db: str, args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    """Migrate and import once; the environment a child replays with (on a fresh copy)."""
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench-replay", "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    env["VAR_DIR"] = str(workdir / "template")
    if db == "postgres":
        name = f"cryptosatx_benchreplay_{os.getpid()}_tpl"
        pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        pg_admin(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    Path(env["VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    load = ["import_ohlcv", args.data] if args.data else ["load_sample"]
    subprocess.run([*manage, *load], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return env


def fresh_copy(db: str, template: dict[str, str], workdir: Path, number: int) -> dict[str, str]:
    env = dict(template)
    if db == "sqlite":
        var = workdir / f"run{number}"
        shutil.copytree(template["VAR_DIR"], var, dirs_exist_ok=True)
        env["VAR_DIR"] = str(var)
    else:
        name = f"cryptosatx_benchreplay_{os.getpid()}_{number}"
        template_name = template["DATABASE_URL"].rsplit("/", 1)[1]
        pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
        env["DATABASE_URL"] = template["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    return env


def sample_databases(args: argparse.Namespace) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """For each database of --db: its name, a working folder and the template's environment
    (`prepare`d); the template and the folder are removed when the caller moves on."""
    for db in [name.strip() for name in args.db.split(",") if name.strip()]:
        with tempfile.TemporaryDirectory(prefix="benchreplay-") as tmp:
            workdir = Path(tmp)
            template = prepare(db, args, workdir)
            try:
                yield db, workdir, template
            finally:
                drop(db, template)


def drop(db: str, env: dict[str, str]) -> None:
    if db == "postgres":
        pg_admin(f'DROP DATABASE IF EXISTS "{env["DATABASE_URL"].rsplit("/", 1)[1]}"')


def _windows(hours: list) -> tuple[list, list]:
    """The first and the last 30 days of `hours` (quarters when shorter), the first hour left
    out: it also loads every candle into memory (the in-process replay's CandleMemory), a fixed
    cost of the replay, not of an hour."""
    hours = hours[1:] if len(hours) > 8 else hours
    window = 30 * 24 if len(hours) >= 120 * 24 else max(1, len(hours) // 4)
    return hours[:window], hours[-window:]


def flatness(hours: list[float | None]) -> float | None:
    """Mean cost of the last window's hours over the first window's; None when the costs were
    not recorded."""
    if not hours or any(cost is None for cost in hours):
        return None
    first, last = _windows(hours)
    return statistics.fmean(last) / statistics.fmean(first)


def _pair(result: dict, work: str) -> str:
    first, last, _all = result.get("work", {}).get(work, ("?", "?", "?"))
    return f"{first} → {last}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    if args.flatness:
        main_flatness(args)
        return
    print(f"replay {args.start} → {args.end}, {args.runs} runs per database", file=sys.stderr)
    rows = []
    for db, workdir, template in sample_databases(args):
        results = []
        for number in range(args.runs):
            env = fresh_copy(db, template, workdir, number)
            try:
                result = run_child(env, args.start, args.end)
            finally:
                drop(db, env)
            results.append(result)
            print(
                f"{db} run {number + 1}: {result['seconds']:.1f} s "
                f"({result['cpu_seconds']:.1f} s CPU), "
                f"{len(result['hours'])} h, flatness CPU "
                f"{_ratio(flatness(result.get('hours_cpu')))} "
                f"wall {_ratio(flatness(result['hours']))} "
                f"(signals {_pair(result, 'signals')}, checks {_pair(result, 'checks')}), "
                f"floor {result['floor_seconds']:.3f} s, "
                f"peak {result['peak_rss_mb']:.0f} MB, {result['signals']} signals",
                file=sys.stderr,
            )
        rows.append((db, results))
    if args.save:
        Path(args.save).write_text(json.dumps(dict(rows)))
    print_table(args, rows)


def child_command(start: str, end: str, *, lockstep: bool = False) -> list[str]:
    command = [sys.executable, __file__, "--child", "--start", start, "--end", end]
    return [*command, "--lockstep"] if lockstep else command


def run_child(env: dict[str, str], start: str, end: str) -> dict:
    out = subprocess.run(
        child_command(start, end), env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- --flatness: three replays in lockstep ----------------------------------------------------


def main_flatness(args: argparse.Namespace) -> None:
    start = _utc(args.start)
    end = _utc(args.end)
    last_start = end - WINDOW + HOUR
    if last_start < start + WINDOW:
        sys.exit("--flatness needs a period of at least 60 days")
    legs = {
        "A": (start, start + WINDOW - HOUR),
        "B": (last_start, end),
        "C": (last_start, end),
    }
    print(f"flatness: A {_day(start)} → {_day(start + WINDOW - HOUR)} on an empty database, "
          f"B and C {_day(last_start)} → {_day(end)} on a grown and an empty one, "
          f"{args.runs} runs per database", file=sys.stderr)  # fmt: skip
    rows = []
    for db, workdir, template in sample_databases(args):
        grown = fresh_copy(db, template, workdir, "grown")
        try:
            print(f"{db}: growing a database, {_day(start)} → {_day(last_start - HOUR)} "
                  "(a few minutes)", file=sys.stderr)  # fmt: skip
            began = time.perf_counter()
            run_child(grown, start.isoformat(), (last_start - HOUR).isoformat())
            print(f"{db}: the database grown in {time.perf_counter() - began:.0f} s (untimed)",
                  file=sys.stderr)  # fmt: skip
            for number in range(args.runs):
                envs = {
                    "A": fresh_copy(db, template, workdir, f"a{number}"),
                    "B": fresh_copy(db, grown, workdir, f"b{number}"),
                    "C": fresh_copy(db, template, workdir, f"c{number}"),
                }
                try:
                    legs_done = lockstep(envs, legs)
                finally:
                    for env in envs.values():
                        drop(db, env)
                rows.append((db, legs_done))
                print(f"{db} run {number + 1}: " + _lockstep_line(legs_done), file=sys.stderr)
        finally:
            drop(db, grown)
    if args.save:
        Path(args.save).write_text(json.dumps(rows))
    print_flatness_table(args, rows)


def lockstep(envs: dict[str, dict[str, str]], legs: dict[str, tuple]) -> dict[str, dict]:
    """Run one child per leg, letting each replay one market day in turn until all have ended;
    each leg's measures, by name."""
    children = {}
    for name, env in envs.items():
        leg_start, leg_end = legs[name]
        children[name] = subprocess.Popen(
            child_command(leg_start.isoformat(), leg_end.isoformat(), lockstep=True),
            env=env, cwd=ROOT, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    results: dict[str, dict] = {}
    try:
        while len(results) < len(children):
            for name, process in children.items():
                if name in results:
                    continue
                ended = _one_day(process)
                if ended is None:
                    continue
                if process.wait() != 0 or not ended.strip():
                    raise RuntimeError(f"leg {name} failed (exit {process.returncode})")
                results[name] = json.loads(ended.strip().splitlines()[-1])
    finally:
        for process in children.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def _one_day(process: subprocess.Popen) -> str | None:
    """Let a lockstep child replay its next market day: None once it has, or all it printed
    after it if it ended instead."""
    try:
        process.stdin.write("go\n")
        process.stdin.flush()
    except BrokenPipeError:
        pass  # it has ended: what it printed says how
    printed = []
    for line in process.stdout:
        if line.strip() == DAY_DONE:
            return None
        printed.append(line)
    return "".join(printed)


def _mean_hour(result: dict, key: str = "hours") -> float:
    return statistics.fmean(result[key][1:])  # the first hour also loads the candles


def _lockstep_line(legs: dict[str, dict]) -> str:
    cost = {name: _mean_hour(result) * 1000 for name, result in legs.items()}
    return (
        f"A {cost['A']:.1f}, B {cost['B']:.1f}, C {cost['C']:.1f} ms an hour; "
        f"B/A {cost['B'] / cost['A']:.2f}×, B/C {cost['B'] / cost['C']:.2f}×"
    )


def _heading(args: argparse.Namespace) -> str:
    return (
        f"\n`{' '.join(sys.argv)}` — {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; median of {args.runs} runs\n"
    )


def print_flatness_table(args: argparse.Namespace, rows: list) -> None:
    print(_heading(args))
    print(
        "| database | A: first 30 days, empty database | B: last 30 days, grown database "
        "| C: last 30 days, empty database | B / A (wall) | B / A (CPU) | B / C (wall) "
        "| B / C (CPU) | signals A / B / C | checks done A / B / C |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for db in dict.fromkeys(db for db, _legs in rows):
        runs = [legs for name, legs in rows if name == db]

        def median(key: str, leg: str, runs: list = runs) -> float:
            return statistics.median(_mean_hour(legs[leg], key) for legs in runs)

        def ratio(key: str, over: str, runs: list = runs) -> float:
            return statistics.median(
                _mean_hour(legs["B"], key) / _mean_hour(legs[over], key) for legs in runs
            )

        work = {
            kind: " / ".join(str(runs[0][leg]["work"][kind][2]) for leg in "ABC")
            for kind in ("signals", "checks")
        }
        print(
            f"| {db} | {median('hours', 'A') * 1000:.1f} ms/h | {median('hours', 'B') * 1000:.1f}"
            f" ms/h | {median('hours', 'C') * 1000:.1f} ms/h | {ratio('hours', 'A'):.2f}× "
            f"| {ratio('hours_cpu', 'A'):.2f}× | {ratio('hours', 'C'):.2f}× "
            f"| {ratio('hours_cpu', 'C'):.2f}× | {work['signals']} | {work['checks']} |"
        )


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def print_table(args: argparse.Namespace, rows: list) -> None:
    print(_heading(args))
    print(
        "| database | period | market hours | seconds | CPU seconds | hours/s "
        "| last/first per hour (CPU) | last/first per hour (wall) | compute floor "
        "| ratio to floor | peak memory | scans | coins scanned | signals |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for db, results in rows:
        seconds = statistics.median(r["seconds"] for r in results)
        cpu_seconds = statistics.median(r["cpu_seconds"] for r in results)
        floor = statistics.median(r["floor_seconds"] for r in results)
        flat = statistics.median(flatness(r["hours"]) for r in results)
        cpu_flats = [flatness(r.get("hours_cpu")) for r in results]
        flat_cpu = None if None in cpu_flats else statistics.median(cpu_flats)
        hours = len(results[0]["hours"])
        print(
            f"| {db} | {args.start} → {args.end} | {hours:,} | {seconds:.1f} | {cpu_seconds:.1f} "
            f"| {hours / seconds:.1f} | {_ratio(flat_cpu)} | {flat:.2f}× "
            f"| {floor:.3f} s | {seconds / floor:,.0f}× "
            f"| {max(r['peak_rss_mb'] for r in results):.0f} MB | {results[0]['scans']:,} "
            f"| {results[0]['coins_scanned']:,} | {results[0]['signals']:,} |"
        )


if __name__ == "__main__":
    main()
