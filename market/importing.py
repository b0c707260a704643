"""Import OHLCV candles and funding rates from files into the candle store.

The contract, for every file:

* **What a file is** comes from its name alone (`parse_layout`): `BTC_USDT-1h.csv.gz` is spot
  `BTC/USDT`, `BTC_USDT_USDT-1h-futures.csv` the perpetual `BTC/USDT:USDT`, `...-1h-mark.csv` its
  mark-price candles, `...-8h-funding_rate.csv` its funding settlements. The formats are the CSV
  layout of the shared market data (`timestamp_ms,open,high,low,close,volume[,taker_buy_volume]`
  or `timestamp_ms,funding_rate`), freqtrade JSON (`[[ms, o, h, l, c, v], ...]`) and freqtrade
  feather (`date, open, high, low, close, volume`), each optionally gzipped except feather.
  A funding file's rate is its second CSV column, or the `open` column of freqtrade's files.
* **All rows are checked before anything is written** (`parse_file`). The first problem rejects
  the whole file with `ImportFileError`, whose message reads `FILE: row N: reason`. Rows are
  counted the same way in every format: row 1 is the first data row (in a CSV, the line after
  the header; the header itself is not a row). File-level problems (name, header, encoding) have
  no row number.
* **Gaps are facts, never filled.** Missing candles inside a file are counted (`gaps` = holes,
  `missing_candles` = candles absent from them) and reported; no candle is invented.
* **Writing is all-or-nothing per file** (`store_parsed`): one transaction creates the market if
  needed, inserts what is new (existing candles are left untouched, never updated) and records an
  `ImportRecord`. Re-importing a file inserts nothing and reports 0 new rows.

Funding timestamps in the real data carry ±1 ms of jitter, so they are rounded to the nearest
second before the sorted/unique check. Candle open times must sit exactly on the timeframe grid.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
from django.db import connection, models, transaction
from tqdm import tqdm

from market.models import (
    Candle,
    FundingRate,
    ImportKind,
    ImportRecord,
    ListingSource,
    Market,
    MarketType,
    PriceSeries,
)
from market.times import TIMEFRAMES, ms_to_datetime

MILLISECOND = timedelta(milliseconds=1)

# Rows per INSERT batch (Django caps it further on SQLite) and per COPY chunk on PostgreSQL.
BATCH_SIZE = 5_000
# Files with at least this many rows get their own progress bar while they are written.
BIG_FILE_ROWS = 100_000

CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "taker_buy_volume")
PRICE_FIELDS = ("open", "high", "low", "close")
CANDLE_HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
CANDLE_HEADER_WITH_TAKER = (*CANDLE_HEADER, "taker_buy_volume")
FUNDING_HEADER = ("timestamp_ms", "funding_rate")
FEATHER_COLUMNS = ("date", "open", "high", "low", "close", "volume")

# Plausible times only: a file in seconds instead of milliseconds lands in 1970 and is caught here.
MIN_TIME_MS = 946_684_800_000  # 2000-01-01
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01

# Longest first, so `x.csv.gz` is not taken for a `.gz` of unknown kind.
DATA_SUFFIXES = (".csv.gz", ".json.gz", ".csv", ".json", ".feather")

# freqtrade's candle types; only these three are stored, the others (index, premiumIndex, ...)
# are named in the rejection so the user knows why.
_SUFFIX_SERIES = {"futures": PriceSeries.TRADES, "mark": PriceSeries.MARK}
_FUNDING_SUFFIX = "funding_rate"


class ImportFileError(Exception):
    """A file that cannot be imported. Nothing from it was written.

    `row` is the 1-based data row (the header is not a row), or None for a problem with the file
    as a whole (name, header, encoding, compression).
    """

    def __init__(self, path: Path | str, row: int | None, reason: str) -> None:
        self.path = Path(path)
        self.row = row
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        return f"{self.path}: {where}{self.reason}"


class ImportPathError(ValueError):
    """A path given to `import_paths` does not exist. Raised before anything is imported."""


@dataclass(frozen=True)
class FileLayout:
    """What a file holds, read from its name."""

    kind: str  # ImportKind
    base: str
    quote: str
    settle: str  # "" for spot
    timeframe: str  # "" for funding: the name's timeframe is not the settlement interval
    series: str  # PriceSeries for candles, "" for funding
    file_format: str  # "csv" | "json" | "feather"
    compressed: bool

    @property
    def market_type(self) -> str:
        return MarketType.FUTURES if self.settle else MarketType.SPOT

    @property
    def symbol(self) -> str:
        """ccxt's unified symbol: BTC/USDT for spot, BTC/USDT:USDT for a perpetual."""
        return f"{self.base}/{self.quote}" + (f":{self.settle}" if self.settle else "")

    @property
    def label(self) -> str:
        if self.kind == ImportKind.FUNDING:
            return f"{self.symbol} funding"
        mark = " mark" if self.series == PriceSeries.MARK else ""
        return f"{self.symbol} {self.timeframe}{mark}"


