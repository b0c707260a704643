"""Analytics: which scanners, tiers and horizons really work, with the uncertainty shown
(docs/SCORING.md, "Analytics").

Everything is aggregated in the database from the checked outcomes (OutcomeCheck rows with
status DONE) and their signals: the additive numbers (counts, sums of returns) from the daily
rollups of tracking/rollups.py, corrected at the window's ends by the rows themselves, the best and
worst signals from the rows (see `window`); Python only turns the sums into means, rates and
intervals. Sums of returns are exact (integers of 10^-9 %), so they do not depend on the order
the rows are added in; a mean or sum is the float nearest to its exact value.

Definitions (all returns in percent, direction-adjusted: positive = in the signal's favour):
- Manual signals (tracked by hand through the API) are in no number unless `scanner` is
  `manual`; then only those (of `owner_id` when given), read from the rows.
- The window: signals whose `as_of` lies in (now − days, now], now = the current market time
  (`market_now()`, the replay clock in a replay). Without `days`, all signals up to now. Or, with
  `since` and/or `until`, in [since, until] (tracking/windows.py says how a window is named).
- The headline horizon is 24h (HEADLINE_HORIZON): the numbers of one signal are those of its 24h
  check unless `horizon` says otherwise. `performance_by("horizon", ...)` shows all five.
- n = checked outcomes (DONE) in the group. win rate = wins / n (neutral included, as in the
  original reports); loss and neutral rate likewise; decisive win rate = wins / (wins + losses).
  Every rate carries its 95 % Wilson score interval (`wilson_interval`) and its own n.
- avg_win_pct / avg_loss_pct: mean adjusted return of the WIN / LOSS outcomes.
  expectancy_pct: mean adjusted return per checked outcome. total_pnl_pct: their sum.
  profit_factor: gross profit / gross loss — the sum of the positive adjusted returns over the
  absolute sum of the negative ones (every checked outcome counts, neutral ones too, as in a
  trading account); None when nothing lost money. avg_excess_return_pct: mean return over taking
  the same side on BTC, over the outcomes that have one (excess_n).
- judgement: a group with n < ANALYTICS_MIN_SAMPLE is "too few to judge". Above it, the win rate's
  interval decides: "excellent" (lower bound ≥ 70 %), "good" (lower bound ≥ 55 %), "poor" (upper
  bound < 55 %), else "inconclusive" (the interval straddles 55 %).
- Recommendations (`recommendations`) follow docs/SCORING.md, each made only from a group of n ≥
  ANALYTICS_MIN_SAMPLE and only where its interval supports the claim; see that function.

Percent values are rounded to DIGITS decimals.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, Value

from market.replay_clock import market_now
from scanners.models import WatchlistCoin
from tracking import rollups, windows
from tracking.models import (
    MANUAL,
    CheckStatus,
    Horizon,
    OutcomeCheck,
    OutcomeRollup,
    RollupLevel,
    Signal,
)
from tracking.rollups import NANOS

HEADLINE_HORIZON = Horizon.H24.value
HORIZONS = tuple(Horizon.values)
DIGITS = 4

# Recommendation thresholds, in percent win rate (docs/SCORING.md, "Analytics").
EXCELLENT_WIN_RATE = 70.0
GOOD_WIN_RATE = 55.0
TIER_1_RAISE_BELOW = 60.0
TIER_1_LOWER_FROM = 75.0
TIER_1_SUGGESTED_THRESHOLD = 90
TOP_SYMBOL_MIN_SIGNALS = 3  # a symbol needs this many checked outcomes for the top performers

TOO_FEW = "too few to judge"

# Dimension → the OutcomeCheck field it groups by.
DIMENSIONS: dict[str, str] = {
    "scanner": "signal__scanner",
    "tier": "signal__tier",
    "horizon": "horizon",
    "direction": "signal__direction",
    "symbol": "signal__symbol",
}


def min_sample() -> int:
    return int(settings.ANALYTICS_MIN_SAMPLE)


# --- the Wilson score interval --------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion, as fractions (0–1).

    p = s/n; centre = (p + z²/2n) / (1 + z²/n); half width = z/(1 + z²/n) · √(p(1−p)/n + z²/4n²).
    With n = 0 nothing is known: (0, 1). z = 1.96 gives the 95 % interval.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; float rounding must not move it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


# --- the database session -----------------------------------------------------------------------


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


# --- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceFilters:
    """What to aggregate. `days` counts back from `now` (default: the current market time) over
    the signals' as_of; None = all signals up to now. `since`/`until` (aware datetimes; then
    `days` must be None) select as_of in [since, until], until defaulting to now
    (tracking/windows.py). `watchlist_id` keeps the signals of the
    watchlist's coins (ownership is the caller's business). Values are trusted: the API and the
    command validate them.

    Manual signals (tracked by hand) count only with scanner=manual, and then only those of
    `owner_id` when it is given (the API gives the requesting user's; the operator's command
    none: everyone's). Every other selection leaves them out."""

    days: int | None = 30
    horizon: str = HEADLINE_HORIZON
    scanner: str | None = None
    tier: str | None = None
    direction: str | None = None
    symbol: str | None = None
    watchlist_id: int | None = None
    owner_id: int | None = None
    now: datetime | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def manual(self) -> bool:
        """Manual signals asked for (scanner=manual): read from the rows, never rolled up."""
        return self.scanner == MANUAL

    def resolved(self) -> PerformanceFilters:
        """The same filters with `now` fixed, so every part of a report reads one window."""
        return self if self.now is not None else replace(self, now=market_now())

    def signal_q(self, prefix: str = "") -> Q:
        """The conditions on the signal (prefix "signal__" from an OutcomeCheck)."""
        q = self.as_of_range().q(f"{prefix}as_of")
        for name in ("scanner", "tier", "direction", "symbol"):
            value = getattr(self, name)
            if value:
                q &= Q(**{f"{prefix}{name}": value})
        if self.watchlist_id is not None:
            coins = WatchlistCoin.objects.filter(watchlist_id=self.watchlist_id).values("symbol")
            q &= Q(**{f"{prefix}symbol__in": coins})
        if not self.scanner:
            q &= ~Q(**{f"{prefix}scanner": MANUAL})
        elif self.manual and self.owner_id is not None:
            q &= Q(**{f"{prefix}owner_id": self.owner_id})
        return q

    def as_of_range(self) -> windows.Range:
        """The window's range of as_of (`now` as resolved, else the current market time)."""
        now = self.now if self.now is not None else market_now()
        return windows.report_range(now, self.days, self.since, self.until)

    def period(self) -> dict[str, Any]:
        """The window as every response states it: period_days (None with since/until), since
        and until as given (None when not), as_of = where the window ends (until, else now)."""
        return {
            "period_days": self.days,
            "since": self.since,
            "until": self.until,
            "as_of": self.until if self.until is not None else self.now,
        }

    def echo(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": self.since,
            "until": self.until,
            "horizon": self.horizon,
            "scanner": self.scanner,
            "tier": self.tier,
            "direction": self.direction,
            "symbol": self.symbol,
            "watchlist": self.watchlist_id,
        }


def checks(filters: PerformanceFilters, *, all_horizons: bool = False) -> QuerySet[OutcomeCheck]:
    """The checked outcomes (DONE) the filters select: at their horizon, or at every one."""
    queryset = OutcomeCheck.objects.filter(filters.signal_q("signal__"), status=CheckStatus.DONE)
    if not all_horizons:
        queryset = queryset.filter(horizon=filters.horizon)
    return queryset


# --- aggregates → metrics ----------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def rate(successes: int, n: int) -> tuple[float | None, dict[str, Any]]:
    """(rate in percent or None when n = 0, its interval {low, high, successes, n} in percent)."""
    low, high = wilson_interval(successes, n)
    value = _round(100 * successes / n) if n else None
    return value, {
        "low": _round(100 * low),
        "high": _round(100 * high),
        "successes": successes,
        "n": n,
    }


def judgement(n: int, interval: dict[str, Any]) -> str:
    if n < min_sample():
        return TOO_FEW
    if interval["low"] >= EXCELLENT_WIN_RATE:
        return "excellent"
    if interval["low"] >= GOOD_WIN_RATE:
        return "good"
    if interval["high"] < GOOD_WIN_RATE:
        return "poor"
    return "inconclusive"


def metrics(row: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one group from its aggregates (a dict with the keys of `_aggregates`)."""
    n, wins, losses, neutral = row["n"], row["wins"], row["losses"], row["neutral"]
    win_rate, win_ci = rate(wins, n)
    loss_rate, loss_ci = rate(losses, n)
    neutral_rate, neutral_ci = rate(neutral, n)
    decisive, decisive_ci = rate(wins, wins + losses)
    gross_profit = row["gross_profit"] or 0.0
    gross_loss = row["gross_loss"] or 0.0
    return {
        "n": n,
        "wins": wins,
        "losses": losses,
        "neutral": neutral,
        "win_rate": win_rate,
        "win_rate_ci": win_ci,
        "loss_rate": loss_rate,
        "loss_rate_ci": loss_ci,
        "neutral_rate": neutral_rate,
        "neutral_rate_ci": neutral_ci,
        "decisive_win_rate": decisive,
        "decisive_win_rate_ci": decisive_ci,
        "avg_win_pct": _round(row["avg_win"]),
        "avg_loss_pct": _round(row["avg_loss"]),
        "expectancy_pct": _round(row["expectancy"]),
        "total_pnl_pct": _round(row["total_pnl"] or 0.0),
        "gross_profit_pct": _round(gross_profit),
        "gross_loss_pct": _round(gross_loss),
        "profit_factor": _round(gross_profit / -gross_loss) if gross_loss < 0 else None,
        "avg_excess_return_pct": _round(row["avg_excess"]),
        "excess_n": row["excess_n"],
        "judgement": judgement(n, win_ci),
    }


# --- the window: every aggregate of one request from the rollups and the window's edges ----------

# The dimensions the window aggregates at the filters' horizon (by horizon reads every horizon).
WINDOW_DIMENSIONS = ("scanner", "tier", "direction", "symbol")
SIGNAL_DIMENSIONS = ("scanner", "tier", "direction")


def _empty_row() -> dict[str, Any]:
    """The aggregates of no outcome."""
    return _from_sums({})


def _from_sums(sums: dict[str, Any]) -> dict[str, Any]:
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
    # With `top`: (best, worst) as `_top_signals` gives them; else None.
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
    same definitions (`_window_sql`): at most half a day of rows, whatever the window's length.
    Everything additive is summed as exact integers, so the numbers do not depend on how the
    window is split. The best and worst signals are not additive: `_top_signals` reads rows,
    bounded by LIMIT (an index on the returns at each horizon). `from_rows` reads every row of
    the window instead of the rollups: the reference the rollups are tested against."""
    filters = filters.resolved()
    sql, params = _window_sql(filters, dimensions, horizons, from_rows=from_rows)
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
                by_horizon.append({"group": value, **_from_sums(row)})
        elif row["n"]:  # only groups with checked outcomes
            groups[kind].append({"group": value, **_from_sums(row)})
    return Window(
        total_signals=total_signals,
        pending=int(overall.get("pending") or 0),
        unavailable=int(overall.get("unavailable") or 0),
        overall=_from_sums(overall),
        groups=groups,
        top_signals=None if top is None else _top_signals(filters, top),
        horizons=by_horizon if horizons else None,
    )


def _window_sql(
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


# --- services -----------------------------------------------------------------------------------


def _summary(filters: PerformanceFilters, data: Window) -> dict[str, Any]:
    numbers = metrics(data.overall)
    return {
        **filters.period(),
        "horizon": filters.horizon,
        "filters": filters.echo(),
        "min_sample": min_sample(),
        "total_signals": data.total_signals,
        "outcomes_checked": numbers["n"],
        "outcomes_pending": data.pending,
        "outcomes_unavailable": data.unavailable,
        **numbers,
    }


@analytics_settings()
def performance_summary(filters: PerformanceFilters) -> dict[str, Any]:
    """The headline numbers (the original `stats` fields plus n, intervals, expectancy, ...)."""
    filters = filters.resolved()
    return _summary(filters, window(filters, ()))


def _groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"group": row["group"] or None, **metrics(row)} for row in rows]


def _by_horizon(data: Window) -> list[dict[str, Any]]:
    found = {row["group"]: row for row in _groups(data.horizons or [])}
    empty = metrics(_empty_row())
    return [found.get(horizon, {"group": horizon, **empty}) for horizon in HORIZONS]


@analytics_settings()
def performance_by(dimension: str, filters: PerformanceFilters) -> dict[str, Any]:
    """The numbers per scanner, tier (null = recorded without one), horizon (all five, in order,
    the `horizon` filter ignored), direction or symbol."""
    if dimension not in DIMENSIONS:
        raise ValueError(
            f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}"
        )
    filters = filters.resolved()
    if dimension == "horizon":
        groups = _by_horizon(window(filters, (), horizons=True))
    else:
        groups = _groups(window(filters, (dimension,)).groups[dimension])
    return {
        "dimension": dimension,
        **filters.period(),
        "horizon": None if dimension == "horizon" else filters.horizon,
        "min_sample": min_sample(),
        "groups": groups,
    }


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


