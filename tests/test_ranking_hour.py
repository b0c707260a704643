"""One unified ranking per coin and hour, whatever order the hour's scans finish in
(docs/SCORING.md, "One ranking per coin and hour", changed 2026-12-02).

Two scans of the same hour, RSI (run A) and smart money with its whale and volume components (run
B), each write their results (as their batches do) and then run their final step
(`tracking.services.scan_finish`). Whichever finishes first, and even when the other's results
are committed while the first holds the hour's lock, the stored rows are the same, equal to a
recomputation from scratch, and the same signals are recorded.

- X/USDT: RSI 80 and smart money 80 → unified 80, TIER_2 (completeness 0.45): a unified signal.
- Y/USDT: smart money, whale and volume 80 alone would be TIER_2 (completeness 0.45); with RSI 20
  the hour's row is 65, TIER_3: no unified signal, whichever scan the first final step saw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from scanners.models import RunStatus, ScanRun
from scoring import ranking
from scoring.models import RankedRun, UnifiedRanking
from tests.factories import (
    START,
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalFactory,
    UnifiedRankingFactory,
    hourly_candles,
)
from tracking import services
from tracking.models import Signal, SignalKey

T0 = START + timedelta(hours=48)
SYMBOLS = ("X/USDT", "Y/USDT")
COMPARED = ("symbol", "hour", *(name for name in ranking._RANKING_FIELDS if name != "scan_run"))
# The results of each run: scanner → symbol → (LONG component, rule fired).
RESULTS: dict[str, dict[str, dict[str, tuple[float, str | None]]]] = {
    "rsi": {"rsi": {"X/USDT": (80.0, "LONG"), "Y/USDT": (20.0, None)}},
    "smart_money": {
        "smart_money": {"X/USDT": (80.0, "LONG"), "Y/USDT": (80.0, None)},
        "whale": {"Y/USDT": (80.0, None)},
        "volume": {"Y/USDT": (80.0, None)},
    },
}


@pytest.fixture
def priced() -> None:
    for base in ("X", "Y"):
        hourly_candles(MarketFactory(base=base), [100.0] * 240)


def start_runs() -> dict[str, ScanRun]:
    """Both runs of the hour, created (running) before either writes a result."""
    return {
        scanner: ScanRunFactory(
            scanner=scanner, as_of=T0, symbols=list(SYMBOLS), status=RunStatus.RUNNING
        )
        for scanner in RESULTS
    }


def write_results(run: ScanRun) -> None:
    for scanner, by_symbol in RESULTS[run.scanner].items():
        for symbol, (long, fired) in by_symbol.items():
            ScanResultFactory(
                run=run,
                scanner=scanner,
                symbol=symbol,
                direction=fired,
                component={"LONG": long, "SHORT": 0.0},
            )


def rows() -> list[dict[str, Any]]:
    stored = UnifiedRanking.objects.filter(hour=T0).order_by("symbol")
    return [{name: getattr(row, name) for name in COMPARED} for row in stored]


def recomputed() -> list[dict[str, Any]]:
    fresh = ranking.ranking_compute(list(SYMBOLS), hour=T0)
    return [
        {name: getattr(row, name) for name in COMPARED if name != "signal_decided"} for row in fresh
    ]


def signals() -> list[tuple]:
    return sorted(
        Signal.objects.values_list("scanner", "symbol", "direction", "as_of", "tier", "entry_price")
    )


def forget_everything() -> None:
    Signal.objects.all().delete()
    SignalKey.objects.all().delete()
    ScanRun.objects.all().delete()  # results, rows and RankedRun go with their runs


def play(order: tuple[str, str]) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Run `order[0]`'s batches and final step, then `order[1]`'s; return rows and signals."""
    runs = start_runs()
    for scanner in order:
        write_results(runs[scanner])
        services.scan_finish(runs[scanner].pk)
    outcome = rows(), signals()
    assert [{k: v for k, v in row.items() if k != "signal_decided"} for row in outcome[0]] == (
        recomputed()
    )
    forget_everything()
    return outcome


