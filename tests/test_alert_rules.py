"""The alert tier of a signal: the contract's thresholds (docs/SCORING.md, "Alert tiers"), LONG
and SHORT, at and around each of them."""

from __future__ import annotations

import pytest

from alerts.models import AlertTier
from alerts.rules import signal_context, signal_tier, tier_for
from tests.factories import ScanResultFactory, ScanRunFactory, SignalFactory, UnifiedRankingFactory

T1, T2, T3 = AlertTier.TIER_1, AlertTier.TIER_2, AlertTier.TIER_3

CASES = [
    # (direction, scores, unified tier, expected)
    ("LONG", {"mss": 90.0}, None, T1),
    ("LONG", {"mss": 89.99}, None, T2),
    ("LONG", {"mss": 75.0}, None, T2),
    ("LONG", {"mss": 74.99}, None, T3),
    ("LONG", {"mss": 60.0}, None, T3),
    ("LONG", {"mss": 59.99}, None, None),
    ("LONG", {"accumulation": 10}, None, T1),
    ("LONG", {"accumulation": 9}, None, T1),
    ("LONG", {"accumulation": 8}, None, T2),
    ("LONG", {"accumulation": 7}, None, T2),
    ("LONG", {"accumulation": 6}, None, T3),
    ("LONG", {"accumulation": 5}, None, T3),
    ("LONG", {"accumulation": 4}, None, None),
    ("LONG", {"rsi": 19.99, "accumulation": 7}, None, T1),
    ("LONG", {"rsi": 20.0, "accumulation": 7}, None, T2),
    ("LONG", {"rsi": 19.99, "accumulation": 6}, None, T2),
    ("LONG", {"rsi": 19.99}, None, T2),
    ("LONG", {"rsi": 24.99}, None, T2),
    ("LONG", {"rsi": 25.0}, None, T3),
    ("LONG", {"rsi": 29.99}, None, T3),
    ("LONG", {"rsi": 30.0}, None, None),
    ("LONG", {"rsi": 50.0, "accumulation": 3, "mss": 40.0}, None, None),
    # The SHORT side mirrors the LONG one.
    ("SHORT", {"distribution": 10}, None, T1),
    ("SHORT", {"distribution": 9}, None, T1),
    ("SHORT", {"distribution": 8.99}, None, T2),
    ("SHORT", {"distribution": 8}, None, T2),
    ("SHORT", {"distribution": 7}, None, T2),
    ("SHORT", {"distribution": 6.99}, None, T3),
    ("SHORT", {"distribution": 6}, None, T3),
    ("SHORT", {"distribution": 5}, None, T3),
    ("SHORT", {"distribution": 4.99}, None, None),
    ("SHORT", {"rsi": 81.0, "distribution": 7}, None, T1),
    ("SHORT", {"rsi": 80.0, "distribution": 7}, None, T2),
    ("SHORT", {"rsi": 81.0, "distribution": 6.99}, None, T2),
    ("SHORT", {"rsi": 85.0}, None, T2),
    ("SHORT", {"rsi": 76.0}, None, T2),
    ("SHORT", {"rsi": 75.01}, None, T2),
    ("SHORT", {"rsi": 75.0}, None, T3),
    ("SHORT", {"rsi": 71.0}, None, T3),
    ("SHORT", {"rsi": 70.0}, None, None),
    ("SHORT", {"rsi": 50.0, "distribution": 3}, None, None),
    # LONG evidence does not tier a SHORT signal, nor SHORT evidence a LONG one.
    ("SHORT", {"accumulation": 9, "mss": 95.0, "rsi": 10.0}, None, None),
    ("LONG", {"distribution": 9}, None, None),
    ("LONG", {"rsi": 85.0}, None, None),
    # The unified ranking's tier, either direction.
    ("LONG", {}, "TIER_1", T1),
    ("SHORT", {}, "TIER_1", T1),
    ("SHORT", {}, "TIER_2", T2),
    ("LONG", {"rsi": 28.0}, "TIER_2", T2),
    ("LONG", {}, "TIER_3", None),
    ("LONG", {}, "TIER_4", None),
    ("LONG", {"mss": 92.0}, "TIER_2", T1),  # the higher of the two
    ("LONG", {}, None, None),
]


@pytest.mark.parametrize(("direction", "scores", "unified", "expected"), CASES)
def test_tier_at_and_around_every_threshold(direction, scores, unified, expected) -> None:
    assert tier_for(direction, scores, unified) == expected


