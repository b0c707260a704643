"""The replay clock: created from the store, advanced one locked step per tick, stops at the end."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from market.models import MarketType, ReplayClock
from market.replay_clock import advance_clock, ensure_clock, market_now, reset_clock
from scanners import tasks
from tests.factories import START, MarketFactory, hourly_candles

HOUR = timedelta(hours=1)
NO_WAIT = timedelta(0)


@pytest.fixture
def replay_settings(settings):
    settings.MARKET_SOURCE = "replay"
    settings.REPLAY_START = None
    settings.REPLAY_WARMUP_HOURS = 24
    settings.REPLAY_SPEED = 360.0
    settings.REPLAY_TICK_SECONDS = 10.0  # one market hour per tick
    return settings


@pytest.fixture
def store():
    """Spot candles from 00:00 on day 1 to 23:00 on day 3, and an earlier perp the clock ignores."""
    early = MarketFactory(base="EARLY")
    hourly_candles(early, [1.0] * 48)
    late = MarketFactory(base="LATE")
    hourly_candles(late, [1.0] * 24, start=START + 48 * HOUR)
    perp = MarketFactory(base="PERP", symbol="PERP/USDT:USDT", market_type=MarketType.FUTURES)
    hourly_candles(perp, [1.0] * 5, start=START - 100 * HOUR)


def make_clock(market_time=START, end=START + 3 * HOUR, step=HOUR) -> ReplayClock:
    return ReplayClock.objects.create(
        pk=1, market_time=market_time, start=market_time, end=end, step=step
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("replay_settings")
class TestCreation:
    def test_no_clock_is_created_for_an_empty_store(self):
        assert ensure_clock() is None
        assert not ReplayClock.objects.exists()

    @pytest.mark.usefixtures("store")
    def test_a_clock_starts_at_the_earliest_spot_candle_plus_the_warmup(self):
        clock = ensure_clock()
        assert clock.start == clock.market_time == START + 24 * HOUR
        assert clock.ticks == 0
        assert not clock.finished

    @pytest.mark.usefixtures("store")
    def test_a_clock_ends_at_the_close_of_the_last_stored_candle(self):
        assert ensure_clock().end == START + 72 * HOUR

    @pytest.mark.usefixtures("store")
    def test_a_step_is_replay_speed_times_the_tick(self, replay_settings):
        replay_settings.REPLAY_SPEED = 60.0
        replay_settings.REPLAY_TICK_SECONDS = 5.0
        assert ensure_clock().step == timedelta(minutes=5)

    def test_the_start_is_floored_to_the_hour(self):
        market = MarketFactory()
        hourly_candles(market, [1.0] * 30, start=START + timedelta(minutes=30))
        assert ensure_clock().start == START + 24 * HOUR

    @pytest.mark.usefixtures("store")
    def test_replay_start_overrides_the_computed_start(self, replay_settings):
        replay_settings.REPLAY_START = START + 50 * HOUR
        assert ensure_clock().market_time == START + 50 * HOUR

    @pytest.mark.usefixtures("store")
    def test_a_start_after_the_end_of_the_data_makes_a_finished_clock(self, replay_settings):
        replay_settings.REPLAY_WARMUP_HOURS = 1000
        clock = ensure_clock()
        assert clock.market_time == clock.end
        assert clock.finished

    @pytest.mark.usefixtures("store")
    def test_an_existing_clock_is_kept(self):
        make_clock(market_time=START + 5 * HOUR)
        assert ensure_clock().market_time == START + 5 * HOUR
        assert ReplayClock.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("replay_settings")
class TestAdvance:
    def test_advancing_moves_market_time_by_one_step(self):
        make_clock()
        clock = advance_clock()
        assert clock.market_time == START + HOUR
        assert clock.ticks == 1
        assert ReplayClock.objects.get().market_time == START + HOUR

    def test_the_clock_stops_at_the_end_and_is_marked_finished(self):
        make_clock(end=START + timedelta(hours=2, minutes=30))
        for _ in range(5):
            clock = advance_clock(min_interval=NO_WAIT)
        assert clock.market_time == START + timedelta(hours=2, minutes=30)
        assert clock.finished
        assert clock.ticks == 3

    def test_a_second_advance_within_the_same_tick_does_not_step_again(self):
        make_clock()
        advance_clock()
        clock = advance_clock()
        assert clock.market_time == START + HOUR
        assert clock.ticks == 1

    def test_a_changed_replay_speed_applies_from_the_next_tick(self, replay_settings):
        make_clock()
        replay_settings.REPLAY_SPEED = 720.0
        assert advance_clock().market_time == START + 2 * HOUR

    def test_advancing_creates_the_clock_from_the_store_first(self, store):
        clock = advance_clock()
        assert clock.market_time == START + 25 * HOUR

    def test_advancing_with_an_empty_store_does_nothing(self):
        assert advance_clock() is None
        assert not ReplayClock.objects.exists()

    def test_each_tick_logs_one_info_line_with_the_market_time(self, caplog):
        make_clock(market_time=datetime(2023, 12, 1, 4, tzinfo=UTC), end=START)
        caplog.set_level(logging.INFO, logger="market.replay_clock")
        advance_clock()
        [record] = caplog.records
        assert record.levelno == logging.INFO
        assert record.getMessage() == "replay clock 2023-12-01 05:00 UTC (tick 1)"


@pytest.mark.django_db
@pytest.mark.usefixtures("replay_settings")
class TestMarketNow:
    def test_market_now_is_the_clock_time_in_a_replay(self):
        make_clock(market_time=START + 2 * HOUR)
        assert market_now() == START + 2 * HOUR

    def test_market_now_is_the_wall_clock_before_a_clock_exists(self):
        before = timezone.now()
        assert before <= market_now() <= timezone.now()

    def test_market_now_is_the_wall_clock_for_a_live_source(self, replay_settings):
        make_clock()
        replay_settings.MARKET_SOURCE = "binance"
        assert market_now() > START + 24 * 365 * HOUR


@pytest.mark.django_db
@pytest.mark.usefixtures("replay_settings")
class TestTask:
    def test_the_task_advances_the_clock(self):
        make_clock()
        tasks.advance_replay_clock()
        assert ReplayClock.objects.get().market_time == START + HOUR

    def test_the_task_is_harmless_on_an_empty_store(self, caplog):
        caplog.set_level(logging.DEBUG, logger="market")
        tasks.advance_replay_clock()
        assert not ReplayClock.objects.exists()
        assert [r.levelno for r in caplog.records] == [logging.DEBUG]

    def test_the_task_has_the_name_beat_schedules(self):
        from celeryconfig import build_beat_schedule

        scheduled = build_beat_schedule()["advance-replay-clock"]["task"]
        assert tasks.advance_replay_clock.name == scheduled == "scanners.advance_replay_clock"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("replay_settings")
class TestConcurrency:
    def run_together(self, count: int, **kwargs) -> None:
        barrier = threading.Barrier(count)
        errors: list[BaseException] = []

        def tick() -> None:
            try:
                barrier.wait()
                advance_clock(**kwargs)
            except BaseException as error:  # reported by the test thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=tick) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    def test_advancing_reads_the_clock_under_a_row_lock(self):
        make_clock()
        with CaptureQueriesContext(connection) as queries:
            advance_clock()
        assert any("FOR UPDATE" in query["sql"] for query in queries.captured_queries)

    def test_concurrent_ticks_of_the_same_beat_step_once(self):
        make_clock(end=START + 100 * HOUR)
        advance_clock()
        ReplayClock.objects.update(updated_at=timezone.now() - timedelta(minutes=1))
        self.run_together(8)
        clock = ReplayClock.objects.get()
        assert (clock.ticks, clock.market_time) == (2, START + 2 * HOUR)

    def test_concurrent_advances_never_lose_a_step(self):
        make_clock(end=START + 100 * HOUR)
        self.run_together(8, min_interval=NO_WAIT)
        clock = ReplayClock.objects.get()
        assert (clock.ticks, clock.market_time) == (8, START + 8 * HOUR)


@pytest.mark.django_db
def test_reset_rebuilds_the_clock_from_the_store_at_the_given_start() -> None:
    market = MarketFactory(symbol="RST/USDT", base="RST")
    hourly_candles(market, [100.0] * 48)
    ensure_clock()
    advance_clock(min_interval=timedelta(0))
    restart = START + timedelta(hours=10)

    clock = reset_clock(start=restart)

    assert clock.market_time == clock.start == restart
    assert clock.ticks == 0


@pytest.mark.django_db
def test_replay_clock_command_refuses_start_without_reset() -> None:
    with pytest.raises(CommandError, match="--start goes with --reset"):
        call_command("replay_clock", "--start", "2024-01-01T00:00Z")
