"""Only fresh components count, and TIER_2 needs completeness (docs/SCORING.md, changed 2026-12-02).

A scanner's result counts in the unified score and in confirmations only while it is at most its
interval + 1 h old; MSS only while the coin is younger than MSS_MAX_AGE_HOURS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scanners.algorithms.common import Direction, ScannerResult
from scanners.models import ScanResult
from scoring.config import ScoringConfig
from scoring.ranking import latest_results, ranking_compute
from scoring.services import TIER_2, TIER_3, unified_score
from tests.factories import ScanResultFactory, ScanRunFactory

AS_OF = datetime(2025, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = ScoringConfig()


def result(
    scanner: str,
    long: float,
    *,
    age_hours: float = 0.0,
    fired: Direction = None,
    inputs: dict | None = None,
) -> ScannerResult:
    return ScannerResult(
        scanner=scanner,
        symbol="ABC/USDT",
        as_of=AS_OF - age_hours * HOUR,
        scores={},
        direction=fired,
        component={"LONG": long, "SHORT": 0.0},
        reasons=[],
        inputs=inputs or {},
        completeness=1.0,
    )


def test_tier_2_with_completeness_0_15_is_shown_as_tier_3() -> None:
    ranked = unified_score([result("rsi", 80.0, fired="LONG")], config=CONFIG)

    assert ranked is not None
    assert (ranked.unified_score, ranked.completeness) == (80.0, 0.15)
    assert ranked.score_tier == TIER_2
    assert ranked.tier == TIER_3
    assert "below the 0.40 TIER_2 needs: shown as TIER_3" in ranked.notes[0]


def test_tier_2_with_completeness_0_45_stays_tier_2() -> None:
    ranked = unified_score([result("rsi", 80.0), result("smart_money", 80.0)], config=CONFIG)

    assert ranked is not None
    assert (ranked.completeness, ranked.tier) == (0.45, TIER_2)


def test_the_tier_2_minimum_completeness_is_a_setting(settings) -> None:
    settings.TIER_2_MIN_COMPLETENESS = 0.1
    config = ScoringConfig.from_settings()
    ranked = unified_score([result("rsi", 80.0)], config=config)

    assert ranked is not None
    assert ranked.tier == TIER_2


def test_a_smart_money_result_3_hours_old_does_not_count_and_the_breakdown_says_so() -> None:
    ranked = unified_score(
        [result("smart_money", 90.0, age_hours=3, fired="LONG"), result("rsi", 40.0)],
        config=CONFIG,
        as_of=AS_OF,
    )

    assert ranked is not None
    assert ranked.unified_score == 40.0  # RSI alone
    assert ranked.confirmed_by == []  # a stale rule confirms nothing
    entry = ranked.breakdown["smart_money"]
    assert (entry["available"], entry["stale"], entry["age_hours"]) == (False, True, 3.0)
    assert entry["max_age_hours"] == 2.0
    assert "smart money result 3.0 h old" in entry["missing"]
    assert any("smart money result 3.0 h old" in reason for reason in ranked.reasons)


def test_a_result_its_interval_plus_one_hour_old_still_counts() -> None:
    ranked = unified_score(
        [result("rsi", 40.0, age_hours=5, fired="LONG"), result("smart_money", 60.0)],
        config=CONFIG,
        as_of=AS_OF,
    )

    assert ranked is not None
    assert ranked.breakdown["rsi"]["available"] is True
    assert ranked.confirmed_by == ["rsi"]


def test_freshness_follows_the_scanner_interval_settings(settings) -> None:
    settings.SMART_MONEY_INTERVAL_HOURS = 4.0
    config = ScoringConfig.from_settings()
    ranked = unified_score([result("smart_money", 90.0, age_hours=3)], config=config, as_of=AS_OF)

    assert ranked is not None
    assert ranked.breakdown["smart_money"]["available"] is True
    assert ranked.breakdown["whale"]["max_age_hours"] == 5.0  # whale rides with smart money


def test_an_mss_result_of_a_coin_older_than_72_hours_does_not_count() -> None:
    # Scored 2 h ago, when the coin was 71 h old: fresh by its interval, but the coin is 73 h old.
    listed_at = AS_OF - 73 * HOUR
    mss = result(
        "mss", 95.0, age_hours=2, fired="LONG", inputs={"listed_at": listed_at.isoformat()}
    )
    ranked = unified_score([mss, result("rsi", 40.0)], config=CONFIG, as_of=AS_OF)

    assert ranked is not None
    assert ranked.unified_score == 40.0
    entry = ranked.breakdown["mss"]
    assert (entry["available"], entry["stale"]) == (False, True)
    assert "the coin is 73.0 h old" in entry["missing"]


def test_an_mss_result_of_a_coin_younger_than_72_hours_counts() -> None:
    listed_at = AS_OF - 71 * HOUR
    mss = result("mss", 95.0, age_hours=2, inputs={"listed_at": listed_at.isoformat()})
    ranked = unified_score([mss], config=CONFIG, as_of=AS_OF)

    assert ranked is not None
    assert ranked.breakdown["mss"]["available"] is True


@pytest.mark.django_db
def test_the_stored_ranking_names_a_stale_smart_money_result_with_its_age() -> None:
    old = ScanRunFactory(scanner="smart_money", as_of=AS_OF - 3 * HOUR)
    ScanResultFactory(run=old, symbol="ABC/USDT", component={"LONG": 90.0, "SHORT": 0.0})
    now = ScanRunFactory(scanner="rsi", as_of=AS_OF)
    ScanResultFactory(run=now, symbol="ABC/USDT", component={"LONG": 40.0, "SHORT": 0.0})

    [row] = ranking_compute(["ABC/USDT"], hour=AS_OF)

    assert row.unified_score == 40.0
    assert row.breakdown["smart_money"]["stale"] is True
    assert row.breakdown["smart_money"]["age_hours"] == 3.0


@pytest.mark.django_db
def test_the_result_lookup_reads_no_result_older_than_twice_its_window() -> None:
    ancient = ScanRunFactory(scanner="smart_money", as_of=AS_OF - 5 * HOUR)  # window 2 h
    ScanResultFactory(run=ancient, symbol="ABC/USDT")
    recent = ScanRunFactory(scanner="rsi", as_of=AS_OF - 4 * HOUR)  # window 5 h
    kept = ScanResultFactory(run=recent, symbol="ABC/USDT")

    found = latest_results(["ABC/USDT"], as_of=AS_OF, config=CONFIG)

    assert [row.pk for row in found["ABC/USDT"]] == [kept.pk]
    assert ScanResult.objects.count() == 2