@pytest.mark.postgres
@pytest.mark.django_db
def test_two_same_hour_scans_give_the_same_rows_and_signals_in_either_order(priced) -> None:
    rsi_first = play(("rsi", "smart_money"))
    smart_money_first = play(("smart_money", "rsi"))

    assert rsi_first == smart_money_first
    final_rows, recorded = rsi_first
    assert [(row["symbol"], row["tier"], row["unified_score"]) for row in final_rows] == [
        ("X/USDT", "TIER_2", 80.0),
        ("Y/USDT", "TIER_3", 65.0),
    ]
    assert [row["signal_decided"] for row in final_rows] == [True, False]
    assert [(scanner, symbol) for scanner, symbol, *_ in recorded] == [
        ("rsi", "X/USDT"),
        ("smart_money", "X/USDT"),
        ("unified", "X/USDT"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_first_final_step_of_an_hour_leaves_the_unified_signals_to_the_last(priced) -> None:
    runs = start_runs()
    write_results(runs["smart_money"])
    services.scan_finish(runs["smart_money"].pk)  # sees Y alone in TIER_2 (no RSI yet)

    assert UnifiedRanking.objects.get(symbol="Y/USDT").enters_signal_tier is True
    assert not Signal.objects.filter(scanner="unified").exists()  # the RSI run is still to rank

    write_results(runs["rsi"])
    services.scan_finish(runs["rsi"].pk)

    assert UnifiedRanking.objects.get(symbol="Y/USDT").tier == "TIER_3"
    assert list(Signal.objects.filter(scanner="unified").values_list("symbol", flat=True)) == [
        "X/USDT"
    ]


@pytest.mark.django_db
def test_a_run_of_the_hour_lost_before_ranking_leaves_the_decision_to_a_later_run(
    priced,
) -> None:
    runs = start_runs()
    write_results(runs["smart_money"])
    write_results(runs["rsi"])
    services.scan_finish(runs["smart_money"].pk)
    assert not Signal.objects.filter(scanner="unified").exists()
    # The RSI run's final step never comes; scan_start marks it failed as stale.
    ScanRun.objects.filter(pk=runs["rsi"].pk).update(status=RunStatus.FAILED)

    later = ScanRunFactory(
        scanner="smart_money", as_of=T0 + timedelta(hours=1), status=RunStatus.RUNNING
    )
    ScanResultFactory(run=later, symbol="Z/USDT")
    services.scan_finish(later.pk)

    assert list(Signal.objects.filter(scanner="unified").values_list("symbol", "as_of")) == [
        ("X/USDT", T0)
    ]


# --- finished together (the replay's in-process path) -----------------------------------------


def play_together(order: tuple[str, str]) -> tuple[list[dict[str, Any]], list[tuple]]:
    """Write both runs' results, then finish them together in `order`; return rows and signals."""
    runs = start_runs()
    for scanner in order:
        write_results(runs[scanner])
    finished = services.scan_finish_hour([runs[scanner].pk for scanner in order])
    assert [(run.scanner, run.status) for run in finished] == [
        (scanner, RunStatus.FINISHED) for scanner in order
    ]
    outcome = rows(), signals()
    forget_everything()
    return outcome


@pytest.mark.django_db
def test_finishing_an_hours_scans_together_stores_the_rows_and_signals_of_one_by_one(
    priced,
) -> None:
    one_by_one = play(("rsi", "smart_money"))

    assert play_together(("rsi", "smart_money")) == one_by_one
    assert play_together(("smart_money", "rsi")) == one_by_one


def signals_recorded(order: tuple[str, str], *, together: bool) -> list[int]:
    """Each run's `signals_recorded` once both are finished in `order`, one by one or together;
    a run may hold a signal from before (a resumed replay's hour)."""
    runs = start_runs()
    SignalFactory(scanner="rsi", symbol="Z/USDT", as_of=T0, scan_run=runs["rsi"])
    for scanner in order:
        write_results(runs[scanner])
        if not together:
            services.scan_finish(runs[scanner].pk)
    if together:
        finished = services.scan_finish_hour([runs[scanner].pk for scanner in order])
        assert [run.signals_recorded for run in finished] == [
            ScanRun.objects.get(pk=runs[scanner].pk).signals_recorded for scanner in order
        ]
    counts = [ScanRun.objects.get(pk=runs[scanner].pk).signals_recorded for scanner in order]
    forget_everything()
    return counts


@pytest.mark.django_db
@pytest.mark.parametrize("order", [("rsi", "smart_money"), ("smart_money", "rsi")])
def test_finishing_an_hours_scans_together_counts_each_runs_signals_as_one_by_one(
    priced, order: tuple[str, str]
) -> None:
    # The unified signal belongs to the smart money run (the later run: X's latest scan) and is
    # recorded with the hour's last run: counted for it only when it is marked finished after.
    expected = {("rsi", "smart_money"): [2, 2], ("smart_money", "rsi"): [1, 2]}[order]

    assert signals_recorded(order, together=False) == expected
    assert signals_recorded(order, together=True) == expected


@pytest.mark.django_db
def test_the_final_hours_rows_handed_to_the_signals_are_the_rows_stored(priced) -> None:
    runs = start_runs()
    for run in runs.values():
        write_results(run)
    # A coin of the runs that scores nothing now, whose row an earlier final step stored.
    ScanResultFactory(run=runs["rsi"], symbol="W/USDT", component={"LONG": None, "SHORT": None})
    UnifiedRankingFactory(scan_run=runs["rsi"], symbol="W/USDT", as_of=T0)

    update = ranking.ranking_update_for_runs(list(runs.values()))

    assert update.hour_final
    handed = [
        (row.symbol, row.as_of, row.direction, row.unified_score, row.tier, row.confidence)
        for row in update.rows
    ]
    assert handed == list(
        UnifiedRanking.objects.filter(hour=T0)
        .order_by("symbol")
        .values_list("symbol", "as_of", "direction", "unified_score", "tier", "confidence")
    )
    assert [row[0] for row in handed] == ["W/USDT", "X/USDT", "Y/USDT"]


@pytest.mark.django_db
def test_an_hour_still_to_rank_hands_its_rows_on_as_stored(priced) -> None:
    runs = start_runs()
    write_results(runs["rsi"])

    update = ranking.ranking_update_for_runs([runs["rsi"]])  # the smart money run is to come

    assert not update.hour_final
    assert [row.pk for row in update.rows] == list(
        UnifiedRanking.objects.filter(hour=T0).order_by("symbol").values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_ranking_runs_of_different_hours_together_is_refused(priced) -> None:
    now = ScanRunFactory(as_of=T0, status=RunStatus.RUNNING)
    later = ScanRunFactory(as_of=T0 + timedelta(hours=1), status=RunStatus.RUNNING)

    with pytest.raises(ValueError, match="one hour only"):
        ranking.ranking_update_for_runs([now, later])
    assert not RankedRun.objects.exists()


# --- concurrently, on PostgreSQL ---------------------------------------------------------------


def race(first: str, second: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """`first`'s final step reads, then holds the hour's lock while `second`'s results are
    committed and `second`'s final step (another thread and connection) waits for that lock."""
    runs = start_runs()
    write_results(runs[first])
    has_read = threading.Event()
    go_on = threading.Event()
    compute = ranking.ranking_compute

    def compute_then_wait(*args: Any, **kwargs: Any) -> list[UnifiedRanking]:
        computed = compute(*args, **kwargs)
        if threading.current_thread().name == "first":
            has_read.set()
            assert go_on.wait(30)
        return computed

    monkeypatch.setattr(ranking, "ranking_compute", compute_then_wait)
    errors: list[BaseException] = []

    def finish(run: ScanRun) -> Callable[[], None]:
        def body() -> None:
            try:
                services.scan_finish(run.pk)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)
            finally:
                connection.close()

        return body

    one = threading.Thread(target=finish(runs[first]), name="first")
    one.start()
    assert has_read.wait(30)
    write_results(runs[second])  # committed (autocommit) while the first holds the lock
    two = threading.Thread(target=finish(runs[second]), name="second")
    two.start()
    _await_lock_wait()
    go_on.set()
    one.join(60)
    two.join(60)
    assert not errors
    assert RankedRun.objects.count() == 2
    outcome = rows(), signals()
    monkeypatch.setattr(ranking, "ranking_compute", compute)
    assert [{k: v for k, v in row.items() if k != "signal_decided"} for row in outcome[0]] == (
        recomputed()
    )
    forget_everything()
    return outcome


def _await_lock_wait() -> None:
    """Until a backend waits for an advisory lock (the second final step at the hour's lock)."""
    deadline = threading.Event()
    timer = threading.Timer(30, deadline.set)
    timer.start()
    try:
        with connection.cursor() as cursor:
            while not deadline.is_set():
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                if cursor.fetchone()[0]:
                    return
                deadline.wait(0.01)
        raise AssertionError("the second final step never waited for the hour's lock")
    finally:
        timer.cancel()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_final_steps_give_the_same_rows_and_signals_in_either_order(
    priced, monkeypatch
) -> None:
    rsi_first = race("rsi", "smart_money", monkeypatch)
    smart_money_first = race("smart_money", "rsi", monkeypatch)

    assert rsi_first == smart_money_first
    assert [(row["symbol"], row["tier"]) for row in rsi_first[0]] == [
        ("X/USDT", "TIER_2"),
        ("Y/USDT", "TIER_3"),
    ]
    assert [(scanner, symbol) for scanner, symbol, *_ in rsi_first[1]] == [
        ("rsi", "X/USDT"),
        ("smart_money", "X/USDT"),
        ("unified", "X/USDT"),
    ]
