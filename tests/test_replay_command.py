"""`manage.py replay`: scans at their market times through Celery, outcome checks as market time
passes, a summary, and the replay clock left as it was found."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from alerts.models import Alert, AlertKind, AlertState
from alerts.services import alerts_for_signal
from cryptosatx.replay import HourDone, Replay, ReplayPlan
from market.models import ReplayClock
from market.replay_clock import CLOCK_PK
from scanners.models import RunStatus, ScanRun
from tests.factories import START, CheckedOutcomeFactory, SignalFactory
from tests.test_scan_pipeline import make_coins
from tracking import analytics
from tracking.models import CheckStatus
from tracking.outcomes import checks_create_for
from tracking.performance_filters import PerformanceFilters

HOUR = timedelta(hours=1)
FROM, TO = START + 100 * HOUR, START + 106 * HOUR


def replay(*args: str) -> str:
    out = StringIO()
    call_command("replay", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("replay_settings")
def test_a_replay_runs_the_scans_due_in_market_time_and_the_checks_due_as_it_passes() -> None:
    make_coins("AAA", "BBB", "BTC")
    signal = SignalFactory(symbol="AAA/USDT", as_of=FROM + HOUR, entry_price=100.0)
    checks_create_for(signal)

    summary = replay(
        "--start", FROM.isoformat(), "--end", TO.isoformat(), "--speed", "max",
        "--symbols", "AAA/USDT,BBB/USDT",
    )  # fmt: skip

    runs = ScanRun.objects.order_by("as_of", "scanner")
    # Smart money hourly (7 steps), social every 2 h (4), RSI every 4 h (2), MSS every 6 h (2).
    by_scanner = {name: runs.filter(scanner=name).count() for name in ("smart_money", "social")}
    assert by_scanner == {"smart_money": 7, "social": 4}
    assert runs.filter(scanner="rsi").count() == 2
    assert not runs.exclude(status=RunStatus.FINISHED).exists()
    assert {run.as_of for run in runs} <= {FROM + hour * HOUR for hour in range(7)}
    statuses = dict(signal.outcome_checks.values_list("horizon", "status"))
    assert statuses["1h"] == statuses["4h"] == CheckStatus.DONE
    assert statuses["24h"] == statuses["7d"] == statuses["30d"] == CheckStatus.PENDING
    assert "scans: " in summary
    assert "signals: " in summary
    assert "win rate" in summary


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("replay_settings")
def test_a_replay_puts_the_clock_back_as_it_found_it() -> None:
    make_coins("AAA")
    clock = ReplayClock.objects.create(
        pk=CLOCK_PK, market_time=START + 50 * HOUR, start=START, end=START + 120 * HOUR, step=HOUR
    )
    replay("--start", FROM.isoformat(), "--end", (FROM + HOUR).isoformat(), "--symbols", "AAA")
    after = ReplayClock.objects.get()
    assert (after.market_time, after.start, after.end) == (clock.market_time, START, clock.end)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("replay_settings")
def test_the_digest_of_held_back_alerts_is_sent_before_the_replay_ends(settings) -> None:
    settings.TELEGRAM_BOT_TOKEN = settings.TELEGRAM_CHAT_ID = ""  # the console channel
    settings.MAX_ALERTS_PER_HOUR = 1
    make_coins("AAA")
    alerted = [
        SignalFactory(scanner="unified", tier="TIER_2", symbol=f"D{n}/USDT", as_of=FROM)
        for n in range(3)
    ]
    # Written at the market time of the replay's last half hour: the digest's hour would end
    # half an hour after the replay does.
    for signal in alerted:
        alerts_for_signal(signal, now=FROM + HOUR / 2)
    digest = Alert.objects.get(kind=AlertKind.DIGEST)
    assert digest.next_attempt_at == FROM + HOUR + HOUR / 2

    replay("--start", FROM.isoformat(), "--end", (FROM + HOUR).isoformat(), "--symbols", "AAA")

    digest.refresh_from_db()
    assert digest.state == AlertState.SENT
    assert digest.folded.count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("replay_settings")
def test_a_replay_of_an_empty_period_is_refused() -> None:
    make_coins("AAA")
    with pytest.raises(CommandError, match="nothing to replay"):
        replay("--start", "2030-01-01", "--end", "2030-02-01")


# --- the window's numbers and the report command --------------------------------------------------


GROUP_LINE = re.compile(r"^\S+ +\d+ +.* \[[\d.]+–[\d.]+\]")


def group_lines(text: str) -> list[str]:
    """The group lines of a text report or replay summary: a group, n, a rate and its interval."""
    return [line for line in text.splitlines() if GROUP_LINE.match(line)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("replay_settings")
def test_the_report_command_a_replay_prints_shows_its_summarys_numbers() -> None:
    make_coins("AAA", "BBB", "BTC")
    # Checked 24h outcomes at exactly --start and --end (in the window) and an hour on either
    # side of it (out).
    for as_of, return_pct in ((FROM, 6.0), (TO, -4.0), (FROM - HOUR, 9.0), (TO + HOUR, 9.0)):
        signal = SignalFactory(scanner="rsi", symbol="AAA/USDT", tier="TIER_1", as_of=as_of)
        CheckedOutcomeFactory(signal=signal, return_pct=return_pct)

    summary = replay("--start", FROM.isoformat(), "--end", TO.isoformat(), "--symbols", "AAA/USDT")

    command = summary.splitlines()[-1].split()
    assert command[:3] == ["python", "manage.py", "performance_report"]
    assert command[3:] == ["--since", "2024-01-05T04:00:00Z", "--until", "2024-01-05T10:00:00Z"]
    report = StringIO()
    call_command(*command[2:], stdout=report)
    shown = group_lines(summary)
    # By scanner, direction and tier one group each, by horizon five.
    assert len(shown) == 8
    assert set(shown) <= set(group_lines(report.getvalue()))
    numbers = analytics.performance_report(PerformanceFilters(days=None, since=FROM, until=TO))
    assert [(row["group"], row["n"], row["wins"]) for row in numbers["by_scanner"]] == [
        ("rsi", 2, 1)
    ]
    assert next(line for line in shown if line.startswith("rsi ")).split()[1:5] == [
        "2", "50.00", "%", "[9.5–90.5]"
    ]  # fmt: skip
    assert "too few to judge" in summary


def test_a_replay_on_a_fresh_var_dir_says_to_migrate_without_a_traceback(tmp_path: Path) -> None:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    environment |= {"VAR_DIR": str(tmp_path), "MARKET_SOURCE": "replay"}
    finished = subprocess.run(
        [sys.executable, "manage.py", "replay", "--start", "2024-01-01", "--end", "2024-01-02"],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    assert "CommandError: the database has" in finished.stderr
    assert "`python manage.py migrate`" in finished.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("replay_settings")
def test_each_replayed_hour_reports_the_cpu_time_its_thread_spent_on_it() -> None:
    make_coins("AAA")
    hours: list[HourDone] = []

    Replay(ReplayPlan(start=FROM, end=FROM + 2 * HOUR), on_hour=hours.append).run()

    assert [done.market_time for done in hours] == [FROM, FROM + HOUR, FROM + 2 * HOUR]
    # A thread cannot spend more CPU than the wall time passing (1 ms: the clocks' resolution).
    assert all(0 < done.cpu_seconds <= done.seconds + 0.001 for done in hours)
