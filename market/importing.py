"""Import OHLCV candles and funding rates from files into the candle store.

The importer ties three jobs together, each in its own module: what a file is and which files are
data (market.file_layouts), reading and checking every row (market.file_validation), and writing
(market.candle_writer, the store's one write path). The contract it adds:

* **A rejected file is never written.** Every row is checked before anything is stored; the first
  problem rejects the whole file with `ImportFileError` (`FILE: row N: reason`), and the other
  files are still imported.
* **Writing is all-or-nothing per file** (`store_parsed`): one transaction creates the market if
  needed, inserts what is new (existing candles are left untouched, never updated) and records an
  `ImportRecord`. Re-importing a file inserts nothing and reports 0 new rows.
* **Gaps are reported, never filled**: each accepted file's line counts its holes and the
  candles missing from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from tqdm import tqdm

from market.candle_writer import CandleRows, FundingRows, insert_new_rows
from market.file_layouts import FileLayout, ImportFileError, collect_files
from market.file_validation import ParsedFile, parse_file
from market.models import ImportKind, ImportRecord, ListingSource, Market

# Files with at least this many rows get their own progress bar while they are written.
BIG_FILE_ROWS = 100_000


@dataclass(frozen=True)
class ImportResult:
    """What storing one file did."""

    path: Path
    layout: FileLayout
    rows: int
    inserted: int
    first_time: datetime | None
    last_time: datetime | None
    gaps: int
    missing_candles: int
    record_id: int

    def describe(self) -> str:
        """One line for the user, e.g. `BTC/USDT 1h: 34,976 rows, 34,976 new, 11 gaps (...)`."""
        new = f"{self.inserted:,} new"
        if self.rows and not self.inserted:
            new += " (all already stored)"
        span = (
            f"{self.first_time:%Y-%m-%d %H:%M} .. {self.last_time:%Y-%m-%d %H:%M} UTC"
            if self.first_time and self.last_time
            else "empty file"
        )
        if self.layout.kind == ImportKind.FUNDING:
            return f"{self.layout.label}: {self.rows:,} rates, {new} ({span})"
        missing = f"; {self.missing_candles:,} candles missing" if self.gaps else ""
        return f"{self.layout.label}: {self.rows:,} rows, {new}, {self.gaps} gaps ({span}{missing})"


@dataclass
class ImportSummary:
    """Everything one `import_paths` call did."""

    results: list[ImportResult] = field(default_factory=list)
    rejected: list[ImportFileError] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    elapsed: float = 0.0

    def _candle_results(self) -> Iterable[ImportResult]:
        return (r for r in self.results if r.layout.kind == ImportKind.CANDLES)

    @property
    def candles_read(self) -> int:
        return sum(r.rows for r in self._candle_results())

    @property
    def candles_added(self) -> int:
        return sum(r.inserted for r in self._candle_results())

    @property
    def funding_added(self) -> int:
        return sum(r.inserted for r in self.results if r.layout.kind == ImportKind.FUNDING)

    @property
    def candles_per_second(self) -> float:
        """Candle rows of accepted files read, checked and stored per second of the whole run."""
        return self.candles_read / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        skipped = f", {len(self.skipped)} non-data files skipped" if self.skipped else ""
        return (
            f"{len(self.results)} files imported, {len(self.rejected)} rejected{skipped}: "
            f"{self.candles_added:,} candles added ({self.candles_read:,} read), "
            f"{self.funding_added:,} funding rates added in {self.elapsed:.1f} s "
            f"({self.candles_per_second:,.0f} candles/s)"
        )


def _note_listing(market: Market, first_time: datetime) -> None:
    """Give a market without a listing time its first candle's; move a first-candle one earlier."""
    if market.listed_at is None or (
        market.listed_at_source == ListingSource.FIRST_CANDLE and first_time < market.listed_at
    ):
        market.listed_at = first_time
        market.listed_at_source = ListingSource.FIRST_CANDLE
        market.save(update_fields=["listed_at", "listed_at_source"])


def store_parsed(
    parsed: ParsedFile,
    *,
    exchange: str,
    on_rows: Callable[[int], object] | None = None,
) -> ImportResult:
    """Write a checked file in one transaction and record it; already stored rows are kept as is.

    Creates the market when needed. `on_rows(n)` is called as rows are written (for progress).
    """
    layout = parsed.layout
    candles = layout.kind == ImportKind.CANDLES
    with transaction.atomic():
        market, _ = Market.objects.get_or_create(
            exchange=exchange,
            market_type=layout.market_type,
            symbol=layout.symbol,
            defaults={"base": layout.base, "quote": layout.quote},
        )
        inserted = 0
        if parsed.rows:
            rows: CandleRows | FundingRows
            if candles:
                _note_listing(market, parsed.first_time)
                rows = CandleRows(
                    market.pk, layout.timeframe, layout.series, parsed.times_ms, parsed.values
                )
            else:
                rows = FundingRows(market.pk, parsed.times_ms, parsed.values["rate"])
            inserted = insert_new_rows([rows], on_rows=on_rows)
        record = ImportRecord.objects.create(
            path=str(parsed.path.resolve())[:1024],
            sha256=parsed.sha256,
            kind=layout.kind,
            market=market,
            timeframe=layout.timeframe,
            series=layout.series,
            rows=parsed.rows,
            inserted=inserted,
            first_time=parsed.first_time,
            last_time=parsed.last_time,
            gaps=parsed.gaps,
        )
    return ImportResult(
        path=parsed.path,
        layout=layout,
        rows=parsed.rows,
        inserted=inserted,
        first_time=parsed.first_time,
        last_time=parsed.last_time,
        gaps=parsed.gaps,
        missing_candles=parsed.missing_candles,
        record_id=record.pk,
    )


def import_file(path: Path | str, *, exchange: str) -> ImportResult:
    """Import one file: parse_file, then store_parsed. ImportFileError: nothing was written."""
    return store_parsed(parse_file(path), exchange=exchange)


def import_paths(
    paths: Iterable[Path | str],
    *,
    exchange: str,
    progress: bool = False,
    on_result: Callable[[ImportResult], object] | None = None,
    on_reject: Callable[[ImportFileError], object] | None = None,
) -> ImportSummary:
    """Import every file under `paths`, each all-or-nothing; a rejected file never stops the rest.

    `progress` shows tqdm bars on stderr (files, and rows for big files). `on_result` and
    `on_reject` are called per file as it finishes (between bar redraws). ImportPathError,
    before anything is imported, if a path does not exist.
    """
    started = time.perf_counter()
    files, skipped = collect_files(paths)
    summary = ImportSummary(skipped=skipped)
    with tqdm(total=len(files), unit="file", disable=not progress, dynamic_ncols=True) as bar:

        def tell(callback: Callable[[Any], object] | None, item: object) -> None:
            if callback is None:
                return
            if bar.disable:
                callback(item)
            else:
                with tqdm.external_write_mode():
                    callback(item)

        for path in files:
            bar.set_postfix_str(path.name, refresh=False)
            try:
                parsed = parse_file(path)
                with tqdm(
                    total=parsed.rows,
                    unit="row",
                    unit_scale=True,
                    leave=False,
                    position=1,
                    desc=parsed.layout.label,
                    disable=not progress or parsed.rows < BIG_FILE_ROWS,
                ) as rows_bar:
                    result = store_parsed(parsed, exchange=exchange, on_rows=rows_bar.update)
            except ImportFileError as exc:
                summary.rejected.append(exc)
                tell(on_reject, exc)
            else:
                summary.results.append(result)
                tell(on_result, result)
            bar.update()
    summary.elapsed = time.perf_counter() - started
    return summary