@dataclass(frozen=True)
class ParsedFile:
    """A file that passed every check, ready to store.

    `times_ms` is strictly increasing (funding times already rounded to the second). `values`
    maps model field names to float64 arrays of the same length: the six candle fields, or
    `rate`. NaN appears only in `taker_buy_volume`, where it means "the file does not say".
    """

    path: Path
    sha256: str
    layout: FileLayout
    times_ms: np.ndarray
    values: dict[str, np.ndarray]
    gaps: int = 0
    missing_candles: int = 0

    @property
    def rows(self) -> int:
        return len(self.times_ms)

    @property
    def first_time(self) -> datetime | None:
        return ms_to_datetime(int(self.times_ms[0])) if self.rows else None

    @property
    def last_time(self) -> datetime | None:
        return ms_to_datetime(int(self.times_ms[-1])) if self.rows else None


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


def _format_ms(ms: int) -> str:
    value = ms_to_datetime(ms)
    text = f"{value:%Y-%m-%d %H:%M:%S}"
    return text + (f".{ms % 1000:03d}" if ms % 1000 else "")


# --- file names ------------------------------------------------------------------------------


def split_data_suffix(name: str) -> tuple[str, str] | None:
    """(stem, suffix) for a supported data file name, else None. Case of the suffix is ignored."""
    lowered = name.lower()
    for suffix in DATA_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def parse_layout(path: Path) -> FileLayout:
    """What `path` holds, from its name; ImportFileError ("unknown layout") for any other name."""
    split = split_data_suffix(path.name)
    if split is None:
        raise ImportFileError(
            path, None, f"unknown layout: expected a name ending in {', '.join(DATA_SUFFIXES)}"
        )
    stem, suffix = split
    file_format = suffix.split(".")[1]
    compressed = suffix.endswith(".gz")
    unknown = (
        "unknown layout: expected BASE_QUOTE-TF (spot), BASE_QUOTE_SETTLE-TF-futures, "
        "BASE_QUOTE_SETTLE-TF-mark or BASE_QUOTE_SETTLE-TF-funding_rate"
    )
    pair, _, rest = stem.partition("-")
    timeframe, _, candle_type = rest.partition("-")
    symbol_parts = pair.split("_")
    if (
        not timeframe
        or "-" in candle_type
        or len(symbol_parts) not in (2, 3)
        or not all(part.isalnum() and part.isascii() for part in symbol_parts)
    ):
        raise ImportFileError(path, None, unknown)
    base, quote = symbol_parts[0], symbol_parts[1]
    settle = symbol_parts[2] if len(symbol_parts) == 3 else ""
    if bool(settle) != bool(candle_type):
        # freqtrade names every futures file with its candle type and no spot file with one.
        raise ImportFileError(path, None, unknown)
    if candle_type == _FUNDING_SUFFIX:
        if file_format == "feather" and compressed:  # pragma: no cover - suffix table forbids it
            raise ImportFileError(path, None, unknown)
        return FileLayout(
            kind=ImportKind.FUNDING,
            base=base,
            quote=quote,
            settle=settle,
            timeframe="",
            series="",
            file_format=file_format,
            compressed=compressed,
        )
    if candle_type and candle_type not in _SUFFIX_SERIES:
        raise ImportFileError(
            path, None, f"unknown layout: candle type {candle_type!r} is not imported ({unknown})"
        )
    if timeframe not in TIMEFRAMES:
        raise ImportFileError(
            path,
            None,
            f"unknown layout: timeframe {timeframe!r} is not stored "
            f"(expected one of {', '.join(TIMEFRAMES)})",
        )
    return FileLayout(
        kind=ImportKind.CANDLES,
        base=base,
        quote=quote,
        settle=settle,
        timeframe=timeframe,
        series=_SUFFIX_SERIES.get(candle_type, PriceSeries.TRADES),
        file_format=file_format,
        compressed=compressed,
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass
class RawTable:
    """Columns as read, before the checks. `nulls` marks values the file left empty."""

    times_ms: np.ndarray
    values: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray] = field(default_factory=dict)


