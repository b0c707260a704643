"""Outcome checks: created with the signal, swept when due, computed as of their T, written once.

The rules themselves are in test_outcome_rules.py; restarts with real processes in
test_outcome_restarts.py.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from celery.signals import task_postrun
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from market.models import Candle, Market, ReplayClock
from market.replay_clock import CLOCK_PK
from tests.factories import START, MarketFactory, OutcomeCheckFactory, SignalFactory
from tests.test_scan_pipeline import embedded_worker
from tracking import outcomes
from tracking.models import (
    HORIZON_DELTAS,
    Barrier,
    CheckStatus,
    Outcome,
    OutcomeCheck,
    Signal,
    TrackerState,
)
from tracking.outcomes import checks_create_for, checks_run, checks_sweep, tracker_set_enabled
from tracking.services import SignalCandidate, signal_record

HOUR = timedelta(hours=1)
AS_OF = START + 10 * HOUR
ENTRY = 100.0
# The coin's candles opening at AS_OF, AS_OF + 1h, ...: (high, low, close).
CANDLES = [(102.0, 99.5, 101.0), (104.0, 97.5, 103.0), (107.0, 103.0, 104.0), (106.5, 105.0, 106.0)]
T4 = AS_OF + 4 * HOUR


def candle(market: Market, open_time: datetime, high: float, low: float, close: float) -> Candle:
    return Candle.objects.create(
        market=market,
        timeframe="1h",
        open_time=open_time,
        open=close,
        high=high,
        low=low,
        close=close,
        volume=10.0,
    )


@pytest.fixture
def coin() -> Market:
    """ABC/USDT from AS_OF − 1h to T4 (the CANDLES after AS_OF), BTC/USDT +2.5 % over the same
    four hours; nothing after T4."""
    market = MarketFactory(base="ABC")
    btc = MarketFactory(base="BTC")
    candle(market, AS_OF - HOUR, 100.5, 99.5, ENTRY)
    for hour, (high, low, close) in enumerate(CANDLES):
        candle(market, AS_OF + hour * HOUR, high, low, close)
    candle(btc, AS_OF - HOUR, 40_100.0, 39_900.0, 40_000.0)
    for hour, close in enumerate([40_200.0, 40_500.0, 40_800.0, 41_000.0]):
        candle(btc, AS_OF + hour * HOUR, close + 50, close - 50, close)
    return market


def make_clock(market_time: datetime) -> ReplayClock:
    return ReplayClock.objects.create(
        pk=CLOCK_PK, market_time=market_time, start=START, end=START + 1000 * HOUR, step=HOUR
    )


def check_of(signal: Signal, horizon: str = "4h") -> OutcomeCheck:
    return OutcomeCheckFactory(signal=signal, horizon=horizon)


@dataclass
class SentTasks:
    """Stands in for the Celery app in the sweeper: records what it would send."""

    sent: list[tuple[str, list[int], datetime | None]] = field(default_factory=list)
    fail_after: int | None = None

    def send_task(self, name: str, args: list, eta: datetime | None = None, **kwargs) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("the broker is down")
        self.sent.append((name, args[0], eta))


@pytest.fixture
def sent(monkeypatch) -> SentTasks:
    recorder = SentTasks()
    monkeypatch.setattr(outcomes, "current_app", recorder)
    return recorder


@pytest.mark.django_db
class TestCreation:
    def test_recording_a_signal_creates_its_five_checks_due_at_each_horizon(self) -> None:
        candidate = SignalCandidate(
            scanner="rsi", symbol="ABC/USDT", direction="LONG", as_of=AS_OF, completeness=1.0
        )
        signal = signal_record(candidate, entry_price=ENTRY)
        checks = {check.horizon: check for check in signal.outcome_checks.all()}
        assert set(checks) == {"1h", "4h", "24h", "7d", "30d"}
        for horizon, check in checks.items():
            assert check.due_at == check.run_at == AS_OF + HORIZON_DELTAS[horizon]
            assert check.status == CheckStatus.PENDING

    def test_a_signal_rolled_back_takes_its_checks_with_it(self) -> None:
        candidate = SignalCandidate(
            scanner="rsi", symbol="ABC/USDT", direction="LONG", as_of=AS_OF, completeness=1.0
        )
        counted = []

        def record_then_fail() -> None:
            with transaction.atomic():
                signal_record(candidate, entry_price=ENTRY)
                counted.append(OutcomeCheck.objects.count())
                raise RuntimeError("the scan failed after recording")

        with pytest.raises(RuntimeError):
            record_then_fail()
        assert counted == [5]
        assert not OutcomeCheck.objects.exists()

    def test_creating_the_checks_again_adds_none(self) -> None:
        signal = SignalFactory(as_of=AS_OF)
        checks_create_for(signal)
        checks_create_for(signal)
        assert signal.outcome_checks.count() == 5

    def test_the_database_refuses_a_second_check_for_the_same_horizon(self) -> None:
        check = check_of(SignalFactory(as_of=AS_OF), "1h")
        with pytest.raises(IntegrityError), transaction.atomic():
            OutcomeCheck.objects.create(
                signal=check.signal, horizon="1h", due_at=check.due_at, run_at=check.due_at
            )


@pytest.mark.django_db
class TestRunning:
    def test_a_long_check_stores_price_return_excursions_barrier_and_btc(self, coin) -> None:
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF, entry_price=ENTRY))
        assert checks_run([check.pk])["done"] == 1
        check.refresh_from_db()
        assert check.status == CheckStatus.DONE
        assert (check.exit_price, check.return_pct, check.adjusted_return_pct) == (6.0 + 100, 6, 6)
        assert check.outcome == Outcome.WIN
        assert (check.mfe_pct, check.mae_pct) == (7.0, -2.5)
        assert check.first_barrier == Barrier.WIN
        assert (check.btc_return_pct, check.excess_return_pct) == (2.5, 3.5)
        assert check.attempts == 1
        assert check.checked_at is not None
        assert check.unavailable_reason == ""

    def test_a_short_check_is_adjusted_for_its_direction(self, coin) -> None:
        signal = SignalFactory(symbol=coin.symbol, direction="SHORT", as_of=AS_OF)
        check = check_of(signal)
        checks_run([check.pk])
        check.refresh_from_db()
        assert (check.return_pct, check.adjusted_return_pct) == (6.0, -6.0)
        assert check.outcome == Outcome.LOSS
        assert (check.mfe_pct, check.mae_pct) == (2.5, -7.0)
        assert check.first_barrier == Barrier.LOSS  # high 104 ≥ 103 in the second candle
        # Short BTC would have made −2.5 %; the signal made −6 %.
        assert check.excess_return_pct == -3.5

    def test_a_late_check_equals_an_on_time_check(self, coin) -> None:
        on_time = check_of(SignalFactory(scanner="rsi", symbol=coin.symbol, as_of=AS_OF))
        late = check_of(SignalFactory(scanner="mss", symbol=coin.symbol, as_of=AS_OF))
        clock = make_clock(T4)
        checks_run([on_time.pk])
        # A week of market later, with a crash in the candles after T stored meanwhile.
        for hour in range(4, 24 * 7):
            candle(coin, AS_OF + hour * HOUR, 60.0, 40.0, 50.0)
        clock.market_time = T4 + 24 * 7 * HOUR
        clock.save()
        checks_run([late.pk])
        fields = [
            "status",
            "exit_price",
            "return_pct",
            "adjusted_return_pct",
            "outcome",
            "mfe_pct",
            "mae_pct",
            "first_barrier",
            "btc_return_pct",
            "excess_return_pct",
        ]
        values = OutcomeCheck.objects.filter(pk__in=[on_time.pk, late.pk]).values_list(*fields)
        assert len(set(values)) == 1

    def test_a_check_run_twice_writes_once(self, coin) -> None:
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        assert checks_run([check.pk])["done"] == 1
        first = OutcomeCheck.objects.get(pk=check.pk)
        assert checks_run([check.pk]) == {
            "done": 0,
            "retry": 0,
            "unavailable": 0,
            "not_due": 0,
            "skipped": 1,
        }
        again = OutcomeCheck.objects.get(pk=check.pk)
        assert (again.checked_at, again.attempts) == (first.checked_at, 1)

    def test_a_duplicate_delivery_that_read_the_check_before_the_first_wrote_writes_nothing(
        self, coin
    ) -> None:
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        stale_copy = OutcomeCheck.objects.select_related("signal").get(pk=check.pk)
        checks_run([check.pk])
        written = OutcomeCheck.objects.get(pk=check.pk)
        result = outcomes.check_compute(stale_copy)
        assert outcomes._write(stale_copy, result, now=T4) == "skipped"
        assert OutcomeCheck.objects.get(pk=check.pk).checked_at == written.checked_at

    def test_a_gap_at_t_is_marked_with_its_reason_and_retried_never_guessed(self, coin) -> None:
        # The coin's candles stop two hours before T: the last price at T is 2 h old.
        Candle.objects.filter(market=coin, open_time__gte=AS_OF + 2 * HOUR).delete()
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        make_clock(T4)
        assert checks_run([check.pk])["retry"] == 1
        check.refresh_from_db()
        assert check.status == CheckStatus.PENDING
        assert (check.attempts, check.run_at, check.due_at) == (1, T4 + HOUR, T4)
        assert "no price in that gap" in check.unavailable_reason
        assert check.exit_price is None
        assert check.outcome == ""

    def test_a_gap_still_there_after_every_attempt_makes_the_check_unavailable(self, coin) -> None:
        Candle.objects.filter(market=coin, open_time__gte=AS_OF + 2 * HOUR).delete()
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        clock = make_clock(T4)
        results = []
        for attempt in range(outcomes.MAX_ATTEMPTS):
            clock.market_time = T4 + attempt * outcomes.RETRY_DELAY
            clock.save()
            results.append(checks_run([check.pk]))
        assert [r["retry"] for r in results] == [1] * (outcomes.MAX_ATTEMPTS - 1) + [0]
        assert results[-1]["unavailable"] == 1
        check.refresh_from_db()
        assert check.status == CheckStatus.UNAVAILABLE
        assert check.attempts == outcomes.MAX_ATTEMPTS
        assert "no price in that gap" in check.unavailable_reason
        assert (check.exit_price, check.return_pct, check.outcome) == (None, None, "")
        assert check.checked_at is not None

    def test_a_gap_filled_before_the_retry_completes_the_check(self, coin) -> None:
        removed = list(Candle.objects.filter(market=coin, open_time__gte=AS_OF + 2 * HOUR))
        Candle.objects.filter(pk__in=[c.pk for c in removed]).delete()
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        make_clock(T4 + HOUR)
        checks_run([check.pk])
        for row in removed:
            row.pk = None
            row.save()
        checks_run([check.pk])
        check.refresh_from_db()
        assert (check.status, check.exit_price, check.attempts) == (CheckStatus.DONE, 106.0, 2)

    def test_a_coin_without_a_market_is_marked_unavailable_with_the_reason(self, coin) -> None:
        check = check_of(SignalFactory(symbol="GONE/USDT", as_of=AS_OF))
        check.attempts = outcomes.MAX_ATTEMPTS - 1
        check.save()
        checks_run([check.pk])
        check.refresh_from_db()
        assert check.status == CheckStatus.UNAVAILABLE
        assert "no binance spot market GONE/USDT" in check.unavailable_reason

    def test_without_a_btc_price_the_check_is_done_with_no_excess_return(self, coin) -> None:
        Market.objects.filter(symbol="BTC/USDT").delete()
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        checks_run([check.pk])
        check.refresh_from_db()
        assert check.status == CheckStatus.DONE
        assert (check.btc_return_pct, check.excess_return_pct) == (None, None)

    def test_a_check_whose_t_is_ahead_of_the_replay_clock_is_not_run(self, coin) -> None:
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        OutcomeCheck.objects.filter(pk=check.pk).update(status=CheckStatus.CLAIMED)
        make_clock(T4 - timedelta(minutes=1))
        assert checks_run([check.pk])["not_due"] == 1
        check.refresh_from_db()
        assert (check.status, check.attempts) == (CheckStatus.PENDING, 0)


@pytest.mark.django_db
class TestSweep:
    def test_live_it_claims_the_checks_due_within_the_lookahead_and_sends_them_with_eta(
        self, sent
    ) -> None:
        now = timezone.now()
        signal = SignalFactory(as_of=now - HOUR + timedelta(minutes=2))
        checks_create_for(signal)
        assert checks_sweep() == 1
        ((name, ids, eta),) = sent.sent
        due = signal.outcome_checks.get(horizon="1h")
        assert (name, ids, eta) == ("tracking.run_outcome_checks", [due.pk], due.due_at)
        due.refresh_from_db()
        assert due.status == CheckStatus.CLAIMED
        assert signal.outcome_checks.filter(status=CheckStatus.PENDING).count() == 4

    def test_checks_due_together_travel_in_batches_of_at_most_200(self, sent) -> None:
        now = timezone.now()
        first, second = now + timedelta(minutes=1), now + timedelta(minutes=2)
        signals = SignalFactory.create_batch(260, as_of=first - HOUR)
        OutcomeCheck.objects.bulk_create(
            [OutcomeCheck(signal=s, horizon="1h", due_at=first, run_at=first) for s in signals]
            + [
                OutcomeCheck(signal=s, horizon="4h", due_at=second, run_at=second)
                for s in signals[:10]
            ]
        )
        assert checks_sweep() == 270
        assert [(len(ids), eta) for _, ids, eta in sent.sent] == [
            (200, first),
            (60, first),
            (10, second),
        ]

    def test_in_a_replay_it_sends_what_the_clock_has_reached_at_once_and_nothing_beyond(
        self, sent
    ) -> None:
        signal = SignalFactory(as_of=AS_OF)
        checks_create_for(signal)
        make_clock(AS_OF + 4 * HOUR)
        assert checks_sweep() == 2
        assert {eta for _, _, eta in sent.sent} == {None}
        sent_ids = {pk for _, ids, _ in sent.sent for pk in ids}
        assert sent_ids == set(
            signal.outcome_checks.filter(horizon__in=["1h", "4h"]).values_list("pk", flat=True)
        )

    def test_a_replay_telling_its_hour_is_swept_at_that_hour_without_the_clock_read(
        self, sent
    ) -> None:
        signal = SignalFactory(as_of=AS_OF)
        checks_create_for(signal)
        make_clock(AS_OF + 30 * HOUR)  # where it is does not matter: the sweep is told its hour
        with CaptureQueriesContext(connection) as statements:
            assert checks_sweep(now=AS_OF + 4 * HOUR) == 2
        assert {eta for _, _, eta in sent.sent} == {None}
        assert not [query for query in statements if "replayclock" in query["sql"]]
        assert TrackerState.objects.get().last_sweep_market_time == AS_OF + 4 * HOUR

    def test_a_disabled_tracker_sends_nothing_and_loses_nothing(self, sent) -> None:
        checks_create_for(SignalFactory(as_of=AS_OF))
        tracker_set_enabled(False)
        assert checks_sweep() == 0
        assert OutcomeCheck.objects.filter(status=CheckStatus.PENDING).count() == 5
        tracker_set_enabled(True)
        assert checks_sweep() == 5
        assert TrackerState.objects.get().last_sweep_at is not None

    def test_a_stale_claim_is_claimed_again_and_a_fresh_one_is_left_alone(self, sent) -> None:
        stale = OutcomeCheckFactory(signal=SignalFactory(as_of=AS_OF))
        fresh = OutcomeCheckFactory(signal=SignalFactory(as_of=AS_OF))
        wall = timezone.now()
        OutcomeCheck.objects.filter(pk=stale.pk).update(
            status=CheckStatus.CLAIMED, claimed_at=wall - outcomes.claim_stale_after() - HOUR
        )
        OutcomeCheck.objects.filter(pk=fresh.pk).update(status=CheckStatus.CLAIMED, claimed_at=wall)
        assert checks_sweep() == 1
        assert sent.sent[0][1] == [stale.pk]

    def test_checks_a_failed_send_did_not_send_go_back_to_pending(self, sent) -> None:
        first = OutcomeCheckFactory(signal=SignalFactory(as_of=AS_OF))
        second = OutcomeCheckFactory(signal=SignalFactory(as_of=AS_OF + HOUR))
        sent.fail_after = 1
        with pytest.raises(ConnectionError):
            checks_sweep()
        statuses = dict(OutcomeCheck.objects.values_list("pk", "status"))
        assert statuses == {first.pk: CheckStatus.CLAIMED, second.pk: CheckStatus.PENDING}

    def test_finished_checks_are_never_sent_again(self, sent, coin) -> None:
        check = check_of(SignalFactory(symbol=coin.symbol, as_of=AS_OF))
        checks_run([check.pk])
        assert checks_sweep() == 0


@pytest.mark.django_db(transaction=True)
def test_a_sweep_in_a_replay_has_a_real_worker_complete_the_due_checks(coin) -> None:
    signal = SignalFactory(symbol=coin.symbol, as_of=AS_OF)
    checks_create_for(signal)
    make_clock(T4)
    done = threading.Event()
    ran: list[dict] = []

    def on_postrun(sender=None, retval=None, **kwargs) -> None:
        if sender is not None and sender.name == "tracking.run_outcome_checks":
            ran.append(retval)
            done.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with embedded_worker():
            assert checks_sweep() == 2
            assert done.wait(30)
    finally:
        task_postrun.disconnect(on_postrun)
    statuses = dict(signal.outcome_checks.values_list("horizon", "status"))
    assert statuses == {
        "1h": CheckStatus.DONE,
        "4h": CheckStatus.DONE,
        "24h": CheckStatus.PENDING,
        "7d": CheckStatus.PENDING,
        "30d": CheckStatus.PENDING,
    }
    assert ran == [{"done": 2, "retry": 0, "unavailable": 0, "not_due": 0, "skipped": 0}]


@pytest.mark.django_db
class TestAdmin:
    def test_a_signal_page_shows_its_outcome_checks(self, admin_client, coin) -> None:
        signal = SignalFactory(symbol=coin.symbol, as_of=AS_OF)
        checks_create_for(signal)
        checks_run(list(signal.outcome_checks.values_list("pk", flat=True)))
        page = admin_client.get(reverse("admin:tracking_signal_change", args=[signal.pk]))
        assert page.status_code == 200
        html = page.content.decode()
        assert "outcome check" in html.lower()
        assert "both_in_one_candle" in html or "Win level first" in html

    def test_overdue_checks_are_one_filter_away(self, admin_client) -> None:
        overdue = OutcomeCheckFactory(signal=SignalFactory(symbol="OLD/USDT", as_of=AS_OF))
        OutcomeCheckFactory(signal=SignalFactory(symbol="NEW/USDT", as_of=timezone.now()))
        url = reverse("admin:tracking_outcomecheck_changelist")
        page = admin_client.get(url, {"overdue": "yes"})
        assert page.status_code == 200
        assert list(page.context["cl"].queryset) == [overdue]
        for query in ({"horizon": "1h"}, {"outcome": "WIN"}, {"status": "pending"}, {}):
            assert admin_client.get(url, query).status_code == 200


@pytest.mark.django_db
class TestBatches:
    """A batch is read in a few range queries and written in one transaction, with every rule of
    a single check intact."""

    def test_one_batch_mixes_done_retry_unavailable_and_already_written_checks(self, coin) -> None:
        done = check_of(SignalFactory(scanner="rsi", symbol=coin.symbol, as_of=AS_OF))
        short = check_of(
            SignalFactory(scanner="mss", symbol=coin.symbol, direction="SHORT", as_of=AS_OF)
        )
        retry = check_of(SignalFactory(symbol="GONE/USDT", as_of=AS_OF))
        final = check_of(SignalFactory(symbol="LOST/USDT", as_of=AS_OF))
        OutcomeCheck.objects.filter(pk=final.pk).update(attempts=outcomes.MAX_ATTEMPTS - 1)
        # Another run has written this one already.
        raced = check_of(SignalFactory(scanner="ema", symbol=coin.symbol, as_of=AS_OF))
        make_clock(T4)
        OutcomeCheck.objects.filter(pk=raced.pk).update(status=CheckStatus.DONE, attempts=1)

        counts = checks_run([done.pk, short.pk, retry.pk, final.pk, raced.pk])
        assert counts == {"done": 2, "retry": 1, "unavailable": 1, "not_due": 0, "skipped": 1}
        rows = {row.pk: row for row in OutcomeCheck.objects.all()}
        assert (rows[done.pk].status, rows[done.pk].mfe_pct, rows[done.pk].mae_pct) == (
            CheckStatus.DONE,
            7.0,
            -2.5,
        )
        assert rows[done.pk].first_barrier == Barrier.WIN
        assert (rows[done.pk].btc_return_pct, rows[done.pk].excess_return_pct) == (2.5, 3.5)
        assert (rows[short.pk].adjusted_return_pct, rows[short.pk].excess_return_pct) == (
            -6.0,
            -3.5,
        )
        assert rows[short.pk].first_barrier == Barrier.LOSS
        assert (rows[retry.pk].status, rows[retry.pk].attempts) == (CheckStatus.PENDING, 1)
        assert rows[retry.pk].run_at == T4 + outcomes.RETRY_DELAY
        assert "GONE/USDT" in rows[retry.pk].unavailable_reason
        assert rows[final.pk].status == CheckStatus.UNAVAILABLE
        assert rows[final.pk].attempts == outcomes.MAX_ATTEMPTS
        assert "LOST/USDT" in rows[final.pk].unavailable_reason
        assert (rows[raced.pk].attempts, rows[raced.pk].exit_price) == (1, None)

    def test_a_stale_batch_writes_nothing_over_a_written_check(self, coin) -> None:
        checks = [
            check_of(SignalFactory(scanner=scanner, symbol=coin.symbol, as_of=AS_OF))
            for scanner in ("rsi", "mss")
        ]
        make_clock(T4)
        stale = list(OutcomeCheck.objects.select_related("signal").order_by("pk"))
        checks_run([check.pk for check in checks])
        written = {row.pk: row.checked_at for row in OutcomeCheck.objects.all()}
        prices = outcomes._Prices()
        prices.load(stale)
        results = {check.pk: outcomes.check_compute(check, prices) for check in stale}
        counts = outcomes._write_batch(stale, results, now=T4)
        assert counts["skipped"] == 2
        assert counts["done"] == 0
        assert {row.pk: row.checked_at for row in OutcomeCheck.objects.all()} == written

    def test_the_queries_of_a_batch_do_not_grow_with_its_checks(self, coin) -> None:
        other = MarketFactory(base="XYZ")
        candle(other, AS_OF - HOUR, 10.0, 10.0, 10.0)
        for hour in range(4):
            candle(other, AS_OF + hour * HOUR, 11.0, 9.0, 10.0 + hour)
        make_clock(T4)

        def batch(n: int) -> list[int]:
            ids = []
            for i in range(n):
                signal = SignalFactory(symbol=(coin, other)[i % 2].symbol, as_of=AS_OF)
                ids += [check_of(signal, "1h").pk, check_of(signal, "4h").pk]
            return ids

        small, large = batch(2), batch(20)
        with CaptureQueriesContext(connection) as few:
            assert checks_run(small)["done"] == len(small)
        with CaptureQueriesContext(connection) as many:
            assert checks_run(large)["done"] == len(large)
        if connection.vendor == "postgresql":
            assert len(many) == len(few) <= 8
        else:  # the conditional per-row updates, inside one transaction
            assert len(many) - len(few) == len(large) - len(small)

    def test_numpy_excursions_equal_the_per_candle_rule(self) -> None:
        rng = random.Random(7)
        for _ in range(300):
            direction = rng.choice(["LONG", "SHORT"])
            entry = rng.choice([100.0, 0.3, 41_234.5])
            n = rng.randint(1, 40)
            # Moves on a grid of 0.01 %: many land exactly on the ±5 % / ±3 % barriers.
            highs = [entry * (1 + rng.randint(0, 700) / 10_000) for _ in range(n)]
            lows = [entry * (1 - rng.randint(0, 700) / 10_000) for _ in range(n)]
            win, loss = 5.0, 3.0
            assert outcomes.excursions(
                direction, entry, highs, lows, win=win, loss=loss
            ) == _excursions_by_candle(direction, entry, highs, lows, win=win, loss=loss)


def _excursions_by_candle(direction, entry, highs, lows, *, win, loss) -> outcomes.Excursions:
    """The rule as docs/SCORING.md states it, one candle at a time."""
    pct = outcomes.percent_change
    if direction == "SHORT":
        favourable = [pct(entry, low) * -1 for low in lows]
        adverse = [pct(entry, high) * -1 for high in highs]
    else:
        favourable = [pct(entry, high) for high in highs]
        adverse = [pct(entry, low) for low in lows]
    first = Barrier.NONE
    for best, worst in zip(favourable, adverse, strict=True):
        if best >= win or worst <= -loss:
            first = (
                Barrier.BOTH
                if best >= win and worst <= -loss
                else Barrier.WIN
                if best >= win
                else Barrier.LOSS
            )
            break
    return outcomes.Excursions(max(favourable), min(adverse), first)
