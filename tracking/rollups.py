"""Daily rollups of the outcomes: the additive numbers of the analytics (counts, sums of returns)
per UTC day of the signals' as_of, so a long window reads a few hundred rows per day instead of
every signal and check (tracking/window_aggregates.py; the `OutcomeRollup` model says what a row
holds).

How they stay right:
- Database triggers on `tracking_signal` and `tracking_outcomecheck` append the change of every
  insert, update and delete to the rollup table, in the writing transaction. The database, not
  the application, keeps them: every writer is covered (the outcome workers' bulk
  `UPDATE … FROM (VALUES …)`, the signal recorder, a `COPY`, the admin, a test factory) and a
  rolled-back write leaves no trace. PostgreSQL: statement-level triggers over the transition
  tables (one grouped insert per statement, however many rows it wrote); SQLite: row triggers.
  A signal's scanner, tier, direction, symbol and as_of are never changed after it is recorded
  (the admin is read-only), so no trigger follows such an edit; `rollups_rebuild` repairs one.
- The triggers only append (no row is updated, so no writer waits on a shared total);
  `rollups_compact` folds each key's rows into one (the sweeper's task runs it every minute).
  Readers sum the rows of a key, so a key's numbers are the same before and after compaction.
- `rollups_rebuild` (and `manage.py rebuild_outcome_rollups`) recomputes the table from the rows,
  idempotently.

Manual signals (scanner `manual`, tracked by hand) are left out: the triggers and the rebuild skip
them, so no rollup counts them; the analytics read them from the rows when asked for.

Levels: every change is written at three levels (`RollupLevel`): in total, by (scanner, tier,
direction) and by symbol; each part of a request reads the smallest level that has the columns
it needs (tracking/window_aggregates.py, `window_sql`). A part that needs a symbol and a
scanner, tier or direction at once (a symbol or watchlist filter with such a group or filter)
reads the rows: a rollup by all four columns would hold about one row per check at a day's grain
(measured: 100 symbols, ~1,100 signals a day), so it would double the storage and save little.

Returns are summed as integers in units of 10^-ROUND_DIGITS percent (`NANOS`,
the precision `percent_change` rounds every return to), so the sums are exact whatever order
the rows are added in: incremental, rebuilt and row-level sums are the same number.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.models import Sum

from core import read_cache
from tracking.models import MANUAL, OutcomeCheck, OutcomeRollup, RollupLevel, Signal
from tracking.outcomes import ROUND_DIGITS

NANOS = 10**ROUND_DIGITS  # rollup units per percent
COMPACT_LOCK = 0x726F6C6C  # PostgreSQL advisory lock key of `rollups_compact` ("roll")

ROLLUP = OutcomeRollup._meta.db_table
SIGNAL = Signal._meta.db_table
CHECK = OutcomeCheck._meta.db_table

# Manual signals (tracked by hand) are never rolled up: no statistic counts them unless asked for
# with scanner=manual, and the analytics read those from the rows (tracking/window_aggregates.py).
COUNTED = f"scanner <> '{MANUAL}'"

KEY = ("level", "day", "horizon", "scanner", "tier", "direction", "symbol")
DIMENSIONS = ("scanner", "tier", "direction")
SUMS = (
    "signals",
    "pending",
    "unavailable",
    "n",
    "wins",
    "losses",
    "neutral",
    "returns",
    "win_returns",
    "loss_returns",
    "sum_return",
    "sum_win",
    "sum_loss",
    "sum_positive",
    "sum_negative",
    "excess_n",
    "sum_excess",
)
# The columns each level keeps (the others are "").
LEVEL_COLUMNS: dict[int, tuple[str, ...]] = {
    RollupLevel.TOTAL: (),
    RollupLevel.DIMENSIONS: DIMENSIONS,
    RollupLevel.SYMBOL: ("symbol",),
}


def _nanos(value: str, vendor: str) -> str:
    """SQL: a return in percent as an integer count of 10^-ROUND_DIGITS percent (NULL stays
    NULL). Exact for every return the checks store (rounded to ROUND_DIGITS decimals)."""
    if vendor == "postgresql":
        return f"ROUND({value} * {NANOS})::bigint"
    return f"CAST(ROUND({value} * {NANOS}) AS INTEGER)"


def check_parts(c: str, vendor: str) -> dict[str, tuple[str, str] | None]:
    """Per rollup column, what one check row (alias or NEW/OLD `c`) adds to it: (value,
    condition), or None for nothing. The definitions of tracking/analytics.py: n = DONE checks,
    the averages over those with a return, gross profit / loss = the positive / negative
    returns."""
    done = f"{c}.status = 'done'"
    ret = f"{c}.adjusted_return_pct"
    nanos = _nanos(ret, vendor)
    win, loss = f"{c}.outcome = 'WIN'", f"{c}.outcome = 'LOSS'"
    returned = f"{done} AND {ret} IS NOT NULL"
    excess = f"{done} AND {c}.excess_return_pct IS NOT NULL"
    return {
        "signals": None,
        "pending": ("1", f"{c}.status IN ('pending', 'claimed')"),
        "unavailable": ("1", f"{c}.status = 'unavailable'"),
        "n": ("1", done),
        "wins": ("1", f"{done} AND {win}"),
        "losses": ("1", f"{done} AND {loss}"),
        "neutral": ("1", f"{done} AND {c}.outcome = 'NEUTRAL'"),
        "returns": ("1", returned),
        "win_returns": ("1", f"{returned} AND {win}"),
        "loss_returns": ("1", f"{returned} AND {loss}"),
        "sum_return": (nanos, returned),
        "sum_win": (nanos, f"{returned} AND {win}"),
        "sum_loss": (nanos, f"{returned} AND {loss}"),
        "sum_positive": (nanos, f"{done} AND {ret} > 0"),
        "sum_negative": (nanos, f"{done} AND {ret} < 0"),
        "excess_n": ("1", excess),
        "sum_excess": (_nanos(f"{c}.excess_return_pct", vendor), excess),
    }


def check_terms(c: str, vendor: str) -> dict[str, str]:
    """SQL per rollup column: one check row's contribution (`check_parts` as CASE)."""
    return {
        name: "0" if part is None else f"CASE WHEN {part[1]} THEN {part[0]} ELSE 0 END"
        for name, part in check_parts(c, vendor).items()
    }


