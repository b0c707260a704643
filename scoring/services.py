"""The unified score of a coin: weighted components, tiers, confirmations, confidence.

Pure, typed functions (no database, no network), as `docs/SCORING.md` "Unified score 0–100, tiers,
confidence" defines them. The input is the latest `ScannerResult` of each scanner for one coin;
any object with the attributes of `ScannerResultLike` works, so this module does not import the
scanners.

How a score is made, in one place:

1. Per direction (LONG and SHORT) each component is `result.component[direction]` of the scanner of
   the same name. A component is *missing* when that scanner has no result for the coin or its value
   for that direction is None; a missing component drops out and the weights of the available ones
   are renormalised to add up to 1. The direction's completeness is the sum of the available nominal
   weights. A direction with no available component has no score (None), never 0.
2. The coin's direction is the one with the larger score. Ties (exact, after rounding to
   `SCORE_DECIMALS`) go to the direction with more confirmations, then the one with the higher
   completeness, then LONG.
3. The tier comes from the score (≥ TIER_1_MIN_SCORE, ≥ TIER_2_MIN_SCORE, ≥ TIER_3_MIN_SCORE, else
   TIER_4). A TIER_1 score with fewer than MIN_CONFIRMATIONS_TIER1 confirmations or a completeness
   below TIER_1_MIN_COMPLETENESS is shown as TIER_2, and `notes` says why.
   A TIER_2 (by score or by that demotion) with completeness below TIER_2_MIN_COMPLETENESS is
   shown as TIER_3.
4. Confirmations are the scanners with a rule of their own (smart money, MSS, RSI, social) whose
   rule fired (`result.direction`) in the coin's direction in their latest scan; whale and volume
   never confirm. Confidence: ≤ 1 confirmation → 60, 2 → 75, ≥ 3 → 85.
5. Only fresh results count (in the score and in confirmations): a result at most its scanner's
   interval + 1 h older than the score's as_of T, and an MSS result only while the coin is younger
   than MSS_MAX_AGE_HOURS at T. A stale result is a missing component; its breakdown entry says
   `stale` with its age. Results with as_of after T are not seen at all.

Scores and completeness are rounded to `SCORE_DECIMALS` decimals, so float noise in the weights
(0.3 + 0.25 + ... is not exactly 1.0 in binary) can never move a coin across a tier boundary.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from scoring.config import ScoringConfig

Direction = Literal["LONG", "SHORT"]
DIRECTIONS: tuple[Direction, Direction] = ("LONG", "SHORT")

TIER_1 = "TIER_1"
TIER_2 = "TIER_2"
TIER_3 = "TIER_3"
TIER_4 = "TIER_4"
TIERS = (TIER_1, TIER_2, TIER_3, TIER_4)
# Entering one of these tiers records a unified signal (docs/SCORING.md, "Signals").
SIGNAL_TIERS = frozenset({TIER_1, TIER_2})

SCORE_DECIMALS = 6
_HOUR = timedelta(hours=1)

COMPONENT_LABELS: Mapping[str, str] = {
    "smart_money": "smart money",
    "mss": "MSS",
    "rsi": "technical (RSI)",
    "social": "social",
    "whale": "whale activity",
    "volume": "volume spike",
}

_RECOMMENDATIONS: Mapping[tuple[str, Direction], str] = {
    (TIER_1, "LONG"): "MUST BUY",
    (TIER_1, "SHORT"): "MUST SELL",
    (TIER_2, "LONG"): "STRONG BUY",
    (TIER_2, "SHORT"): "STRONG SELL",
    (TIER_3, "LONG"): "WATCHLIST",
    (TIER_3, "SHORT"): "WATCHLIST",
    (TIER_4, "LONG"): "NEUTRAL",
    (TIER_4, "SHORT"): "NEUTRAL",
}


class ScannerResultLike(Protocol):
    """The attributes of `scanners.algorithms.common.ScannerResult` the unified score reads."""

    @property
    def scanner(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def as_of(self) -> datetime: ...

    @property
    def direction(self) -> str | None: ...

    @property
    def component(self) -> Mapping[str, float | None]: ...


@dataclass(frozen=True)
class DirectionalScore:
    """The unified score of one coin in one direction."""

    direction: Direction
    score: float | None  # None: no component is available in this direction
    completeness: float  # sum of the nominal weights of the available components
    confirmed_by: tuple[str, ...]  # scanners whose rule fired in this direction
    breakdown: dict[str, dict[str, Any]]  # per component, in weight order; JSON-safe

    @property
    def confirmations(self) -> int:
        return len(self.confirmed_by)


@dataclass(frozen=True)
class UnifiedScore:
    """A coin's place in the unified ranking (`docs/SCAN_PIPELINE_CONTRACT.md`, section 2)."""

    symbol: str
    as_of: datetime
    direction: Direction  # the larger of the two directional scores
    unified_score: float  # 0..100
    scores: dict[str, float | None]  # {"LONG": x, "SHORT": y}; None: nothing to score that way
    tier: str  # TIER_1..TIER_4 after the TIER_1 demotion rule
    confirmations: int
    confirmed_by: list[str]
    confidence: int  # 60 | 75 | 85
    recommendation: str  # "MUST BUY", "STRONG SELL", "WATCHLIST", "NEUTRAL", ...
    completeness: float  # sum of the available weights in `direction`
    breakdown: dict[str, dict[str, Any]]  # per component in `direction`
    score_tier: str = TIER_4  # the tier the score alone reaches (before the demotion rule)
    notes: list[str] = field(default_factory=list)  # why a TIER_1 score is shown as TIER_2, ...
    reasons: list[str] = field(default_factory=list)  # human sentences for signals and alerts

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (as_of as ISO 8601) for storage and the API."""
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


# --- small rules ------------------------------------------------------------------------------


def tier_for_score(score: float, *, config: ScoringConfig) -> str:
    """The tier a score reaches by itself: ≥ TIER_1_MIN_SCORE → TIER_1, ... else TIER_4."""
    if score >= config.tier_1_min_score:
        return TIER_1
    if score >= config.tier_2_min_score:
        return TIER_2
    if score >= config.tier_3_min_score:
        return TIER_3
    return TIER_4


def apply_tier_1_rules(
    score_tier: str, *, confirmations: int, completeness: float, config: ScoringConfig
) -> tuple[str, list[str]]:
    """The tier shown: a TIER_1 score without enough confirmations or completeness is TIER_2.

    Returns the tier and the notes saying why it was demoted (empty when it was not).
    """
    if score_tier != TIER_1:
        return score_tier, []
    notes = []
    if confirmations < config.min_confirmations_tier1:
        notes.append(
            f"TIER_1 score, but {confirmations} confirmation(s) of the "
            f"{config.min_confirmations_tier1} TIER_1 needs: shown as TIER_2."
        )
    if completeness < config.tier_1_min_completeness:
        notes.append(
            f"TIER_1 score, but completeness {completeness:.2f} is below the "
            f"{config.tier_1_min_completeness:.2f} TIER_1 needs: shown as TIER_2."
        )
    return (TIER_2 if notes else TIER_1), notes


def apply_tier_2_rule(
    tier: str, *, completeness: float, config: ScoringConfig
) -> tuple[str, list[str]]:
    """The tier shown: a TIER_2 with completeness below TIER_2_MIN_COMPLETENESS is TIER_3 (one
    component is not a strong buy). Returns the tier and the note saying why (empty when kept)."""
    if tier != TIER_2 or completeness >= config.tier_2_min_completeness:
        return tier, []
    return TIER_3, [
        f"TIER_2, but completeness {completeness:.2f} is below the "
        f"{config.tier_2_min_completeness:.2f} TIER_2 needs: shown as TIER_3."
    ]


def confidence_for_confirmations(confirmations: int) -> int:
    """≤ 1 confirmation → 60, 2 → 75, ≥ 3 → 85."""
    if confirmations >= 3:
        return 85
    if confirmations == 2:
        return 75
    return 60


def recommendation_for(tier: str, direction: Direction) -> str:
    """MUST BUY/SELL (TIER_1), STRONG BUY/SELL (TIER_2), WATCHLIST (TIER_3), NEUTRAL (TIER_4)."""
    try:
        return _RECOMMENDATIONS[(tier, direction)]
    except KeyError:
        raise ValueError(f"unknown tier or direction: {tier!r}, {direction!r}") from None


def should_record_unified_signal(
    previous_tier: str | None,
    new_tier: str,
    *,
    previous_direction: str | None,
    new_direction: str | None,
) -> bool:
    """Whether a coin's new ranking records a `unified` signal (docs/SCORING.md, "Signals").

    True when the coin *enters* TIER_1 or TIER_2: it is in one of them now and was not in one of
    them in the same direction before (no previous ranking, a lower tier, or TIER_1/TIER_2 the
    other way). Moving between TIER_2 and TIER_1 in the same direction records nothing. The
    cooldown (`SIGNAL_COOLDOWN_HOURS`) is the pipeline's business, not this rule's.
    """
    if new_tier not in SIGNAL_TIERS or new_direction is None:
        return False
    was_in = previous_tier in SIGNAL_TIERS and previous_direction == new_direction
    return not was_in


# --- the score --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Staleness:
    """Why a scanner's latest result does not count at T: too old, or (MSS) the coin too old."""

    age_hours: float  # of the result at T
    reason: str


