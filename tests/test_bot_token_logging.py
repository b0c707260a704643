"""The bot token never reaches the logs.

Telegram's Bot API carries the token in every URL (`/bot<token>/getUpdates`), and httpx logs each
request's URL at INFO; the bot polls every BOT_POLL_SECONDS, so at the default log level the token
was written to the console every 3 s (found while writing docs/guides/telegram.md); and
python-telegram-bot logs its base URL, token included, at DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from alerts import delivery, summary_tasks
from fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.factories import telegram_update

CHAT = "1001"


@pytest.fixture
def fake(settings) -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    with fake.running_in_thread() as base_url:
        settings.TELEGRAM_API_URL = base_url
        settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
        settings.TELEGRAM_CHAT_ID = CHAT
        settings.TELEGRAM_ALLOWED_CHAT_IDS = [CHAT]
        settings.MARKET_SOURCE = "binance"
        settings.RATE_BUDGET_REDIS_URL = ""
        settings.CELERY_BROKER_URL = "memory://"
        yield fake


@pytest.mark.django_db(transaction=True)
def test_polling_and_replying_even_at_debug_level_log_no_bot_token(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.inject_update(telegram_update(CHAT, "/start"))

    assert summary_tasks.poll_bot_updates()["replies"] == 1
    delivery.outbox_send_due(max_seconds=5)

    assert len(fake.messages) == 1  # the poll and the reply really went over HTTP
    assert DEFAULT_TOKEN not in caplog.text
