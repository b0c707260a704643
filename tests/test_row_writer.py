"""The rows writer (core/row_writer.py) stores what `bulk_create` stores: the same values read
back, conflicts skipped or upserted the same way, JSON that decodes to what the scanners' JSON
rules (`scanning.json_safe`) give."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from core.row_writer import db_datetime, insert_rows, json_text
from market.values import Missing
from scanners.models import ScanResult
from scanners.scanning import RESULT_COLUMNS, json_safe
from scoring.models import UnifiedRanking
from scoring.ranking import ranking_upsert
from tests.factories import ScanRunFactory, UnifiedRankingFactory

AS_OF = datetime(2024, 3, 1, 12, tzinfo=UTC)

TRICKY = [
    float("nan"),
    float("inf"),
    np.float64("nan"),
    np.float64(1.5),
    np.float32(0.1),
    np.int64(3),
    np.bool_(True),
    datetime(2024, 3, 1, 1, 2, 3, 456, tzinfo=UTC),
    datetime(2024, 3, 1),
    date(2024, 1, 2),
    Missing("no funding"),
    timedelta(hours=1),
    {1: 2, "a": {3: np.float64(4.0)}},
    (1, 2.5, "x"),
    {3},
    10**30,
    {"a": [np.nan, float("-inf"), np.float64(2.5)], "é": "ü"},
    1e16,
    5e-324,
    -0.0,
]


@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_json_text_decodes_to_what_the_scanners_json_rules_give(value) -> None:
    assert json.loads(json_text(value, default=json_safe)) == json.loads(
        json.dumps(json_safe(value))
    )


def result_row(run_id: int, symbol: str, **values) -> tuple:
    row = {
        "run_id": run_id,
        "scanner": "rsi",
        "symbol": symbol,
        "as_of": db_datetime(AS_OF),
        "scores": json_text({"LONG": 1.0}, default=json_safe),
        "direction": None,
        "component": json_text({"LONG": 40.0, "SHORT": None}, default=json_safe),
        "reasons": json_text(["why"], default=json_safe),
        "inputs": json_text({"rsi": np.float64(28.5), "gap": Missing("x")}, default=json_safe),
        "completeness": 0.5,
        "created_at": db_datetime(timezone.now()),
    }
    row.update(values)
    return tuple(row[column] for column in RESULT_COLUMNS)


@pytest.mark.django_db
def test_inserted_rows_read_back_as_the_values_they_were_built_from() -> None:
    run = ScanRunFactory(as_of=AS_OF)

    insert_rows(ScanResult, RESULT_COLUMNS, [result_row(run.pk, "AAA/USDT", direction="LONG")])

    stored = ScanResult.objects.get(run=run)
    assert (stored.symbol, stored.as_of, stored.direction) == ("AAA/USDT", AS_OF, "LONG")
    assert stored.component == {"LONG": 40.0, "SHORT": None}
    assert stored.inputs == {"rsi": 28.5, "gap": {"missing": "x"}}
    assert stored.completeness == 0.5


@pytest.mark.django_db
def test_a_row_breaking_a_unique_constraint_is_skipped_when_conflicts_are_ignored() -> None:
    run = ScanRunFactory(as_of=AS_OF)
    insert_rows(ScanResult, RESULT_COLUMNS, [result_row(run.pk, "AAA/USDT")])

    insert_rows(
        ScanResult,
        RESULT_COLUMNS,
        [result_row(run.pk, "AAA/USDT", completeness=0.9), result_row(run.pk, "BBB/USDT")],
        ignore_conflicts=True,
    )

    assert dict(ScanResult.objects.values_list("symbol", "completeness")) == {
        "AAA/USDT": 0.5,
        "BBB/USDT": 0.5,
    }


@pytest.mark.django_db
def test_rows_beyond_one_statements_parameters_are_all_written() -> None:
    run = ScanRunFactory(as_of=AS_OF)

    insert_rows(ScanResult, RESULT_COLUMNS, [result_row(run.pk, f"C{n}/USDT") for n in range(700)])

    assert ScanResult.objects.filter(run=run).count() == 700


@pytest.mark.django_db
def test_the_ranking_upsert_replaces_a_rows_fields_and_keeps_its_creation() -> None:
    stored = UnifiedRankingFactory(symbol="AAA/USDT", tier="TIER_3", breakdown={"old": 1})
    again = UnifiedRanking(
        **{
            field.attname: getattr(stored, field.attname)
            for field in UnifiedRanking._meta.concrete_fields
            if field.attname not in ("id", "created_at", "updated_at")
        }
    )
    again.tier, again.unified_score, again.breakdown = "TIER_2", 71.5, {"rsi": {"score": 71.5}}
    new = UnifiedRankingFactory.build(symbol="BBB/USDT", scan_run=stored.scan_run)

    ranking_upsert([again, new])

    rows = {row.symbol: row for row in UnifiedRanking.objects.all()}
    assert (rows["AAA/USDT"].pk, rows["AAA/USDT"].created_at) == (stored.pk, stored.created_at)
    assert (rows["AAA/USDT"].tier, rows["AAA/USDT"].unified_score) == ("TIER_2", 71.5)
    assert rows["AAA/USDT"].breakdown == {"rsi": {"score": 71.5}}
    assert rows["AAA/USDT"].updated_at >= stored.updated_at
    assert rows["BBB/USDT"].hour == new.hour
    assert rows["BBB/USDT"].confirmed_by == ["rsi"]
