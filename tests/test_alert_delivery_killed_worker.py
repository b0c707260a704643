"""A worker killed between Telegram's receipt of an alert and the recording of it.

Real processes: `celery -A cryptosatx worker -Q alerts` on Redis (db 10) and PostgreSQL; the fake
Telegram stalls after receiving, so the worker sits inside `send_message` when it is SIGKILLed.
Telegram has the message, the row says SENDING, and nobody can know which is true: the sweeper
marks it UNCONFIRMED and applies ALERT_UNCONFIRMED_POLICY — `hold` leaves it for a person,
`resend` sends it exactly once more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from alerts import delivery
from alerts.models import Alert, AlertState
from fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.factories import AlertFactory
from tests.killed_worker import doomed_worker, worker_env
from tests.processes import flushed_redis_db, sending_app

BROKER = os.environ.get("ALERTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
CHAT = "1001"

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WORKER_SETTINGS = """
TELEGRAM_API_URL = {url!r}
TELEGRAM_BOT_TOKEN = {token!r}
TELEGRAM_CHAT_ID = {chat!r}
TELEGRAM_READ_TIMEOUT_SECONDS = 60  # the worker must still be waiting when it is killed
"""


@pytest.fixture
def broker() -> Iterator[str]:
    with flushed_redis_db(BROKER) as url:
        yield url


@pytest.fixture
def app(broker: str) -> Iterator[Celery]:
    with sending_app(broker, "cryptosatx-alert-kill-test") as celery_app:
        yield celery_app


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_a_worker_killed_between_send_and_mark_leaves_the_alert_unconfirmed(
    tmp_path: Path, settings, broker: str, app: Celery, policy: str
) -> None:
    fake = FakeTelegram()
    with fake.running_in_thread() as base_url:
        worker_settings = WORKER_SETTINGS.format(url=base_url, token=DEFAULT_TOKEN, chat=CHAT)
        env = worker_env(tmp_path, "alerts_worker_settings", worker_settings, broker)
        alert = AlertFactory(chat_id=CHAT)
        fake.stall()
        with doomed_worker(
            queues="alerts", name="alerts-doomed", env=env, log=tmp_path / "doomed.log"
        ) as kill_when:
            app.send_task("alerts.send_pending")
            # Killed once Telegram has it: the worker never hears back, never marks it.
            kill_when(lambda: len(fake.messages) == 1, "the send")
        fake.stall(False)
        assert Alert.objects.get(pk=alert.pk).state == AlertState.SENDING

        settings.TELEGRAM_API_URL = base_url
        settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
        settings.TELEGRAM_CHAT_ID = CHAT
        settings.RATE_BUDGET_REDIS_URL = broker
        settings.ALERT_UNCONFIRMED_POLICY = policy
        assert delivery.outbox_sweep_stale(timeout=0) == [alert.pk]
        for _ in range(2):  # the task again (a redelivery, the next sweep): nothing more
            delivery.outbox_send_due(max_seconds=5)
            delivery.outbox_sweep_stale(timeout=60)

        alert.refresh_from_db()
        if policy == "hold":
            assert alert.state == AlertState.UNCONFIRMED
            assert "cut off" in alert.last_error
            assert fake.texts() == [alert.text]
        else:
            assert alert.state == AlertState.SENT
            assert fake.texts() == [alert.text, alert.text]  # sent exactly once more
