"""Read a market data file and check every row: `parse_file` gives a `ParsedFile` or rejects it.

The contract, for every file (what a file is and its formats: market.file_layouts):

* **All rows are checked before anything is written.** The first problem rejects the whole file
  with `ImportFileError`, whose message reads `FILE: row N: reason`. Rows are counted the same
  way in every format: row 1 is the first data row (in a CSV, the line after the header; the
  header itself is not a row). File-level problems (name, header, encoding) have no row number.
* **What passes** (`validate_table`): times between 2000 and 2100, strictly increasing (sorted,
  no repeats); candle open times exactly on the timeframe grid; every value a finite number
  (only the taker volume may be absent); prices > 0, volumes >= 0, high >= low and high/low
  around open and close. Funding timestamps in the real data carry ±1 ms of jitter, so they are
  rounded to the nearest second before the sorted/unique check.
* **Gaps are facts, never filled.** Missing candles inside a file are counted (`gaps` = holes,
  `missing_candles` = candles absent from them); no candle is invented.

Nothing here touches the database; the live source checks the candles it fetches with the same
`validate_table`, so a file and an exchange answer pass the same rules.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.feather as feather

from market.file_layouts import (
    CANDLE_FIELDS,
    CANDLE_HEADER,
    CANDLE_HEADER_WITH_TAKER,
    FEATHER_COLUMNS,
    FUNDING_HEADER,
    FileLayout,
    ImportFileError,
    parse_layout,
)
from market.models import ImportKind
from market.times import TIMEFRAMES, ms_to_datetime

MILLISECOND = timedelta(milliseconds=1)

PRICE_FIELDS = ("open", "high", "low", "close")

# Plausible times only: a file in seconds instead of milliseconds lands in 1970 and is caught here.
MIN_TIME_MS = 946_684_800_000  # 2000-01-01
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01


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


def _format_ms(ms: int) -> str:
    value = ms_to_datetime(ms)
    text = f"{value:%Y-%m-%d %H:%M:%S}"
    return text + (f".{ms % 1000:03d}" if ms % 1000 else "")


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
