"""Analytics: which scanners, tiers and horizons really work, with the uncertainty shown
(docs/SCORING.md, "Analytics").

Everything is aggregated in the database from the checked outcomes (OutcomeCheck rows with
status DONE) and their signals: the additive numbers (counts, sums of returns) from the daily
rollups of tracking/rollups.py, corrected at the window's ends by the rows themselves, the best
and worst signals from the rows (see `window_aggregates.window`); Python only turns the sums into
means, rates and intervals. Sums of returns are exact (integers of 10^-9 %), so they do not
depend on the order the rows are added in; a mean or sum is the float nearest to its exact value.

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
  Every rate carries its 95 % Wilson score interval (`metrics.wilson_interval`) and its own n.
- avg_win_pct / avg_loss_pct: mean adjusted return of the WIN / LOSS outcomes.
  expectancy_pct: mean adjusted return per checked outcome. total_pnl_pct: their sum.
  profit_factor: gross profit / gross loss — the sum of the positive adjusted returns over the
  absolute sum of the negative ones (every checked outcome counts, neutral ones too, as in a
  trading account); None when nothing lost money. avg_excess_return_pct: mean return over taking
  the same side on BTC, over the outcomes that have one (excess_n).
- judgement: a group with n < ANALYTICS_MIN_SAMPLE is "too few to judge". Above it, the win rate's
  interval decides: "excellent" (lower bound ≥ 70 %), "good" (lower bound ≥ 55 %), "poor" (upper
  bound < 55 %), else "inconclusive" (the interval straddles 55 %).
- Recommendations (`recommendations.recommendations`) follow docs/SCORING.md, each made only from
  a group of n ≥ ANALYTICS_MIN_SAMPLE and only where its interval supports the claim; see that
  function.

Percent values are rounded to DIGITS (tracking/metrics.py) decimals.

Where: the services and the report are here; what they select is tracking/performance_filters.py,
the window's aggregates (the SQL) tracking/window_aggregates.py, the metrics of a group and the
Wilson interval tracking/metrics.py, the advice tracking/recommendations.py.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from tracking.metrics import group_metrics, metrics, min_sample
from tracking.models import Horizon
from tracking.performance_cache import cached_performance
from tracking.performance_filters import PerformanceFilters
from tracking.recommendations import recommend
from tracking.window_aggregates import (
    Window,
    analytics_settings,
    best_and_worst_signals,
    empty_row,
    window,
)

HORIZONS = tuple(Horizon.values)
TOP_SYMBOL_MIN_SIGNALS = 3  # a symbol needs this many checked outcomes for the top performers

# Dimension → the OutcomeCheck field it groups by.
DIMENSIONS: dict[str, str] = {
    "scanner": "signal__scanner",
    "tier": "signal__tier",
    "horizon": "horizon",
    "direction": "signal__direction",
    "symbol": "signal__symbol",
}


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


@cached_performance
@analytics_settings()
def performance_summary(filters: PerformanceFilters) -> dict[str, Any]:
    """The headline numbers (the original `stats` fields plus n, intervals, expectancy, ...)."""
    filters = filters.resolved()
    return _summary(filters, window(filters, ()))


def _by_horizon(data: Window) -> list[dict[str, Any]]:
    found = {row["group"]: row for row in group_metrics(data.horizons or [])}
    empty = metrics(empty_row())
    return [found.get(horizon, {"group": horizon, **empty}) for horizon in HORIZONS]


@cached_performance
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
        groups = group_metrics(window(filters, (dimension,)).groups[dimension])
    return {
        "dimension": dimension,
        **filters.period(),
        "horizon": None if dimension == "horizon" else filters.horizon,
        "min_sample": min_sample(),
        "groups": groups,
    }


def _top(
    filters: PerformanceFilters,
    limit: int,
    symbol_rows: list[dict[str, Any]],
    top_signals: tuple[list, list] | None = None,
) -> dict[str, Any]:
    if top_signals is None:
        top_signals = best_and_worst_signals(filters, limit)
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


@cached_performance
@analytics_settings()
def top_performers(filters: PerformanceFilters, limit: int = 10) -> dict[str, Any]:
    """The best and worst signals (by adjusted return at the horizon) and symbols (by expectancy,
    among symbols with at least TOP_SYMBOL_MIN_SIGNALS checked outcomes). With few symbols the
    same one can be among the best and the worst."""
    filters = filters.resolved()
    data = window(filters, ("symbol",), top=limit)
    return _top(filters, limit, data.groups["symbol"], data.top_signals)


@cached_performance
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
        "by_scanner": group_metrics(data.groups["scanner"]),
        "by_tier": group_metrics(data.groups["tier"]),
        "by_interval": _by_horizon(data),
        "by_signal_type": group_metrics(data.groups["direction"]),
        "top_performers": _top(filters, limit, data.groups["symbol"], data.top_signals),
        "recommendations": recommend(filters, data),
    }
