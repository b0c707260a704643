"""Signals after a run: scanner rules that fired, coins entering TIER_1/TIER_2, and the cooldown."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from scanners.models import RunStatus
from tests.factories import (
    START,
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    hourly_candles,
)
from tracking import services
from tracking.models import Signal
from tracking.signals import signal_recorded

SYMBOL = "SIG/USDT"
T0 = START + timedelta(hours=48)


@pytest.fixture
def priced_market():
    """A spot market with a price every hour for 10 days from START (close = 100 + hour)."""
    market = MarketFactory(base="SIG")
    hourly_candles(market, [100.0 + hour for hour in range(240)])
    return market


def finished_scan(
    as_of, *, direction=None, long=50.0, short=10.0, scanner="rsi", smart_money_long=None
):
    """A run of `scanner` whose result for SYMBOL has the given rule direction and components
    (and, with `smart_money_long`, a smart-money result of that LONG component beside it, which
    did not fire); finished through tracking.services.scan_finish (what the chord body runs)."""
    run = ScanRunFactory(scanner=scanner, as_of=as_of, symbols=[SYMBOL], status=RunStatus.RUNNING)
    ScanResultFactory(
        run=run, symbol=SYMBOL, direction=direction, component={"LONG": long, "SHORT": short}
    )
    if smart_money_long is not None:
        ScanResultFactory(
            run=run,
            scanner="smart_money",
            symbol=SYMBOL,
            component={"LONG": smart_money_long, "SHORT": 0.0},
        )
    services.scan_finish(run.pk)
    run.refresh_from_db()
    return run


def signals(scanner: str) -> list[Signal]:
    return list(Signal.objects.filter(scanner=scanner).order_by("as_of"))


@pytest.mark.django_db
def test_a_fired_rule_records_a_signal_at_the_price_at_as_of(priced_market) -> None:
    run = finished_scan(T0, direction="LONG", long=40.0)

    [signal] = signals("rsi")
    assert (signal.symbol, signal.direction, signal.as_of) == (SYMBOL, "LONG", T0)
    assert signal.entry_price == 100.0 + 47  # close of the last 1h candle closed by T0
    assert signal.scanner_score == 40.0
    assert signal.scan_run == run
    assert run.status == RunStatus.FINISHED
    assert run.signals_recorded == 1


@pytest.mark.django_db
def test_the_cooldown_prevents_duplicate_signals_within_24_hours_and_not_after(
    priced_market,
) -> None:
    finished_scan(T0, direction="LONG", long=40.0)
    finished_scan(T0 + timedelta(hours=4), direction="LONG", long=40.0)
    finished_scan(T0 + timedelta(hours=23), direction="LONG", long=40.0)
    assert len(signals("rsi")) == 1

    finished_scan(T0 + timedelta(hours=30), direction="LONG", long=40.0)
    assert [s.as_of for s in signals("rsi")] == [T0, T0 + timedelta(hours=30)]


@pytest.mark.django_db
def test_the_cooldown_is_per_direction_and_scanner(priced_market) -> None:
    finished_scan(T0, direction="LONG", long=40.0)
    finished_scan(T0 + timedelta(hours=1), direction="SHORT", long=10.0, short=40.0)
    finished_scan(T0 + timedelta(hours=2), direction="LONG", long=40.0, scanner="smart_money")

    assert sorted(Signal.objects.values_list("scanner", "direction")) == [
        ("rsi", "LONG"),
        ("rsi", "SHORT"),
        ("smart_money", "LONG"),
    ]


@pytest.mark.django_db
def test_a_unified_signal_is_recorded_only_when_a_coin_enters_tier_1_or_tier_2(
    priced_market,
) -> None:
    # RSI and smart money with the same component: the unified score (completeness 0.45).
    first = finished_scan(T0, long=80.0, smart_money_long=80.0)  # TIER_2: enters
    finished_scan(T0 + timedelta(hours=1), long=82.0, smart_money_long=82.0)  # still TIER_2
    finished_scan(T0 + timedelta(hours=60), long=40.0, smart_money_long=40.0)  # falls to TIER_4
    # Enters again, long after the cooldown.
    finished_scan(T0 + timedelta(hours=90), long=75.0, smart_money_long=75.0)

    unified = signals("unified")
    assert [s.as_of for s in unified] == [T0, T0 + timedelta(hours=90)]
    assert unified[0].tier == "TIER_2"
    assert unified[0].unified_score == 80.0
    assert unified[0].scan_run == first
    assert not signals("rsi")  # the RSI rule itself never fired


@pytest.mark.django_db
def test_a_coin_without_a_price_gets_no_signal() -> None:
    MarketFactory(base="SIG")  # a market, but no candle
    run = finished_scan(T0, direction="LONG", long=90.0)

    assert not Signal.objects.exists()
    assert run.status == RunStatus.FINISHED


@pytest.mark.django_db
def test_a_stale_entry_price_records_no_signal(caplog) -> None:
    market = MarketFactory(base="SIG")
    hourly_candles(market, [100.0] * 46)  # the last closes at T0 - 2 h: a data gap at T0
    with caplog.at_level("WARNING", logger="tracking.services"):
        run = finished_scan(T0, direction="LONG", long=90.0, smart_money_long=90.0)

    assert not Signal.objects.exists()
    assert run.status == RunStatus.FINISHED
    assert "an entry price more than 1 h old is stale" in caplog.text


@pytest.mark.django_db
def test_an_entry_price_one_hour_old_records_the_signal() -> None:
    market = MarketFactory(base="SIG")
    hourly_candles(market, [100.0] * 47)  # the last closes at T0 - 1 h
    finished_scan(T0, direction="LONG", long=40.0)

    [signal] = signals("rsi")
    assert signal.entry_price == 100.0


@pytest.mark.django_db
def test_finish_scan_twice_records_nothing_twice(priced_market) -> None:
    run = finished_scan(T0, direction="LONG", long=90.0, smart_money_long=90.0)
    before = list(Signal.objects.values_list("scanner", "direction"))
    services.scan_finish(run.pk)
    ScanRunFactory._meta.model.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    services.scan_finish(run.pk)  # even when its status says it never finished

    assert sorted(Signal.objects.values_list("scanner", "direction")) == sorted(before)
    assert len(before) == 2  # rsi and unified


@pytest.mark.django_db
def test_signal_recorded_is_sent_inside_the_creating_transaction(priced_market) -> None:
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append((instance.pk, connection.in_atomic_block))

    signal_recorded.connect(receiver)
    try:
        finished_scan(T0, direction="LONG", long=40.0)
    finally:
        signal_recorded.disconnect(receiver)
    assert seen
    assert all(in_transaction for _pk, in_transaction in seen)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_finishes_cannot_both_record_the_same_signal(priced_market) -> None:
    candidate = services.SignalCandidate(
        scanner="rsi", symbol=SYMBOL, direction="LONG", as_of=T0, completeness=1.0
    )
    barrier = threading.Barrier(4)
    errors = []

    def record(offset_hours: int) -> None:
        try:
            barrier.wait(10)
            services.signal_record(
                services.SignalCandidate(
                    **{**candidate.__dict__, "as_of": T0 + timedelta(hours=offset_hours)}
                ),
                entry_price=1.0,
            )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(hours,)) for hours in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert Signal.objects.filter(scanner="rsi", symbol=SYMBOL, direction="LONG").count() == 1
