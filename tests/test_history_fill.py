"""The demo's history fill: what the first `make run` replays in the background, how it resumes,
and what it says while it runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cryptosatx.history_fill import HistoryFill, history_fill_due, progress_text
from cryptosatx.models import ReplayProgress, ReplayPurpose, ReplayState
from cryptosatx.services import check_replay_clock, public_health
from market.models import ReplayClock
from market.replay_clock import advance_clock, ensure_clock
from tests.factories import START
from tests.test_scan_pipeline import make_coins

HOUR = timedelta(hours=1)


@pytest.fixture
def store(replay_settings):
    replay_settings.REPLAY_WARMUP_HOURS = 48
    replay_settings.REPLAY_FILL_DAYS = 1
    return make_coins("AAA", "BTC")


@pytest.mark.django_db
def test_a_first_start_fills_the_first_days_from_the_clocks_start(store):
    plan, resumed = history_fill_due()
    clock = ensure_clock()
    assert resumed is None
    assert (plan.start, plan.end) == (clock.market_time, clock.market_time + 24 * HOUR)
    assert plan.keep_clock


@pytest.mark.django_db
def test_no_fill_once_the_clock_has_moved_on_its_own(store):
    ensure_clock()
    ReplayClock.objects.update(ticks=3)
    assert history_fill_due() is None


@pytest.mark.django_db
def test_no_fill_when_it_is_turned_off(store, settings):
    settings.REPLAY_FILL_DAYS = 0
    assert history_fill_due() is None


@pytest.mark.django_db(transaction=True)
def test_the_clock_goes_on_from_where_the_fill_ended(store):
    plan, resumed = history_fill_due()
    fill = HistoryFill(plan, resumed)
    fill.run()  # on this thread: the test waits for it anyway

    clock = ReplayClock.objects.get()
    assert clock.market_time == plan.end
    assert clock.end > plan.end
    assert not clock.finished
    assert clock.held_until is None
    assert ReplayProgress.objects.get().state == ReplayState.FINISHED
    assert history_fill_due() is None


@pytest.mark.django_db(transaction=True)
def test_a_fill_cut_short_resumes_on_the_next_start(store):
    plan, _ = history_fill_due()
    fill = HistoryFill(plan, None)
    fill.replay.on_hour = lambda done: fill.stop() if done.hours_done == 5 else None
    fill.run()

    again, resumed = history_fill_due()
    assert resumed is not None
    assert resumed.reached == plan.start + 4 * HOUR
    assert (again.start, again.end) == (plan.start, plan.end)


@pytest.mark.django_db
def test_beat_leaves_a_held_clock_alone(store):
    from django.utils import timezone

    clock = ensure_clock()
    ReplayClock.objects.update(held_until=timezone.now() + timedelta(minutes=1))
    assert advance_clock() is None
    assert ReplayClock.objects.get().market_time == clock.market_time


@pytest.mark.django_db
def test_health_says_what_the_fill_is_doing_to_anyone(store):
    ensure_clock()
    ReplayProgress.objects.create(
        start=START, end=START + 100 * HOUR, state=ReplayState.RUNNING,
        purpose=ReplayPurpose.HISTORY_FILL, reached=START + 39 * HOUR, hours_done=40,
        hours_total=101,
    )  # fmt: skip
    check = check_replay_clock()
    assert check["history"] == "filling history: 2024-01-02, 40 %"
    assert public_health({"status": "ok", "replay_clock": check})["history"] == check["history"]
    assert progress_text(ReplayProgress.objects.get()) == check["history"]