def latest_results(results: Sequence[ScannerResultLike]) -> dict[str, ScannerResultLike]:
    """The latest result per scanner (largest as_of; on a tie the later one in `results`).

    Raises ValueError when the results are about more than one coin.
    """
    symbols = {result.symbol for result in results}
    if len(symbols) > 1:
        raise ValueError(f"results of one coin expected, got {sorted(symbols)}")
    latest: dict[str, ScannerResultLike] = {}
    for result in results:
        kept = latest.get(result.scanner)
        if kept is None or result.as_of >= kept.as_of:
            latest[result.scanner] = result
    return latest


def staleness(
    result: ScannerResultLike, *, as_of: datetime, config: ScoringConfig
) -> Staleness | None:
    """None when `result` counts at `as_of`; else why not (docs/SCORING.md, "Fresh components").

    A result counts while its age is at most its scanner's interval + 1 h. An MSS result also
    needs the coin younger than MSS_MAX_AGE_HOURS at as_of (listing time from the result's
    inputs; an MSS result without one is judged by its age alone).
    """
    age = (as_of - result.as_of) / _HOUR
    label = COMPONENT_LABELS.get(result.scanner, result.scanner)
    limit = config.max_age_hours(result.scanner)
    if age > limit:
        return Staleness(
            age,
            f"{label} result {age:.1f} h old, older than the {limit:g} h it counts for "
            f"(its interval + 1 h): stale",
        )
    if result.scanner == "mss":
        listed_at = _listed_at(result)
        if listed_at is not None:
            coin_age = (as_of - listed_at) / _HOUR
            if coin_age >= config.mss_max_age_hours:
                return Staleness(
                    age,
                    f"MSS result no longer counts: the coin is {coin_age:.1f} h old at as_of, "
                    f"MSS scores coins younger than {config.mss_max_age_hours:g} h",
                )
    return None


