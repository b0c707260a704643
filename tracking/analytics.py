"""Analytics: which scanners, tiers and horizons really work, with the uncertainty shown
(SCANNERS.md, "Analytics").

Everything is read from the checked outcomes (OutcomeCheck rows with status DONE) joined to their
signals, and aggregated in the database (`aggregate`/`annotate` with filtered `Count`, `Avg`,
`Sum`); Python only turns the aggregates into rates and intervals.

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, F, Q, QuerySet, Sum

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


# --- services -----------------------------------------------------------------------------------


def performance_summary(filters: PerformanceFilters) -> dict[str, Any]:
    """The headline numbers (the original `stats` fields plus n, intervals, expectancy, ...)."""
    filters = filters.resolved()
    total_signals = Signal.objects.filter(filters.signal_q()).count()
    states = OutcomeCheck.objects.filter(
        filters.signal_q("signal__"), horizon=filters.horizon
    ).aggregate(
        pending=Count("id", filter=Q(status__in=[CheckStatus.PENDING, CheckStatus.CLAIMED])),
        unavailable=Count("id", filter=Q(status=CheckStatus.UNAVAILABLE)),
    )
    numbers = metrics(checks(filters).aggregate(**_aggregates()))
    return {
        "period_days": filters.days,
        "horizon": filters.horizon,
        "as_of": filters.now,
        "filters": filters.echo(),
        "min_sample": min_sample(),
        "total_signals": total_signals,
        "outcomes_checked": numbers["n"],
        "outcomes_pending": states["pending"],
        "outcomes_unavailable": states["unavailable"],
        **numbers,
    }


def _group_rows(dimension: str, filters: PerformanceFilters) -> list[dict[str, Any]]:
    field = DIMENSIONS[dimension]
    rows = (
        checks(filters, all_horizons=dimension == "horizon")
        .values(field)
        .annotate(**_aggregates())
        .order_by(field)
    )
    return [{"group": row[field] or None, **metrics(row)} for row in rows]


def performance_by(dimension: str, filters: PerformanceFilters) -> dict[str, Any]:
    """The numbers per scanner, tier (null = recorded without one), horizon (all five, in order,
    the `horizon` filter ignored), direction or symbol."""
    if dimension not in DIMENSIONS:
        raise ValueError(
            f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}"
        )
    filters = filters.resolved()
    groups = _group_rows(dimension, filters)
    if dimension == "horizon":
        found = {row["group"]: row for row in groups}
        empty = metrics(OutcomeCheck.objects.none().aggregate(**_aggregates()))
        groups = [found.get(horizon, {"group": horizon, **empty}) for horizon in HORIZONS]
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


def top_performers(filters: PerformanceFilters, limit: int = 10) -> dict[str, Any]:
    """The best and worst signals (by adjusted return at the horizon) and symbols (by expectancy,
    among symbols with at least TOP_SYMBOL_MIN_SIGNALS checked outcomes). With few symbols the
    same one can be among the best and the worst."""
    filters = filters.resolved()
    selected = checks(filters)
    rows = selected.values(
        "signal_id",
        "horizon",
        "exit_price",
        "return_pct",
        "adjusted_return_pct",
        "excess_return_pct",
        "outcome",
        **SIGNAL_FIELDS,
    )
    symbols = (
        selected.values("signal__symbol")
        .annotate(**_aggregates())
        .filter(n__gte=TOP_SYMBOL_MIN_SIGNALS)
    )

    def signal_rows(order: str) -> list[dict[str, Any]]:
        return [
            row | {"tier": row["tier"] or None}
            for row in rows.order_by(order + "adjusted_return_pct", "signal_id")[:limit]
        ]

    def symbol_rows(order: str) -> list[dict[str, Any]]:
        ranked = symbols.order_by(order + "expectancy", "signal__symbol")[:limit]
        return [{"symbol": row["signal__symbol"], **metrics(row)} for row in ranked]

    return {
        "period_days": filters.days,
        "horizon": filters.horizon,
        "as_of": filters.now,
        "limit": limit,
        "min_signals_per_symbol": TOP_SYMBOL_MIN_SIGNALS,
        "best_signals": signal_rows("-"),
        "worst_signals": signal_rows(""),
        "best_symbols": symbol_rows("-"),
        "worst_symbols": symbol_rows(""),
    }


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
    overall = metrics(checks(filters).aggregate(**_aggregates()))
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
        tier_1 = metrics(checks(replace(filters, tier="TIER_1")).aggregate(**_aggregates()))
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
    groups = [row for row in _group_rows("scanner", filters) if row["group"]]
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


def performance_report(filters: PerformanceFilters, *, limit: int = 10) -> dict[str, Any]:
    """Everything at once: the summary, the breakdowns, the top performers, the advice."""
    filters = filters.resolved()
    return {
        "summary": performance_summary(filters),
        "by_scanner": performance_by("scanner", filters)["groups"],
        "by_tier": performance_by("tier", filters)["groups"],
        "by_interval": performance_by("horizon", filters)["groups"],
        "by_signal_type": performance_by("direction", filters)["groups"],
        "top_performers": top_performers(filters, limit),
        "recommendations": recommendations(filters),
    }