def _value_fields(layout: FileLayout) -> tuple[str, ...]:
    return CANDLE_FIELDS if layout.kind == ImportKind.CANDLES else ("rate",)


def _empty_table(layout: FileLayout) -> RawTable:
    return RawTable(
        times_ms=np.empty(0, dtype=np.int64),
        values={name: np.empty(0, dtype=np.float64) for name in _value_fields(layout)},
    )


def _arrow_to_numpy(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, null mask or None); nulls become 0 in `values` so the array keeps its dtype."""
    nulls = None
    if column.null_count:
        nulls = pc.is_null(column).to_numpy(zero_copy_only=False)
        column = pc.fill_null(column, 0)
    return column.to_numpy(zero_copy_only=False), nulls


def _read_csv(path: Path, data: bytes, layout: FileLayout) -> RawTable:
    if data.startswith(b"\xef\xbb\xbf"):  # a BOM from spreadsheet tools is not part of the header
        data = data[3:]
    end = data.find(b"\n")
    header_line, body = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
    try:
        header = tuple(header_line.decode("utf-8").strip().split(","))
    except UnicodeDecodeError:
        raise ImportFileError(path, None, "header is not UTF-8 text") from None
    expected = (
        (CANDLE_HEADER, CANDLE_HEADER_WITH_TAKER)
        if layout.kind == ImportKind.CANDLES
        else (FUNDING_HEADER,)
    )
    if header not in expected:
        wanted = " or ".join(",".join(h) for h in expected)
        shown = ",".join(header)[:120]
        raise ImportFileError(path, None, f"header is {shown!r}; expected {wanted}")
    # Blank lines at the very end are harmless (editors add them); inside the data they are not.
    body = body.rstrip(b"\r\n")
    if not body:
        return _empty_table(layout)
    column_types = {name: pa.float64() for name in header[1:]}
    column_types["timestamp_ms"] = pa.int64()
    try:
        # pyarrow's C++ reader is the fast path (~50x the csv module); its errors do not say
        # which row, so on any error the slow reader below finds the row and says why.
        table = pa_csv.read_csv(
            io.BytesIO(body),
            read_options=pa_csv.ReadOptions(column_names=list(header)),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=column_types, null_values=[""], strings_can_be_null=False
            ),
        )
    except pa.ArrowException as exc:
        _locate_csv_error(path, body, header)
        raise ImportFileError(path, None, f"unreadable CSV: {exc}") from None
    if any(table.column(name).null_count for name in header if name != "taker_buy_volume"):
        # An empty line also arrives as nulls; the slow reader tells the two apart.
        _locate_csv_error(path, body, header)
    times, _ = _arrow_to_numpy(table.column("timestamp_ms"))
    raw = RawTable(times_ms=times.astype(np.int64, copy=False), values={})
    for name in header[1:]:
        target = "rate" if name == "funding_rate" else name
        raw.values[target], nulls = _arrow_to_numpy(table.column(name))
        if nulls is not None:
            raw.nulls[target] = nulls
    return raw


def _locate_csv_error(path: Path, body: bytes, header: Sequence[str]) -> None:
    """Raise ImportFileError for the first bad row of `body`; return if none is found."""
    text = body.decode("utf-8", errors="replace")
    for row_number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not row:
            raise ImportFileError(path, row_number, "empty line")
        if len(row) != len(header):
            raise ImportFileError(
                path, row_number, f"{len(row)} columns, expected {len(header)} ({','.join(header)})"
            )
        try:
            stamp = int(row[0])
        except ValueError:
            raise ImportFileError(
                path, row_number, f"timestamp_ms {row[0]!r} is not a whole number"
            ) from None
        if not MIN_TIME_MS <= stamp <= MAX_TIME_MS:  # also what overflows pyarrow's int64
            raise ImportFileError(path, row_number, _out_of_range(stamp))
        for name, value in zip(header[1:], row[1:], strict=True):
            if value == "":
                if name == "taker_buy_volume":
                    continue  # optional: an empty value means the source does not say
                raise ImportFileError(path, row_number, f"{name} is empty")
            try:
                float(value)
            except ValueError:
                raise ImportFileError(
                    path, row_number, f"{name} {value!r} is not a number"
                ) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_json(path: Path, data: bytes, layout: FileLayout) -> RawTable:
    try:
        rows = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportFileError(path, None, f"not valid JSON: {exc}") from None
    candles = layout.kind == ImportKind.CANDLES
    # freqtrade writes six values per row; a funding row's rate is the second ("open").
    widths = (6, 7) if candles else (2, 6)
    names = CANDLE_HEADER_WITH_TAKER[1:] if candles else ("funding_rate",)
    if not isinstance(rows, list):
        raise ImportFileError(path, None, "expected a JSON array of rows [timestamp_ms, open, ...]")
    for row_number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) not in widths:
            shown = json.dumps(row)[:80]
            raise ImportFileError(
                path,
                row_number,
                f"expected an array of {' or '.join(map(str, widths))} values, got {shown}",
            )
        stamp = row[0]
        if not _is_number(stamp) or (isinstance(stamp, float) and not stamp.is_integer()):
            raise ImportFileError(
                path, row_number, f"timestamp {json.dumps(stamp)} is not a whole number"
            )
        if not MIN_TIME_MS <= stamp <= MAX_TIME_MS:  # before numpy's int64 could overflow
            raise ImportFileError(path, row_number, _out_of_range(int(stamp)))
        for name, value in zip(names, row[1:], strict=False):
            if value is None and name == "taker_buy_volume":
                continue
            if not _is_number(value):
                raise ImportFileError(
                    path, row_number, f"{name} {json.dumps(value)} is not a number"
                )
    raw = RawTable(times_ms=np.array([int(row[0]) for row in rows], dtype=np.int64), values={})
    if not candles:
        raw.values["rate"] = np.array([row[1] for row in rows], dtype=np.float64)
        return raw
    for index, name in enumerate(CANDLE_FIELDS, start=1):
        if name == "taker_buy_volume":
            column = [row[index] if len(row) > index else None for row in rows]
            nulls = np.array([value is None for value in column], dtype=bool)
            if nulls.any():
                raw.nulls[name] = nulls
            raw.values[name] = np.array(
                [0.0 if value is None else value for value in column], dtype=np.float64
            )
        else:
            raw.values[name] = np.array([row[index] for row in rows], dtype=np.float64)
    return raw


_UNIT_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}


def _read_feather(path: Path, data: bytes, layout: FileLayout) -> RawTable:
    try:
        table = feather.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ImportFileError(path, None, f"not a readable feather file: {exc}") from None
    candles = layout.kind == ImportKind.CANDLES
    allowed = (*FEATHER_COLUMNS, "taker_buy_volume") if candles else FEATHER_COLUMNS
    names = table.column_names
    if any(c not in names for c in FEATHER_COLUMNS) or any(c not in allowed for c in names):
        raise ImportFileError(
            path, None, f"columns are {', '.join(names)}; expected {', '.join(FEATHER_COLUMNS)}"
        )
    date = table.column("date")
    if pa.types.is_timestamp(date.type):
        # A zone-aware arrow timestamp is stored as UTC whatever its zone; a naive one is taken
        # as UTC, which is what freqtrade means by it.
        multiply, divide = _UNIT_MS[date.type.unit]
        stamps, nulls = _arrow_to_numpy(date.cast(pa.int64()))
    elif pa.types.is_integer(date.type):
        multiply, divide = 1, 1
        stamps, nulls = _arrow_to_numpy(date)
    else:
        raise ImportFileError(
            path, None, f"column date is {date.type}; expected a timestamp or integer milliseconds"
        )
    if nulls is not None:
        raise ImportFileError(path, int(np.argmax(nulls)) + 1, "date is empty")
    stamps = stamps.astype(np.int64, copy=False)
    if divide > 1:
        fraction = stamps % divide != 0
        if fraction.any():
            raise ImportFileError(
                path, int(np.argmax(fraction)) + 1, "date has a fraction of a millisecond"
            )
    raw = RawTable(times_ms=stamps // divide * multiply, values={})
    columns = {"rate": "open"} if not candles else {n: n for n in CANDLE_FIELDS if n in names}
    for target, source in columns.items():
        column = table.column(source)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise ImportFileError(path, None, f"column {source} is {column.type}; expected numbers")
        values, nulls = _arrow_to_numpy(column)
        raw.values[target] = values.astype(np.float64, copy=False)
        if nulls is not None:
            raw.nulls[target] = nulls
    return raw


_READERS: dict[str, Callable[[Path, bytes, FileLayout], RawTable]] = {
    "csv": _read_csv,
    "json": _read_json,
    "feather": _read_feather,
}


# --- checking --------------------------------------------------------------------------------


def _out_of_range(stamp: int) -> str:
    return (
        f"timestamp {stamp} is not between 2000 and 2100 "
        "(expected milliseconds since 1970-01-01 UTC)"
    )


def _first(mask: np.ndarray, offset: int = 0) -> int | None:
    """Index of the first True in `mask` (shifted by `offset`), or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) + offset if hits.size else None


