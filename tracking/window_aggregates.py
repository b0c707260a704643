"""The window: every aggregate of one analytics request, read in the database from the daily
rollups (tracking/rollups.py) and the window's edges (`window`, its SQL `window_sql`), plus the
best and worst signals (`best_and_worst_signals`), and the session the analytics queries run in
(`analytics_settings`).

Sums of returns are exact (integers of 10^-9 %), so they do not depend on the order the rows are
added in; `from_sums` turns them into the aggregates tracking/metrics.py reads, each mean or sum
the float nearest to its exact value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Value

from scanners.models import WatchlistCoin
from tracking import rollups, windows
from tracking.models import MANUAL, OutcomeCheck, OutcomeRollup, RollupLevel, Signal
from tracking.performance_filters import PerformanceFilters, checks
from tracking.rollups import NANOS

# The dimensions the window aggregates at the filters' horizon (by horizon reads every horizon).
WINDOW_DIMENSIONS = ("scanner", "tier", "direction", "symbol")
SIGNAL_DIMENSIONS = ("scanner", "tier", "direction")


@contextmanager
def analytics_settings() -> Iterator[None]:
    """Run the enclosed analytics queries with PostgreSQL's JIT compilation and parallel query
    off (`SET LOCAL`, so only inside this transaction; elsewhere a no-op). Also a decorator.

    Why: PostgreSQL JIT-compiles a query whose estimated cost passes `jit_above_cost`, whatever
    the compiling costs: the window query has dozens of aggregate expressions, and every request
    compiles again (nothing is prepared); it once cost ~240 ms of a 180-day window. Parallel
    workers: the window reads a few thousand rollup and edge rows per part, where starting and
    gathering workers cost more than they save (measured: a parallel scan of 18k rollup rows
    took 77 ms, the serial one a tenth of that). Only these queries, not the connection, so the
    rest of the product keeps the server's settings.
    """
    if connection.vendor != "postgresql":
        yield
        return
    # savepoint=False: inside an outer transaction this adds no savepoint round trips; SET LOCAL
    # then lasts until that transaction ends, which only affects how its queries are executed.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def empty_row() -> dict[str, Any]:
    """The aggregates of no outcome."""
    return from_sums({})


def from_sums(sums: dict[str, Any]) -> dict[str, Any]:
    """A group's aggregates (what `metrics` reads) from its rollup sums (`rollups.SUMS`; a
    missing or NULL sum is 0). Returns are summed exactly in 10^-9 % units (NANOS); each mean
    and sum is the float nearest to its exact value (Python's int / int is correctly rounded)."""
    t = {name: int(sums.get(name) or 0) for name in rollups.SUMS}

    def mean(total: str, count: str) -> float | None:
        return t[total] / (t[count] * NANOS) if t[count] else None

    return {
        "n": t["n"],
        "wins": t["wins"],
        "losses": t["losses"],
        "neutral": t["neutral"],
        "avg_win": mean("sum_win", "win_returns"),
        "avg_loss": mean("sum_loss", "loss_returns"),
        "expectancy": mean("sum_return", "returns"),
        "total_pnl": t["sum_return"] / NANOS if t["returns"] else None,
        "gross_profit": t["sum_positive"] / NANOS if t["sum_positive"] else None,
        "gross_loss": t["sum_negative"] / NANOS if t["sum_negative"] else None,
        "excess_n": t["excess_n"],
        "avg_excess": mean("sum_excess", "excess_n"),
    }


@dataclass
class Window:
    """The raw aggregates of one window: the signal count, the check states, the overall row and,
    per dimension of `dimensions`, its group rows ({"group": value, **aggregates}, only groups
    with checked outcomes, ordered by the value as the database's ORDER BY orders it; "" stays
    its own group); with `horizons`, the rows of the horizons that have checked outcomes."""

    total_signals: int
    pending: int
    unavailable: int
    overall: dict[str, Any]
    groups: dict[str, list[dict[str, Any]]]
    # With `top`: (best, worst) as `best_and_worst_signals` gives them; else None.
    top_signals: tuple[list, list] | None = None
    horizons: list[dict[str, Any]] | None = None


def window(
    filters: PerformanceFilters,
    dimensions: tuple[str, ...] = WINDOW_DIMENSIONS,
    *,
    top: int | None = None,
    horizons: bool = False,
    from_rows: bool = False,
) -> Window:
    """The window's aggregates (with `top`, also the best and the worst `top` signals; with
    `horizons`, the overall numbers at every horizon) in one query, plus one for the top signals
    (two on SQLite, which cannot order the parts of a UNION).

    The window (now − days, now] is read from the daily rollups (tracking/rollups.py) of the UTC
    days it touches, corrected at both ends by the signal and check rows, aggregated with the
    same definitions (`window_sql`): at most half a day of rows, whatever the window's length.
    Everything additive is summed as exact integers, so the numbers do not depend on how the
    window is split. The best and worst signals are not additive: `best_and_worst_signals` reads
    rows, bounded by LIMIT (an index on the returns at each horizon). `from_rows` reads every row
    of the window instead of the rollups: the reference the rollups are tested against."""
    filters = filters.resolved()
    sql, params = window_sql(filters, dimensions, horizons, from_rows=from_rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    overall: dict[str, Any] = {}
    total_signals = 0
    groups: dict[str, list[dict[str, Any]]] = {dimension: [] for dimension in dimensions}
    by_horizon: list[dict[str, Any]] = []
    for row in rows:
        kind, value = row.pop("kind"), row.pop("grp")
        if kind == "totals" and value == "":
            total_signals = int(row["signals"] or 0)
        elif kind == "totals":
            if value == filters.horizon:
                overall = row
            if row["n"]:  # only horizons with checked outcomes
                by_horizon.append({"group": value, **from_sums(row)})
        elif row["n"]:  # only groups with checked outcomes
            groups[kind].append({"group": value, **from_sums(row)})
    return Window(
        total_signals=total_signals,
        pending=int(overall.get("pending") or 0),
        unavailable=int(overall.get("unavailable") or 0),
        overall=from_sums(overall),
        groups=groups,
        top_signals=None if top is None else best_and_worst_signals(filters, top),
        horizons=by_horizon if horizons else None,
    )


def window_sql(
    filters: PerformanceFilters, dimensions: tuple[str, ...], horizons: bool, *, from_rows: bool
) -> tuple[str, list[Any]]:
    """The window query (see `window`): a UNION ALL of the overall row, the signal count, the
    horizons and each group set (kind, grp, sums...), ordered by kind and group value.

    The window as whole UTC days of rollups corrected by rows at its ends
    (`windows.rollup_plan`): at most about half a day of rows at each end, whatever the window.
    An empty window (since after now) is read from the rows, of which it has none.
    Each part reads the smallest rollup level with the columns its filters and groups need
    (overall and horizons: `TOTAL` without filters; scanner, tier, direction: `DIMENSIONS`;
    symbols: `SYMBOL`); a part no level serves (a symbol or watchlist filter together with a
    scanner, tier or direction filter or group), and every part with `from_rows`, reads the
    window's rows instead. Only identifiers and constants are formatted in; every value is a
    parameter."""
    vendor = connection.vendor
    quote = connection.ops.quote_name
    signal_table, check_table = quote(Signal._meta.db_table), quote(OutcomeCheck._meta.db_table)
    rollup_table = quote(OutcomeRollup._meta.db_table)
    # As the ORM passes them (SQLite compares the stored text: naive UTC, no offset).
    at, on = connection.ops.adapt_datetimefield_value, connection.ops.adapt_datefield_value

    # Row ranges: (condition on s.as_of, its parameters, +1 to add them or -1 to take them out).
    Ranges = list[tuple[str, list[Any], int]]

    def as_sql(as_of: windows.Range, sign: int) -> tuple[str, list[Any], int]:
        condition, bounds = as_of.sql("s.as_of")
        return condition, [at(bound) for bound in bounds], sign

    as_of_range = filters.as_of_range()
    window_ranges: Ranges = [as_sql(as_of_range, 1)]
    plan = windows.rollup_plan(as_of_range, end_is_now=filters.until is None)
    if plan is None:
        from_rows = True
        plan = windows.RollupPlan(first_day=None, end_day=filters.now.date(), edges=())
    edge_ranges: Ranges = [as_sql(edge, sign) for edge, sign in plan.edges]
    day_range = "r.day < %s" if plan.first_day is None else "r.day >= %s AND r.day < %s"
    day_params = [on(day) for day in (plan.first_day, plan.end_day) if day is not None]

    def conditions(alias: str) -> tuple[str, list[Any]]:
        parts, values = [], []
        for name in ("scanner", "tier", "direction", "symbol"):
            value = getattr(filters, name)
            if value:
                parts.append(f"{alias}.{name} = %s")
                values.append(value)
        if alias == "s" and not filters.scanner:
            # Manual signals only with scanner=manual (the rollups never hold them).
            parts.append(f"{alias}.scanner <> %s")
            values.append(MANUAL)
        if alias == "s" and filters.manual and filters.owner_id is not None:
            parts.append(f"{alias}.owner_id = %s")
            values.append(filters.owner_id)
        if filters.watchlist_id is not None:
            coins = quote(WatchlistCoin._meta.db_table)
            parts.append(f"{alias}.symbol IN (SELECT symbol FROM {coins} WHERE watchlist_id = %s)")  # noqa: S608
            values.append(filters.watchlist_id)
        return "".join(f" AND {part}" for part in parts), values

    signal_filter, signal_filter_params = conditions("s")
    rollup_filter, rollup_filter_params = conditions("r")
    by_symbol = bool(filters.symbol) or filters.watchlist_id is not None
    by_dimension = any(getattr(filters, name) for name in SIGNAL_DIMENSIONS)

    def level(needs_dimensions: bool, needs_symbol: bool) -> int | None:
        """The smallest rollup level with these columns (None: the rows)."""
        if from_rows or filters.manual or (needs_dimensions and needs_symbol):
            return None
        if needs_symbol:
            return RollupLevel.SYMBOL
        return RollupLevel.DIMENSIONS if needs_dimensions else RollupLevel.TOTAL

    sums = ", ".join(rollups.SUMS)
    totals = ", ".join(f"SUM({name}) AS {name}" for name in rollups.SUMS)
    check_aggregates = rollups.check_sums("c", vendor)
    signal_aggregates = {name: "COUNT(*)" if name == "signals" else "0" for name in rollups.SUMS}
    params: list[Any] = []

    def rows(ranges: Ranges, key: str, every_horizon: bool) -> str:
        """The rows' sums over the ranges (each added or taken out) by the signal columns `key`
        ("" for none) and `horizon`: the signal count (horizon "") and the checks at the filters'
        horizon, or with `every_horizon` at each one."""
        columns, group_by = (f", {key}", f", {key}") if key else ("", "")
        selects = []
        for condition, condition_params, sign in ranges:

            def signed(aggregates: dict[str, str], sign: int = sign) -> str:
                return ", ".join(
                    f"{'-' if sign < 0 else ''}({aggregates[name]}) AS {name}"
                    for name in rollups.SUMS
                )

            where = f"{condition}{signal_filter}"
            selects.append(
                f"SELECT '' AS horizon{columns}, {signed(signal_aggregates)} "  # noqa: S608
                f"FROM {signal_table} s WHERE {where}" + (f" GROUP BY {key}" if key else "")
            )
            params.extend([*condition_params, *signal_filter_params])
            only = "" if every_horizon else " AND c.horizon = %s"
            selects.append(
                f"SELECT c.horizon AS horizon{columns}, {signed(check_aggregates)} "  # noqa: S608
                f"FROM {signal_table} s JOIN {check_table} c ON c.signal_id = s.id "
                f"WHERE {where}{only} GROUP BY c.horizon{group_by}"
            )
            params.extend([*condition_params, *signal_filter_params])
            if not every_horizon:
                params.append(filters.horizon)
        return " UNION ALL ".join(selects)

    key = "s.scanner, s.tier, s.direction, s.symbol"
    ctes = []
    # The parts: the totals by horizon ("" = the signal count; the filters' horizon, or every
    # one), the scanner, tier and direction groups (from one read, CTE `dims`), the symbols.
    totals_level = level(by_dimension, by_symbol)
    dims_level = level(True, by_symbol)
    symbol_level = level(by_dimension, True)
    with_dimensions = any(dimension in SIGNAL_DIMENSIONS for dimension in dimensions)
    levels = {totals_level}
    if with_dimensions:
        levels.add(dims_level)
    if "symbol" in dimensions:
        levels.add(symbol_level)
    # The rows at the filters' horizon: the edges (where a level is read) and the window (where
    # none is), each by every signal column.
    for name, ranges, wanted in (
        ("edge", edge_ranges, any(part_level is not None for part_level in levels)),
        ("window_rows", window_ranges, None in levels),
    ):
        if wanted:
            ctes.append(f"{name} AS MATERIALIZED ({rows(ranges, key, every_horizon=False)})")

    def rolled(
        part_level: int, columns: str, group: str, where: str | None, where_params: list
    ) -> str:
        """The rollups' sums of the level over the days, by `group`, followed by UNION ALL (the
        rows' part comes next)."""
        params.extend([int(part_level), *where_params, *day_params, *rollup_filter_params])
        horizon = f" AND r.{where}" if where else ""
        return (
            f"SELECT {columns}, {totals} FROM {rollup_table} r "  # noqa: S608
            f"WHERE r.level = %s{horizon} AND {day_range}{rollup_filter} GROUP BY {group} "
            "UNION ALL "
        )

    def rows_of(part_level: int | None) -> str:
        return "edge" if part_level is not None else "window_rows"

    dims_key = ", ".join(SIGNAL_DIMENSIONS)
    if with_dimensions:
        inner = ""
        if dims_level is not None:
            inner = rolled(dims_level, dims_key, dims_key, "horizon = %s", [filters.horizon])
        ctes.append(
            f"""dims AS MATERIALIZED (SELECT {dims_key}, {totals} FROM (
                {inner}SELECT {dims_key}, {sums} FROM {rows_of(dims_level)} WHERE horizon = %s
            ) d GROUP BY {dims_key})"""  # noqa: S608
        )
        params.append(filters.horizon)

    selects = []
    inner = ""
    if totals_level is not None:
        where = None if horizons else "horizon IN ('', %s)"
        where_params = [] if horizons else [filters.horizon]
        inner = rolled(totals_level, "horizon AS grp", "horizon", where, where_params)
    if horizons:
        # Every horizon: its own read of the rows, by horizon only.
        ranges = edge_ranges if totals_level is not None else window_ranges
        every = rows(ranges, "", every_horizon=True)
        rows_part = f"SELECT horizon AS grp, {sums} FROM ({every}) h"  # noqa: S608
    else:
        rows_part = f"SELECT horizon AS grp, {sums} FROM {rows_of(totals_level)}"  # noqa: S608
    selects.append(
        f"SELECT 'totals' AS kind, grp, {totals} FROM ({inner}{rows_part}) p GROUP BY grp"  # noqa: S608
    )
    for dimension in dimensions:
        if dimension in SIGNAL_DIMENSIONS:
            selects.append(
                f"SELECT '{dimension}' AS kind, {dimension} AS grp, {totals} FROM dims "  # noqa: S608
                f"GROUP BY {dimension}"
            )
    if "symbol" in dimensions:
        inner = ""
        if symbol_level is not None:
            inner = rolled(
                symbol_level, "symbol AS grp", "symbol", "horizon = %s", [filters.horizon]
            )
        selects.append(
            f"SELECT 'symbol' AS kind, grp, {totals} FROM ({inner}"  # noqa: S608
            f"SELECT symbol AS grp, {sums} FROM {rows_of(symbol_level)} WHERE horizon = %s) p "
            "GROUP BY grp"
        )
        params.append(filters.horizon)
    head = "WITH " + ", ".join(ctes) + "\n" if ctes else ""
    return head + "\nUNION ALL\n".join(selects) + "\nORDER BY 1, 2", params


SIGNAL_FIELDS = {
    "scanner": F("signal__scanner"),
    "symbol": F("signal__symbol"),
    "direction": F("signal__direction"),
    "tier": F("signal__tier"),
    "as_of": F("signal__as_of"),
    "entry_price": F("signal__entry_price"),
}


TOP_CHECK_FIELDS = (
    "signal_id",
    "horizon",
    "exit_price",
    "return_pct",
    "adjusted_return_pct",
    "excess_return_pct",
    "outcome",
)


def best_and_worst_signals(filters: PerformanceFilters, limit: int) -> tuple[list, list]:
    """The best and the worst `limit` signals by adjusted return (ties by signal id; a missing
    return where the database places nulls: first among the best on PostgreSQL, last on
    SQLite), each an ORDER BY … LIMIT that the `outcome_check_top` index answers by walking the
    returns from either end until enough checks of the window are found. On PostgreSQL both in
    one query (UNION ALL of the two); the rows are put back in each list's order here."""
    rows = checks(filters).values(*TOP_CHECK_FIELDS, **SIGNAL_FIELDS)
    best = rows.order_by(F("adjusted_return_pct").desc(), "signal_id")
    worst = rows.order_by(F("adjusted_return_pct").asc(), "signal_id")
    if connection.features.supports_slicing_ordering_in_compound:
        found = list(
            best.annotate(top_list=Value(0))[:limit].union(
                worst.annotate(top_list=Value(1))[:limit], all=True
            )
        )
        best_rows, worst_rows = [], []
        for row in found:
            (best_rows if row.pop("top_list") == 0 else worst_rows).append(row)
    else:
        best_rows, worst_rows = list(best[:limit]), list(worst[:limit])
    # Nulls sort as the database sorts them: the largest value on PostgreSQL, the smallest on
    # SQLite.
    null_rank = 1 if connection.vendor == "postgresql" else -1

    def ascending(row: dict[str, Any]) -> tuple:
        value = row["adjusted_return_pct"]
        return (0, value) if value is not None else (null_rank, 0.0)

    best_rows.sort(key=lambda row: (-ascending(row)[0], -ascending(row)[1], row["signal_id"]))
    worst_rows.sort(key=lambda row: (*ascending(row), row["signal_id"]))
    return (
        [row | {"tier": row["tier"] or None} for row in best_rows],
        [row | {"tier": row["tier"] or None} for row in worst_rows],
    )
