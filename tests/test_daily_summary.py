"""The daily summary and the weekly/monthly reports (alerts/summaries.py).

Pins: the per-tier performance numbers are the analytics' for the same day (same window, same
service); the day is a local calendar day in TIME_ZONE read as the analytics read a window
((start, end]); the summary is written and sent once per day and chat however often the task runs;
weeks run Monday to Sunday and months are calendar months; in a replay the summaries follow market
time; the text is valid Telegram HTML and lists the new gems, top scores and held-back alerts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts import delivery, summaries, summary_tasks
from alerts.models import Alert, AlertKind, AlertState
from fakes.telegram import DEFAULT_TOKEN, FakeTelegram, html_error
from market.models import ReplayClock
from tests.factories import (
    CheckedOutcomeFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalAlertFactory,
    SignalFactory,
    UserFactory,
)
from tracking.analytics import performance_by, performance_summary
from tracking.performance_filters import PerformanceFilters

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2024, 3, 5)
# 2024-03-05 in Berlin (UTC+1): (2024-03-04 23:00 UTC, 2024-03-05 23:00 UTC].
DAY_START = datetime(2024, 3, 4, 23, 0, tzinfo=UTC)
DAY_END = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def berlin(settings) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    settings.DAILY_SUMMARY_HOUR = 8
    settings.MARKET_SOURCE = "binance"
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_CHAT_ID = ""
    settings.ANALYTICS_MIN_SAMPLE = 3


def checked(tier: str, as_of: datetime, returns: list[float], symbol: str = "BTC/USDT") -> None:
    for number, value in enumerate(returns):
        signal = SignalFactory(
            tier=tier, as_of=as_of + timedelta(minutes=number), symbol=f"{symbol}{number}"
        )
        CheckedOutcomeFactory(signal=signal, return_pct=value)


@pytest.fixture
def outcomes() -> None:
    """Checked 24h outcomes inside the day, on its edges and outside it."""
    inside = DAY_START + timedelta(hours=5)
    checked("TIER_1", inside, [6.0, 7.0, -4.0])  # 2 wins, 1 loss
    checked("TIER_2", inside, [1.0, 8.0])  # 1 neutral, 1 win: n = 2, too few to judge
    checked("", inside, [-5.0])
    checked("TIER_1", DAY_END, [9.0], symbol="EDGE_IN")  # as_of == end: in (as the analytics)
    checked("TIER_1", DAY_START, [9.0], symbol="EDGE_OUT")  # as_of == start: the day before
    checked("TIER_1", DAY_START - timedelta(hours=3), [-9.0, -9.0], symbol="BEFORE")
    checked("TIER_2", DAY_END + timedelta(hours=1), [9.0], symbol="AFTER")


@pytest.mark.django_db
def test_daily_summary_performance_equals_the_analytics_report_for_the_same_day(
    outcomes,
) -> None:
    data = summaries.daily_summary_data(DAY)

    # The analytics report for 2024-03-05 in Berlin, asked for independently.
    filters = PerformanceFilters(days=1, now=datetime(2024, 3, 6, tzinfo=BERLIN))
    assert data["performance"]["by_tier"] == performance_by("tier", filters)["groups"]
    assert data["performance"]["overall"] == performance_summary(filters)

    by_tier = {group["group"]: group for group in data["performance"]["by_tier"]}
    assert set(by_tier) == {None, "TIER_1", "TIER_2"}
    tier_1 = by_tier["TIER_1"]
    assert (tier_1["n"], tier_1["wins"], tier_1["losses"]) == (4, 3, 1)  # 3 inside + the edge
    assert tier_1["win_rate"] == 75.0
    assert tier_1["judgement"] != "too few to judge"
    assert by_tier["TIER_2"]["n"] == 2
    assert by_tier["TIER_2"]["judgement"] == "too few to judge"
    assert data["performance"]["overall"]["n"] == 7

    text = summaries.daily_summary_text(data)
    assert html_error(text) is None
    ci = tier_1["win_rate_ci"]
    assert f"TIER_1: win 75.0 % (95 % CI {ci['low']:.1f}–{ci['high']:.1f} %, n = 4)" in text
    assert "TIER_2: win 50.0 %" in text
    assert "too few to judge" in text


@pytest.mark.django_db
def test_the_summary_counts_scans_signals_gems_top_scores_and_held_back_alerts() -> None:
    when = DAY_START + timedelta(hours=9)
    run = ScanRunFactory(scanner="all", as_of=when, symbols=["A/USDT", "B/USDT", "NEW/USDT"])
    ScanRunFactory(scanner="rsi", as_of=DAY_END + timedelta(hours=2))  # the next day
    for symbol, accumulation, distribution in (("A/USDT", 8.5, 1.0), ("B/USDT", 2.0, 7.5)):
        ScanResultFactory(
            run=run,
            scanner="smart_money",
            symbol=symbol,
            scores={"accumulation": accumulation, "distribution": distribution},
        )
    ScanResultFactory(
        run=run,
        scanner="mss",
        symbol="NEW/USDT",
        direction="LONG",
        scores={"mss": 88.0},
        inputs={"listed_at": (when - timedelta(hours=20)).isoformat()},
    )
    ScanResultFactory(
        run=run,
        scanner="mss",
        symbol="OLD/USDT",
        direction="LONG",
        scores={"mss": 95.0},
        inputs={"listed_at": (when - timedelta(hours=100)).isoformat()},
    )
    SignalFactory(tier="TIER_1", as_of=when, symbol="A/USDT")
    held = SignalAlertFactory(
        tier=3, state=AlertState.SUPPRESSED, signal__as_of=when, signal__symbol="<b>X</b>&Y"
    )
    SignalAlertFactory(tier=1, state=AlertState.SENT, signal__as_of=when)

    data = summaries.daily_summary_data(DAY)

    assert data["scans_run"] == 1
    assert data["coins_scanned"] == 4
    assert data["signals"] == 3
    assert data["signals_by_tier"] == {"TIER_1": 1, "none": 2}
    assert data["alerts_by_tier"] == {1: 1, 3: 1}
    assert data["top_accumulation"][0] == {"symbol": "A/USDT", "score": 8.5}
    assert data["top_distribution"][0] == {"symbol": "B/USDT", "score": 7.5}
    assert [gem["symbol"] for gem in data["new_gems"]] == ["NEW/USDT"]
    assert [row["alert_id"] for row in data["held_back"]] == [held.pk]

    text = summaries.daily_summary_text(data)
    assert html_error(text) is None
    assert "Coins scanned: <b>4</b> · scans run: <b>1</b>" in text
    assert "NEW/USDT MSS 88/100" in text
    assert "OLD/USDT" not in text
    assert "&lt;b&gt;X&lt;/b&gt;&amp;Y" in text
    assert len(text) <= 4096


@pytest.mark.django_db
def test_the_summary_does_not_count_a_signal_tracked_by_hand() -> None:
    when = DAY_START + timedelta(hours=9)
    SignalFactory(as_of=when, symbol="A/USDT")
    SignalFactory(scanner="manual", owner=UserFactory(), as_of=when, symbol="B/USDT")

    assert summaries.daily_summary_data(DAY)["signals"] == 1


@pytest.fixture
def fake(settings) -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    with fake.running_in_thread() as base_url:
        settings.TELEGRAM_API_URL = base_url
        settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
        settings.TELEGRAM_CHAT_ID = "1001"
        settings.RATE_BUDGET_REDIS_URL = ""
        settings.CELERY_BROKER_URL = "memory://"
        yield fake


@pytest.mark.django_db(transaction=True)
def test_the_summary_is_sent_once_per_day_even_if_the_task_runs_twice(
    fake: FakeTelegram, outcomes, monkeypatch
) -> None:
    # 08:00 on 2024-03-06 in Berlin: "yesterday" is 2024-03-05.
    monkeypatch.setattr(summaries, "market_now", lambda: datetime(2024, 3, 6, 8, 0, tzinfo=BERLIN))
    ScanRunFactory(as_of=DAY_START + timedelta(hours=1))
    first = summary_tasks.daily_summary()
    second = summary_tasks.daily_summary()
    delivery.outbox_send_due(max_seconds=5)
    third = summary_tasks.daily_summary(day="2024-03-05")
    delivery.outbox_send_due(max_seconds=2)

    assert first["created"] is True
    assert second == {**first, "created": False}
    assert third == second
    assert first["period"] == "2024-03-05"
    rows = Alert.objects.filter(kind=AlertKind.DAILY_SUMMARY)
    assert rows.count() == 1
    assert rows.get().state == AlertState.SENT
    assert len(fake.messages) == 1
    assert fake.messages[0].chat_id == "1001"
    assert "Daily summary · Tue 05 Mar 2024" in fake.messages[0].text


@pytest.mark.django_db
def test_weekly_and_monthly_windows() -> None:
    monday_morning = datetime(2024, 3, 11, 8, 30, tzinfo=BERLIN)
    week = summaries.last_complete_period(AlertKind.WEEKLY_REPORT, monday_morning)
    assert (week.first_day, week.last_day, week.days) == (date(2024, 3, 4), date(2024, 3, 10), 7)
    assert week.start == datetime(2024, 3, 4, tzinfo=BERLIN)
    assert week.end == datetime(2024, 3, 11, tzinfo=BERLIN)

    first_of_march = datetime(2024, 3, 1, 9, 0, tzinfo=BERLIN)
    month = summaries.last_complete_period(AlertKind.MONTHLY_REPORT, first_of_march)
    assert (month.first_day, month.last_day, month.days) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
        29,
    )

    # Across the DST change (31 Mar 2024) the week still runs local midnight to local midnight.
    dst = summaries.period_containing(AlertKind.WEEKLY_REPORT, date(2024, 3, 27))
    assert dst.start.astimezone(UTC) == datetime(2024, 3, 24, 23, 0, tzinfo=UTC)
    assert dst.end.astimezone(UTC) == datetime(2024, 3, 31, 22, 0, tzinfo=UTC)

    checked("TIER_1", datetime(2024, 2, 29, 22, 30, tzinfo=UTC), [6.0])  # 23:30 Berlin, Feb
    checked("TIER_1", datetime(2024, 2, 29, 23, 30, tzinfo=UTC), [-6.0])  # 00:30 Berlin, March
    checked("TIER_2", datetime(2024, 2, 1, 0, 30, tzinfo=UTC), [7.0])  # 01:30 Berlin, Feb 1
    data = summaries.monthly_report_data(date(2024, 2, 10))
    filters = PerformanceFilters(days=29, now=datetime(2024, 3, 1, tzinfo=BERLIN))
    assert data["performance"]["by_tier"] == performance_by("tier", filters)["groups"]
    assert data["signals"] == 2
    assert {g["group"]: g["wins"] for g in data["performance"]["by_tier"]} == {
        "TIER_1": 1,
        "TIER_2": 1,
    }
    assert "Monthly report · February 2024" in summaries.monthly_report_text(data)

    weekly = summaries.weekly_report_data(date(2024, 2, 29))  # Mon 26 Feb – Sun 3 Mar
    assert weekly["signals"] == 2
    assert "week 2024-W09" in summaries.weekly_report_text(weekly)


@pytest.mark.django_db
def test_in_a_replay_summaries_follow_market_time(settings) -> None:
    settings.MARKET_SOURCE = "replay"
    start = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)  # Monday, after its 08:00
    clock = ReplayClock.objects.create(
        pk=1,
        market_time=datetime(2024, 3, 5, 6, 0, tzinfo=UTC),  # 07:00 Berlin: not yet 08:00
        start=start,
        end=start + timedelta(days=60),
        step=timedelta(hours=1),
    )
    ScanRunFactory(as_of=start)  # the replay's first scan
    assert summaries.replay_summaries_due() == []

    clock.market_time = datetime(2024, 3, 5, 7, 0, tzinfo=UTC)  # 08:00 Berlin
    clock.save()
    created = summaries.replay_summaries_due()
    # Only the day whose 08:00 passed during the replay: last week's report (due Monday 08:00)
    # and February's (due 1 March) were due before the replay began, on data it never scanned.
    assert [(a.kind, a.period) for a in created] == [(AlertKind.DAILY_SUMMARY, date(2024, 3, 4))]
    assert summaries.replay_summaries_due() == []  # the next tick: nothing new

    clock.market_time = datetime(2024, 4, 1, 7, 0, tzinfo=UTC)  # 09:00 Berlin (summer time)
    clock.save()
    created = summaries.replay_summaries_due()
    assert sorted((a.kind, a.period) for a in created) == [
        (AlertKind.DAILY_SUMMARY, date(2024, 3, 31)),
        (AlertKind.MONTHLY_REPORT, date(2024, 3, 1)),
        (AlertKind.WEEKLY_REPORT, date(2024, 3, 25)),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind", [AlertKind.DAILY_SUMMARY, AlertKind.WEEKLY_REPORT, AlertKind.MONTHLY_REPORT]
)
def test_no_report_for_a_period_that_ends_before_the_first_scan(kind) -> None:
    # The first scan ran on Thursday 7 March 2024; it is now Monday 1 April, 08:30 in Berlin.
    ScanRunFactory(as_of=datetime(2024, 3, 7, 10, 0, tzinfo=UTC))
    before = summaries.period_containing(kind, date(2024, 2, 20))
    assert summaries.summary_send(before) == (None, False)
    assert not Alert.objects.filter(kind=kind).exists()

    alert, created = summaries.summary_send_due(
        kind, now=datetime(2024, 4, 1, 8, 30, tzinfo=BERLIN)
    )  # yesterday, last week, last month: each ends after the first scan
    assert created
    assert alert.kind == kind


def test_beat_schedules_the_summaries_at_the_summary_hour(settings) -> None:
    from celeryconfig import build_beat_schedule

    settings.DAILY_SUMMARY_HOUR = 7
    schedule = build_beat_schedule()
    daily = schedule["daily-summary"]
    assert daily["task"] == "alerts.daily_summary"
    assert daily["schedule"].hour == {7}
    assert daily["schedule"].minute == {0}
    assert schedule["weekly-report"]["schedule"].day_of_week == {1}
    assert schedule["monthly-report"]["schedule"].day_of_month == {1}
    assert "poll-bot-updates" not in schedule

    settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
    assert build_beat_schedule()["poll-bot-updates"]["task"] == "alerts.poll_bot_updates"
    settings.MARKET_SOURCE = "replay"
    assert "daily-summary" not in build_beat_schedule()  # the replay clock's tick sends them