def validate_table(path: Path, sha256: str, layout: FileLayout, raw: RawTable) -> ParsedFile:
    """Check every row; ImportFileError for the first row (lowest number) that breaks a rule."""
    times = raw.times_ms
    candles = layout.kind == ImportKind.CANDLES
    if not candles:
        # Real funding times carry ±1 ms of jitter; settlements are on whole seconds.
        times = (times + 500) // 1000 * 1000
    values = raw.values
    n = len(times)
    if n == 0:
        return ParsedFile(path, sha256, layout, times, _complete_values(layout, values, raw.nulls))

    # Each check: (index of the first failing row or None, message for that index). Checks are
    # listed in the order that decides between two problems on the same row.
    checks: list[tuple[int | None, Callable[[int], str]]] = []

    def add(mask: np.ndarray, message: Callable[[int], str], offset: int = 0) -> None:
        checks.append((_first(mask, offset), message))

    optional = {"taker_buy_volume"}
    for name, column in values.items():
        nulls = raw.nulls.get(name)
        if nulls is not None and name not in optional:
            add(nulls, lambda i, name=name: f"{name} is empty")
        bad = ~np.isfinite(column)
        if nulls is not None:
            bad &= ~nulls
        add(
            bad,
            lambda i, name=name, column=column: (
                f"{name} is {float(column[i])} (not a finite number)"
            ),
        )

    add((times < MIN_TIME_MS) | (times > MAX_TIME_MS), lambda i: _out_of_range(int(times[i])))
    if candles:
        step = TIMEFRAMES[layout.timeframe] // MILLISECOND
        add(
            times % step != 0,
            lambda i: (
                f"open time {_format_ms(int(times[i]))} is not on the {layout.timeframe} grid"
            ),
        )
    steps = np.diff(times)
    rounded = "" if candles else " (rounded to the second)"
    add(
        steps < 0,
        lambda i: (
            f"time {_format_ms(int(times[i]))} is before row {i}'s "
            f"{_format_ms(int(times[i - 1]))}; rows must be in time order"
        ),
        offset=1,
    )
    add(
        steps == 0,
        lambda i: f"time {_format_ms(int(times[i]))}{rounded} repeats row {i}",
        offset=1,
    )

    if candles:
        o, h, low, c = (values[name] for name in PRICE_FIELDS)
        for name in PRICE_FIELDS:
            column = values[name]
            add(
                column <= 0,
                lambda i, name=name, column=column: f"{name} {float(column[i])!r} is not > 0",
            )
        volume = values["volume"]
        add(volume < 0, lambda i: f"volume {float(volume[i])!r} is negative")
        taker = values.get("taker_buy_volume")
        if taker is not None:
            add(taker < 0, lambda i: f"taker_buy_volume {float(taker[i])!r} is negative")
        add(h < low, lambda i: f"high {float(h[i])!r} is below low {float(low[i])!r}")
        add(
            h < np.maximum(o, c),
            lambda i: (
                f"high {float(h[i])!r} is below open {float(o[i])!r} or close {float(c[i])!r}"
            ),
        )
        add(
            low > np.minimum(o, c),
            lambda i: (
                f"low {float(low[i])!r} is above open {float(o[i])!r} or close {float(c[i])!r}"
            ),
        )

    failures = [(index, order) for order, (index, _) in enumerate(checks) if index is not None]
    if failures:
        index, order = min(failures)
        raise ImportFileError(path, index + 1, checks[order][1](index))

    gaps = missing = 0
    if candles and n > 1:
        holes = steps // step - 1
        gaps = int(np.count_nonzero(holes))
        missing = int(holes.sum())
    return ParsedFile(
        path=path,
        sha256=sha256,
        layout=layout,
        times_ms=times,
        values=_complete_values(layout, values, raw.nulls),
        gaps=gaps,
        missing_candles=missing,
    )


