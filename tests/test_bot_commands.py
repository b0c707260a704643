"""Bot commands (alerts/bot.py): answered only to TELEGRAM_ALLOWED_CHAT_IDS, through the outbox.

Pins: a stranger's command gets no reply, and nothing is stored or sent; a poll against the fake
Telegram (real HTTP) answers an allowed chat's command end to end; every command answers what the
services say; `/mute 2 3` suppresses TIER 2 alerts for 3 hours, then they resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import bot, delivery, summary_tasks
from alerts.models import Alert, AlertKind, AlertMute, AlertState, BotState
from alerts.services import alerts_for_signal
from fakes.telegram import DEFAULT_TOKEN, FakeTelegram, html_error
from tests.factories import (
    CheckedOutcomeFactory,
    ScanRunFactory,
    SignalFactory,
    UnifiedRankingFactory,
    UserFactory,
    WatchlistFactory,
    telegram_update,
)
from tracking.analytics import performance_by
from tracking.performance_filters import PerformanceFilters

ALLOWED = "1001"
OTHER_ALLOWED = "-1002003"
STRANGER = "666"


@pytest.fixture(autouse=True)
def allowed(settings) -> None:
    settings.TELEGRAM_ALLOWED_CHAT_IDS = [ALLOWED, OTHER_ALLOWED]
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_CHAT_ID = ""
    settings.MARKET_SOURCE = "binance"


@pytest.fixture
def fake(settings) -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    with fake.running_in_thread() as base_url:
        settings.TELEGRAM_API_URL = base_url
        settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
        settings.TELEGRAM_CHAT_ID = ALLOWED
        settings.RATE_BUDGET_REDIS_URL = ""
        settings.CELERY_BROKER_URL = "memory://"
        yield fake


def ask(text: str, chat: str = ALLOWED) -> str | None:
    return bot.handle_update(telegram_update(chat, text))


# --- strangers ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text", ["/start", "/status", "/top 5", "/performance 7", "/watchlist", "/mute 2 3", "/nope"]
)
def test_a_strangers_command_gets_nothing(text: str) -> None:
    assert ask(text, chat=STRANGER) is None
    assert not AlertMute.objects.exists()
    assert not Alert.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_strangers_commands_are_ignored_end_to_end(fake: FakeTelegram) -> None:
    fake.inject_update(telegram_update(STRANGER, "/mute 1 24"))
    fake.inject_update(telegram_update(STRANGER, "/top"))

    report = summary_tasks.poll_bot_updates()
    delivery.outbox_send_due(max_seconds=1)

    assert report == {"updates": 2, "replies": 0, "ignored": 2}
    assert not Alert.objects.exists()
    assert not AlertMute.objects.exists()
    assert fake.requests == []  # no sendMessage at all, not even an error
    assert BotState.objects.get().update_offset == 3  # confirmed, so never fetched again


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_allowed_chats_command_is_answered_end_to_end(fake: FakeTelegram) -> None:
    UnifiedRankingFactory(symbol="AAA/USDT", unified_score=91.0, tier="TIER_1")
    UnifiedRankingFactory(symbol="BBB/USDT", unified_score=75.0, tier="TIER_2")
    UnifiedRankingFactory(symbol="CCC/USDT", unified_score=50.0)
    fake.inject_update(telegram_update(ALLOWED, "/top@cryptosatx_fake_bot 2"))
    fake.inject_update(telegram_update(STRANGER, "/top 2"))
    fake.inject_update(telegram_update(ALLOWED, "just chatting"))

    assert summary_tasks.poll_bot_updates() == {"updates": 3, "replies": 1, "ignored": 2}
    assert summary_tasks.poll_bot_updates() == {"updates": 0, "replies": 0, "ignored": 0}
    delivery.outbox_send_due(max_seconds=5)

    (reply,) = Alert.objects.all()
    assert (reply.kind, reply.chat_id, reply.state) == (AlertKind.COMMAND_REPLY, ALLOWED, "sent")
    (message,) = fake.messages
    assert message.chat_id == ALLOWED
    assert message.parse_mode == "HTML"
    assert "1. <b>AAA/USDT</b> LONG 91/100 · TIER_1" in message.text
    assert "2. <b>BBB/USDT</b>" in message.text
    assert "CCC/USDT" not in message.text


# --- each command -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_start_and_unknown_commands_explain_the_bot() -> None:
    assert "/mute &lt;tier&gt; &lt;hours&gt;" in ask("/start")
    assert ask("/frobnicate").startswith("Unknown command /frobnicate.")
    assert ask("/top many") == "n must be a whole number from 1 to 30."
    for text in (ask("/start"), ask("/frobnicate")):
        assert html_error(text) is None


@pytest.mark.django_db
def test_status_reports_health_and_the_last_runs(monkeypatch) -> None:
    from cryptosatx import services

    monkeypatch.setattr(
        services,
        "health_report",
        lambda: {
            "status": "ok",
            "database": {"status": "ok"},
            "broker": {"status": "ok"},
            "worker": {"status": "ok", "workers": ["celery@box"]},
            "beat": {"status": "ok"},
        },
    )
    ScanRunFactory(scanner="rsi", symbols=["A/USDT", "B/USDT"])
    ScanRunFactory(scanner="mss", status="running", symbols=["C/USDT"], coins_done=0)

    text = ask("/status")

    assert html_error(text) is None
    assert "Status: ✅ ok" in text
    assert "worker: ok (celery@box)" in text
    assert "Scans queued/running: <b>1</b>" in text
    assert "• rsi: finished, as of 2024-01-11 00:00, 2/2 coins" in text
    assert "• mss: running" in text
    assert "• social: never" in text


@pytest.mark.django_db
def test_performance_answers_the_analytics_numbers(settings) -> None:
    settings.ANALYTICS_MIN_SAMPLE = 2
    now = timezone.now()
    for value in (6.0, 7.0, -4.0):
        signal = SignalFactory(tier="TIER_1", as_of=now - timedelta(days=2))
        CheckedOutcomeFactory(signal=signal, return_pct=value)
    old = SignalFactory(tier="TIER_1", as_of=now - timedelta(days=20))
    CheckedOutcomeFactory(signal=old, return_pct=-9.0)

    text = ask("/performance 7")

    (group,) = performance_by("tier", PerformanceFilters(days=7))["groups"]
    ci = group["win_rate_ci"]
    assert group["n"] == 3
    assert html_error(text) is None
    assert "Performance, last 7 days" in text
    assert f"TIER_1: win 66.7 % (95 % CI {ci['low']:.1f}–{ci['high']:.1f} %, n = 3)" in text
    assert "n = 4" in ask("/performance 30")
    assert ask("/performance 0") == "days must be a whole number from 1 to 3650."


@pytest.mark.django_db
def test_watchlist_lists_the_owners_watchlists() -> None:
    assert ask("/watchlist").startswith("No owner")
    owner = UserFactory(username="satoshi", is_superuser=True, is_staff=True)
    someone = UserFactory(username="someone")
    mine = WatchlistFactory(owner=owner, name="Majors")
    for symbol in ("ETH/USDT", "BTC/USDT"):
        mine.coins.create(symbol=symbol)
    WatchlistFactory(owner=someone, name="Not mine")

    text = ask("/watchlist", chat=OTHER_ALLOWED)

    assert html_error(text) is None
    assert "Watchlists of satoshi" in text
    assert "<b>Majors</b> (2): BTC/USDT, ETH/USDT" in text
    assert "Not mine" not in text


def tier_2_signal(symbol: str, as_of):
    """A smart-money LONG with accumulation 7.5: TIER 2 by the alert rules."""
    return SignalFactory(
        scanner="smart_money", symbol=symbol, as_of=as_of, scores={"accumulation": 7.5}
    )


def tier_1_signal(symbol: str, as_of):
    return SignalFactory(
        scanner="smart_money", symbol=symbol, as_of=as_of, scores={"accumulation": 9.5}
    )


@pytest.mark.django_db
def test_mute_2_3_suppresses_tier_2_alerts_for_3_hours_then_they_resume() -> None:
    before = timezone.now()
    reply = ask("/mute 2 3")
    after = timezone.now()

    assert reply.startswith("🔇 TIER 2 alerts muted for 3 h")
    assert html_error(reply) is None
    (mute,) = AlertMute.objects.all()
    assert mute.tier == 2
    assert mute.muted_by_chat == ALLOWED
    assert before + timedelta(hours=3) <= mute.until <= after + timedelta(hours=3)

    as_of = timezone.now()
    (muted,) = alerts_for_signal(tier_2_signal("M1/USDT", as_of), now=after + timedelta(hours=1))
    (tier_1,) = alerts_for_signal(tier_1_signal("T1/USDT", as_of), now=after + timedelta(hours=1))
    (late,) = alerts_for_signal(
        tier_2_signal("M2/USDT", as_of), now=mute.until - timedelta(seconds=1)
    )
    (resumed,) = alerts_for_signal(
        tier_2_signal("M3/USDT", as_of), now=mute.until + timedelta(seconds=1)
    )

    assert (muted.tier, muted.state) == (2, AlertState.SUPPRESSED)
    assert (late.tier, late.state) == (2, AlertState.SUPPRESSED)
    assert (tier_1.tier, tier_1.state) == (1, AlertState.PENDING)  # other tiers unaffected
    assert (resumed.tier, resumed.state) == (2, AlertState.PENDING)


@pytest.mark.django_db
def test_mute_0_ends_a_mute_and_bad_arguments_are_refused() -> None:
    ask("/mute T2 3")
    assert AlertMute.objects.filter(until__gt=timezone.now()).count() == 1
    assert ask("/mute tier_2 0") == "TIER 2 alerts are on again."
    assert not AlertMute.objects.filter(until__gt=timezone.now()).exists()
    for bad in ("/mute", "/mute 4 3", "/mute 2", "/mute 2 -1", "/mute 2 1000", "/mute x y"):
        assert ask(bad).startswith("Usage: /mute"), bad
    assert AlertMute.objects.count() == 1