def fresh_results(
    results: Sequence[ScannerResultLike], *, as_of: datetime, config: ScoringConfig
) -> tuple[dict[str, ScannerResultLike], dict[str, tuple[ScannerResultLike, Staleness]]]:
    """(the latest result per scanner that counts at as_of, the latest ones that are stale).

    Results with as_of after `as_of` are not seen: the score at T is a function of the results
    with as_of ≤ T alone.
    """
    latest = latest_results([result for result in results if result.as_of <= as_of])
    fresh: dict[str, ScannerResultLike] = {}
    stale: dict[str, tuple[ScannerResultLike, Staleness]] = {}
    for name, result in latest.items():
        why = staleness(result, as_of=as_of, config=config)
        if why is None:
            fresh[name] = result
        else:
            stale[name] = (result, why)
    return fresh, stale


def confirmations_for(
    results: Sequence[ScannerResultLike],
    direction: Direction,
    *,
    config: ScoringConfig,
    as_of: datetime | None = None,
) -> list[str]:
    """Scanners with a rule of their own whose latest fresh result fired in `direction` (weight
    order); as_of defaults to the latest as_of among the results."""
    fresh, _stale = fresh_results(results, as_of=_as_of(results, as_of), config=config)
    return _confirmed_by(fresh, direction, config)


def score_direction(
    results: Sequence[ScannerResultLike],
    direction: Direction,
    *,
    config: ScoringConfig,
    as_of: datetime | None = None,
) -> DirectionalScore:
    """The unified score of one coin in one direction, with its breakdown."""
    as_of = _as_of(results, as_of)
    fresh, stale = fresh_results(results, as_of=as_of, config=config)
    return _score_direction(fresh, stale, direction, config, as_of)


