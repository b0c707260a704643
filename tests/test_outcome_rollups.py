"""The daily outcome rollups (tracking/rollups.py): kept by the database's triggers for every
write, they always equal the sums recomputed from the signal and check rows (after checks
complete, after a rerun, after compaction, after a delete, after the rebuild command), and a
report read from them equals the report read from the rows alone."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, timedelta

import pytest
from django.core.management import call_command

from tests.factories import START, CheckedOutcomeFactory, OutcomeCheckFactory, SignalFactory
from tests.test_outcome_checks import AS_OF, ENTRY, coin  # noqa: F401 - the fixture
from tracking import analytics
from tracking.models import OutcomeCheck, OutcomeRollup, RollupLevel, Signal
from tracking.outcomes import checks_run
from tracking.performance_filters import PerformanceFilters
from tracking.rollups import (
    KEY,
    LEVEL_COLUMNS,
    NANOS,
    SUMS,
    rollup_rows,
    rollups_compact,
    rollups_rebuild,
)
from tracking.services import SignalCandidate, signal_record
from tracking.window_aggregates import window

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
NOW = START + 60 * DAY


def _key(level: int, signal: Signal, horizon: str) -> tuple:
    kept = LEVEL_COLUMNS[level]
    values = {
        name: getattr(signal, name) if name in kept else ""
        for name in ("scanner", "tier", "direction", "symbol")
    }
    day = signal.as_of.astimezone(UTC).date()
    return (level, day, horizon, *values.values())


def from_rows() -> list[dict]:
    """The rollups recomputed in Python from the rows, as `rollup_rows` shows them."""
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    for signal in Signal.objects.all():
        for level in RollupLevel:
            totals[_key(level, signal, "")]["signals"] += 1
    for check in OutcomeCheck.objects.select_related("signal"):
        done = check.status == "done"
        ret, excess = check.adjusted_return_pct, check.excess_return_pct
        add = {
            "pending": check.status in ("pending", "claimed"),
            "unavailable": check.status == "unavailable",
            "n": done,
            "wins": done and check.outcome == "WIN",
            "losses": done and check.outcome == "LOSS",
            "neutral": done and check.outcome == "NEUTRAL",
            "returns": done and ret is not None,
            "win_returns": done and check.outcome == "WIN" and ret is not None,
            "loss_returns": done and check.outcome == "LOSS" and ret is not None,
            "excess_n": done and excess is not None,
        }
        nanos = round(ret * NANOS) if done and ret is not None else 0
        sums = {
            "sum_return": nanos,
            "sum_win": nanos if check.outcome == "WIN" else 0,
            "sum_loss": nanos if check.outcome == "LOSS" else 0,
            "sum_positive": nanos if nanos > 0 else 0,
            "sum_negative": nanos if nanos < 0 else 0,
            "sum_excess": round(excess * NANOS) if done and excess is not None else 0,
        }
        for level in RollupLevel:
            total = totals[_key(level, check.signal, check.horizon)]
            for name, flag in add.items():
                total[name] += int(flag)
            for name, value in sums.items():
                total[name] += value
    rows = [
        {**dict(zip(KEY, key, strict=True)), **values}
        for key, values in totals.items()
        if any(values.values())
    ]
    return sorted(rows, key=lambda row: tuple(str(row[name]) for name in KEY))


def rollups() -> list[dict]:
    return sorted(rollup_rows(), key=lambda row: tuple(str(row[name]) for name in KEY))


def record(scanner: str, direction: str, symbol: str = "ABC/USDT") -> Signal:
    candidate = SignalCandidate(
        scanner=scanner, symbol=symbol, direction=direction, as_of=AS_OF, completeness=1.0
    )
    signal = signal_record(candidate, entry_price=ENTRY)
    assert signal is not None
    return signal


# --- kept by the triggers -------------------------------------------------------------------------


def test_recorded_signals_and_their_open_checks_are_in_the_rollups():
    record("rsi", "LONG")
    record("mss", "SHORT")
    assert rollups() == from_rows()
    signals = rollup_rows(level=RollupLevel.DIMENSIONS, horizon="")
    assert sorted((row["scanner"], row["signals"]) for row in signals) == [("mss", 1), ("rsi", 1)]


def test_checks_completed_by_the_workers_move_from_pending_to_their_outcome(coin):  # noqa: F811
    signals = [record("rsi", "LONG"), record("mss", "SHORT"), record("social", "LONG")]
    due = OutcomeCheck.objects.filter(signal__in=signals, horizon__in=["1h", "4h"])
    counts = checks_run(list(due.values_list("pk", flat=True)))
    assert counts["done"] == 6
    assert rollups() == from_rows()
    four_hours = rollup_rows(level=RollupLevel.DIMENSIONS, horizon="4h", scanner="rsi")
    assert [(row["n"], row["wins"], row["pending"], row["sum_return"]) for row in four_hours] == [
        (1, 1, 0, 6 * NANOS)
    ]
    # A rerun (a duplicate delivery) writes nothing and adds nothing.
    before = rollups()
    assert checks_run(list(due.values_list("pk", flat=True)))["done"] == 0
    assert rollups() == before


def test_compaction_folds_each_key_into_one_row_and_keeps_the_numbers():
    for i in range(6):
        signal = SignalFactory(scanner="rsi", as_of=NOW - 3 * DAY + i * timedelta(minutes=5))
        CheckedOutcomeFactory(signal=signal, return_pct=float(i) - 2.5)
    before = rollups()
    assert OutcomeRollup.objects.filter(merged=False).count() > len(before)
    rollups_compact()
    assert rollups() == before == from_rows()
    assert not OutcomeRollup.objects.filter(merged=False).exists()
    assert OutcomeRollup.objects.count() == len(before)
    rollups_compact()  # nothing new: nothing changes
    assert OutcomeRollup.objects.count() == len(before)


def test_deleting_a_signal_takes_its_numbers_out():
    kept, gone = SignalFactory(as_of=NOW - 3 * DAY), SignalFactory(as_of=NOW - 3 * DAY)
    CheckedOutcomeFactory(signal=kept, return_pct=6.0)
    CheckedOutcomeFactory(signal=gone, return_pct=-4.0)
    gone.delete()
    assert rollups() == from_rows()
    rollups_compact()
    assert rollups() == from_rows()


def test_the_rebuild_command_recomputes_the_rollups_idempotently():
    for i in range(5):
        signal = SignalFactory(as_of=NOW - (i + 2) * DAY, tier="TIER_1" if i % 2 else "")
        CheckedOutcomeFactory(signal=signal, return_pct=1.25 * i - 3, excess_return_pct=0.5)
        OutcomeCheckFactory(signal=signal, horizon="7d")
    expected = from_rows()
    OutcomeRollup.objects.filter(level=RollupLevel.SYMBOL).delete()  # lost somehow
    call_command("rebuild_outcome_rollups", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert rollups() == expected
    assert not OutcomeRollup.objects.filter(merged=False).exists()
    written = rollups_rebuild()
    assert written == OutcomeRollup.objects.count()
    assert rollups() == expected


# --- the report from the rollups ------------------------------------------------------------------


@pytest.fixture
def history():
    """120 signals over 50 days (three scanners, tiers, both directions, four symbols), each
    with checked outcomes at 24h and 1h with returns of 6 decimals, some pending or without a
    price; rollups compacted as the sweeper leaves them."""
    rng = random.Random(5)
    for i in range(120):
        signal = SignalFactory(
            scanner=rng.choice(["rsi", "mss", "unified"]),
            tier=rng.choice(["", "TIER_1", "TIER_2"]),
            direction=rng.choice(["LONG", "SHORT"]),
            symbol=rng.choice(["BTC/USDT", "ETH/USDT", "SOL/USDT", "ABC/USDT"]),
            as_of=NOW - 50 * DAY + i * timedelta(hours=10) + timedelta(minutes=rng.randint(0, 59)),
        )
        for horizon in ("24h", "1h"):
            if rng.random() < 0.1:
                OutcomeCheckFactory(signal=signal, horizon=horizon, status="unavailable")
            elif rng.random() < 0.1:
                OutcomeCheckFactory(signal=signal, horizon=horizon)
            else:
                excess = round(rng.gauss(0, 3), 6) if rng.random() < 0.8 else None
                CheckedOutcomeFactory(
                    signal=signal,
                    horizon=horizon,
                    return_pct=round(rng.gauss(0.5, 5), 6),
                    excess_return_pct=excess,
                )
    rollups_compact()


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"days": 7},
        {"days": 30},
        {"days": None},
        {"days": 2},
        {"days": 1},
        {"horizon": "1h"},
        {"scanner": "rsi"},
        {"tier": "TIER_1", "direction": "SHORT"},
        {"symbol": "ETH/USDT"},
        {"scanner": "mss", "symbol": "SOL/USDT"},
    ],
)
def test_the_window_from_the_rollups_equals_the_window_from_the_rows(history, filters):
    # Now at a midnight, early in a day and late in one (each end read both ways), with
    # signals after now (taken out of its day's rollup).
    early, late = NOW + timedelta(hours=5, minutes=1), NOW - timedelta(hours=7, minutes=13)
    for now in (NOW.replace(hour=0), early, late, late - 20 * DAY):
        chosen = PerformanceFilters(**({"days": 45, "now": now} | filters))
        rolled = window(chosen, top=5, horizons=True)
        rows = window(chosen, top=5, horizons=True, from_rows=True)
        assert rolled == rows, chosen
    assert rolled.overall["n"] > 0 or filters.get("days") in (1, 2)


def test_the_report_counts_a_signal_at_a_midnight_on_the_right_side_of_the_window(history):
    midnight = NOW.replace(hour=0) - 3 * DAY
    signal = SignalFactory(scanner="social", as_of=midnight)
    CheckedOutcomeFactory(signal=signal, return_pct=7.0)
    rollups_compact()
    for days, counted in ((3, 0), (4, 1)):  # (midnight, …] excludes it, (midnight − 1 day, …] not
        report = analytics.performance_report(
            PerformanceFilters(days=days, now=midnight + 3 * DAY, scanner="social")
        )
        assert report["summary"]["n"] == counted
