"""What the replay keeps of itself while it runs: the progress row (whole when it stops or ends,
the hour reached meanwhile), the schedules read once for many hours, and on PostgreSQL commits
that do not wait for the disk, for the replay's connection and its duration only; and on
PostgreSQL the planner's statistics of the tables it churns, refreshed as the hours double."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cryptosatx.models import ReplayProgress, ReplayState
from cryptosatx.replay import (
    Replay,
    ReplayPlan,
    _planner_statistics_refresh,
    _statistics_due,
    interrupted_replay,
    plan_of,
)
from scanners.models import ScanRun
from tests.factories import START, ScanRunFactory
from tests.test_scan_pipeline import make_coins

HOUR = timedelta(hours=1)
FROM, TO = START + 100 * HOUR, START + 105 * HOUR


@pytest.fixture
def coins(replay_settings):
    return make_coins("AAA", "BBB")


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_finished_replay_records_every_run_it_started_and_its_last_hour(coins):
    tally = Replay(ReplayPlan(start=FROM, end=TO, symbols=coins)).run()

    progress = ReplayProgress.objects.get()
    started = sorted(ScanRun.objects.values_list("pk", flat=True))
    assert (progress.state, progress.reached, progress.hours_done) == (ReplayState.FINISHED, TO, 6)
    assert progress.run_ids == tally.runs == started


@pytest.mark.django_db(transaction=True)
def test_a_stopped_replay_records_the_runs_of_its_whole_hours_and_a_resume_shows_it_running(coins):
    def stop_after_two(done) -> None:
        if done.hours_done == 2:
            first.stop()

    first = Replay(ReplayPlan(start=FROM, end=TO, symbols=coins), on_hour=stop_after_two)
    first.run()
    progress = interrupted_replay()
    assert progress is not None
    assert progress.run_ids == sorted(ScanRun.objects.values_list("pk", flat=True))
    assert progress.hours_done == 2

    states = []
    rest = Replay(
        plan_of(progress),
        on_hour=lambda done: states.append(ReplayProgress.objects.get().state),
    )
    rest.run(resume_from=progress)

    assert set(states) == {ReplayState.RUNNING}
    assert ReplayProgress.objects.get().run_ids == sorted(
        ScanRun.objects.values_list("pk", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_a_replay_reads_the_scanners_schedules_once_for_hours_that_follow_quickly(coins):
    with CaptureQueriesContext(connection) as statements:
        Replay(ReplayPlan(start=FROM, end=TO, symbols=coins)).run()

    reads = [query for query in statements if "django_celery_beat_periodictask" in query["sql"]]
    assert len(reads) == 1


@pytest.mark.django_db(transaction=True)
def test_an_in_process_replay_on_postgresql_commits_without_waiting_for_the_disk_until_it_ends(
    coins,
):
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is a PostgreSQL setting")
    before = synchronous_commit()
    during = []
    Replay(
        ReplayPlan(start=FROM, end=FROM + HOUR, symbols=coins),
        on_hour=lambda done: during.append(synchronous_commit()),
    ).run()

    assert during == ["off", "off"]
    assert synchronous_commit() == before != "off"


@pytest.mark.django_db(transaction=True)
def test_a_replay_that_fails_puts_the_commit_setting_back(coins):
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is a PostgreSQL setting")
    before = synchronous_commit()

    def fail(done) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Replay(ReplayPlan(start=FROM, end=TO, symbols=coins), on_hour=fail).run()

    assert synchronous_commit() == before
    assert interrupted_replay() is not None


def test_the_planner_statistics_are_refreshed_each_time_the_hours_replayed_double():
    refreshed = [hours for hours in range(1, 800) if _statistics_due(hours)]

    assert refreshed == [24, 48, 96, 192, 384, 768]


def table_rows_known_to_planner(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_statistics_refresh_tells_the_postgresql_planner_how_many_rows_a_churned_table_holds():
    if connection.vendor != "postgresql":
        pytest.skip("the refresh is PostgreSQL's ANALYZE")
    ScanRunFactory.create_batch(7)
    assert table_rows_known_to_planner("scanners_scanrun") != 7

    _planner_statistics_refresh()

    assert table_rows_known_to_planner("scanners_scanrun") == 7
