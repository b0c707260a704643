"""Recommendations: advice per docs/SCORING.md, each made only from a group of n ≥
ANALYTICS_MIN_SAMPLE and only where the win rate's 95 % Wilson interval supports the claim; what
was not said, and why, is stated too (`recommendations`).
"""

from __future__ import annotations

from typing import Any

from tracking.metrics import (
    EXCELLENT_WIN_RATE,
    GOOD_WIN_RATE,
    TOO_FEW,
    group_metrics,
    metrics,
    min_sample,
)
from tracking.performance_cache import cached_performance
from tracking.performance_filters import PerformanceFilters
from tracking.window_aggregates import Window, analytics_settings, empty_row, window

# Recommendation thresholds for TIER_1 signals, in percent win rate (docs/SCORING.md).
TIER_1_RAISE_BELOW = 60.0
TIER_1_LOWER_FROM = 75.0
TIER_1_SUGGESTED_THRESHOLD = 90


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


@cached_performance
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
    return recommend(filters, window(filters, ("scanner", "tier")))


def recommend(filters: PerformanceFilters, data: Window) -> dict[str, Any]:
    """The advice of `recommendations` from a window already read (`filters` resolved; `data`
    with the scanner and tier groups), so the report shares its one read of the window."""
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
        tier_1 = metrics(tier_1_rows[0] if tier_1_rows else empty_row())
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
    groups = [row for row in group_metrics(data.groups["scanner"]) if row["group"]]
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
