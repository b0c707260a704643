"""Analytics: which scanners, tiers and horizons really work, with the uncertainty shown
(SCANNERS.md, "Analytics").

Everything is read from the checked outcomes (OutcomeCheck rows with status DONE) joined to their
signals, and aggregated in the database (`aggregate`/`annotate` with filtered `Count`, `Avg`,
`Sum`; on PostgreSQL the report's window is one GROUPING SETS query, see `window`); Python only
turns the aggregates into rates and intervals.

Definitions (all returns in percent, direction-adjusted: positive = in the signal's favour):
- The window: signals whose `as_of` lies in (now − days, now], now = the current market time
  (`market_now()`, the replay clock in a replay). Without `days`, all signals up to now.
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
- Recommendations (`recommendations`) follow SCANNERS.md, each made only from a group of n ≥
  ANALYTICS_MIN_SAMPLE and only where its interval supports the claim; see that function.

Percent values are rounded to DIGITS decimals.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, F, Q, QuerySet, Sum
from django.db.models import Window as Over
from django.db.models.functions import Least, RowNumber

from scanners.models import WatchlistCoin
from scanners.replay_clock import market_now
from tracking.models import CheckStatus, Horizon, Outcome, OutcomeCheck, Signal

HEADLINE_HORIZON = Horizon.H24.value
HORIZONS = tuple(Horizon.values)
DIGITS = 4

# Recommendation thresholds, in percent win rate (SCANNERS.md, "Analytics", from the original plan).
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
def without_jit() -> Iterator[None]:
    """Run the enclosed analytics queries with PostgreSQL's JIT compilation off (`SET LOCAL`, so
    only inside this transaction; elsewhere a no-op). Also a decorator.

    Why: PostgreSQL JIT-compiles a query whose estimated cost passes `jit_above_cost`, whatever
    the compiling costs. The window's GROUPING SETS query has about 70 expressions to compile
    (every filtered aggregate per grouping set): over a 180-day window of 1M outcomes that was
    ~240 ms of compiling for a query that then ran in well under two seconds, and every request
    compiles again (nothing is prepared). These are aggregations over rows already in memory;
    the interpreter is fast enough. Only these queries, not the connection, so the rest of the
    product keeps the server's setting.
    """
    if connection.vendor != "postgresql":
        yield
        return
    # savepoint=False: inside an outer transaction this adds no savepoint round trips; SET LOCAL
    # then lasts until that transaction ends, which only affects how its queries are executed.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


# --- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceFilters:
    """What to aggregate. `days` counts back from `now` (default: the current market time) over
    the signals' as_of; None = all signals up to now. `watchlist_id` keeps the signals of the
    watchlist's coins (ownership is the caller's business). Values are trusted: the API and the
    command validate them."""

    days: int | None = 30
    horizon: str = HEADLINE_HORIZON
    scanner: str | None = None
    tier: str | None = None
    direction: str | None = None
    symbol: str | None = None
    watchlist_id: int | None = None
    now: datetime | None = None

    def resolved(self) -> PerformanceFilters:
        """The same filters with `now` fixed, so every part of a report reads one window."""
        return self if self.now is not None else replace(self, now=market_now())

    def signal_q(self, prefix: str = "") -> Q:
        """The conditions on the signal (prefix "signal__" from an OutcomeCheck)."""
        now = self.now if self.now is not None else market_now()
        q = Q(**{f"{prefix}as_of__lte": now})
        if self.days is not None:
            q &= Q(**{f"{prefix}as_of__gt": now - timedelta(days=self.days)})
        for name in ("scanner", "tier", "direction", "symbol"):
            value = getattr(self, name)
            if value:
                q &= Q(**{f"{prefix}{name}": value})
        if self.watchlist_id is not None:
            coins = WatchlistCoin.objects.filter(watchlist_id=self.watchlist_id).values("symbol")
            q &= Q(**{f"{prefix}symbol__in": coins})
        return q

    def echo(self) -> dict[str, Any]:
        return {
            "days": self.days,
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


def _aggregates() -> dict[str, Any]:
    win, loss = Q(outcome=Outcome.WIN), Q(outcome=Outcome.LOSS)
    returns = "adjusted_return_pct"
    return {
        "n": Count("id"),
        "wins": Count("id", filter=win),
        "losses": Count("id", filter=loss),
        "neutral": Count("id", filter=Q(outcome=Outcome.NEUTRAL)),
        "avg_win": Avg(returns, filter=win),
        "avg_loss": Avg(returns, filter=loss),
        "expectancy": Avg(returns),
        "total_pnl": Sum(returns),
        "gross_profit": Sum(returns, filter=Q(adjusted_return_pct__gt=0)),
        "gross_loss": Sum(returns, filter=Q(adjusted_return_pct__lt=0)),
        "excess_n": Count("excess_return_pct"),
        "avg_excess": Avg("excess_return_pct"),
    }


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


# --- the window: every aggregate of one request from the fewest passes ---------------------------

# The dimensions the window aggregates at the filters' horizon (by horizon reads every horizon).
WINDOW_DIMENSIONS = ("scanner", "tier", "direction", "symbol")


def _empty_row() -> dict[str, Any]:
    """The aggregates of no outcome (what `aggregate(**_aggregates())` gives on nothing)."""
    return {
        "n": 0,
        "wins": 0,
        "losses": 0,
        "neutral": 0,
        "avg_win": None,
        "avg_loss": None,
        "expectancy": None,
        "total_pnl": None,
        "gross_profit": None,
        "gross_loss": None,
        "excess_n": 0,
        "avg_excess": None,
    }


@dataclass
class Window:
    """The raw aggregates of one window: the signal count, the check states, the overall row and,
    per dimension of `dimensions`, its group rows ({"group": value, **aggregates}, only groups
    with checked outcomes, ordered by the value as the database's ORDER BY orders it; "" and
    NULL stay separate groups)."""

    total_signals: int
    pending: int
    unavailable: int
    overall: dict[str, Any]
    groups: dict[str, list[dict[str, Any]]]
    # With `top`: (best, worst) as `_top_signals` gives them; else None.
    top_signals: tuple[list, list] | None = None


def window(
    filters: PerformanceFilters,
    dimensions: tuple[str, ...] = WINDOW_DIMENSIONS,
    *,
    top: int | None = None,
) -> Window:
    """The window's aggregates (with `top`, also the best and the worst `top` signals): on
    PostgreSQL one query (GROUPING SETS over the window's signals left-joined to their check at
    the horizon); elsewhere (SQLite has no GROUPING SETS) one ORM query for the signal count, one
    for the states, one for the overall row, one per dimension and one for the top signals. Both
    give the same numbers."""
    filters = filters.resolved()
    if connection.vendor == "postgresql":
        return _window_grouping_sets(filters, dimensions, top)
    total_signals = Signal.objects.filter(filters.signal_q()).count()
    states = OutcomeCheck.objects.filter(
        filters.signal_q("signal__"), horizon=filters.horizon
    ).aggregate(
        pending=Count("id", filter=Q(status__in=[CheckStatus.PENDING, CheckStatus.CLAIMED])),
        unavailable=Count("id", filter=Q(status=CheckStatus.UNAVAILABLE)),
    )
    return Window(
        total_signals=total_signals,
        pending=states["pending"],
        unavailable=states["unavailable"],
        overall=checks(filters).aggregate(**_aggregates()),
        groups={dimension: _raw_group_rows(dimension, filters) for dimension in dimensions},
        top_signals=None if top is None else _top_signals(filters, top),
    )


def _window_grouping_sets(
    filters: PerformanceFilters, dimensions: tuple[str, ...], top: int | None
) -> Window:
    signal_table = connection.ops.quote_name(Signal._meta.db_table)
    check_table = connection.ops.quote_name(OutcomeCheck._meta.db_table)
    conditions = ["s.as_of <= %s"]
    params: list[Any] = [filters.now]
    if filters.days is not None:
        conditions.append("s.as_of > %s")
        params.append(filters.now - timedelta(days=filters.days))
    for name in ("scanner", "tier", "direction", "symbol"):
        value = getattr(filters, name)
        if value:
            conditions.append(f"s.{name} = %s")
            params.append(value)
    if filters.watchlist_id is not None:
        coin_table = connection.ops.quote_name(WatchlistCoin._meta.db_table)
        conditions.append(
            f"s.symbol IN (SELECT symbol FROM {coin_table} WHERE watchlist_id = %s)"  # noqa: S608
        )
        params.append(filters.watchlist_id)
    done = "c.status = 'done'"
    returns = "c.adjusted_return_pct"
    columns = ", ".join(f"s.{dimension}" for dimension in dimensions)
    source = f"""{signal_table} s
        LEFT JOIN {check_table} c ON c.signal_id = s.id AND c.horizon = %s
        WHERE {" AND ".join(conditions)}"""
    source_params = [filters.horizon, *params]
    c = "c."  # the check's columns
    sets = ", ".join(["()"] + [f"(s.{dimension})" for dimension in dimensions])
    grouping = f"GROUPING({columns})" if dimensions else "0"
    cte, top_columns, top_params = "", "", []
    if top is not None:
        # The top signals from the same read of the window: its rows are kept once (the CTE, only
        # the columns the aggregates and the ordering need) and read three times: by the grouping
        # sets, and by two top-N sorts (ORDER BY ... LIMIT: a bounded heap, not a full sort) for
        # the best (return descending, PostgreSQL's nulls first, then signal id) and the worst
        # (ascending, nulls last, then signal id) `top`, the ORDER BY of `_top_signals`. Only
        # those rows are joined back (by primary key) for the fields shown. Ranking every row
        # with window functions instead (ROW_NUMBER, RANK and two COUNTs over the window) cost
        # more than the aggregation itself.
        # The CTE's ORDER BY keeps the order in which the checked outcomes reached the aggregates
        # before (then sorted for those window functions): a float sum depends on the order of its
        # terms, and in this order the sums are the same to the last bit (the bench's returns
        # have 6 decimals, so a group's total can be an exact tie at DIGITS decimals that another
        # order rounds the other way). Only DONE rows are summed; the others (no return: nulls
        # first) are only counted. The return leads the key on purpose: led by a nearly constant
        # key (as `status = 'done'` was), PostgreSQL's sort compares almost every pair on the
        # later keys and took 6x as long.
        # s and c become the columns of the CTE.
        check_columns = ("id", "status", "outcome", "adjusted_return_pct", "excess_return_pct")
        inner = [
            *(f"s.{name}" for name in ("id", *WINDOW_DIMENSIONS)),
            *(f"c.{name} AS c_{name}" for name in check_columns),
        ]
        cte = f"""WITH w AS MATERIALIZED (SELECT {", ".join(inner)} FROM {source}
            ORDER BY c.adjusted_return_pct DESC, s.id)"""  # noqa: S608
        pairs = ", ".join(
            [f"'{name}', tc.{name}" for name in TOP_CHECK_FIELDS]
            + [f"'{name}', ts.{name}" for name in SIGNAL_FIELDS]
        )

        def top_list(order: str) -> str:
            ordering = f"t.c_adjusted_return_pct {order}, t.id"
            return f"""(
                SELECT JSON_AGG(JSON_BUILD_OBJECT({pairs}) ORDER BY {ordering})
                FROM (
                    SELECT id, c_id, c_adjusted_return_pct FROM w t
                    WHERE c_status = 'done' ORDER BY {ordering} LIMIT %s
                ) t
                JOIN {check_table} tc ON tc.id = t.c_id
                JOIN {signal_table} ts ON ts.id = t.id
            )"""  # noqa: S608

        # Only the () row carries the lists (the subqueries run once either way).
        overall_row = f"{grouping} = {(1 << len(dimensions)) - 1}"
        top_columns = f"""CASE WHEN {overall_row} THEN {top_list("DESC")} END AS best_signals,
            CASE WHEN {overall_row} THEN {top_list("ASC")} END AS worst_signals,"""
        top_params = [top, top]
        source = "w s"
        c = "s.c_"
        done = f"{c}status = 'done'"
        returns = f"{c}adjusted_return_pct"
    # Only identifiers and constants are formatted in; every value is a parameter.
    sql = f"""{cte}
        SELECT {grouping} AS grouping_id, {columns + ", " if dimensions else ""}
            COUNT(s.id) AS total_signals,
            COUNT({c}id) FILTER (WHERE {c}status IN ('pending', 'claimed')) AS pending,
            COUNT({c}id) FILTER (WHERE {c}status = 'unavailable') AS unavailable,
            COUNT({c}id) FILTER (WHERE {done}) AS n,
            COUNT({c}id) FILTER (WHERE {done} AND {c}outcome = 'WIN') AS wins,
            COUNT({c}id) FILTER (WHERE {done} AND {c}outcome = 'LOSS') AS losses,
            COUNT({c}id) FILTER (WHERE {done} AND {c}outcome = 'NEUTRAL') AS neutral,
            AVG({returns}) FILTER (WHERE {done} AND {c}outcome = 'WIN') AS avg_win,
            AVG({returns}) FILTER (WHERE {done} AND {c}outcome = 'LOSS') AS avg_loss,
            AVG({returns}) FILTER (WHERE {done}) AS expectancy,
            SUM({returns}) FILTER (WHERE {done}) AS total_pnl,
            SUM({returns}) FILTER (WHERE {done} AND {returns} > 0) AS gross_profit,
            SUM({returns}) FILTER (WHERE {done} AND {returns} < 0) AS gross_loss,
            COUNT({c}excess_return_pct) FILTER (WHERE {done}) AS excess_n,
            {top_columns}
            AVG({c}excess_return_pct) FILTER (WHERE {done}) AS avg_excess
        FROM {source}
        GROUP BY GROUPING SETS ({sets})
        ORDER BY grouping_id{", " + columns if dimensions else ""}
    """  # noqa: S608
    with connection.cursor() as cursor:
        # The CTE (source) comes first in the text, then the lists' LIMITs.
        cursor.execute(sql, [*source_params, *top_params])
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    width = len(dimensions)
    groups: dict[str, list[dict[str, Any]]] = {dimension: [] for dimension in dimensions}
    overall: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    for row in rows:
        grouping_id = row.pop("grouping_id")
        values = {dimension: row.pop(dimension) for dimension in dimensions}
        found = {key: row.pop(key) for key in ("best_signals", "worst_signals") if key in row}
        if grouping_id == (1 << width) - 1:  # the () set: every column aggregated away
            overall, lists = row, found
            continue
        # GROUPING(a, b, ...) has bit (width − 1 − i) set when column i is not grouped.
        dimension = next(
            name for i, name in enumerate(dimensions) if not grouping_id & (1 << (width - 1 - i))
        )
        if row["n"]:  # only groups with checked outcomes, as the ORM's inner join gives
            groups[dimension].append({"group": values[dimension], **row})
    top_signals = (
        _top_from_json(lists["best_signals"] or [], lists["worst_signals"] or [])
        if top is not None
        else None
    )
    return Window(
        total_signals=overall.pop("total_signals"),
        pending=overall.pop("pending"),
        unavailable=overall.pop("unavailable"),
        overall=overall,
        groups=groups,
        top_signals=top_signals,
    )


def _top_from_json(best: list[dict[str, Any]], worst: list[dict[str, Any]]) -> tuple[list, list]:
    """`_top_signals`'s lists from the window's JSON lists (each in its order): the values as the
    ORM reads them (JSON keeps a float exactly; as_of comes as ISO 8601 text)."""
    for row in (*best, *worst):
        row["as_of"] = datetime.fromisoformat(row["as_of"])
    return (
        [row | {"tier": row["tier"] or None} for row in best],
        [row | {"tier": row["tier"] or None} for row in worst],
    )


# --- services -----------------------------------------------------------------------------------


def _summary(filters: PerformanceFilters, data: Window) -> dict[str, Any]:
    numbers = metrics(data.overall)
    return {
        "period_days": filters.days,
        "horizon": filters.horizon,
        "as_of": filters.now,
        "filters": filters.echo(),
        "min_sample": min_sample(),
        "total_signals": data.total_signals,
        "outcomes_checked": numbers["n"],
        "outcomes_pending": data.pending,
        "outcomes_unavailable": data.unavailable,
        **numbers,
    }


@without_jit()
def performance_summary(filters: PerformanceFilters) -> dict[str, Any]:
    """The headline numbers (the original `stats` fields plus n, intervals, expectancy, ...)."""
    filters = filters.resolved()
    return _summary(filters, window(filters, ()))


def _raw_group_rows(dimension: str, filters: PerformanceFilters) -> list[dict[str, Any]]:
    """The aggregates per value of the dimension ({"group": value, **aggregates}), by value."""
    field = DIMENSIONS[dimension]
    rows = (
        checks(filters, all_horizons=dimension == "horizon")
        .values(field)
        .annotate(**_aggregates())
        .order_by(field)
    )
    return [{"group": row.pop(field), **row} for row in rows]


def _groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"group": row["group"] or None, **metrics(row)} for row in rows]


def _group_rows(dimension: str, filters: PerformanceFilters) -> list[dict[str, Any]]:
    return _groups(_raw_group_rows(dimension, filters))


def _by_horizon(filters: PerformanceFilters) -> list[dict[str, Any]]:
    found = {row["group"]: row for row in _group_rows("horizon", filters)}
    empty = metrics(_empty_row())
    return [found.get(horizon, {"group": horizon, **empty}) for horizon in HORIZONS]


@without_jit()
def performance_by(dimension: str, filters: PerformanceFilters) -> dict[str, Any]:
    """The numbers per scanner, tier (null = recorded without one), horizon (all five, in order,
    the `horizon` filter ignored), direction or symbol."""
    if dimension not in DIMENSIONS:
        raise ValueError(
            f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}"
        )
    filters = filters.resolved()
    groups = _by_horizon(filters) if dimension == "horizon" else _group_rows(dimension, filters)
    return {
        "dimension": dimension,
        "period_days": filters.days,
        "horizon": None if dimension == "horizon" else filters.horizon,
        "as_of": filters.now,
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
    """The best and the worst `limit` signals by adjusted return, in one query."""
    rows = checks(filters).values(*TOP_CHECK_FIELDS, **SIGNAL_FIELDS)

    # One pass: each row's rank from the top and from the bottom (the ORDER BY of each list, with
    # the database's own null placement), keeping the rows within `limit` of either end.
    ranked = rows.annotate(
        best_rank=Over(RowNumber(), order_by=[F("adjusted_return_pct").desc(), "signal_id"]),
        worst_rank=Over(RowNumber(), order_by=[F("adjusted_return_pct").asc(), "signal_id"]),
    )
    ranked = ranked.annotate(top_rank=Least("best_rank", "worst_rank")).filter(top_rank__lte=limit)
    return _best_and_worst(list(ranked), limit)


def _best_and_worst(found: list[dict[str, Any]], limit: int) -> tuple[list, list]:
    """The best and the worst `limit` rows by their ranks (the ranks dropped)."""
    best = sorted((row for row in found if row["best_rank"] <= limit), key=itemgetter("best_rank"))
    worst = sorted(
        (row for row in found if row["worst_rank"] <= limit), key=itemgetter("worst_rank")
    )
    for row in found:
        for key in ("best_rank", "worst_rank", "top_rank"):
            row.pop(key, None)
    best = [row | {"tier": row["tier"] or None} for row in best]
    worst = [row | {"tier": row["tier"] or None} for row in worst]
    return best, worst


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
        "period_days": filters.days,
        "horizon": filters.horizon,
        "as_of": filters.now,
        "limit": limit,
        "min_signals_per_symbol": TOP_SYMBOL_MIN_SIGNALS,
        "best_signals": best_signals,
        "worst_signals": worst_signals,
        "best_symbols": symbol_rows_by(descending=True),
        "worst_symbols": symbol_rows_by(descending=False),
    }


@without_jit()
def top_performers(filters: PerformanceFilters, limit: int = 10) -> dict[str, Any]:
    """The best and worst signals (by adjusted return at the horizon) and symbols (by expectancy,
    among symbols with at least TOP_SYMBOL_MIN_SIGNALS checked outcomes). With few symbols the
    same one can be among the best and the worst."""
    filters = filters.resolved()
    return _top(filters, limit, _raw_group_rows("symbol", filters))


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


@without_jit()
def recommendations(filters: PerformanceFilters) -> dict[str, Any]:
    """Advice per SCANNERS.md, each only from a group of n ≥ ANALYTICS_MIN_SAMPLE and only where
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
        "period_days": filters.days,
        "horizon": filters.horizon,
        "as_of": filters.now,
        "min_sample": smallest,
        "recommendations": said,
        "withheld": withheld,
    }


# --- the report -----------------------------------------------------------------------------------


@without_jit()
def performance_report(filters: PerformanceFilters, *, limit: int = 10) -> dict[str, Any]:
    """Everything at once: the summary, the breakdowns, the top performers, the advice. The
    window's aggregates are read once (`window`, with the best and worst signals) and shared; on
    PostgreSQL the report is two queries: the window (with the top signals) and the horizons."""
    filters = filters.resolved()
    data = window(filters, top=limit)
    return {
        "summary": _summary(filters, data),
        "by_scanner": _groups(data.groups["scanner"]),
        "by_tier": _groups(data.groups["tier"]),
        "by_interval": _by_horizon(filters),
        "by_signal_type": _groups(data.groups["direction"]),
        "top_performers": _top(filters, limit, data.groups["symbol"], data.top_signals),
        "recommendations": _recommend(filters, data),
    }
