"""Benchmark import_ohlcv against plain Django bulk_create, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_import.py [--runs 3] [--data data/sample/spot-1h]

Every run imports the folder into a fresh, empty, migrated database in a subprocess: a new SQLite
file (VAR_DIR in a temporary folder), and, when DATABASE_URL points at PostgreSQL, a new database
created on that server for the run and dropped afterwards. Two things are timed per run:

* **import**: `market.importing.import_paths`, i.e. what `manage.py import_ohlcv` does: read,
  check every row, write through `market.candle_writer` (multi-row INSERT OR IGNORE on SQLite,
  COPY + INSERT ... ON CONFLICT on PostgreSQL).
* **baseline**: the same CSV files read with the csv module and written with plain
  `Candle.objects.bulk_create` (one transaction per file), with no checks at all.

Both timings include reading the files and exclude migrations. The medians are printed, with a
markdown table row for docs/BENCHMARKS.md. The baseline understands CSV and CSV.gz files only.
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
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "data" / "sample" / "spot-1h"  # the bundled sample; --data for more


# --- worker side: runs inside a subprocess against one fresh database -------------------------


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _work_import(data: Path) -> dict[str, float]:
    from market.importing import import_paths
    from market.models import Candle

    started = time.perf_counter()
    summary = import_paths([data], exchange="binance")
    seconds = time.perf_counter() - started
    if summary.rejected:
        raise SystemExit("rejected: " + "; ".join(map(str, summary.rejected)))
    assert Candle.objects.count() == summary.candles_added
    return {"files": len(summary.results), "candles": summary.candles_added, "seconds": seconds}


def _work_baseline(data: Path) -> dict[str, float]:
    import csv
    import gzip
    from datetime import timedelta

    from django.db import transaction

    from market.file_layouts import collect_files, parse_layout
    from market.models import Candle, Market

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    files, _ = collect_files([data])
    started = time.perf_counter()
    candles = 0
    for path in files:
        if not path.name.endswith((".csv", ".csv.gz")):
            raise SystemExit(f"the baseline reads CSV files only: {path}")
        layout = parse_layout(path)  # the name only, to know the market
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        with transaction.atomic():
            market = Market.objects.create(
                exchange="binance",
                symbol=layout.symbol,
                base=layout.base,
                quote=layout.quote,
                market_type=layout.market_type,
            )
            objects = [
                Candle(
                    market=market,
                    timeframe=layout.timeframe,
                    series=layout.series,
                    open_time=epoch + timedelta(milliseconds=int(row[0])),
                    open=float(row[1]),
                    high=float(row[2]),
                    low=float(row[3]),
                    close=float(row[4]),
                    volume=float(row[5]),
                )
                for row in rows
            ]
            Candle.objects.bulk_create(objects, batch_size=5_000)
        candles += len(objects)
    seconds = time.perf_counter() - started
    return {"files": len(files), "candles": candles, "seconds": seconds}


def worker(mode: str, data: Path) -> None:
    _setup_django()
    result = _work_import(data) if mode == "import" else _work_baseline(data)
    print(json.dumps(result))


# --- driver side: fresh databases, subprocesses, medians -------------------------------------


def _run_worker(mode: str, data: Path, env: dict[str, str]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", mode, "--data", str(data)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{mode} worker failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _postgres_admin(url: str, sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(_with_database(url, "postgres"))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def run_once(backend: str, mode: str, data: Path, postgres_url: str, tag: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    # DEBUG is off with a DATABASE_URL, which then needs a secret key; any will do here.
    env.setdefault("SECRET_KEY", "bench-only-secret-key")
    env["LOG_LEVEL"] = "WARNING"
    with tempfile.TemporaryDirectory(prefix="cryptosatx-bench-") as var_dir:
        env["VAR_DIR"] = var_dir
        if backend == "SQLite":
            return _run_worker(mode, data, env)
        name = f"cryptosatx_bench_{os.getpid()}_{tag}"
        _postgres_admin(postgres_url, f'CREATE DATABASE "{name}"')
        try:
            env["DATABASE_URL"] = _with_database(postgres_url, name)
            return _run_worker(mode, data, env)
        finally:
            _postgres_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-database runs per backend")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder or file to import")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL server to benchmark too (default: DATABASE_URL); a fresh database "
        "is created on it per run and dropped afterwards",
    )
    parser.add_argument("--no-baseline", action="store_true", help="time the importer only")
    parser.add_argument("--worker", choices=["import", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data.resolve()
    if args.worker:
        worker(args.worker, data)
        return
    if not data.exists():
        raise SystemExit(f"no such data: {data}")

    backends = ["SQLite"]
    if args.database_url.startswith(("postgres://", "postgresql://")):
        backends.append("PostgreSQL")
    modes = ["import"] if args.no_baseline else ["import", "baseline"]
    medians: dict[tuple[str, str], tuple[float, dict]] = {}
    for backend in backends:
        for mode in modes:
            results = []
            for run in range(1, args.runs + 1):
                result = run_once(backend, mode, data, args.database_url, f"{mode}_{run}")
                rate = result["candles"] / result["seconds"]
                print(
                    f"{backend:10} {mode:8} run {run}: {result['candles']:,} candles from "
                    f"{result['files']} files in {result['seconds']:.1f} s ({rate:,.0f} candles/s)",
                    flush=True,
                )
                results.append(result)
            seconds = statistics.median(r["seconds"] for r in results)
            medians[backend, mode] = (seconds, results[0])

    print()
    print(
        "| date | machine | backend | data | candles | import (median) | import candles/s "
        "| bulk_create baseline candles/s | import / baseline |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    for backend in backends:
        seconds, sample = medians[backend, "import"]
        rate = sample["candles"] / seconds
        if (backend, "baseline") in medians:
            base_seconds, base_sample = medians[backend, "baseline"]
            base_rate = base_sample["candles"] / base_seconds
            baseline = f"{base_rate:,.0f} ({base_seconds:.1f} s)"
            ratio = f"{rate / base_rate:.2f}x"
        else:
            baseline = ratio = "—"
        print(
            f"| {datetime.now(UTC):%Y-%m-%d} | {machine} | {backend} | {data.name} "
            f"({sample['files']} files) | {sample['candles']:,} | {seconds:.1f} s | "
            f"{rate:,.0f} | {baseline} | {ratio} |"
        )


if __name__ == "__main__":
    main()