def unified_score(
    results: Sequence[ScannerResultLike],
    *,
    config: ScoringConfig,
    as_of: datetime | None = None,
) -> UnifiedScore | None:
    """The unified score of one coin at `as_of` from the latest fresh result of each scanner.

    `as_of` defaults to the latest as_of among the results. Returns None when there is nothing to
    score: no results, or no fresh component available in either direction. Raises ValueError for
    results of more than one coin or a component outside 0..100.
    """
    if not results:
        return None
    as_of = _as_of(results, as_of)
    fresh, stale = fresh_results(results, as_of=as_of, config=config)
    notes = [
        f"Result of unknown scanner {name!r} ignored."
        for name in fresh
        if name not in config.weights
    ]
    seen_by_name = _seen(fresh, stale, config, as_of)
    by_direction = {
        direction: _direction_values(fresh, direction, config, seen_by_name)
        for direction in DIRECTIONS
    }
    if all(scored.score is None for scored in by_direction.values()):
        return None
    # Only the chosen direction's breakdown is kept: the other's is never built.
    chosen = _choose(by_direction["LONG"], by_direction["SHORT"]).with_breakdown(
        config, seen_by_name
    )
    assert chosen.score is not None

    score_tier = tier_for_score(chosen.score, config=config)
    tier, demotion_notes = apply_tier_1_rules(
        score_tier,
        confirmations=chosen.confirmations,
        completeness=chosen.completeness,
        config=config,
    )
    tier, tier_2_notes = apply_tier_2_rule(tier, completeness=chosen.completeness, config=config)
    notes = demotion_notes + tier_2_notes + notes
    symbol = next(iter(results)).symbol
    return UnifiedScore(
        symbol=symbol,
        as_of=as_of,
        direction=chosen.direction,
        unified_score=chosen.score,
        scores={direction: by_direction[direction].score for direction in DIRECTIONS},
        tier=tier,
        confirmations=chosen.confirmations,
        confirmed_by=list(chosen.confirmed_by),
        confidence=confidence_for_confirmations(chosen.confirmations),
        recommendation=recommendation_for(tier, chosen.direction),
        completeness=chosen.completeness,
        breakdown=chosen.breakdown,
        score_tier=score_tier,
        notes=notes,
        reasons=_reasons(chosen, tier, notes),
    )


# --- internals --------------------------------------------------------------------------------


def _as_of(results: Sequence[ScannerResultLike], as_of: datetime | None) -> datetime:
    if as_of is not None:
        return as_of
    if not results:
        raise ValueError("as_of is needed when there are no results")
    return max(result.as_of for result in results)


def _listed_at(result: ScannerResultLike) -> datetime | None:
    """The listing time an MSS result was scored with (its inputs' `listed_at`), if it says."""
    inputs = getattr(result, "inputs", None)
    value = inputs.get("listed_at") if isinstance(inputs, Mapping) else None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _round(value: float) -> float:
    return round(value, SCORE_DECIMALS)


def _component_value(result: ScannerResultLike, direction: Direction) -> float | None:
    value = result.component.get(direction)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"{result.scanner} component {direction} of {result.symbol} is not a number: {value!r}"
        )
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise ValueError(
            f"{result.scanner} component {direction} of {result.symbol} must be within 0..100, "
            f"got {value!r}"
        )
    return float(value)


def _confirmed_by(
    latest: Mapping[str, ScannerResultLike], direction: Direction, config: ScoringConfig
) -> list[str]:
    return [
        name
        for name in _confirmation_order(config)
        if name in latest and latest[name].direction == direction
    ]


def _confirmation_order(config: ScoringConfig) -> tuple[str, ...]:
    """The confirming scanners in weight order, then the unweighted ones by name."""
    return _order_of(tuple(config.weights), config.confirming_scanners)


@functools.lru_cache(maxsize=16)
def _order_of(weighted: tuple[str, ...], confirming: frozenset[str]) -> tuple[str, ...]:
    # Cached: a ranking asks it four times a coin, always of the same config.
    extra = sorted(set(confirming) - set(weighted))
    return tuple(name for name in [*weighted, *extra] if name in confirming)


class _Seen(NamedTuple):
    """What a component's breakdown entries say whatever the direction: computed once a coin."""

    label: str
    result: ScannerResultLike | None  # the fresh result, if any
    missing: str | None  # why the component is missing when there is no fresh result
    as_of: str | None
    age_hours: float | None
    max_age_hours: float
    stale: bool


def _seen(
    fresh: Mapping[str, ScannerResultLike],
    stale: Mapping[str, tuple[ScannerResultLike, Staleness]],
    config: ScoringConfig,
    as_of: datetime,
) -> dict[str, _Seen]:
    seen_by_name = {}
    for name in config.weights:
        label = COMPONENT_LABELS.get(name, name)
        result = fresh.get(name)
        stale_entry = stale.get(name)
        seen = result if result is not None else (stale_entry[0] if stale_entry else None)
        if result is not None:
            missing = None
        elif stale_entry is not None:
            missing = stale_entry[1].reason
        else:
            missing = f"no {label} result for this coin"
        seen_by_name[name] = _Seen(
            label=label,
            result=result,
            missing=missing,
            as_of=seen.as_of.isoformat() if seen is not None else None,
            age_hours=_round((as_of - seen.as_of) / _HOUR) if seen is not None else None,
            max_age_hours=config.max_age_hours(name),
            stale=stale_entry is not None,
        )
    return seen_by_name