def check_sums(c: str, vendor: str, sign: str = "1") -> dict[str, str]:
    """SQL per rollup column: the sum of the contributions of a group of check rows, each times
    `sign`. FILTER, not CASE: an aggregate whose condition fails is skipped, not called with 0,
    and most conditions fail for most rows."""
    sums = {}
    for name, part in check_parts(c, vendor).items():
        if part is None:
            sums[name] = "0"
        elif part[0] == "1" and sign == "1":
            sums[name] = f"COUNT(*) FILTER (WHERE {part[1]})"
        else:
            sums[name] = f"COALESCE(SUM({sign} * {part[0]}) FILTER (WHERE {part[1]}), 0)"
    return sums


def signal_terms() -> dict[str, str]:
    """What one signal row adds: 1 to `signals`, nothing else."""
    return {name: "1" if name == "signals" else "0" for name in SUMS}


def day_sql(as_of: str, vendor: str) -> str:
    """SQL: the UTC date of a timestamp (SQLite stores UTC text, PostgreSQL timestamptz)."""
    if vendor == "postgresql":
        return f"({as_of} AT TIME ZONE 'UTC')::date"
    return f"date({as_of})"


def _level_column(name: str, s: str) -> str:
    """SQL: the signal's column at the level of `l.level`, "" where the level drops it."""
    kept = [int(level) for level, columns in LEVEL_COLUMNS.items() if name in columns]
    return f"CASE WHEN l.level IN ({', '.join(map(str, kept))}) THEN {s}.{name} ELSE '' END"


LEVELS_SQL = " UNION ALL ".join(f"SELECT {int(level)} AS level" for level in RollupLevel)
INSERT_COLUMNS = ", ".join([*KEY, "merged", *SUMS])