def _complete_values(
    layout: FileLayout, values: dict[str, np.ndarray], nulls: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Every value field of the kind, with NaN where the optional taker volume is absent."""
    length = len(next(iter(values.values()))) if values else 0
    complete = {}
    for name in _value_fields(layout):
        column = values.get(name)
        if column is None:
            column = np.full(length, np.nan)
        elif name in nulls:
            column = np.where(nulls[name], np.nan, column)
        complete[name] = column.astype(np.float64, copy=False)
    return complete


def parse_file(path: Path | str) -> ParsedFile:
    """Read and check one file completely; ImportFileError on the first problem.

    Nothing touches the database here, so a rejected file can never leave rows behind.
    """
    path = Path(path)
    layout = parse_layout(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if layout.compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportFileError(path, None, f"not a valid gzip file: {exc}") from None
    raw = _READERS[layout.file_format](path, data, layout)
    return validate_table(path, sha256, layout, raw)


# --- writing ---------------------------------------------------------------------------------


def _can_copy() -> bool:
    """True on PostgreSQL through psycopg2, whose cursors have copy_expert."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy_expert")


def _csv_number(value: float) -> str:
    # repr is the shortest text that reads back as the same float; NaN means "no value".
    return "" if value != value else repr(value)


def _insert_with_copy(
    model: type[models.Model],
    fixed: dict[str, Any],
    time_field: str,
    parsed: ParsedFile,
    on_rows: Callable[[int], object] | None,
) -> int:
    """PostgreSQL: COPY into a temp table, then one INSERT ... ON CONFLICT DO NOTHING.

    Returns the number of rows really inserted (the INSERT's rowcount).
    """
    quote = connection.ops.quote_name
    meta = model._meta
    value_fields = list(parsed.values)
    temp = quote(f"cryptosatx_import_{meta.model_name}")
    value_columns = [quote(meta.get_field(name).column) for name in value_fields]
    fixed_columns = [quote(meta.get_field(name).column) for name in fixed]
    with connection.cursor() as cursor:
        # Kept for the session, emptied at commit; TRUNCATE covers a file imported inside an
        # enclosing transaction (tests) where no commit happened in between.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {temp} (t bigint NOT NULL, "
            + ", ".join(f"{column} double precision" for column in value_columns)
            + ") ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {temp}")
        times = parsed.times_ms.tolist()
        columns = [parsed.values[name].tolist() for name in value_fields]
        copy_sql = f"COPY {temp} (t, {', '.join(value_columns)}) FROM STDIN WITH (FORMAT csv)"
        for start in range(0, len(times), BATCH_SIZE):
            stop = start + BATCH_SIZE
            lines = [
                f"{stamp},{','.join(map(_csv_number, row))}\n"
                for stamp, *row in zip(
                    times[start:stop], *(column[start:stop] for column in columns), strict=True
                )
            ]
            cursor.copy_expert(copy_sql, io.StringIO("".join(lines)))
            if on_rows:
                on_rows(len(lines))
        placeholders = ", ".join(["%s"] * len(fixed))
        # Integer millisecond arithmetic: exact, unlike to_timestamp() on a float of seconds.
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 - quoted identifiers; values are params
            f"({', '.join(fixed_columns)}, {quote(meta.get_field(time_field).column)}, "
            f"{', '.join(value_columns)}) "
            f"SELECT {placeholders}, TIMESTAMPTZ 'epoch' + t * INTERVAL '1 millisecond', "
            f"{', '.join(value_columns)} FROM {temp} ON CONFLICT DO NOTHING",
            [value.pk if isinstance(value, models.Model) else value for value in fixed.values()],
        )
        return cursor.rowcount