def _top_signals(filters: PerformanceFilters, limit: int) -> tuple[list, list]:
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


def _top(
    filters: PerformanceFilters,
    limit: int,
    symbol_rows: list[dict[str, Any]],
    top_signals: tuple[list, list] | None = None,
) -> dict[str, Any]:
    if top_signals is None:
        top_signals = _top_signals(filters, limit)
    best_signals, worst_signals = top_signals
    # `symbol_rows` come ordered by symbol (the database's collation); a stable sort on the
    # expectancy keeps that order among ties, as ORDER BY expectancy, symbol would.
    eligible = [row for row in symbol_rows if row["n"] >= TOP_SYMBOL_MIN_SIGNALS]
    nulls_first_descending = connection.vendor == "postgresql"  # SQLite: nulls are the smallest

    def symbol_rows_by(descending: bool) -> list[dict[str, Any]]:
        present = [row for row in eligible if row["expectancy"] is not None]
        missing = [row for row in eligible if row["expectancy"] is None]
        if descending:
            # sorted(reverse=True) keeps ties in their order, as the stable sort does.
            present = sorted(present, key=lambda row: row["expectancy"], reverse=True)
            ordered = missing + present if nulls_first_descending else present + missing
        else:
            present = sorted(present, key=lambda row: row["expectancy"])
            ordered = present + missing if nulls_first_descending else missing + present
        return [{"symbol": row["group"], **metrics(row)} for row in ordered[:limit]]

    return {
        **filters.period(),
        "horizon": filters.horizon,
        "limit": limit,
        "min_signals_per_symbol": TOP_SYMBOL_MIN_SIGNALS,
        "best_signals": best_signals,
        "worst_signals": worst_signals,
        "best_symbols": symbol_rows_by(descending=True),
        "worst_symbols": symbol_rows_by(descending=False),
    }


