"""The numbers of one group of checked outcomes: rates with their 95 % Wilson score interval,
the judgement of a win rate, and every metric of a group from its aggregates (the definitions are
those of tracking/analytics.py and docs/SCORING.md, "Analytics").

Pure arithmetic on aggregates already read (tracking/window_aggregates.py reads them): no query.
Percent values are rounded to DIGITS decimals.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings

DIGITS = 4

# Judgement and recommendation thresholds, in percent win rate (docs/SCORING.md, "Analytics").
EXCELLENT_WIN_RATE = 70.0
GOOD_WIN_RATE = 55.0

TOO_FEW = "too few to judge"


def min_sample() -> int:
    """ANALYTICS_MIN_SAMPLE: the fewest checked outcomes a group is judged or advised from."""
    return int(settings.ANALYTICS_MIN_SAMPLE)


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
    """TOO_FEW below min_sample() checked outcomes; above, the win rate's interval (percent)
    decides: "excellent" (low ≥ 70), "good" (low ≥ 55), "poor" (high < 55), else "inconclusive"."""
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
    """The numbers of one group from its aggregates (a dict with the keys
    `window_aggregates.from_sums` gives)."""
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


def group_metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metrics of each group row ({"group": value, **aggregates}), in their order; the empty
    group value ("", a signal recorded without a tier) is shown as None."""
    return [{"group": row["group"] or None, **metrics(row)} for row in rows]
