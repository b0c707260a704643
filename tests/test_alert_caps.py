"""Caps: MAX_ALERTS_PER_HOUR across tiers, TIER_1/TIER_2_MAX_PER_DAY per tier, in market time (the
replay clock in a replay, else the wall clock). The higher tier wins, the rest fold into a digest,
and nothing is ever lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts import delivery
from alerts.models import Alert, AlertKind, AlertState
from alerts.services import alerts_for_signal, digests_flush
from market.models import ReplayClock
from market.replay_clock import CLOCK_PK
from tests.factories import SignalAlertFactory, SignalFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
UNIFIED_TIER = {1: "TIER_1", 2: "TIER_2"}
TIER_3_SCORES = {"rsi": 28.0}  # RSI < 30: TIER 3
HOUR_STEP = timedelta(hours=1)


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_CHAT_ID = ""
    settings.TELEGRAM_TIER_1_ENABLED = True
    settings.TELEGRAM_TIER_2_ENABLED = True
    settings.TELEGRAM_TIER_3_ENABLED = True
    settings.MAX_ALERTS_PER_HOUR = 3
    settings.TIER_1_MAX_PER_DAY = 20
    settings.TIER_2_MAX_PER_DAY = 50
    return settings


def signal_of_tier(tier: int, n: int):
    """A fresh coin's signal of this alert tier (distinct symbols: no cooldown between them)."""
    if tier == 3:
        return SignalFactory(scanner="rsi", symbol=f"T3C{n}/USDT", scores=TIER_3_SCORES)
    return SignalFactory(scanner="unified", symbol=f"T{tier}C{n}/USDT", tier=UNIFIED_TIER[tier])


def alert(tier: int, n: int, minutes: float = 0) -> Alert:
    [row] = alerts_for_signal(signal_of_tier(tier, n), now=NOW + timedelta(minutes=minutes))
    return row


def states(rows: list[Alert]) -> list[str]:
    return [Alert.objects.get(pk=row.pk).state for row in rows]


def test_the_hourly_cap_folds_the_rest_into_one_digest_and_loses_nothing() -> None:
    rows = [alert(2, n, minutes=n) for n in range(5)]
    assert states(rows) == ["pending"] * 3 + ["digested"] * 2
    [digest] = Alert.objects.filter(kind=AlertKind.DIGEST)
    assert digest.state == AlertState.PENDING
    assert digest.disable_notification
    assert digest.tier == 2
    assert digest.next_attempt_at == NOW + timedelta(hours=1)  # the oldest leaves the hour
    assert {row.pk for row in digest.folded.all()} == {rows[3].pk, rows[4].pk}
    assert "T2C3/USDT" in digest.text
    assert "T2C4/USDT" in digest.text
    assert "2 alerts held back" in digest.text
    assert Alert.objects.filter(kind=AlertKind.SIGNAL).count() == 5  # every alert is a row


def test_the_hour_is_a_sliding_window() -> None:
    for n in range(3):
        alert(2, n, minutes=0)
    assert alert(2, 3, minutes=59).state == AlertState.DIGESTED
    assert alert(2, 4, minutes=60).state == AlertState.PENDING


def test_a_higher_tier_takes_the_slot_of_the_lowest_waiting_alert() -> None:
    low = [alert(3, 0), alert(2, 1), alert(3, 2)]
    urgent = alert(1, 3, minutes=1)
    assert urgent.state == AlertState.PENDING
    # the newest of the lowest tier makes room; the others keep their slots
    assert states(low) == ["pending", "pending", "digested"]
    assert Alert.objects.get(pk=low[2].pk).digest.kind == AlertKind.DIGEST
    assert Alert.objects.filter(state=AlertState.PENDING, kind=AlertKind.SIGNAL).count() == 3


def test_sent_alerts_cannot_make_room_so_the_new_one_folds() -> None:
    sent = [alert(3, n) for n in range(3)]
    Alert.objects.filter(pk__in=[row.pk for row in sent]).update(state=AlertState.SENT)
    urgent = alert(1, 9, minutes=1)
    assert urgent.state == AlertState.DIGESTED
    assert urgent.digest.tier == 1
    assert "🚨" in urgent.digest.text


def test_an_equal_tier_does_not_push_another_out() -> None:
    first = [alert(2, n) for n in range(3)]
    assert alert(2, 3).state == AlertState.DIGESTED
    assert states(first) == ["pending"] * 3


def test_the_daily_cap_of_a_tier_folds_its_alerts_even_with_room_in_the_hour(settings) -> None:
    settings.TIER_1_MAX_PER_DAY = 2
    settings.MAX_ALERTS_PER_HOUR = 100
    rows = [alert(1, n, minutes=90 * n) for n in range(3)]
    assert states(rows) == ["pending", "pending", "digested"]
    assert alert(2, 0, minutes=300).state == AlertState.PENDING  # other tiers are not affected
    # 24 hours after the first, its slot is free again
    assert alert(1, 5, minutes=24 * 60).state == AlertState.PENDING


