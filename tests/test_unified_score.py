"""The unified score: weights, renormalisation, direction, tiers, confirmations and confidence.

Pins docs/SCORING.md "Unified score 0–100, tiers, confidence" and the unified part of "Signals".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scanners.algorithms.common import Direction, ScannerResult
from scoring.config import COMPONENT_WEIGHTS, ScoringConfig
from scoring.services import (
    TIER_1,
    TIER_2,
    TIER_3,
    TIER_4,
    apply_tier_1_rules,
    confidence_for_confirmations,
    confirmations_for,
    recommendation_for,
    score_direction,
    should_record_unified_signal,
    tier_for_score,
    unified_score,
)

AS_OF = datetime(2025, 3, 1, 12, tzinfo=UTC)
CONFIG = ScoringConfig()
SCANNERS = ("smart_money", "mss", "rsi", "social", "whale", "volume")


def result(
    scanner: str,
    long: float | None = None,
    short: float | None = None,
    *,
    fired: Direction = None,
    symbol: str = "ABC/USDT",
    as_of: datetime = AS_OF,
) -> ScannerResult:
    return ScannerResult(
        scanner=scanner,
        symbol=symbol,
        as_of=as_of,
        scores={},
        direction=fired,
        component={"LONG": long, "SHORT": short},
        reasons=[],
        inputs={},
        completeness=1.0,
    )


def everywhere(
    long: float, short: float = 0.0, *, fired: tuple[str, ...] = ()
) -> list[ScannerResult]:
    """Every component with the same score; the scanners in `fired` fired LONG."""
    return [result(name, long, short, fired="LONG" if name in fired else None) for name in SCANNERS]


# --- tiers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (100.0, TIER_1),
        (85.0, TIER_1),
        (84.999, TIER_2),
        (70.0, TIER_2),
        (69.999, TIER_3),
        (55.0, TIER_3),
        (54.999, TIER_4),
        (0.0, TIER_4),
    ],
)
def test_a_score_falls_in_the_tier_whose_lower_bound_it_reaches(score: float, tier: str) -> None:
    assert tier_for_score(score, config=CONFIG) == tier
    ranked = unified_score(everywhere(score, fired=("smart_money", "mss")), config=CONFIG)
    assert ranked is not None
    assert ranked.unified_score == score
    assert ranked.tier == tier


def test_float_noise_in_the_weights_never_drops_a_coin_below_a_boundary() -> None:
    for boundary in (85.0, 70.0, 55.0):
        ranked = unified_score(everywhere(boundary, fired=("smart_money", "mss")), config=CONFIG)
        assert ranked is not None
        assert ranked.unified_score == boundary


def test_tier_thresholds_come_from_the_config() -> None:
    strict = ScoringConfig(tier_1_min_score=90, tier_2_min_score=80, tier_3_min_score=60)
    assert tier_for_score(85, config=strict) == TIER_2
    assert tier_for_score(79.9, config=strict) == TIER_3


@pytest.mark.parametrize(
    ("tier", "direction", "recommendation"),
    [
        (TIER_1, "LONG", "MUST BUY"),
        (TIER_1, "SHORT", "MUST SELL"),
        (TIER_2, "LONG", "STRONG BUY"),
        (TIER_2, "SHORT", "STRONG SELL"),
        (TIER_3, "LONG", "WATCHLIST"),
        (TIER_3, "SHORT", "WATCHLIST"),
        (TIER_4, "LONG", "NEUTRAL"),
        (TIER_4, "SHORT", "NEUTRAL"),
    ],
)
def test_each_tier_and_direction_has_its_recommendation(
    tier: str, direction: str, recommendation: str
) -> None:
    assert recommendation_for(tier, direction) == recommendation  # type: ignore[arg-type]


def test_a_short_tier_1_coin_is_a_must_sell() -> None:
    results = [
        result("smart_money", 10, 95, fired="SHORT"),
        result("rsi", 5, 95, fired="SHORT"),
        result("social", 90, None),
        result("whale", 5, 95),
        result("volume", 95, 95),
    ]
    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    # SHORT: 95 everywhere it is available (completeness 0.30 + 0.15 + 0.10 + 0.05 = 0.6);
    # LONG: (0.30 × 10 + 0.15 × 5 + 0.15 × 90 + 0.10 × 5 + 0.05 × 95) / 0.75 = 22.5 / 0.75 = 30
    assert (ranked.direction, ranked.unified_score, ranked.tier) == ("SHORT", 95.0, TIER_1)
    assert ranked.recommendation == "MUST SELL"
    assert ranked.scores == {"LONG": 30.0, "SHORT": 95.0}
    assert ranked.completeness == 0.6


# --- TIER_1 demotion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "tier", "note_mentions"),
    [
        pytest.param(
            everywhere(90, fired=("smart_money", "mss")),
            TIER_1,
            [],
            id="two confirmations and full completeness stay TIER_1",
        ),
        pytest.param(
            everywhere(90, fired=("smart_money",)),
            TIER_2,
            ["confirmation"],
            id="one confirmation is shown as TIER_2",
        ),
        pytest.param(
            everywhere(90),
            TIER_2,
            ["confirmation"],
            id="no confirmation is shown as TIER_2",
        ),
        pytest.param(
            [result("smart_money", 90, fired="LONG"), result("mss", 90, fired="LONG")],
            TIER_2,
            ["completeness 0.55"],
            id="completeness 0.55 is shown as TIER_2",
        ),
        pytest.param(
            [
                result("smart_money", 90, fired="LONG"),
                result("rsi", 90, fired="LONG"),
                result("social", 90),
            ],
            TIER_1,
            [],
            id="completeness exactly 0.6 stays TIER_1",
        ),
        pytest.param(
            [result("smart_money", 90, fired="LONG"), result("mss", 90)],
            TIER_2,
            ["confirmation", "completeness 0.55"],
            id="too few confirmations and too little completeness give both notes",
        ),
    ],
)
def test_a_tier_1_score_needs_confirmations_and_completeness(
    results: list, tier: str, note_mentions: list[str]
) -> None:
    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    assert ranked.unified_score == 90.0
    assert ranked.score_tier == TIER_1
    assert ranked.tier == tier
    assert len(ranked.notes) == len(note_mentions)
    for note, mention in zip(ranked.notes, note_mentions, strict=True):
        assert mention in note
        assert "shown as TIER_2" in note
    if tier == TIER_2:
        assert ranked.recommendation == "STRONG BUY"
        assert set(ranked.notes) <= set(ranked.reasons)


def test_the_demotion_rule_uses_the_configured_minimums() -> None:
    lenient = ScoringConfig(min_confirmations_tier1=0, tier_1_min_completeness=0.0)
    assert apply_tier_1_rules(TIER_1, confirmations=0, completeness=0.05, config=lenient) == (
        TIER_1,
        [],
    )
    tier, notes = apply_tier_1_rules(TIER_1, confirmations=2, completeness=0.59, config=CONFIG)
    assert tier == TIER_2
    assert len(notes) == 1


@pytest.mark.parametrize("score_tier", [TIER_2, TIER_3, TIER_4])
def test_only_a_tier_1_score_is_ever_demoted(score_tier: str) -> None:
    assert apply_tier_1_rules(score_tier, confirmations=0, completeness=0.0, config=CONFIG) == (
        score_tier,
        [],
    )


# --- renormalisation and completeness -------------------------------------------------------------


def test_missing_components_drop_out_and_the_rest_are_renormalised() -> None:
    results = [result("smart_money", 70), result("rsi", 40), result("volume", 90)]
    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    # By hand: (0.30 × 70 + 0.15 × 40 + 0.05 × 90) / (0.30 + 0.15 + 0.05) = 31.5 / 0.5 = 63
    assert ranked.unified_score == 63.0
    assert ranked.completeness == 0.5
    breakdown = ranked.breakdown
    assert {name: breakdown[name]["renormalised_weight"] for name in SCANNERS} == {
        "smart_money": 0.6,
        "mss": 0.0,
        "rsi": 0.3,
        "social": 0.0,
        "whale": 0.0,
        "volume": 0.1,
    }
    assert {name: breakdown[name]["contribution"] for name in SCANNERS} == {
        "smart_money": 42.0,
        "mss": None,
        "rsi": 12.0,
        "social": None,
        "whale": None,
        "volume": 9.0,
    }
    assert breakdown["smart_money"]["weight"] == 0.30
    assert breakdown["smart_money"]["score"] == 70.0
    assert breakdown["smart_money"]["available"] is True
    assert breakdown["smart_money"]["missing"] is None
    assert breakdown["mss"]["available"] is False
    assert breakdown["mss"]["score"] is None
    assert breakdown["mss"]["missing"] == "no MSS result for this coin"
    assert any("Missing" in reason and "MSS" in reason for reason in ranked.reasons)


@pytest.mark.parametrize(
    ("available", "completeness"),
    [
        (SCANNERS, 1.0),
        (("smart_money",), 0.30),
        (("smart_money", "mss"), 0.55),
        (("rsi", "social", "whale", "volume"), 0.45),
        (("whale", "volume"), 0.15),
        (("mss", "rsi", "social", "volume"), 0.6),
        (("volume",), 0.05),
    ],
)
def test_completeness_is_the_sum_of_the_available_weights(
    available: tuple[str, ...], completeness: float
) -> None:
    ranked = unified_score([result(name, 50, 50) for name in available], config=CONFIG)
    assert ranked is not None
    assert ranked.completeness == completeness
    assert ranked.unified_score == 50.0


def test_a_component_none_in_one_direction_drops_from_that_direction_only() -> None:
    results = [result("mss", 80, None), result("rsi", 30, 70)]
    long = score_direction(results, "LONG", config=CONFIG)
    short = score_direction(results, "SHORT", config=CONFIG)
    # LONG: (0.25 × 80 + 0.15 × 30) / 0.40 = 61.25; SHORT: RSI alone, 70
    assert (long.score, long.completeness) == (61.25, 0.4)
    assert (short.score, short.completeness) == (70.0, 0.15)
    assert long.breakdown["mss"]["available"] is True
    assert short.breakdown["mss"]["available"] is False
    assert short.breakdown["mss"]["missing"] == "MSS gives no SHORT component"

    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    assert ranked.direction == "SHORT"
    assert ranked.scores == {"LONG": 61.25, "SHORT": 70.0}
    assert ranked.completeness == 0.15


def test_a_direction_with_no_component_has_no_score_rather_than_zero() -> None:
    ranked = unified_score([result("mss", 40, None)], config=CONFIG)
    assert ranked is not None
    assert ranked.scores == {"LONG": 40.0, "SHORT": None}
    assert ranked.direction == "LONG"


@pytest.mark.parametrize(
    "results",
    [
        pytest.param([], id="no results at all"),
        pytest.param([result("whale", None, None)], id="no component in either direction"),
    ],
)
def test_there_is_no_unified_score_when_there_is_nothing_to_score(results: list) -> None:
    assert unified_score(results, config=CONFIG) is None


# --- direction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "direction"),
    [
        pytest.param([result("smart_money", 70, 30)], "LONG", id="the larger LONG score wins"),
        pytest.param([result("smart_money", 30, 70)], "SHORT", id="the larger SHORT score wins"),
        pytest.param(
            [result("smart_money", 50, 50, fired="SHORT"), result("rsi", 50, 50)],
            "SHORT",
            id="a tie goes to the direction with more confirmations",
        ),
        pytest.param(
            [result("mss", 60, None), result("rsi", 60, 60)],
            "LONG",
            id="an equal tie goes to the direction with more completeness",
        ),
        pytest.param(
            [result("mss", None, 60), result("rsi", 60, 60)],
            "SHORT",
            id="an equal tie with more SHORT completeness goes SHORT",
        ),
        pytest.param([result("smart_money", 50, 50)], "LONG", id="a complete tie goes LONG"),
    ],
)
def test_the_direction_is_the_larger_of_the_two_scores(results: list, direction: str) -> None:
    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    assert ranked.direction == direction
    assert ranked.unified_score == ranked.scores[direction]
    assert all(entry["direction"] == direction for entry in ranked.breakdown.values())


# --- confirmations and confidence ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fired", "confirmations", "confidence"),
    [
        ((), 0, 60),
        (("smart_money",), 1, 60),
        (("smart_money", "mss"), 2, 75),
        (("smart_money", "mss", "rsi"), 3, 85),
        (("smart_money", "mss", "rsi", "social"), 4, 85),
    ],
)
def test_confidence_follows_the_number_of_confirmations(
    fired: tuple[str, ...], confirmations: int, confidence: int
) -> None:
    assert confidence_for_confirmations(confirmations) == confidence
    ranked = unified_score(everywhere(60, fired=fired), config=CONFIG)
    assert ranked is not None
    assert ranked.confirmations == confirmations
    assert ranked.confirmed_by == list(fired)
    assert ranked.confidence == confidence


def test_whale_and_volume_never_confirm_even_when_their_direction_is_set() -> None:
    results = [
        result("whale", 90, 10, fired="LONG"),
        result("volume", 90, 90, fired="LONG"),
        result("smart_money", 90, 10, fired="LONG"),
    ]
    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    assert ranked.confirmed_by == ["smart_money"]
    assert ranked.confidence == 60
    assert ranked.breakdown["whale"]["confirms"] is False
    assert ranked.breakdown["smart_money"]["confirms"] is True


def test_only_scanners_that_fired_in_the_coins_direction_confirm() -> None:
    results = [
        result("smart_money", 80, 20, fired="LONG"),
        result("rsi", 20, 80, fired="SHORT"),
        result("mss", 90, None, fired="LONG"),
        result("social", 80, None),
    ]
    assert confirmations_for(results, "LONG", config=CONFIG) == ["smart_money", "mss"]
    assert confirmations_for(results, "SHORT", config=CONFIG) == ["rsi"]
    ranked = unified_score(results, config=CONFIG)
    assert ranked is not None
    assert (ranked.direction, ranked.confirmations) == ("LONG", 2)


def test_the_latest_scan_of_each_scanner_is_the_one_that_counts() -> None:
    old = result("smart_money", 90, 10, fired="LONG", as_of=AS_OF - timedelta(hours=1))
    new = result("smart_money", 40, 20, fired=None)
    ranked = unified_score([new, old], config=CONFIG)
    assert ranked is not None
    assert (ranked.unified_score, ranked.confirmations) == (40.0, 0)
    assert ranked.as_of == AS_OF


# --- unified signals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "new", "recorded"),
    [
        ((None, None), (TIER_1, "LONG"), True),
        ((None, None), (TIER_2, "SHORT"), True),
        ((None, None), (TIER_3, "LONG"), False),
        ((TIER_3, "LONG"), (TIER_2, "LONG"), True),
        ((TIER_4, "LONG"), (TIER_1, "LONG"), True),
        ((TIER_2, "LONG"), (TIER_1, "LONG"), False),
        ((TIER_1, "LONG"), (TIER_2, "LONG"), False),
        ((TIER_2, "LONG"), (TIER_2, "LONG"), False),
        ((TIER_2, "LONG"), (TIER_2, "SHORT"), True),
        ((TIER_1, "SHORT"), (TIER_1, "LONG"), True),
        ((TIER_1, "LONG"), (TIER_3, "LONG"), False),
        ((TIER_2, "LONG"), (TIER_4, "SHORT"), False),
    ],
)
def test_a_unified_signal_is_recorded_when_a_coin_enters_tier_1_or_2(
    previous: tuple[str | None, str | None], new: tuple[str, str], recorded: bool
) -> None:
    assert (
        should_record_unified_signal(
            previous[0], new[0], previous_direction=previous[1], new_direction=new[1]
        )
        is recorded
    )


# --- input checks and output shape ---------------------------------------------------------------


def test_results_of_two_coins_are_refused() -> None:
    with pytest.raises(ValueError, match="one coin"):
        unified_score(
            [result("rsi", 50, 50), result("mss", 50, None, symbol="XYZ/USDT")], config=CONFIG
        )


@pytest.mark.parametrize("bad", [-0.1, 100.1, float("nan"), float("inf")])
def test_a_component_outside_0_to_100_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="rsi component LONG"):
        unified_score([result("rsi", bad, 50)], config=CONFIG)


def test_a_result_of_an_unknown_scanner_is_ignored_and_said_so() -> None:
    ranked = unified_score(
        [result("rsi", 60, 40), result("astrology", 100, 0, fired="LONG")], config=CONFIG
    )
    assert ranked is not None
    assert ranked.unified_score == 60.0
    assert ranked.confirmations == 0
    assert any("astrology" in note for note in ranked.notes)


def test_the_unified_score_serialises_to_json() -> None:
    ranked = unified_score(everywhere(88, fired=("smart_money", "rsi", "social")), config=CONFIG)
    assert ranked is not None
    data = json.loads(json.dumps(ranked.as_dict()))
    assert data["as_of"] == AS_OF.isoformat()
    assert data["tier"] == TIER_1
    assert data["recommendation"] == "MUST BUY"
    assert data["confidence"] == 85
    assert data["symbol"] == "ABC/USDT"
    assert list(data["breakdown"]) == list(SCANNERS)
    contributions = [entry["contribution"] for entry in data["breakdown"].values()]
    assert sum(contributions) == pytest.approx(88.0)


# --- config -------------------------------------------------------------------------------------


def test_the_weights_are_the_documented_ones_and_add_up_to_one() -> None:
    assert dict(COMPONENT_WEIGHTS) == {
        "smart_money": 0.30,
        "mss": 0.25,
        "rsi": 0.15,
        "social": 0.15,
        "whale": 0.10,
        "volume": 0.05,
    }
    assert sum(CONFIG.weights.values()) == pytest.approx(1.0)


def test_the_weights_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        CONFIG.weights["mss"] = 0.5  # type: ignore[index]
    with pytest.raises(AttributeError):
        CONFIG.tier_1_min_score = 80  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"weights": {"rsi": 0.5, "mss": 0.4}}, "add up to 1"),
        ({"weights": {"rsi": 1.2, "mss": -0.2}}, "positive"),
        ({"tier_1_min_score": 70, "tier_2_min_score": 70}, "ordered"),
        ({"tier_1_min_completeness": 1.5}, "between 0 and 1"),
    ],
)
def test_an_inconsistent_config_is_refused(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ScoringConfig(**kwargs)


def test_the_config_reads_the_settings_of_the_same_names(settings: Any) -> None:
    settings.TIER_1_MIN_SCORE = 90.0
    settings.TIER_2_MIN_SCORE = 75.0
    settings.TIER_3_MIN_SCORE = 60.0
    settings.MIN_CONFIRMATIONS_TIER1 = 3
    settings.TIER_1_MIN_COMPLETENESS = 0.8
    config = ScoringConfig.from_settings()
    assert (
        config.tier_1_min_score,
        config.tier_2_min_score,
        config.tier_3_min_score,
        config.min_confirmations_tier1,
        config.tier_1_min_completeness,
    ) == (90.0, 75.0, 60.0, 3, 0.8)
    assert config.weights == COMPONENT_WEIGHTS


def test_the_default_config_equals_the_default_settings() -> None:
    from django.conf import settings

    assert ScoringConfig.from_settings(settings) == ScoringConfig()
