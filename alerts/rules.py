"""The alert tier of a signal (docs/SCORING.md, "Alert tiers"; the SHORT side mirrors the LONG).

| tier | LONG | SHORT |
|---|---|---|
| TIER 1 (urgent) | MSS ≥ 90; accumulation ≥ 9; RSI < 20 with accumulation ≥ 7 | distribution ≥ 9;
  RSI > 80 with distribution ≥ 7 |
| TIER 2 (high) | MSS 75–89; accumulation 7–8; RSI < 25 | distribution 7–8; RSI > 75 |
| TIER 3 (medium) | MSS 60–74; accumulation 5–6; RSI < 30 | distribution 5–6; RSI > 70 |

A unified TIER_1 / TIER_2 in the signal's direction is that tier on either side. TIER 3 is by
default listed in the daily summary only (TELEGRAM_TIER_3_ENABLED). With ALERT_SHORT_SIGNALS off a
SHORT signal has no tier (no alert, not even a suppressed row). Anything else: no alert (None).

The thresholds below are the contract's, kept as named constants here: they define what "urgent"
means to the phone, not what a scanner says (the scanners' own thresholds are settings).

Direction: MSS, accumulation and oversold RSI are LONG evidence and tier LONG signals only;
distribution and overbought RSI are SHORT evidence and tier SHORT signals only.

Scores come from the signal itself and from the other scanners' results for the same coin in the
same scan run (`ScanResult`), so "RSI < 20 together with accumulation ≥ 7" works when a run of
all four scanners sees both; a unified tier counts when the unified ranking of the run points
the signal's way (a unified signal: its own tier).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from alerts.models import AlertTier

# --- the original plan's thresholds -------------------------------------------------------------
TIER_1_MSS = 90.0
TIER_1_ACCUMULATION = 9.0
TIER_1_RSI_BELOW = 20.0  # together with accumulation ≥ TIER_1_RSI_WITH_ACCUMULATION
TIER_1_RSI_WITH_ACCUMULATION = 7.0

TIER_2_MSS = 75.0
TIER_2_ACCUMULATION = 7.0
TIER_2_RSI_BELOW = 25.0

TIER_3_MSS = 60.0
TIER_3_ACCUMULATION = 5.0
TIER_3_RSI_BELOW = 30.0

# The SHORT side, the mirror of the LONG one (SCORING.md, added 2026-12-02).
TIER_1_DISTRIBUTION = 9.0
TIER_1_RSI_ABOVE = 80.0  # together with distribution ≥ TIER_1_RSI_WITH_DISTRIBUTION
TIER_1_RSI_WITH_DISTRIBUTION = 7.0
TIER_2_DISTRIBUTION = 7.0
TIER_2_RSI_ABOVE = 75.0
TIER_3_DISTRIBUTION = 5.0
TIER_3_RSI_ABOVE = 70.0

UNIFIED_TIERS = {"TIER_1": AlertTier.TIER_1, "TIER_2": AlertTier.TIER_2}

LONG = "LONG"
SHORT = "SHORT"


@dataclass(frozen=True)
class SignalContext:
    """What the tier and the message are made of: the scores known for the coin in the run
    (`mss`, `accumulation`, `distribution`, `rsi`, `social`; absent = not known), and the unified
    ranking's view in the signal's direction."""

    scores: Mapping[str, float] = field(default_factory=dict)
    unified_tier: str | None = None
    unified_score: float | None = None
    confidence: int | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def scanner_scores(scanner: str, scores: Mapping[str, Any], completeness: float = 1.0) -> dict:
    """The tier-relevant scores of one scanner's `scores` JSON (ScanResult/Signal)."""
    found: dict[str, float] = {}
    if scanner == "mss":
        mss = _number(scores.get("mss"))
        if mss is not None and completeness >= float(settings.MSS_MIN_COMPLETENESS):
            found["mss"] = mss
    elif scanner == "smart_money":
        for name in ("accumulation", "distribution"):
            value = _number(scores.get(name))
            if value is not None:
                found[name] = value
    elif scanner in ("rsi", "social"):
        value = _number(scores.get(scanner))
        if value is not None:
            found[scanner] = value
    return found