def test_a_daily_cap_of_zero_sends_that_tier_only_in_digests(settings) -> None:
    settings.TIER_2_MAX_PER_DAY = 0
    assert alert(2, 0).state == AlertState.DIGESTED


def test_failed_suppressed_and_digested_rows_do_not_count() -> None:
    for state in (AlertState.FAILED, AlertState.SUPPRESSED, AlertState.DIGESTED):
        SignalAlertFactory(state=state, created_at=NOW)
    for state in (AlertState.SENDING, AlertState.RETRYING):
        SignalAlertFactory(state=state, created_at=NOW)
    assert alert(2, 0).state == AlertState.PENDING
    assert alert(2, 1).state == AlertState.DIGESTED  # sending + retrying + this one = 3


def test_folds_join_the_open_digest_until_it_is_claimed() -> None:
    for n in range(3):
        alert(2, n)
    one, two = alert(2, 3), alert(2, 4)
    assert one.digest_id == two.digest_id
    Alert.objects.filter(pk=one.digest_id).update(state=AlertState.SENDING)
    three = alert(2, 5)
    assert three.digest_id != one.digest_id
    assert Alert.objects.filter(kind=AlertKind.DIGEST).count() == 2
    assert Alert.objects.get(pk=three.digest_id).folded.count() == 1


def test_switched_off_tiers_are_kept_but_neither_sent_nor_counted(settings) -> None:
    settings.TELEGRAM_TIER_3_ENABLED = False
    muted = [alert(3, n) for n in range(5)]
    assert set(states(muted)) == {"suppressed"}
    assert all(row.digest_id is None for row in muted)
    assert [alert(2, n).state for n in range(3)] == ["pending"] * 3


def test_caps_are_counted_per_chat(settings) -> None:
    settings.MAX_ALERTS_PER_HOUR = 1
    assert alert(2, 0).state == AlertState.PENDING
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    settings.TELEGRAM_CHAT_ID = "42"
    telegram = alert(2, 1)
    assert (telegram.channel, telegram.chat_id, telegram.state) == ("telegram", "42", "pending")
    assert alert(2, 2).state == AlertState.DIGESTED


@pytest.fixture
def replay_clock(settings) -> ReplayClock:
    """A replay standing at NOW in market time, long before the wall clock's today."""
    settings.MARKET_SOURCE = "replay"
    return ReplayClock.objects.create(
        pk=CLOCK_PK, market_time=NOW, start=NOW, end=NOW + timedelta(days=30), step=HOUR_STEP
    )


def move(clock: ReplayClock, minutes: float) -> None:
    clock.market_time = NOW + timedelta(minutes=minutes)
    clock.save(update_fields=["market_time"])


def replayed_alert(tier: int, n: int) -> Alert:
    """An alert written the way the signal receiver writes it: at `market_now()`."""
    [row] = alerts_for_signal(signal_of_tier(tier, n))
    return row


def test_in_a_replay_the_hour_follows_the_replay_clock_not_the_wall_clock(replay_clock) -> None:
    # The wall clock barely moves while the replay runs a market hour through: the caps must
    # count the market hour, or a replayed day would send one hour's worth of alerts.
    rows = [replayed_alert(2, n) for n in range(3)]
    assert {row.created_at for row in rows} == {NOW}
    move(replay_clock, 59)
    assert replayed_alert(2, 3).state == AlertState.DIGESTED
    move(replay_clock, 61)
    assert replayed_alert(2, 4).state == AlertState.PENDING


def test_in_a_replay_the_daily_cap_follows_the_replay_clock(replay_clock, settings) -> None:
    settings.TIER_1_MAX_PER_DAY = 1
    assert replayed_alert(1, 0).state == AlertState.PENDING
    move(replay_clock, 23 * 60)
    assert replayed_alert(1, 1).state == AlertState.DIGESTED
    move(replay_clock, 24 * 60 + 1)
    assert replayed_alert(1, 2).state == AlertState.PENDING


def test_in_a_replay_the_digest_is_held_until_its_market_hour_ends(replay_clock) -> None:
    for n in range(3):
        replayed_alert(2, n)
    held = replayed_alert(2, 3)
    Alert.objects.filter(kind=AlertKind.SIGNAL, state=AlertState.PENDING).update(
        state=AlertState.SENT
    )
    assert held.digest.next_attempt_at == NOW + HOUR_STEP  # market time
    assert not delivery.outbox_has_due()  # although the wall clock is years past NOW + 1 h
    move(replay_clock, 60)
    assert [row.pk for row in delivery.outbox_claim()] == [held.digest_id]


def test_flushing_makes_the_open_digest_due_at_once(replay_clock) -> None:
    for n in range(4):
        replayed_alert(2, n)
    Alert.objects.filter(kind=AlertKind.SIGNAL, state=AlertState.PENDING).update(
        state=AlertState.SENT
    )
    [digest] = Alert.objects.filter(kind=AlertKind.DIGEST)
    assert not delivery.outbox_has_due()
    assert digests_flush() == [digest.pk]
    assert delivery.outbox_has_due()
