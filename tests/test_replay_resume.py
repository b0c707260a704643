"""A replay stopped between market hours (Ctrl-C) leaves a consistent database and resumes where
it stopped, to the same end as one that was never stopped."""

from __future__ import annotations

import signal
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cryptosatx.management.commands.replay import _stop_on_first_interrupt
from cryptosatx.models import ReplayProgress, ReplayState
from cryptosatx.replay import Replay, ReplayPlan
from market.models import ReplayClock
from scanners.models import RunStatus, ScanRun
from tests.factories import START
from tests.test_scan_pipeline import make_coins

HOUR = timedelta(hours=1)
FROM, TO = START + 100 * HOUR, START + 108 * HOUR


@pytest.fixture
def coins(replay_settings):
    return make_coins("AAA", "BBB", "BTC")


def stopped_after(hours: int, symbols: list[str]) -> Replay:
    def stop_after(done) -> None:
        if done.hours_done == hours:
            replay.stop()

    replay = Replay(ReplayPlan(start=FROM, end=TO, symbols=symbols), on_hour=stop_after)
    replay.run()
    return replay


def scans_by_hour() -> list[tuple[str, object]]:
    return sorted(ScanRun.objects.values_list("scanner", "as_of"), key=repr)


@pytest.mark.django_db(transaction=True)
def test_a_stopped_replay_ends_after_the_hour_under_way_with_nothing_left_running(coins):
    replay = stopped_after(3, coins)

    progress = ReplayProgress.objects.get()
    assert replay.stopped
    assert (progress.state, progress.reached, progress.hours_done) == (
        ReplayState.INTERRUPTED, FROM + 2 * HOUR, 3,
    )  # fmt: skip
    assert not ScanRun.objects.exclude(status=RunStatus.FINISHED).exists()
    assert max(ScanRun.objects.values_list("as_of", flat=True)) == FROM + 2 * HOUR


@pytest.mark.django_db(transaction=True)
def test_a_resumed_replay_does_what_one_never_stopped_does(coins):
    Replay(ReplayPlan(start=FROM, end=TO, symbols=coins)).run()
    never_stopped = scans_by_hour()
    ScanRun.objects.all().delete()
    ReplayProgress.objects.all().delete()

    stopped_after(4, coins)
    call_command("replay", "--resume", stdout=StringIO(), stderr=StringIO())

    assert scans_by_hour() == never_stopped
    assert ReplayProgress.objects.get().state == ReplayState.FINISHED


@pytest.mark.django_db(transaction=True)
def test_a_resumed_replay_puts_back_the_clock_the_first_part_found(coins):
    ReplayClock.objects.create(
        market_time=START + 50 * HOUR, start=START, end=START + 120 * HOUR, step=HOUR
    )
    stopped_after(2, coins)
    call_command("replay", "--resume", stdout=StringIO(), stderr=StringIO())

    assert ReplayClock.objects.get().market_time == START + 50 * HOUR


@pytest.mark.django_db
def test_resume_without_an_interrupted_replay_is_refused_clearly():
    with pytest.raises(CommandError, match="no interrupted replay"):
        call_command("replay", "--resume", stdout=StringIO(), stderr=StringIO())


def test_the_first_ctrl_c_asks_to_stop_after_the_hour_and_the_second_stops_at_once():
    replay = Replay(ReplayPlan(start=FROM, end=TO))
    command = type("Command", (), {"stderr": StringIO()})()
    handler = _stop_on_first_interrupt(replay, command)

    handler(signal.SIGINT, None)
    assert replay.stop_requested
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)