def signal_context(signal) -> SignalContext:
    """The context of a recorded `tracking.Signal`: its own scores, the other scanners' results
    for the coin in its scan run, and the coin's unified row of the signal's hour in the signal's
    direction."""
    from scanners.models import ScanResult
    from scoring.models import UnifiedRanking
    from scoring.ranking import coin_hour

    scores: dict[str, float] = {}
    unified_tier = unified_score = None
    if signal.scan_run_id is not None:
        # Sorted here, not by the database: SQLite served ORDER BY scanner from the (symbol,
        # scanner, …) index, walking every result the coin ever had instead of the run's few.
        results = ScanResult.objects.filter(
            run_id=signal.scan_run_id, symbol=signal.symbol
        ).values_list("scanner", "scores", "completeness")
        for scanner, values, completeness in sorted(results, key=lambda row: row[0]):
            scores.update(scanner_scores(scanner, values, completeness))
        # One ranking row per coin and hour (docs/SCORING.md): the signal's hour, not its run.
        ranking = UnifiedRanking.objects.filter(
            symbol=signal.symbol, hour=coin_hour(signal.as_of)
        ).values_list("direction", "tier", "unified_score")[:1]
        for direction, tier, score in ranking:
            if direction == signal.direction:
                unified_tier, unified_score = tier, score
    # The signal's own scores win: they are what fired.
    scores.update(scanner_scores(signal.scanner, signal.scores or {}, signal.completeness))
    if signal.scanner == "unified":
        unified_tier = signal.tier or None
        unified_score = (
            signal.unified_score if signal.unified_score is not None else (signal.scanner_score)
        )
    return SignalContext(
        scores=scores,
        unified_tier=unified_tier,
        unified_score=unified_score,
        confidence=signal.confidence,
    )


def own_context(signal) -> SignalContext:
    """The context of a signal from its own row only (no query): the values its scanner measured,
    for lists (digests, summaries) that show each signal's own value."""
    unified_score = signal.unified_score
    if signal.scanner == "unified" and unified_score is None:
        unified_score = signal.scanner_score
    return SignalContext(
        scores=scanner_scores(signal.scanner, signal.scores or {}, signal.completeness),
        unified_tier=(signal.tier or None) if signal.scanner == "unified" else None,
        unified_score=unified_score if signal.scanner == "unified" else None,
        confidence=signal.confidence,
    )


def tier_for(direction: str, scores: Mapping[str, float], unified_tier: str | None = None):
    """The alert tier (AlertTier) of a signal in `direction` with these scores; None: no alert
    (also for any SHORT signal while ALERT_SHORT_SIGNALS is off)."""
    mss = scores.get("mss")
    accumulation = scores.get("accumulation")
    distribution = scores.get("distribution")
    rsi = scores.get("rsi")
    if direction == SHORT and not settings.ALERT_SHORT_SIGNALS:
        return None

    def at_least(value: float | None, threshold: float) -> bool:
        return value is not None and value >= threshold

    def below(value: float | None, threshold: float) -> bool:
        return value is not None and value < threshold

    def above(value: float | None, threshold: float) -> bool:
        return value is not None and value > threshold

    if direction == LONG:
        tier_1 = (
            at_least(mss, TIER_1_MSS)
            or at_least(accumulation, TIER_1_ACCUMULATION)
            or (
                below(rsi, TIER_1_RSI_BELOW)
                and at_least(accumulation, TIER_1_RSI_WITH_ACCUMULATION)
            )
        )
        tier_2 = (
            at_least(mss, TIER_2_MSS)
            or at_least(accumulation, TIER_2_ACCUMULATION)
            or below(rsi, TIER_2_RSI_BELOW)
        )
        tier_3 = (
            at_least(mss, TIER_3_MSS)
            or at_least(accumulation, TIER_3_ACCUMULATION)
            or below(rsi, TIER_3_RSI_BELOW)
        )
    elif direction == SHORT:
        tier_1 = at_least(distribution, TIER_1_DISTRIBUTION) or (
            above(rsi, TIER_1_RSI_ABOVE) and at_least(distribution, TIER_1_RSI_WITH_DISTRIBUTION)
        )
        tier_2 = at_least(distribution, TIER_2_DISTRIBUTION) or above(rsi, TIER_2_RSI_ABOVE)
        tier_3 = at_least(distribution, TIER_3_DISTRIBUTION) or above(rsi, TIER_3_RSI_ABOVE)
    else:
        tier_1 = tier_2 = tier_3 = False

    unified = UNIFIED_TIERS.get(unified_tier or "")
    if unified == AlertTier.TIER_1 or tier_1:
        return AlertTier.TIER_1
    if unified == AlertTier.TIER_2 or tier_2:
        return AlertTier.TIER_2
    if tier_3:
        return AlertTier.TIER_3
    return None


def signal_tier(signal, context: SignalContext | None = None):
    """The alert tier of a recorded signal, or None for no alert."""
    context = context if context is not None else signal_context(signal)
    return tier_for(signal.direction, context.scores, context.unified_tier)