@analytics_settings()
def top_performers(filters: PerformanceFilters, limit: int = 10) -> dict[str, Any]:
    """The best and worst signals (by adjusted return at the horizon) and symbols (by expectancy,
    among symbols with at least TOP_SYMBOL_MIN_SIGNALS checked outcomes). With few symbols the
    same one can be among the best and the worst."""
    filters = filters.resolved()
    data = window(filters, ("symbol",), top=limit)
    return _top(filters, limit, data.groups["symbol"], data.top_signals)


# --- recommendations ----------------------------------------------------------------------------


def _evidence(group: str, numbers: dict[str, Any]) -> dict[str, Any]:
    interval = numbers["win_rate_ci"]
    return {
        "group": group,
        "win_rate": numbers["win_rate"],
        "low": interval["low"],
        "high": interval["high"],
        "n": numbers["n"],
    }


def _shown(numbers: dict[str, Any]) -> str:
    interval = numbers["win_rate_ci"]
    if numbers["win_rate"] is None:
        return "no checked outcomes"
    return (
        f"{numbers['win_rate']:.1f} % (95 % interval {interval['low']:.1f}–"
        f"{interval['high']:.1f} %, n = {numbers['n']})"
    )


@analytics_settings()
def recommendations(filters: PerformanceFilters) -> dict[str, Any]:
    """Advice per docs/SCORING.md, each only from a group of n ≥ ANALYTICS_MIN_SAMPLE and only where
    the win rate's 95 % Wilson interval supports it; what was not said, and why, is in `withheld`.

    - Overall win rate: "excellent" (HIGH) when the interval's lower bound is ≥ 70 %, else "good"
      (MEDIUM) when it is ≥ 55 %; URGENT when the upper bound is < 55 %.
    - TIER_1 signals: URGENT "raise the TIER_1 threshold to 90" when the upper bound is < 60 %;
      MEDIUM "consider lowering it" when the lower bound is ≥ 75 %.
    - Best and worst scanner: among scanners with n ≥ ANALYTICS_MIN_SAMPLE, the ones with the
      highest and the lowest win rate are named only when their intervals do not overlap (the
      best's lower bound above the worst's upper bound); the best is called the best of all only
      when its lower bound is above every other eligible scanner's upper bound.
    """
    filters = filters.resolved()
    return _recommend(filters, window(filters, ("scanner", "tier")))