def _select(
    terms: dict[str, str],
    *,
    horizon: str,
    source: str,
    signal: str,
    vendor: str,
    sign: str = "1",
    merged: bool = False,
    grouped: bool = True,
    sums: list[str] | None = None,
) -> str:
    """SELECT the rollup rows (every level) of the rows of `source`, each term times `sign`;
    grouped by key (dropping keys whose change is all zero) unless `grouped` is False. `sums`:
    the grouped aggregates as given instead (`check_sums`)."""
    key = [
        "l.level",
        day_sql(f"{signal}.as_of", vendor),
        horizon,
        *(_level_column(name, signal) for name in (*DIMENSIONS, "symbol")),
    ]
    flag = ("TRUE" if merged else "FALSE") if vendor == "postgresql" else str(int(merged))
    if not grouped:
        values = [f"{sign} * ({terms[name]})" for name in SUMS]
        return f"SELECT {', '.join(key)}, {flag}, {', '.join(values)} FROM {source}"  # noqa: S608
    values = [f"SUM({sign} * ({terms[name]}))" for name in SUMS] if sums is None else sums
    nonzero = " OR ".join(f"{value} <> 0" for value in values)
    positions = ", ".join(str(i) for i in range(1, len(KEY) + 1))
    return f"""SELECT {", ".join(key)}, {flag}, {", ".join(values)} FROM {source}
        GROUP BY {positions} HAVING {nonzero}"""  # noqa: S608 - constant identifiers


# --- the triggers ---------------------------------------------------------------------------------

_OPEN = "('pending', 'claimed')"


def _changed(old: str, new: str) -> str:
    """SQL: the check's contribution may differ (a claim or a retry only moves an open check
    between pending and claimed, or counts an attempt: nothing to add)."""
    same = [
        f"{old}.{name} IS NOT DISTINCT FROM {new}.{name}"
        for name in ("signal_id", "horizon", "outcome", "adjusted_return_pct", "excess_return_pct")
    ] + [f"({old}.status = {new}.status OR ({old}.status IN {_OPEN} AND {new}.status IN {_OPEN}))"]
    return "NOT (" + " AND ".join(same) + ")"


def _postgresql_sql() -> list[str]:
    levels = f"CROSS JOIN ({LEVELS_SQL}) l"

    def checks_insert(rows: str, sign: str) -> str:
        source = f"{rows} c JOIN {SIGNAL} s ON s.id = c.signal_id AND s.{COUNTED} {levels}"
        select = _select(
            check_terms("c", "postgresql"),
            horizon="c.horizon",
            source=source,
            signal="s",
            vendor="postgresql",
            sums=list(check_sums("c", "postgresql", sign).values()),
        )
        return f"INSERT INTO {ROLLUP} ({INSERT_COLUMNS}) {select};"

    # An update: the old rows taken out and the new ones put in, only where they differ.
    changed = (
        f"(SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_changed('o', 'n')})"  # noqa: S608
    )
    moved = f"(SELECT -1 AS sign, o.* FROM old_rows o WHERE o.id IN {changed} UNION ALL SELECT 1 AS sign, n.* FROM new_rows n WHERE n.id IN {changed})"  # noqa: S608, E501

    def signals_insert(rows: str, sign: str) -> str:
        select = _select(
            signal_terms(),
            horizon="''",
            source=f"(SELECT * FROM {rows} WHERE {COUNTED}) s {levels}",  # noqa: S608
            signal="s",
            vendor="postgresql",
            sign=sign,
        )
        return f"INSERT INTO {ROLLUP} ({INSERT_COLUMNS}) {select};"

    return [
        f"""CREATE OR REPLACE FUNCTION tracking_rollup_checks() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {checks_insert("new_rows", "1")}
            ELSIF TG_OP = 'UPDATE' THEN
                {checks_insert(moved, "c.sign")}
            ELSE
                {checks_insert("old_rows", "-1")}
            END IF;
            RETURN NULL;
        END $$""",
        f"""CREATE OR REPLACE FUNCTION tracking_rollup_signals() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {signals_insert("new_rows", "1")}
            ELSE
                {signals_insert("old_rows", "-1")}
            END IF;
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER tracking_rollup_checks_insert AFTER INSERT ON {CHECK}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION tracking_rollup_checks()""",
        f"""CREATE TRIGGER tracking_rollup_checks_update AFTER UPDATE ON {CHECK}
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION tracking_rollup_checks()""",
        f"""CREATE TRIGGER tracking_rollup_checks_delete AFTER DELETE ON {CHECK}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION tracking_rollup_checks()""",
        f"""CREATE TRIGGER tracking_rollup_signals_insert AFTER INSERT ON {SIGNAL}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION tracking_rollup_signals()""",
        f"""CREATE TRIGGER tracking_rollup_signals_delete AFTER DELETE ON {SIGNAL}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION tracking_rollup_signals()""",
    ]


