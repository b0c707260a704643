"""A scan from start_scan to a finished run, through a real Celery worker (memory broker, threads).

Each test waits on the worker's `task_postrun` of the chord body, never on a sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery import Celery
from celery.signals import task_postrun
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.embedded_celery import EmbeddedCelery
from market.sources.base import SourceError
from market.sources.replay import ReplaySource
from scanners import scanning
from scanners.models import CoinFailure, RunStatus, ScanBatch, ScanResult, ScanRun
from scoring.models import UnifiedRanking
from tests.factories import START, MarketFactory, ScanRunFactory, hourly_candles

HOURS = 120
AS_OF = START + timedelta(hours=HOURS)


def pipeline_app() -> Celery:
    app = Celery("cryptosatx-pipeline-test")
    app.config_from_object("celeryconfig")
    app.conf.update(broker_url="memory://", result_backend="cache+memory://")
    app.autodiscover_tasks(["cryptosatx", "scanners", "scoring", "tracking"], force=True)
    return app


@contextmanager
def embedded_worker() -> Iterator[Celery]:
    app = pipeline_app()
    # pytest-django's SQLite test database is in memory with a shared cache, whose table locks
    # fail instead of waiting: one worker thread there, several on PostgreSQL.
    threads = 3 if connection.vendor == "postgresql" else 1
    worker = EmbeddedCelery(app, threads=threads, with_beat=False)
    worker.start()
    try:
        yield app
    finally:
        worker.stop()


@contextmanager
def scan_finished() -> Iterator[threading.Event]:
    """Set when a worker has run the chord body `tracking.finish_scan` to success."""
    done = threading.Event()

    def on_postrun(sender=None, state=None, **kwargs) -> None:
        if sender is not None and sender.name == "tracking.finish_scan" and state == "SUCCESS":
            done.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        yield done
    finally:
        task_postrun.disconnect(on_postrun)


def make_coins(*bases: str) -> list[str]:
    """Spot markets with HOURS hourly candles each (a gentle zig-zag); their symbols."""
    symbols = []
    for number, base in enumerate(bases):
        market = MarketFactory(base=base)
        closes = [100.0 + number + (i % 5) - 2 * (i % 3) for i in range(HOURS)]
        hourly_candles(market, closes)
        symbols.append(market.symbol)
    return symbols


class FlakySource(ReplaySource):
    """The replay source, failing as a whole for a batch holding `fail_batch_with`, and failing
    for one coin (`broken`) whenever it is asked about it."""

    def __init__(self, *, fail_batch_with: str | None = None, broken: str | None = None) -> None:
        super().__init__()
        self.fail_batch_with = fail_batch_with
        self.broken = broken

    def candles(self, symbols, **kwargs):
        if self.fail_batch_with in symbols:
            raise SourceError("replay", "the exchange answered 503 for the whole batch")
        if self.broken in symbols:
            raise RuntimeError(f"corrupt candles for {self.broken}")
        return super().candles(symbols, **kwargs)


def run_scan(*, timeout: float = 60, **kwargs) -> ScanRun:
    with embedded_worker(), scan_finished() as finished:
        run = scanning.scan_start("rsi", as_of=AS_OF, **kwargs)
        assert finished.wait(timeout), "the chord body did not run"
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_a_scan_records_one_result_per_coin_and_finishes_with_its_counts(settings) -> None:
    settings.SCAN_BATCH_SIZE = 2
    symbols = make_coins("AAA", "BBB", "CCC", "DDD", "EEE")

    run = run_scan(symbols=symbols)

    assert run.status == RunStatus.FINISHED
    assert (run.coins_total, run.coins_done, run.coins_failed) == (5, 5, 0)
    assert (run.batches_total, run.batches_done) == (3, 3)
    assert run.started_at is not None
    assert run.finished_at >= run.started_at
    assert sorted(ScanResult.objects.filter(run=run).values_list("symbol", flat=True)) == symbols
    assert all("rsi" in r.scores for r in ScanResult.objects.filter(run=run))
    assert UnifiedRanking.objects.filter(scan_run=run).count() == 5


@pytest.mark.django_db(transaction=True)
def test_the_chord_completes_when_some_coins_fail(settings, monkeypatch) -> None:
    settings.SCAN_BATCH_SIZE = 2
    symbols = make_coins("AAA", "BBB", "CCC", "DDD")
    monkeypatch.setattr(scanning, "get_market_source", lambda: FlakySource(broken="BBB/USDT"))

    run = run_scan(symbols=symbols)

    assert run.status == RunStatus.FINISHED
    assert (run.coins_done, run.coins_failed) == (3, 1)
    failure = CoinFailure.objects.get(run=run)
    assert failure.symbol == "BBB/USDT"
    assert "corrupt candles for BBB/USDT" in failure.error
    assert not ScanResult.objects.filter(run=run, symbol="BBB/USDT").exists()


@pytest.mark.django_db(transaction=True)
def test_the_chord_completes_when_a_whole_batch_fails(settings, monkeypatch) -> None:
    settings.SCAN_BATCH_SIZE = 2
    symbols = make_coins("AAA", "BBB", "CCC", "DDD")  # batches: AAA+BBB, CCC+DDD
    monkeypatch.setattr(
        scanning, "get_market_source", lambda: FlakySource(fail_batch_with="CCC/USDT")
    )

    run = run_scan(symbols=symbols)

    assert run.status == RunStatus.FINISHED
    assert (run.coins_done, run.coins_failed, run.batches_done) == (2, 2, 2)
    failed = dict(CoinFailure.objects.filter(run=run).values_list("symbol", "error"))
    assert set(failed) == {"CCC/USDT", "DDD/USDT"}
    assert all("503 for the whole batch" in error for error in failed.values())
    assert set(ScanResult.objects.filter(run=run).values_list("symbol", flat=True)) == {
        "AAA/USDT",
        "BBB/USDT",
    }


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_batch_writes_nothing_twice_and_counts_nothing_twice() -> None:
    symbols = make_coins("AAA", "BBB")
    run = ScanRunFactory(
        status=RunStatus.QUEUED, as_of=AS_OF, symbols=symbols, batches_done=0, coins_done=0
    )

    first = scanning.scan_batch_run(run.pk, symbols, 0)
    again = scanning.scan_batch_run(run.pk, symbols, 0)

    run.refresh_from_db()
    assert first.written
    assert not again.written
    assert (run.coins_done, run.coins_failed, run.batches_done) == (2, 0, 1)
    assert ScanResult.objects.filter(run=run).count() == 2
    assert ScanBatch.objects.filter(run=run).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_given_the_run_its_caller_holds_is_written_and_counted_once_if_run_twice() -> None:
    symbols = make_coins("AAA", "BBB")
    run = ScanRunFactory(
        status=RunStatus.QUEUED, as_of=AS_OF, symbols=symbols, batches_done=0, coins_done=0
    )
    source = ReplaySource(clock=lambda: AS_OF)

    first = scanning.scan_batch_run(run.pk, symbols, 0, source=source, run=run)
    again = scanning.scan_batch_run(run.pk, symbols, 0, source=source, run=run)

    run.refresh_from_db()
    assert first.written
    assert not again.written
    assert (run.coins_done, run.coins_failed, run.batches_done) == (2, 0, 1)
    assert ScanResult.objects.filter(run=run).count() == 2


@pytest.mark.django_db
def test_a_batch_starting_makes_a_queued_run_running_and_keeps_a_running_runs_start() -> None:
    queued = ScanRunFactory(status=RunStatus.QUEUED, started_at=None, as_of=AS_OF)
    began = timezone.now() - timedelta(minutes=5)
    running = ScanRunFactory(status=RunStatus.RUNNING, started_at=began, as_of=AS_OF)
    ScanRun.objects.filter(pk__in=[queued.pk, running.pk]).update(progressed_at=began)

    scanning.run_progress(queued.pk)
    scanning.run_progress(running.pk)

    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == RunStatus.RUNNING
    assert queued.started_at is not None
    assert queued.started_at > began
    assert (running.status, running.started_at) == (RunStatus.RUNNING, began)
    assert queued.progressed_at > began
    assert running.progressed_at > began


@pytest.mark.django_db
@pytest.mark.parametrize("held", [RunStatus.QUEUED, RunStatus.RUNNING])
def test_a_batch_starting_with_its_run_in_hand_moves_the_run_as_without_it(held) -> None:
    began = timezone.now() - timedelta(minutes=5)
    queued = ScanRunFactory(status=RunStatus.QUEUED, started_at=None, as_of=AS_OF)
    running = ScanRunFactory(status=RunStatus.RUNNING, started_at=began, as_of=AS_OF)
    ScanRun.objects.filter(pk__in=[queued.pk, running.pk]).update(progressed_at=began)
    # Each held as `held`: current for one of the two runs, out of date for the other.
    in_hand = {run.pk: ScanRun.objects.get(pk=run.pk) for run in (queued, running)}
    for run in in_hand.values():
        run.status = held

    scanning.run_progress(queued.pk, run=in_hand[queued.pk])
    scanning.run_progress(running.pk, run=in_hand[running.pk])

    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == RunStatus.RUNNING
    assert queued.started_at > began
    assert (running.status, running.started_at) == (RunStatus.RUNNING, began)
    assert queued.progressed_at > began
    assert running.progressed_at > began


@pytest.mark.django_db
def test_a_finished_run_is_marked_once_and_a_run_no_batch_started_gets_its_start() -> None:
    never_started = ScanRunFactory(status=RunStatus.QUEUED, started_at=None, as_of=AS_OF)

    first = scanning.run_mark_finished(never_started.pk, signals_recorded=2)
    again = scanning.run_mark_finished(never_started.pk, signals_recorded=5)

    assert (first.status, first.signals_recorded) == (RunStatus.FINISHED, 2)
    assert first.started_at == first.finished_at
    assert (again.signals_recorded, again.finished_at) == (2, first.finished_at)


@pytest.mark.django_db(transaction=True)
def test_a_batch_given_the_run_its_caller_holds_writes_what_it_writes_when_reading_it() -> None:
    symbols = make_coins("AAA", "BBB")
    read, held = (
        ScanRunFactory(
            status=RunStatus.QUEUED, as_of=AS_OF, symbols=symbols, batches_done=0, coins_done=0
        )
        for _ in range(2)
    )
    source = ReplaySource(clock=lambda: AS_OF)

    scanning.scan_batch_run(read.pk, symbols, 0, source=source)
    scanning.scan_batch_run(held.pk, symbols, 0, source=source, run=held)

    def written(run: ScanRun) -> tuple:
        run.refresh_from_db()
        rows = ScanResult.objects.filter(run=run).order_by("symbol", "scanner")
        fields = ("symbol", "scanner", "as_of", "scores", "component", "reasons", "inputs")
        return (
            (run.status, run.coins_done, run.coins_failed, run.batches_done),
            [tuple(getattr(row, name) for name in fields) for row in rows],
        )

    assert written(held) == written(read)
    assert written(held)[0] == (RunStatus.RUNNING, 2, 0, 1)


@pytest.mark.django_db(transaction=True)
def test_a_run_its_caller_runs_at_once_is_created_running_and_its_batch_only_counts() -> None:
    symbols = make_coins("AAA", "BBB")
    source = ReplaySource(clock=lambda: AS_OF)

    run = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF, send=False, source=source)
    stored = ScanRun.objects.get(pk=run.pk)
    assert (stored.status, stored.started_at) == (RunStatus.RUNNING, run.started_at)
    assert stored.started_at is not None
    with CaptureQueriesContext(connection) as statements:
        report = scanning.scan_batch_run(run.pk, symbols, 0, source=source, run=run)

    stored.refresh_from_db()
    assert report.written
    assert (stored.status, stored.coins_done, stored.batches_done) == (RunStatus.RUNNING, 2, 1)
    run_updates = [
        query["sql"] for query in statements if query["sql"].startswith('UPDATE "scanners_scanrun"')
    ]
    assert len(run_updates) == 1  # the batch's counts; its start moved nothing more
    assert not [query for query in statements if "SAVEPOINT" in query["sql"]]


@pytest.mark.django_db
def test_overlapping_runs_of_the_same_scanner_are_refused() -> None:
    symbols = make_coins("AAA")
    first = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)

    with pytest.raises(
        scanning.ScanRefused, match=rf"rsi scan is already queued \(run #{first.pk}"
    ):
        scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)
    # Another scanner is not an overlap.
    assert scanning.scan_start("smart_money", symbols=symbols, as_of=AS_OF).pk != first.pk


@pytest.mark.django_db
def test_start_scan_rejects_unknown_symbols_listing_them() -> None:
    make_coins("AAA")
    with pytest.raises(scanning.UnknownSymbols) as caught:
        scanning.scan_start("rsi", symbols=["AAA", "NOPE", "ZZZ/USDT"], as_of=AS_OF)
    assert caught.value.symbols == ["NOPE/USDT", "ZZZ/USDT"]
    assert not ScanRun.objects.exists()


@pytest.mark.django_db
def test_live_an_unknown_symbol_is_one_not_read_yet_and_the_refusal_says_how_to_read_it(
    settings,
) -> None:
    settings.MARKET_SOURCE = "binance"
    make_coins("AAA")
    with pytest.raises(scanning.UnknownSymbols) as caught:
        scanning.scan_start("rsi", symbols=["AAA", "BNB"], as_of=AS_OF)
    assert caught.value.symbols == ["BNB/USDT"]
    assert "no binance spot market" not in str(caught.value)
    assert "a universe scan (--coins N) or fetch_ohlcv reads them" in str(caught.value)


@pytest.mark.django_db
def test_the_universe_is_usdt_spot_by_quote_volume_without_stablecoins_or_leveraged_tokens() -> (
    None
):
    for base, volume in [("BTC", 50), ("ETH", 40), ("USDC", 99), ("BTCUP", 98), ("JUP", 10)]:
        market = MarketFactory(base=base)
        candles = hourly_candles(market, [100.0] * 30)
        for candle in candles:
            candle.volume = volume
            candle.save(update_fields=["volume"])
    MarketFactory(base="BTC", quote="EUR")

    universe = scanning.universe_select(ReplaySource(), as_of=START + timedelta(hours=30), size=2)

    assert universe == ["BTC/USDT", "ETH/USDT"]
    everything = scanning.universe_select(
        ReplaySource(), as_of=START + timedelta(hours=30), size=10
    )
    assert everything == ["BTC/USDT", "ETH/USDT", "JUP/USDT"]


@pytest.mark.django_db
def test_a_watchlist_scan_scans_the_watchlist_coins() -> None:
    from scanners.watchlists import watchlist_create
    from tests.factories import UserFactory

    make_coins("AAA", "BBB", "CCC")
    watchlist = watchlist_create(owner=UserFactory(), name="mine", symbols=["CCC", "AAA"])

    run = scanning.scan_start("rsi", watchlist_id=watchlist.pk, as_of=AS_OF)

    assert run.symbols == ["AAA/USDT", "CCC/USDT"]
    assert run.watchlist == watchlist


def test_finish_scan_is_routed_to_the_scans_queue() -> None:
    app = pipeline_app()
    for name in ("tracking.finish_scan", "scanners.start_scan", "scanners.scan_batch"):
        assert app.amqp.router.route({}, name)["queue"].name == "scans"
    assert app.amqp.router.route({}, "tracking.check_outcome")["queue"].name == "outcomes"


@pytest.mark.django_db
def test_in_a_replay_scheduled_scans_fall_due_by_market_time() -> None:
    from scanners.schedules import start_due_scans

    symbols = make_coins("AAA", "BBB")
    ScanRun.objects.all().delete()

    def due(hours: float) -> list[str]:
        started = start_due_scans(AS_OF + timedelta(hours=hours))
        runs = ScanRun.objects.filter(pk__in=started)
        assert all(sorted(run.symbols) == symbols for run in runs)
        names = sorted(runs.values_list("scanner", flat=True))
        runs.update(status=RunStatus.FINISHED)  # as if their chords had finished
        return names

    assert due(0) == ["mss", "rsi", "smart_money", "social"]
    assert due(0.5) == []
    assert due(1) == ["smart_money"]
    assert due(2) == ["smart_money", "social"]
    assert due(4) == ["rsi", "smart_money", "social"]
    assert due(5) == ["smart_money"]
    assert due(6) == ["mss", "smart_money", "social"]
    assert set(ScanRun.objects.values_list("trigger", flat=True)) == {"schedule"}


@pytest.mark.django_db
def test_a_run_finished_with_the_run_its_caller_holds_is_returned_as_stored() -> None:
    held = ScanRunFactory(status=RunStatus.RUNNING, as_of=AS_OF, started_at=timezone.now())

    returned = scanning.run_mark_finished(held.pk, signals_recorded=3, run=held)

    stored = ScanRun.objects.get(pk=held.pk)
    fields = ("status", "started_at", "finished_at", "signals_recorded", "coins_done")
    values = [getattr(returned, name) for name in fields]
    assert values == [getattr(stored, name) for name in fields]
    assert stored.status == RunStatus.FINISHED
