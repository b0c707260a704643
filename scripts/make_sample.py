"""Rebuild data/sample/ from a market-data folder: the market `make run` replays offline.

    python scripts/make_sample.py --source PATH/TO/market-data
                                  [--start 2023-11-01] [--end 2024-05-09]

Spot 1h candles of every coin inside [start, end) are copied row for row (no row is changed,
gaps stay gaps); the funding-rate files are copied whole.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def to_ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="a folder in the market-data layout (spot-1h/, funding/)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    parser.add_argument("--start", default="2023-11-01")
    parser.add_argument("--end", default="2024-05-09")
    args = parser.parse_args()
    start, end = to_ms(args.start), to_ms(args.end)

    spot_out = args.out / "spot-1h"
    spot_out.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in sorted((args.source / "spot-1h").glob("*.csv.gz")):
        with gzip.open(path, "rt", newline="") as src:
            reader = csv.reader(src)
            header = next(reader)
            rows = [row for row in reader if start <= int(row[0]) < end]
        # mtime=0 keeps the archive bytes identical from one rebuild to the next.
        with (
            open(spot_out / path.name, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
        ):
            text = "\n".join([",".join(header), *(",".join(row) for row in rows)]) + "\n"
            gz.write(text.encode())
        total += len(rows)
        print(f"{path.name}: {len(rows)} candles")

    funding_out = args.out / "funding"
    funding_out.mkdir(parents=True, exist_ok=True)
    for path in sorted((args.source / "funding").glob("*.csv")):
        shutil.copyfile(path, funding_out / path.name)
    print(f"{total} spot candles; funding files copied to {funding_out}")


if __name__ == "__main__":
    main()
