"""Delivery of the alert outbox against a local fake Telegram (real HTTP, python-telegram-bot).

Pins: a 429's retry_after is honoured; an outage delays and loses nothing, then every alert goes out
once and in order; a SENT alert is never sent again however often the task runs; the console
channel logs; broken HTML, a blocked bot fail the row for a person; Telegram's limits hold.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts import delivery
from alerts.models import Alert, AlertState
from fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.factories import AlertFactory

CHAT = "1001"


@pytest.fixture
def fake(settings) -> Iterator[FakeTelegram]:
    fake = FakeTelegram(blocked_chats={"666"})
    with fake.running_in_thread() as base_url:
        settings.TELEGRAM_API_URL = base_url
        settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
        settings.TELEGRAM_CHAT_ID = CHAT
        settings.RATE_BUDGET_REDIS_URL = ""
        settings.CELERY_BROKER_URL = "memory://"  # in-process budgets unless a test says Redis
        settings.ALERT_RETRY_BACKOFF_SECONDS = 0.3
        settings.ALERT_RETRY_BACKOFF_MAX_SECONDS = 0.6
        yield fake


def states() -> list[str]:
    return list(Alert.objects.order_by("created_at", "pk").values_list("state", flat=True))


@pytest.mark.django_db
def test_a_429_is_retried_no_sooner_than_its_retry_after(fake: FakeTelegram) -> None:
    alert = AlertFactory(chat_id=CHAT)
    fake.rate_limit_next(1, retry_after=1)

    delivery.outbox_send_due(max_seconds=10)

    alert.refresh_from_db()
    assert alert.state == AlertState.SENT
    assert alert.attempts == 2
    first, second = fake.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at >= first.at + 1.0
    assert fake.texts() == [alert.text]


@pytest.mark.django_db
def test_a_429_leaves_the_alert_retrying_at_now_plus_retry_after(fake: FakeTelegram) -> None:
    alert = AlertFactory(chat_id=CHAT)
    fake.rate_limit_next(1, retry_after=30)
    before = timezone.now()

    delivery.outbox_send_due(max_seconds=0.5)  # too short to wait 30 s: left for the sweeper

    alert.refresh_from_db()
    assert alert.state == AlertState.RETRYING
    assert alert.next_attempt_at >= before + timedelta(seconds=30)
    assert "retry" in alert.last_error.lower()
    assert not fake.messages


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["refuse", "502"])
def test_an_outage_delays_alerts_then_delivers_each_once_in_order(
    fake: FakeTelegram, how: str
) -> None:
    alerts = [AlertFactory(chat_id=CHAT) for _ in range(4)]
    fake.go_down(how)

    delivery.outbox_send_due(max_seconds=1.5)  # tries, backs off, tries again: all fail

    # The chat's head waits to retry and holds the rest back, so the order survives the outage.
    assert states() == ["retrying", "pending", "pending", "pending"]
    assert Alert.objects.get(pk=alerts[0].pk).attempts >= 2
    assert not fake.messages

    fake.come_back()
    for _ in range(3):  # the sweeper and the task, run again and again: nothing doubles
        delivery.outbox_sweep_stale()
        delivery.outbox_send_due(max_seconds=10)

    assert states() == ["sent"] * 4
    assert fake.texts() == [a.text for a in alerts]
    assert len({m.message_id for m in fake.messages}) == 4
    ids = list(Alert.objects.order_by("pk").values_list("telegram_message_id", flat=True))
    assert ids == [m.message_id for m in fake.messages]


@pytest.mark.django_db
def test_a_sent_alert_is_never_sent_again(fake: FakeTelegram) -> None:
    alert = AlertFactory(chat_id=CHAT)
    delivery.outbox_send_due(max_seconds=5)
    delivery.outbox_send_due(max_seconds=0.2)
    delivery.outbox_sweep_stale(timeout=0)
    delivery.outbox_send_due(max_seconds=0.2)
    alert.refresh_from_db()
    assert alert.state == AlertState.SENT
    assert fake.texts() == [alert.text]


@pytest.mark.django_db
def test_per_chat_order_and_one_message_per_second_per_chat(fake: FakeTelegram) -> None:
    a = [AlertFactory(chat_id=CHAT) for _ in range(3)]
    b = [AlertFactory(chat_id="2002") for _ in range(3)]

    delivery.outbox_send_due(max_seconds=15)

    assert states() == ["sent"] * 6
    for chat, alerts in ((CHAT, a), ("2002", b)):
        got = [m for m in fake.messages if m.chat_id == chat]
        assert [m.text for m in got] == [x.text for x in alerts]
        # Fixed one-second windows: never two messages to one chat in the same wall-clock second.
        seconds = [int(m.at) for m in got]
        assert len(set(seconds)) == len(seconds)


@pytest.mark.django_db
def test_a_group_chat_gets_at_most_20_messages_a_minute() -> None:
    limiter = delivery.TelegramLimiter(redis_url="")
    moments: list[float] = []

    async def burst() -> None:
        clock = {"now": 0.0}
        limiter.minute.now = limiter.second.now = lambda: clock["now"]

        async def fake_sleep(seconds: float) -> None:
            clock["now"] += seconds

        limiter.minute.sleep = limiter.second.sleep = fake_sleep
        for _ in range(25):
            await limiter.acquire("-100123")
            moments.append(clock["now"])

    import asyncio

    asyncio.run(burst())
    assert sum(1 for m in moments if m < 60) == 20
    assert moments[20] >= 60


@pytest.mark.django_db
def test_broken_html_and_a_blocked_bot_fail_the_alert_for_a_person(fake: FakeTelegram) -> None:
    broken = AlertFactory(chat_id=CHAT, text="<b>unclosed")
    blocked = AlertFactory(chat_id="666")
    delivery.outbox_send_due(max_seconds=5)
    broken.refresh_from_db()
    blocked.refresh_from_db()
    assert broken.state == AlertState.FAILED
    assert "parse entities" in broken.last_error
    assert blocked.state == AlertState.FAILED
    assert "blocked" in blocked.last_error


@pytest.mark.django_db
def test_an_answer_that_never_comes_makes_the_alert_unconfirmed(
    fake: FakeTelegram, settings
) -> None:
    settings.TELEGRAM_READ_TIMEOUT_SECONDS = 0.5
    settings.ALERT_UNCONFIRMED_POLICY = "hold"
    alert = AlertFactory(chat_id=CHAT)
    fake.stall()
    delivery.outbox_send_due(max_seconds=3)
    alert.refresh_from_db()
    assert alert.state == AlertState.UNCONFIRMED  # Telegram got it; we cannot know that
    assert fake.texts() == [alert.text]


@pytest.mark.django_db
def test_console_channel_logs_the_alert_and_marks_it_sent(settings, caplog) -> None:
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_CHAT_ID = ""
    assert delivery.default_channel() == "console"
    alert = AlertFactory(channel="console", chat_id="", tier=1, text="<b>BTC</b> LONG &amp; up")
    with caplog.at_level(logging.INFO, logger="alerts.delivery"):
        delivery.outbox_send_due(max_seconds=1)
    alert.refresh_from_db()
    assert alert.state == AlertState.SENT
    assert "ALERT [TIER 1] BTC LONG & up" in caplog.text


@pytest.mark.django_db
def test_sweeper_turns_a_stale_sending_row_unconfirmed_and_applies_the_policy(settings) -> None:
    old = timezone.now() - timedelta(minutes=10)
    held = AlertFactory(state=AlertState.SENDING, claimed_at=old)
    settings.ALERT_UNCONFIRMED_POLICY = "hold"
    assert delivery.outbox_sweep_stale() == [held.pk]
    held.refresh_from_db()
    assert held.state == AlertState.UNCONFIRMED

    resent = AlertFactory(state=AlertState.SENDING, claimed_at=old)
    fresh = AlertFactory(state=AlertState.SENDING, claimed_at=timezone.now())
    settings.ALERT_UNCONFIRMED_POLICY = "resend"
    assert delivery.outbox_sweep_stale() == [resent.pk]
    resent.refresh_from_db()
    fresh.refresh_from_db()
    assert resent.state == AlertState.PENDING
    assert fresh.state == AlertState.SENDING  # still inside its send timeout
    held.refresh_from_db()
    assert held.state == AlertState.UNCONFIRMED  # a held row waits for a person


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_alert_once_in_order(fake: FakeTelegram, settings) -> None:
    settings.RATE_BUDGET_REDIS_URL = "redis://127.0.0.1:6379/10"
    alerts = [AlertFactory(chat_id=CHAT) for _ in range(4)]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            delivery.outbox_send_due(max_seconds=15)
        except BaseException as error:  # handed to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert states() == ["sent"] * 4
    assert fake.texts() == [a.text for a in alerts]