@pytest.mark.django_db
def test_rsi_below_20_with_accumulation_7_from_the_same_run_is_tier_1() -> None:
    run = ScanRunFactory(scanner="all", symbols=["X/USDT"])
    ScanResultFactory(
        run=run,
        scanner="smart_money",
        symbol="X/USDT",
        scores={"accumulation": 7, "distribution": 1},
    )
    ScanResultFactory(run=run, scanner="rsi", symbol="X/USDT", scores={"rsi": 18.5})
    signal = SignalFactory(
        scanner="rsi", symbol="X/USDT", scores={"rsi": 18.5}, scan_run=run, as_of=run.as_of
    )
    context = signal_context(signal)
    assert context.scores == {"accumulation": 7.0, "distribution": 1.0, "rsi": 18.5}
    assert signal_tier(signal, context) == T1


@pytest.mark.django_db
def test_a_signal_without_a_run_uses_its_own_scores() -> None:
    assert signal_tier(SignalFactory(scanner="rsi", scores={"rsi": 21.0})) == T2
    assert signal_tier(SignalFactory(scanner="mss", scores={"mss": 91.0, "points": 3})) == T1
    assert signal_tier(SignalFactory(scanner="social", scores={"social": 99.0})) is None


@pytest.mark.django_db
def test_mss_below_its_minimum_completeness_does_not_count() -> None:
    signal = SignalFactory(scanner="mss", scores={"mss": 95.0}, completeness=0.4)
    assert signal_tier(signal) is None


@pytest.mark.django_db
def test_the_unified_tier_counts_only_in_the_signals_direction() -> None:
    run = ScanRunFactory(scanner="all")
    UnifiedRankingFactory(scan_run=run, symbol="Y/USDT", direction="SHORT", tier="TIER_1")
    short = SignalFactory(
        scanner="social", symbol="Y/USDT", direction="SHORT", scan_run=run, as_of=run.as_of
    )
    long = SignalFactory(
        scanner="social", symbol="Y/USDT", direction="LONG", scan_run=run, as_of=run.as_of
    )
    assert signal_tier(short) == T1
    assert signal_tier(long) is None


@pytest.mark.django_db
def test_the_coins_row_of_the_signals_hour_counts_whichever_run_computed_it() -> None:
    rsi_run = ScanRunFactory(scanner="rsi")
    smart_money_run = ScanRunFactory(scanner="smart_money", as_of=rsi_run.as_of)
    # The hour's last finish recomputed the row: it names the smart-money run, not the RSI one.
    UnifiedRankingFactory(
        scan_run=smart_money_run, symbol="Y/USDT", direction="SHORT", tier="TIER_1"
    )
    signal = SignalFactory(
        scanner="rsi", symbol="Y/USDT", direction="SHORT", scan_run=rsi_run, as_of=rsi_run.as_of
    )
    assert signal_context(signal).unified_tier == "TIER_1"


@pytest.mark.django_db
def test_a_unified_signal_uses_its_own_tier() -> None:
    signal = SignalFactory(scanner="unified", tier="TIER_2", unified_score=74.0)
    assert signal_tier(signal) == T2
    assert signal_context(signal).unified_score == 74.0


@pytest.mark.parametrize(
    "scores", [{"distribution": 9}, {"rsi": 81.0, "distribution": 7}, {"rsi": 71.0}]
)
def test_short_signals_have_no_tier_when_short_alerts_are_switched_off(settings, scores) -> None:
    settings.ALERT_SHORT_SIGNALS = False
    assert tier_for("SHORT", scores) is None
    assert tier_for("SHORT", {}, "TIER_1") is None
    assert tier_for("LONG", {"accumulation": 9}) == T1


@pytest.mark.django_db
def test_rsi_above_80_with_distribution_7_from_the_same_run_is_tier_1() -> None:
    run = ScanRunFactory(scanner="all", symbols=["Z/USDT"])
    ScanResultFactory(
        run=run,
        scanner="smart_money",
        symbol="Z/USDT",
        direction="SHORT",
        scores={"accumulation": 1, "distribution": 7},
    )
    signal = SignalFactory(
        scanner="rsi",
        symbol="Z/USDT",
        direction="SHORT",
        scores={"rsi": 81.0},
        scan_run=run,
        as_of=run.as_of,
    )
    assert signal_tier(signal) == T1
