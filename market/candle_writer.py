"""The one write path of the candle store: checked candles and funding rates in, new rows stored.

Everything that stores market history calls `insert_new_rows`: the importer (one checked file at a
time) and the live Binance source (the candles of many coins fetched for a scan, and the pages of
`fetch_ohlcv`). The read side is market.candle_store.

The contract:

* **Rows come checked** (market.file_validation's rules: strictly increasing times, candle open
  times on the timeframe's grid, finite values, high >= low, ...). The writer relies on, and
  checks, only two things itself: every time is a whole second (candles on a grid and funding
  times rounded to the second always are), and every value column of the table is given.
* **Existing rows win.** A row whose natural key is already stored (market, timeframe, series and
  open time of a candle; market and time of a funding settlement) is left as it is, never
  updated. The result counts the rows really inserted; writing the same rows again inserts 0.
* **The caller owns the transaction**, so a failure leaves nothing half-written: the importer
  opens one per file, the live source one per batch of coins.
* **Stored values are what the ORM writes and reads**: times as Django's backend stores an aware
  UTC datetime, NaN (a taker volume the source does not give) as NULL, floats unrounded.

How, per backend, each measured against the alternatives (docs/BENCHMARKS.md, "Import"):

* PostgreSQL (psycopg2): COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT
  DO NOTHING per table and (timeframe, series).
* SQLite: INSERT OR IGNORE ... SELECT ... FROM (VALUES ...), `SQLITE_ROWS_PER_STATEMENT` rows of
  any number of markets a statement, times turned into text by SQLite itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import NotSupportedError, models
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

from core.row_writer import parameters_limit
from market.models import Candle, FundingRate

# Rows per COPY chunk on PostgreSQL (and per progress report).
COPY_ROWS_PER_CHUNK = 5_000
# Rows per INSERT statement on SQLite (the build's bound-parameter limit may lower it).
SQLITE_ROWS_PER_STATEMENT = 2_000


@dataclass(frozen=True)
class CandleRows:
    """Checked candles of one market, timeframe and price series, oldest first.

    `times_ms` holds open times in milliseconds since the epoch (whole seconds); `values` maps
    each of open, high, low, close, volume and taker_buy_volume to a float64 array of the same
    length, NaN in taker_buy_volume meaning "not known" (stored as NULL).
    """

    market_id: int
    timeframe: str
    series: str
    times_ms: np.ndarray
    values: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class FundingRows:
    """Checked funding settlements of one perpetual: times in milliseconds (whole seconds) and
    the rate of each."""

    market_id: int
    times_ms: np.ndarray
    rates: np.ndarray


@dataclass(frozen=True)
class _Table:
    """How rows of one kind land in their table: the key besides the market, the time column and
    the value columns, in the order they are written."""

    model: type[models.Model]
    key_fields: tuple[str, ...]
    time_field: str
    value_fields: tuple[str, ...]


_CANDLES = _Table(
    Candle,
    ("timeframe", "series"),
    "open_time",
    ("open", "high", "low", "close", "volume", "taker_buy_volume"),
)
_FUNDING = _Table(FundingRate, (), "funding_time", ("rate",))


@dataclass(frozen=True)
class _Part:
    """One market's rows of a group: times and the value columns in the table's order."""

    market_id: int
    times_ms: np.ndarray
    columns: list[np.ndarray]


def insert_new_rows(
    batch: Iterable[CandleRows | FundingRows],
    *,
    on_rows: Callable[[int], object] | None = None,
    database: BaseDatabaseWrapper | None = None,
) -> int:
    """Store the rows of `batch` that are not stored yet; the number of rows inserted.

    `batch` may mix markets, timeframes, series and funding. `on_rows(n)` is called as rows are
    written (for a progress bar). `database` is the connection to write through (default: the
    default database's); call inside its transaction. The whole batch is checked before anything
    is written: ValueError for a time that is not a whole second, a missing value column or
    columns of unequal length. NotSupportedError on a database other than PostgreSQL through
    psycopg2, or SQLite with UTC times.
    """
    if database is None:
        database = default_connection
    groups: dict[tuple[_Table, tuple[str, ...]], list[_Part]] = {}
    for rows in batch:
        table, key, part = _grouped(rows)
        if len(part.times_ms):
            groups.setdefault((table, key), []).append(part)
    if not groups:
        return 0
    insert = _insert_postgresql if _copies(database) else _insert_sqlite
    return sum(
        insert(database, table, key, parts, on_rows) for (table, key), parts in groups.items()
    )


def _grouped(rows: CandleRows | FundingRows) -> tuple[_Table, tuple[str, ...], _Part]:
    """The table, the key besides the market, and the rows as a part of that group."""
    if isinstance(rows, CandleRows):
        table, key = _CANDLES, (rows.timeframe, str(rows.series))
        missing = [name for name in table.value_fields if name not in rows.values]
        if missing:
            raise ValueError(f"candles of market {rows.market_id} lack {', '.join(missing)}")
        columns = [np.asarray(rows.values[name], dtype=np.float64) for name in table.value_fields]
    else:
        table, key = _FUNDING, ()
        columns = [np.asarray(rows.rates, dtype=np.float64)]
    times = np.asarray(rows.times_ms, dtype=np.int64)
    if any(len(column) != len(times) for column in columns):
        raise ValueError(f"rows of market {rows.market_id} have columns of different lengths")
    if (times % 1000).any():
        raise ValueError(f"times of market {rows.market_id} must be whole seconds")
    return table, key, _Part(rows.market_id, times, columns)


def _copies(database: BaseDatabaseWrapper) -> bool:
    """True on PostgreSQL through psycopg2 (whose cursors have copy_expert); False on SQLite with
    UTC times; NotSupportedError for anything else."""
    if database.vendor == "postgresql":
        with database.cursor() as cursor:
            if hasattr(cursor.cursor, "copy_expert"):
                return True
    elif (
        database.vendor == "sqlite"
        and bool(settings.USE_TZ)
        and str(getattr(database, "timezone_name", "UTC")) == "UTC"
    ):
        return False
    raise NotSupportedError(
        "the candle writer needs PostgreSQL through psycopg2, or SQLite with USE_TZ and "
        "no DATABASES TIME_ZONE (times stored as UTC)"
    )


# --- PostgreSQL --------------------------------------------------------------------------------


def _csv_number(value: float) -> str:
    # repr is the shortest text that reads back as the same float; NaN means "no value".
    return "" if value != value else repr(value)


def _insert_postgresql(
    database: BaseDatabaseWrapper,
    table: _Table,
    key: tuple[str, ...],
    parts: list[_Part],
    on_rows: Callable[[int], object] | None,
) -> int:
    """COPY the parts into a temp table, then one INSERT ... ON CONFLICT DO NOTHING; the INSERT's
    rowcount."""
    quote = database.ops.quote_name
    meta = table.model._meta
    temp = quote(f"candle_writer_{meta.model_name}")
    value_columns = [quote(meta.get_field(name).column) for name in table.value_fields]
    key_columns = [quote(meta.get_field(name).column) for name in table.key_fields]
    with database.cursor() as cursor:
        # Kept for the session, emptied at commit; TRUNCATE covers a write inside an enclosing
        # transaction (tests, a batch of files) where no commit happened in between.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {temp} (m bigint NOT NULL, t bigint NOT NULL, "
            + ", ".join(f"{column} double precision" for column in value_columns)
            + ") ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {temp}")
        copy_sql = f"COPY {temp} (m, t, {', '.join(value_columns)}) FROM STDIN WITH (FORMAT csv)"
        for part in parts:
            times = part.times_ms.tolist()
            columns = [column.tolist() for column in part.columns]
            for start in range(0, len(times), COPY_ROWS_PER_CHUNK):
                stop = start + COPY_ROWS_PER_CHUNK
                lines = [
                    f"{part.market_id},{stamp},{','.join(map(_csv_number, row))}\n"
                    for stamp, *row in zip(
                        times[start:stop], *(column[start:stop] for column in columns), strict=True
                    )
                ]
                cursor.copy_expert(copy_sql, io.StringIO("".join(lines)))
                if on_rows:
                    on_rows(len(lines))
        key_values = "".join("%s, " for _ in key)
        # Integer millisecond arithmetic: exact, unlike to_timestamp() on a float of seconds.
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 - quoted identifiers; values are params
            f"({', '.join([quote(meta.get_field('market').column), *key_columns])}, "
            f"{quote(meta.get_field(table.time_field).column)}, {', '.join(value_columns)}) "
            f"SELECT m, {key_values}TIMESTAMPTZ 'epoch' + t * INTERVAL '1 millisecond', "
            f"{', '.join(value_columns)} FROM {temp} ON CONFLICT DO NOTHING",
            list(key),
        )
        return cursor.rowcount


# --- SQLite ------------------------------------------------------------------------------------


def _insert_sqlite(
    database: BaseDatabaseWrapper,
    table: _Table,
    key: tuple[str, ...],
    parts: list[_Part],
    on_rows: Callable[[int], object] | None,
) -> int:
    """INSERT OR IGNORE of the parts, `SQLITE_ROWS_PER_STATEMENT` rows a statement (one
    multi-row VALUES list of bound parameters); the number of rows inserted.

    Times are written as Django's SQLite backend writes an aware UTC datetime on a whole second
    (`str()` of the naive value, "YYYY-MM-DD HH:MM:SS"), so the unique index sees the same rows
    as the ORM; NaN (no taker volume) is bound as NULL, as SQLite binds a NaN.

    Why so many rows a statement: it is about five times faster than `executemany` of one row a
    statement with times adapted in Python (measured on 1.24 million candles), and each
    statement runs inside one `sqlite3_step`, during which the sqlite3 module releases the GIL,
    so the live source's write runs beside its event loop on another core and takes the GIL back
    once per few thousand rows. `executemany` binds every row in Python and takes the GIL back
    after every row: under a busy event loop each of those waits can last the interpreter's
    switch interval. (One JSON parameter read with `json_each` also keeps the GIL off, but
    SQLite's JSON functions cost about twice the CPU of the insert.)
    """
    quote = database.ops.quote_name
    meta = table.model._meta
    columns = [
        quote(meta.get_field(name).column)
        for name in ("market", *table.key_fields, table.time_field, *table.value_fields)
    ]
    # A row of the VALUES list: market id, time (epoch seconds), then the values.
    width = 2 + len(table.value_fields)
    values = ", ".join(f"column{index}" for index in range(3, width + 1))
    key_marks = "".join("?, " for _ in key)
    head = (
        f"INSERT OR IGNORE INTO {quote(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 - quoted identifiers; values are params
        f"SELECT CAST(column1 AS INTEGER), {key_marks}datetime(column2, 'unixepoch'), {values} "
        "FROM (VALUES "
    )
    marks = f"({', '.join(['?'] * width)})"
    rows = np.concatenate(
        [
            np.column_stack(
                [
                    np.full(len(part.times_ms), part.market_id, dtype=np.float64),
                    part.times_ms // 1000,
                    *part.columns,
                ]
            )
            for part in parts
        ]
    )
    # Within the build's bound-parameter limit.
    per_statement = min(SQLITE_ROWS_PER_STATEMENT, (parameters_limit(database) - len(key)) // width)
    raw: Any = database.connection  # the sqlite3 connection: Django's wrapper adds nothing here
    inserted = 0
    cursor = raw.cursor()
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            # The same text for every full chunk: the sqlite3 module prepares it once.
            sql = head + ", ".join([marks] * len(chunk)) + ")"
            cursor.execute(sql, [*key, *chunk.ravel().tolist()])
            inserted += cursor.rowcount
            if on_rows:
                on_rows(len(chunk))
        return inserted
    finally:
        cursor.close()