def _sqlite_sql() -> list[str]:
    levels = f"({LEVELS_SQL}) l"

    def check_row(row: str, sign: str) -> str:
        select = _select(
            check_terms(row, "sqlite"),
            horizon=f"{row}.horizon",
            source=f"{SIGNAL} s, {levels} WHERE s.id = {row}.signal_id AND s.{COUNTED}",
            signal="s",
            vendor="sqlite",
            sign=sign,
            grouped=False,
        )
        return f"INSERT INTO {ROLLUP} ({INSERT_COLUMNS}) {select};"

    def signal_row(row: str, sign: str) -> str:
        select = _select(
            signal_terms(),
            horizon="''",
            source=f"(SELECT {row}.as_of AS as_of, {row}.scanner AS scanner, {row}.tier AS tier, "
            f"{row}.direction AS direction, {row}.symbol AS symbol WHERE {row}.{COUNTED}) s, "
            f"{levels}",
            signal="s",
            vendor="sqlite",
            sign=sign,
            grouped=False,
        )
        return f"INSERT INTO {ROLLUP} ({INSERT_COLUMNS}) {select};"

    changed = _changed("OLD", "NEW").replace("IS NOT DISTINCT FROM", "IS")
    return [
        f"""CREATE TRIGGER tracking_rollup_checks_insert AFTER INSERT ON {CHECK}
        BEGIN {check_row("NEW", "1")} END""",
        f"""CREATE TRIGGER tracking_rollup_checks_update AFTER UPDATE ON {CHECK}
        WHEN {changed}
        BEGIN {check_row("OLD", "-1")} {check_row("NEW", "1")} END""",
        f"""CREATE TRIGGER tracking_rollup_checks_delete AFTER DELETE ON {CHECK}
        BEGIN {check_row("OLD", "-1")} END""",
        f"""CREATE TRIGGER tracking_rollup_signals_insert AFTER INSERT ON {SIGNAL}
        BEGIN {signal_row("NEW", "1")} END""",
        f"""CREATE TRIGGER tracking_rollup_signals_delete AFTER DELETE ON {SIGNAL}
        BEGIN {signal_row("OLD", "-1")} END""",
    ]


TRIGGERS = (
    "tracking_rollup_checks_insert",
    "tracking_rollup_checks_update",
    "tracking_rollup_checks_delete",
    "tracking_rollup_signals_insert",
    "tracking_rollup_signals_delete",
)


