"""The outbox: one alert row per signal state change, written in the signal's transaction; the
send task queued after commit; channels, tier switches, sound, resend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from alerts import services
from alerts.models import Alert, AlertState
from alerts.services import alert_resend, alerts_for_signal
from tests.factories import SignalAlertFactory, SignalFactory
from tracking.models import Signal
from tracking.services import SignalCandidate, signal_record
from tracking.signals import signal_recorded

pytestmark = pytest.mark.django_db

AS_OF = datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_CHAT_ID = ""
    settings.TELEGRAM_TIER_1_ENABLED = True
    settings.TELEGRAM_TIER_2_ENABLED = True
    settings.TELEGRAM_TIER_3_ENABLED = False
    settings.MAX_ALERTS_PER_HOUR = 10
    settings.SIGNAL_COOLDOWN_HOURS = 24.0
    return settings


@pytest.fixture
def sent_tasks(monkeypatch) -> list[str]:
    from cryptosatx.celery import app

    sent: list[str] = []
    monkeypatch.setattr(app, "send_task", lambda name, *a, **k: sent.append(name))
    return sent


def candidate(scanner="smart_money", symbol="BTC/USDT", scores=None, as_of=AS_OF, **extra):
    return SignalCandidate(
        scanner=scanner,
        symbol=symbol,
        direction=extra.pop("direction", "LONG"),
        as_of=as_of,
        completeness=1.0,
        scanner_score=90.0,
        scores=scores if scores is not None else {"accumulation": 9, "distribution": 1},
        reasons=["buy share 0.58 > 0.55"],
    )


def test_recording_a_signal_writes_its_alert_and_queues_the_send_after_commit(
    sent_tasks, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        signal = signal_record(candidate(), entry_price=100.0)
        assert sent_tasks == []  # not before the commit
    [alert] = Alert.objects.all()
    assert (alert.signal, alert.tier, alert.state, alert.kind) == (signal, 1, "pending", "signal")
    assert (alert.channel, alert.chat_id) == ("console", "")
    assert not alert.disable_notification
    assert "BTC/USDT" in alert.text
    assert len(callbacks) >= 1
    assert sent_tasks == ["alerts.send_pending"]


def test_a_rolled_back_signal_leaves_no_alert() -> None:
    def record_then_fail() -> None:
        with transaction.atomic():
            signal_record(candidate(), entry_price=100.0)
            raise RuntimeError("the scan failed after recording")

    with pytest.raises(RuntimeError):
        record_then_fail()
    assert not Signal.objects.exists()
    assert not Alert.objects.exists()


def test_the_same_signal_twice_is_one_alert() -> None:
    signal = signal_record(candidate(), entry_price=100.0)
    signal_recorded.send(sender=Signal, instance=signal)
    assert alerts_for_signal(signal)[0].pk == Alert.objects.get().pk
    assert Alert.objects.count() == 1


def test_the_same_coin_firing_again_within_the_cooldown_is_not_alerted_again() -> None:
    signal_record(candidate(), entry_price=100.0)
    # another scanner agrees an hour later: same tier, same coin and direction
    signal_record(
        candidate(scanner="mss", scores={"mss": 95.0}, as_of=AS_OF + timedelta(hours=1)),
        entry_price=101.0,
    )
    assert Alert.objects.count() == 1


def test_a_rise_in_tier_is_a_state_change_and_alerted() -> None:
    signal_record(candidate(scores={"accumulation": 7, "distribution": 0}), entry_price=100.0)
    signal_record(
        candidate(scanner="mss", scores={"mss": 95.0}, as_of=AS_OF + timedelta(hours=1)),
        entry_price=101.0,
    )
    assert sorted(Alert.objects.values_list("tier", flat=True)) == [1, 2]


def test_after_the_cooldown_the_coin_is_alerted_again() -> None:
    signal_record(candidate(), entry_price=100.0)
    signal_record(candidate(as_of=AS_OF + timedelta(hours=25)), entry_price=100.0)
    assert Alert.objects.count() == 2


def test_the_other_direction_is_a_different_state() -> None:
    signal_record(candidate(), entry_price=100.0)
    signal_record(
        candidate(direction="SHORT", scores={"accumulation": 0, "distribution": 8}),
        entry_price=100.0,
    )
    assert sorted(Alert.objects.values_list("tier", flat=True)) == [1, 2]


def test_a_signal_without_an_alert_tier_writes_nothing(sent_tasks) -> None:
    signal_record(candidate(scanner="social", scores={"social": 90.0}), entry_price=1.0)
    assert not Alert.objects.exists()


def test_tier_3_is_kept_silent_and_suppressed_by_default() -> None:
    signal = signal_record(candidate(scanner="rsi", scores={"rsi": 28.0}), entry_price=1.0)
    [alert] = Alert.objects.filter(signal=signal)
    assert (alert.tier, alert.state, alert.disable_notification) == (3, "suppressed", True)


def test_tier_3_switched_on_is_sent_without_sound(settings) -> None:
    settings.TELEGRAM_TIER_3_ENABLED = True
    signal_record(candidate(scanner="rsi", scores={"rsi": 28.0}), entry_price=1.0)
    alert = Alert.objects.get()
    assert (alert.state, alert.disable_notification) == ("pending", True)


@pytest.mark.parametrize(
    ("tier", "switch"), [(1, "TELEGRAM_TIER_1_ENABLED"), (2, "TELEGRAM_TIER_2_ENABLED")]
)
def test_tiers_1_and_2_can_be_switched_off(settings, tier, switch, sent_tasks) -> None:
    setattr(settings, switch, False)
    signal = SignalFactory(scanner="unified", tier=f"TIER_{tier}")
    [alert] = alerts_for_signal(signal)
    assert (alert.tier, alert.state, alert.disable_notification) == (tier, "suppressed", False)


@pytest.mark.parametrize(
    ("token", "chat", "channel"),
    [("123:abc", "42", "telegram"), ("", "42", "console"), ("123:abc", "", "console")],
)
def test_telegram_needs_both_token_and_chat(settings, token, chat, channel) -> None:
    settings.TELEGRAM_BOT_TOKEN = token
    settings.TELEGRAM_CHAT_ID = chat
    [alert] = alerts_for_signal(SignalFactory(scanner="unified", tier="TIER_1"))
    assert alert.channel == channel
    assert alert.chat_id == (chat if channel == "telegram" else "")


@pytest.mark.parametrize("state", ["failed", "unconfirmed"])
def test_failed_and_unconfirmed_alerts_can_be_resent(
    state, sent_tasks, django_capture_on_commit_callbacks
) -> None:
    alert = SignalAlertFactory(state=state, attempts=3, last_error="chat not found")
    with django_capture_on_commit_callbacks(execute=True):
        assert alert_resend(alert)
    assert (alert.state, alert.next_attempt_at, alert.attempts) == ("pending", None, 3)
    assert sent_tasks == ["alerts.send_pending"]


@pytest.mark.parametrize("state", ["pending", "sending", "sent", "digested", "suppressed"])
def test_other_states_are_not_resent(state) -> None:
    alert = SignalAlertFactory(state=state)
    assert not alert_resend(alert)
    alert.refresh_from_db()
    assert alert.state == state


def test_a_broker_failure_does_not_fail_the_signal(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from cryptosatx.celery import app

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", down)
    with django_capture_on_commit_callbacks(execute=True):
        signal_record(candidate(), entry_price=100.0)
    assert Alert.objects.get().state == AlertState.PENDING


def test_send_task_name_is_the_delivery_task() -> None:
    assert services.SEND_TASK == "alerts.send_pending"