def _recommend(filters: PerformanceFilters, data: Window) -> dict[str, Any]:
    smallest = min_sample()
    said: list[dict[str, Any]] = []
    withheld: list[dict[str, Any]] = []

    def too_few(topic: str, group: str, numbers: dict[str, Any]) -> bool:
        if numbers["n"] >= smallest:
            return False
        withheld.append(
            {
                "topic": topic,
                "reason": f"{group}: {numbers['n']} checked outcomes, fewer than {smallest} — "
                f"{TOO_FEW}",
            }
        )
        return True

    def say(priority: str, topic: str, message: str, evidence: dict[str, Any]) -> None:
        said.append(
            {"priority": priority, "topic": topic, "message": message, "evidence": evidence}
        )

    # Overall.
    overall = metrics(data.overall)
    if not too_few("overall", "all signals", overall):
        interval, shown = overall["win_rate_ci"], _shown(overall)
        evidence = _evidence("all signals", overall)
        if interval["low"] >= EXCELLENT_WIN_RATE:
            say("HIGH", "overall", f"Excellent: the win rate is {shown}.", evidence)
        elif interval["low"] >= GOOD_WIN_RATE:
            say("MEDIUM", "overall", f"Good: the win rate is {shown}.", evidence)
        elif interval["high"] < GOOD_WIN_RATE:
            say(
                "URGENT",
                "overall",
                f"The win rate is below {GOOD_WIN_RATE:.0f} %: {shown}. Review the scanners' "
                "thresholds.",
                evidence,
            )
        else:
            withheld.append(
                {
                    "topic": "overall",
                    "reason": f"the win rate {shown} could lie on either side of "
                    f"{GOOD_WIN_RATE:.0f} %",
                }
            )

    # TIER_1.
    if filters.tier in (None, "TIER_1"):
        # With the tier filter at TIER_1 the window is TIER_1; without one, its TIER_1 group.
        tier_1_rows = [row for row in data.groups["tier"] if row["group"] == "TIER_1"]
        tier_1 = metrics(tier_1_rows[0] if tier_1_rows else _empty_row())
        if not too_few("tier_1", "TIER_1", tier_1):
            interval, shown = tier_1["win_rate_ci"], _shown(tier_1)
            evidence = _evidence("TIER_1", tier_1)
            if interval["high"] < TIER_1_RAISE_BELOW:
                say(
                    "URGENT",
                    "tier_1",
                    f"TIER_1 signals win less than {TIER_1_RAISE_BELOW:.0f} % of the time: "
                    f"{shown}. Raise the TIER_1 threshold to {TIER_1_SUGGESTED_THRESHOLD}.",
                    evidence,
                )
            elif interval["low"] >= TIER_1_LOWER_FROM:
                say(
                    "MEDIUM",
                    "tier_1",
                    f"TIER_1 signals win at least {TIER_1_LOWER_FROM:.0f} % of the time: "
                    f"{shown}. Consider lowering the TIER_1 threshold to catch more.",
                    evidence,
                )
            else:
                withheld.append(
                    {
                        "topic": "tier_1",
                        "reason": f"the TIER_1 win rate {shown} supports neither raising nor "
                        "lowering the threshold",
                    }
                )

    # Best and worst scanner.
    groups = [row for row in _groups(data.groups["scanner"]) if row["group"]]
    eligible = [row for row in groups if row["n"] >= smallest]
    if len(eligible) < 2:
        withheld.append(
            {
                "topic": "scanners",
                "reason": f"{len(eligible)} scanner(s) with at least {smallest} checked outcomes; "
                "a comparison needs two",
            }
        )
    else:
        ranked = sorted(eligible, key=lambda row: (-row["win_rate"], -row["n"], row["group"]))
        best, worst = ranked[0], ranked[-1]
        if best["win_rate_ci"]["low"] > worst["win_rate_ci"]["high"]:
            others = ranked[1:]
            above_all = all(
                best["win_rate_ci"]["low"] > row["win_rate_ci"]["high"] for row in others
            )
            say(
                "LOW",
                "best_scanner",
                f"{best['group']} is the best scanner: {_shown(best)}"
                + (
                    ", better than every other scanner."
                    if above_all
                    else f", better than {worst['group']}."
                ),
                _evidence(best["group"], best),
            )
            say(
                "MEDIUM",
                "worst_scanner",
                f"{worst['group']} is the worst scanner: {_shown(worst)}, worse than "
                f"{best['group']}. Review its thresholds.",
                _evidence(worst["group"], worst),
            )
        else:
            withheld.append(
                {
                    "topic": "scanners",
                    "reason": f"the intervals of the best ({best['group']}, {_shown(best)}) and "
                    f"the worst ({worst['group']}, {_shown(worst)}) scanner overlap",
                }
            )

    return {
        **filters.period(),
        "horizon": filters.horizon,
        "min_sample": smallest,
        "recommendations": said,
        "withheld": withheld,
    }


# --- the report -----------------------------------------------------------------------------------


@analytics_settings()
def performance_report(filters: PerformanceFilters, *, limit: int = 10) -> dict[str, Any]:
    """Everything at once: the summary, the breakdowns, the top performers, the advice. The
    window's aggregates are read once (`window`, with the best and worst signals and every
    horizon) and shared: on PostgreSQL two queries, the window and the best and worst signals
    (three on SQLite)."""
    filters = filters.resolved()
    data = window(filters, top=limit, horizons=True)
    return {
        "summary": _summary(filters, data),
        "by_scanner": _groups(data.groups["scanner"]),
        "by_tier": _groups(data.groups["tier"]),
        "by_interval": _by_horizon(data),
        "by_signal_type": _groups(data.groups["direction"]),
        "top_performers": _top(filters, limit, data.groups["symbol"], data.top_signals),
        "recommendations": _recommend(filters, data),
    }