def triggers_drop(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Drop the rollup triggers (and PostgreSQL's functions) if they exist."""
    vendor = schema_editor.connection.vendor
    for name in TRIGGERS:
        table = CHECK if "checks" in name else SIGNAL
        on = f" ON {table}" if vendor == "postgresql" else ""
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS tracking_rollup_checks()")
        schema_editor.execute("DROP FUNCTION IF EXISTS tracking_rollup_signals()")


def triggers_install(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """(Re)create the triggers that keep the rollups (PostgreSQL or SQLite). Idempotent: a later
    change to them is a migration that calls this again."""
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"outcome rollups need PostgreSQL or SQLite, not {vendor}")
    triggers_drop(schema_editor)
    for sql in _postgresql_sql() if vendor == "postgresql" else _sqlite_sql():
        schema_editor.execute(sql)


# --- compaction and rebuild -----------------------------------------------------------------------


def rollups_compact() -> int:
    """Fold the rows of every key that has rows not yet merged into one merged row (a key whose
    numbers sum to zero is dropped); returns the number of keys written.

    One `DELETE … RETURNING` takes the rows, so what is summed is exactly what was removed:
    rows appended meanwhile by other transactions stay for the next run, and two runs at once
    cannot count a row twice (only one of them deletes it). Cost: the keys written since the
    last run (the sweeper's task calls this every minute).
    """
    key = ", ".join(KEY)
    same = " AND ".join(f"r.{name} = f.{name}" for name in KEY)
    if connection.vendor == "postgresql":
        # The same in one statement, summed by the database (a bulk load leaves millions).
        totals = ", ".join(f"SUM({name})" for name in SUMS)
        nonzero = " OR ".join(f"SUM({name}) <> 0" for name in SUMS)
        with transaction.atomic(), connection.cursor() as cursor:
            # One compaction at a time (the minute's sweep and a replay tick's may overlap): a
            # second one would only wait for the first's rows, or deadlock deleting them in
            # another order. It skips; the next sweep compacts what is left.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [COMPACT_LOCK])
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute(
                f"""WITH fresh AS MATERIALIZED (
                    SELECT DISTINCT {key} FROM {ROLLUP} WHERE NOT merged
                ), gone AS (
                    DELETE FROM {ROLLUP} r USING fresh f WHERE {same}
                    RETURNING {", ".join(f"r.{name}" for name in (*KEY, *SUMS))}
                )
                INSERT INTO {ROLLUP} ({INSERT_COLUMNS})
                SELECT {key}, TRUE, {totals} FROM gone GROUP BY {key} HAVING {nonzero}"""  # noqa: S608
            )
            return cursor.rowcount
    # SQLite: the fresh keys first (the partial index), then each one's rows by the
    # (level, horizon, day) index. A row-value `IN` let the planner probe by `level` alone, which
    # read every row of the level: the whole table, once per compaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""DELETE FROM {ROLLUP} WHERE id IN (
                SELECT r.id FROM (SELECT DISTINCT {key} FROM {ROLLUP} WHERE NOT merged) f
                CROSS JOIN {ROLLUP} r ON {same}
            ) RETURNING {key}, {", ".join(SUMS)}"""  # noqa: S608 - constant identifiers
        )
        totals: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(SUMS))
        width = len(KEY)
        for row in cursor.fetchall():
            total = totals[row[:width]]
            for index, value in enumerate(row[width:]):
                total[index] += int(value)
        merged = [
            OutcomeRollup(
                **dict(zip(KEY, key_values, strict=True)),
                merged=True,
                **dict(zip(SUMS, values, strict=True)),
            )
            for key_values, values in totals.items()
            if any(values)
        ]
        OutcomeRollup.objects.bulk_create(merged, batch_size=2_000)
    return len(merged)


def rollups_rebuild() -> int:
    """Recompute the rollups from the signal and check rows (every level, merged); returns the
    number of rows written. Idempotent. On PostgreSQL the signal and check tables are locked
    against writes (SHARE) for the duration, so no write's trigger row can fall between the
    clearing and the recount; SQLite serialises writers anyway."""
    vendor = connection.vendor
    levels = f"CROSS JOIN ({LEVELS_SQL}) l"
    checks = _select(
        check_terms("c", vendor),
        horizon="c.horizon",
        source=f"{CHECK} c JOIN {SIGNAL} s ON s.id = c.signal_id AND s.{COUNTED} {levels}",
        signal="s",
        vendor=vendor,
        merged=True,
        sums=list(check_sums("c", vendor).values()),
    )
    signals = _select(
        signal_terms(),
        horizon="''",
        source=f"(SELECT * FROM {SIGNAL} WHERE {COUNTED}) s {levels}",  # noqa: S608
        signal="s",
        vendor=vendor,
        merged=True,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {SIGNAL}, {CHECK} IN SHARE MODE")
        cursor.execute(f"DELETE FROM {ROLLUP}")  # noqa: S608 - constant identifiers
        written = 0
        for select in (signals, checks):
            cursor.execute(f"INSERT INTO {ROLLUP} ({INSERT_COLUMNS}) {select}")
            written += cursor.rowcount
    # A rebuild is how rows written around the triggers get counted: answers may change.
    read_cache.bump(read_cache.PERFORMANCE)
    return written


def rollup_rows(**filters: Any) -> list[dict[str, Any]]:
    """The rollup's numbers per key (summed over its rows), for tests and inspection."""
    rows = OutcomeRollup.objects.filter(**filters).values(*KEY)
    summed = rows.annotate(**{f"total_{name}": Sum(name) for name in SUMS}).order_by(*KEY)
    return [
        {
            **{name: row[name] for name in KEY},
            **{name: int(row[f"total_{name}"]) for name in SUMS},
        }
        for row in summed
        if any(row[f"total_{name}"] for name in SUMS)
    ]