def _score_direction(
    fresh: Mapping[str, ScannerResultLike],
    stale: Mapping[str, tuple[ScannerResultLike, Staleness]],
    direction: Direction,
    config: ScoringConfig,
    as_of: datetime,
    seen_by_name: Mapping[str, _Seen] | None = None,
) -> DirectionalScore:
    """`seen_by_name`: `_seen(fresh, stale, config, as_of)`, when the caller scores both
    directions (it is the same for both)."""
    if seen_by_name is None:
        seen_by_name = _seen(fresh, stale, config, as_of)
    scored = _direction_values(fresh, direction, config, seen_by_name)
    return scored.with_breakdown(config, seen_by_name)


class _DirectionValues(NamedTuple):
    """A direction's score without its breakdown: what choosing the coin's direction reads
    (`_choose`), so that only the chosen direction's breakdown is built."""

    direction: Direction
    values: dict[str, float]  # the available components' values
    missing: dict[str, str]  # why each other component is missing
    available_weight: float
    score: float | None
    completeness: float
    confirmed_by: tuple[str, ...]

    @property
    def confirmations(self) -> int:
        return len(self.confirmed_by)

    def with_breakdown(
        self, config: ScoringConfig, seen_by_name: Mapping[str, _Seen]
    ) -> DirectionalScore:
        values, missing, direction = self.values, self.missing, self.direction
        breakdown: dict[str, dict[str, Any]] = {}
        for name, weight in config.weights.items():
            seen = seen_by_name[name]
            result = seen.result
            available = name in values
            renormalised = weight / self.available_weight if available else 0.0
            breakdown[name] = {
                "label": seen.label,
                "direction": direction,
                "score": values.get(name),
                "weight": weight,
                "renormalised_weight": _round(renormalised),
                "contribution": _round(renormalised * values[name]) if available else None,
                "available": available,
                "missing": missing.get(name),
                "fired": result.direction if result is not None else None,
                "confirms": name in self.confirmed_by,
                "as_of": seen.as_of,
                "age_hours": seen.age_hours,
                "max_age_hours": seen.max_age_hours,
                "stale": seen.stale,
            }
        return DirectionalScore(
            direction=direction,
            score=self.score,
            completeness=self.completeness,
            confirmed_by=self.confirmed_by,
            breakdown=breakdown,
        )


def _direction_values(
    fresh: Mapping[str, ScannerResultLike],
    direction: Direction,
    config: ScoringConfig,
    seen_by_name: Mapping[str, _Seen],
) -> _DirectionValues:
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    for name, seen in seen_by_name.items():
        if seen.result is None:
            missing[name] = seen.missing or ""  # always set when there is no fresh result
            continue
        value = _component_value(seen.result, direction)
        if value is None:
            missing[name] = f"{seen.label} gives no {direction} component"
            continue
        values[name] = value

    available_weight = math.fsum(config.weights[name] for name in values)
    score = (
        _round(
            math.fsum(config.weights[name] * value for name, value in values.items())
            / available_weight
        )
        if values
        else None
    )
    return _DirectionValues(
        direction=direction,
        values=values,
        missing=missing,
        available_weight=available_weight,
        score=score,
        completeness=_round(available_weight),
        confirmed_by=tuple(_confirmed_by(fresh, direction, config)),
    )


def _choose(long: _DirectionValues, short: _DirectionValues) -> _DirectionValues:
    """Larger score; on a tie more confirmations, then higher completeness, then LONG."""

    def key(scored: _DirectionValues) -> tuple[float, int, float, int]:
        score = -math.inf if scored.score is None else scored.score
        return (score, scored.confirmations, scored.completeness, scored.direction == "LONG")

    return max(long, short, key=key)


def _reasons(chosen: DirectionalScore, tier: str, notes: list[str]) -> list[str]:
    parts = [
        f"{entry['label']} {entry['score']:.1f} × {entry['renormalised_weight']:.2f}"
        for entry in chosen.breakdown.values()
        if entry["available"]
    ]
    reasons = [
        f"Unified {chosen.direction} score {chosen.score:.1f} ({tier}) from "
        + ", ".join(parts)
        + "."
    ]
    missing = [entry["missing"] for entry in chosen.breakdown.values() if not entry["available"]]
    if missing:
        reasons.append(f"Missing: {'; '.join(missing)} (completeness {chosen.completeness:.2f}).")
    if chosen.confirmed_by:
        labels = [COMPONENT_LABELS.get(name, name) for name in chosen.confirmed_by]
        reasons.append(f"Confirmed by {', '.join(labels)}.")
    else:
        reasons.append("No scanner's own rule fired in this direction.")
    return reasons + notes
