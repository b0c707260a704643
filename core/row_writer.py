"""Writing many rows of a model in few statements, without a model instance per row.

`bulk_create` builds an instance per row and converts every field of every row through the
field's `get_db_prep_save` (a datetime adapted, a JSON value encoded, an `auto_now_add` stamped),
which for the scans' results and the ranking's rows cost more CPU than the database's work on
them (issue 16). `insert_rows` takes the rows as tuples of values the database takes as they are
(`db_datetime` for datetimes, `json_text` for JSON fields) and writes them as multi-row
`INSERT … VALUES` statements through the cursor, with the conflict clause the backend's own
`bulk_create` would write (`INSERT OR IGNORE` / `ON CONFLICT DO NOTHING`, or `ON CONFLICT (…) DO
UPDATE SET … = EXCLUDED.…`).

`json_text` encodes with orjson (pinned in requirements.txt): one pass, in C. Decoded, its text
is what Django's JSONField stores for the same value; the text itself may differ in spacing and
in non-ASCII characters (written as UTF-8, not escaped). Values it cannot encode natively go
through the caller's `default`.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.constants import OnConflict

# Dataclasses (such as market.values.Missing) go to `default` instead of orjson's own dict form.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS
# Rows per statement where the backend has no parameter limit (PostgreSQL).
_ROWS_PER_STATEMENT = 500


def json_text(value: Any, *, default: Callable[[Any], Any]) -> str:
    """`value` as JSON text. orjson writes str, int, bool, None, float (NaN and ±inf as null),
    dict with str keys, list, tuple, datetime and date (as `isoformat()`) itself; anything else,
    float subclasses such as numpy's float64 included, goes to `default`, whose answer is
    encoded in turn. A value orjson refuses altogether (a dict with non-str keys, an int beyond
    64 bits) is encoded as JSONField encodes it: `json.dumps(default(value))`."""
    try:
        return orjson.dumps(value, default=_finite_float(default), option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(default(value))


def _finite_float(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if isinstance(value, float):  # a float subclass (numpy): as a plain float, NaN as null
            return float(value) if math.isfinite(value) else None
        return default(value)

    return encode


def db_datetime(value: datetime | None) -> Any:
    """A datetime as the database takes it (SQLite: UTC text, as the ORM stores it)."""
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def db_datetimes() -> Callable[[datetime | None], Any]:
    """`db_datetime` that adapts each distinct value once: the rows written together (a
    batch's results, an hour's ranking) share a few datetimes many times over."""
    return functools.lru_cache(maxsize=None)(db_datetime)


def insert_rows(
    model: type[Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
) -> None:
    """Insert `rows` (tuples in the order of `columns`, attnames such as `run_id`, values ready
    for the database) into `model`'s table. `ignore_conflicts`: a row that would break a unique
    constraint is skipped, as `bulk_create(ignore_conflicts=True)` skips it. `unique_fields` and
    `update_fields`: an upsert, as `bulk_create(update_conflicts=True, …)` writes it. Nothing is
    returned (no ids): the callers read back what they need."""
    rows = list(rows)
    if not rows:
        return
    opts = model._meta
    fields = [opts.get_field(name) for name in columns]
    ops = connection.ops
    if update_fields:
        on_conflict = OnConflict.UPDATE
    elif ignore_conflicts:
        on_conflict = OnConflict.IGNORE
    else:
        on_conflict = None
    suffix = ops.on_conflict_suffix_sql(
        fields,
        on_conflict,
        [opts.get_field(name).column for name in update_fields],
        [opts.get_field(name).column for name in unique_fields],
    )
    head = (
        f"{ops.insert_statement(on_conflict=on_conflict)} {ops.quote_name(opts.db_table)} "
        f"({', '.join(ops.quote_name(field.column) for field in fields)}) VALUES "
    )
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    limit = parameters_limit(connection)
    per_statement = limit // len(fields) if limit else _ROWS_PER_STATEMENT
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                head + ", ".join([placeholder] * len(chunk)) + (f" {suffix}" if suffix else ""),
                [value for row in chunk for value in row],
            )


def parameters_limit(database: BaseDatabaseWrapper) -> int | None:
    """The most parameters one statement takes on `database`: on SQLite the library's own limit
    (32,766 by default since SQLite 3.32, 999 before; Django assumes 999, which split an hour's
    ranking of 44 coins in two statements), else the backend's (None: no limit)."""
    if database.vendor != "sqlite":
        return database.features.max_query_params
    database.ensure_connection()
    return database.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