def _insert_with_executemany(
    model: type[models.Model],
    fixed: dict[str, Any],
    time_field: str,
    parsed: ParsedFile,
    on_rows: Callable[[int], object] | None,
) -> int:
    """SQLite: INSERT OR IGNORE through executemany, about five times faster than bulk_create
    here (no model objects); returns the number of rows really inserted (the summed rowcount).

    Times are adapted by Django's own backend operations, so stored values are exactly what the
    ORM writes and reads, and the unique index sees re-imported rows as the same rows.
    """
    quote = connection.ops.quote_name
    adapt_time = connection.ops.adapt_datetimefield_value
    meta = model._meta
    value_fields = list(parsed.values)
    columns = [
        *(quote(meta.get_field(name).column) for name in fixed),
        quote(meta.get_field(time_field).column),
        *(quote(meta.get_field(name).column) for name in value_fields),
    ]
    fixed_values = [
        value.pk if isinstance(value, models.Model) else value for value in fixed.values()
    ]
    sql = (
        f"INSERT OR IGNORE INTO {quote(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 - quoted identifiers; values are params
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    times = parsed.times_ms.tolist()
    value_columns = [
        # NaN means the file has no value here: store NULL.
        [None if value != value else value for value in parsed.values[name].tolist()]
        for name in value_fields
    ]
    inserted = 0
    with connection.cursor() as cursor:
        for start in range(0, len(times), BATCH_SIZE):
            stop = start + BATCH_SIZE
            rows = [
                (*fixed_values, adapt_time(ms_to_datetime(stamp)), *values)
                for stamp, *values in zip(
                    times[start:stop],
                    *(column[start:stop] for column in value_columns),
                    strict=True,
                )
            ]
            cursor.executemany(sql, rows)
            inserted += cursor.rowcount
            if on_rows:
                on_rows(len(rows))
    return inserted


def _note_listing(market: Market, first_time: datetime) -> None:
    """Give a market without a listing time its first candle's; move a first-candle one earlier."""
    if market.listed_at is None or (
        market.listed_at_source == ListingSource.FIRST_CANDLE and first_time < market.listed_at
    ):
        market.listed_at = first_time
        market.listed_at_source = ListingSource.FIRST_CANDLE
        market.save(update_fields=["listed_at", "listed_at_source"])


def insert_rows(
    model: type[models.Model],
    fixed: dict[str, Any],
    time_field: str,
    parsed: ParsedFile,
    on_rows: Callable[[int], object] | None = None,
) -> int:
    """Write checked rows of one series, keeping rows already stored; the number inserted.

    The caller owns the transaction. Also used by the live source for candles it fetched.
    """
    insert = _insert_with_copy if _can_copy() else _insert_with_executemany
    return insert(model, fixed, time_field, parsed, on_rows)


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
            if candles:
                _note_listing(market, parsed.first_time)
                fixed = {"market": market, "timeframe": layout.timeframe, "series": layout.series}
                inserted = insert_rows(Candle, fixed, "open_time", parsed, on_rows)
            else:
                inserted = insert_rows(
                    FundingRate, {"market": market}, "funding_time", parsed, on_rows
                )
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


# --- many files ------------------------------------------------------------------------------


def collect_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[Path]]:
    """(files to import, files skipped) for files and folders.

    Folders are walked recursively in sorted order; inside a folder only names with a data
    suffix are taken (a README beside the data is skipped, not rejected). A file named
    explicitly is always taken, so a wrong name is reported. ImportPathError if a path does
    not exist.
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ImportPathError(f"no such file or folder: {', '.join(missing)}")
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        for found in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
            if hidden or not found.is_file():
                continue
            (files if split_data_suffix(found.name) else skipped).append(found)
    unique = list(dict.fromkeys(files))
    return unique, skipped


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
