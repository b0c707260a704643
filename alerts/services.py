"""Writing alerts into the outbox, and sending failed ones again.

One alert per signal state change: a signal gets at most one alert per chat (the unique
constraint), and a coin that fires again in the same direction within SIGNAL_COOLDOWN_HOURS of
market time (another scanner, or the unified ranking, agreeing) is not alerted again unless its
tier rose (TIER 2 → TIER 1 is news; TIER 1 again is not).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from alerts import caps
from alerts.models import (
    RESENDABLE_STATES,
    Alert,
    AlertChannel,
    AlertChat,
    AlertKind,
    AlertMute,
    AlertState,
    AlertTier,
)
from alerts.rendering import render_signal_alert
from alerts.rules import signal_context, signal_tier
from core.row_lock import lock_row
from market.replay_clock import market_now
from scanners.models import Watchlist

logger = logging.getLogger(__name__)

SEND_TASK = "alerts.send_pending"
TIER_SWITCHES = {
    AlertTier.TIER_1: "TELEGRAM_TIER_1_ENABLED",
    AlertTier.TIER_2: "TELEGRAM_TIER_2_ENABLED",
    AlertTier.TIER_3: "TELEGRAM_TIER_3_ENABLED",
}


def alert_destination() -> tuple[str, str]:
    """(channel, chat id): Telegram with a bot token and a chat id, else the console log."""
    token = str(settings.TELEGRAM_BOT_TOKEN or "").strip()
    chat_id = str(settings.TELEGRAM_CHAT_ID or "").strip()
    if token and chat_id:
        return AlertChannel.TELEGRAM, chat_id
    return AlertChannel.CONSOLE, ""


def tier_enabled(tier: int) -> bool:
    # Read by computed name: every TIER_SWITCHES value is in the settings table
    # (tests/test_config.py checks it).
    return bool(getattr(settings, TIER_SWITCHES[tier]))


def tier_muted(tier: int, now: datetime) -> bool:
    """A `/mute <tier> <hours>` from the bot (alerts/bot.py) is in force at `now` (wall time)."""
    return AlertMute.objects.filter(tier=tier, until__gt=now).exists()


def sound_on(tier: int) -> bool:
    """Sound for TIER 1 and 2; TIER 3 arrives silently (`disable_notification`)."""
    return tier in (AlertTier.TIER_1, AlertTier.TIER_2)


def chat_lock(channel: str, chat_id: str) -> None:
    """Lock the chat's row until the transaction ends (creating it first if needed)."""
    lock_row(AlertChat, channel=channel, chat_id=chat_id)


def cooldown() -> timedelta:
    return timedelta(hours=float(settings.SIGNAL_COOLDOWN_HOURS))


def already_alerted(signal, tier: int, channel: str, chat_id: str) -> Alert | None:
    """An alert of the same coin and direction, at least as high a tier, whose signal lies within
    the cooldown of this one's (market time)."""
    window = cooldown()
    return (
        Alert.objects.filter(
            channel=channel,
            chat_id=chat_id,
            kind=AlertKind.SIGNAL,
            tier__lte=tier,
            signal__symbol=signal.symbol,
            signal__direction=signal.direction,
            signal__as_of__gt=signal.as_of - window,
            signal__as_of__lt=signal.as_of + window,
        )
        .exclude(signal=signal)
        .order_by("tier", "created_at")
        .first()
    )


def alerts_for_signal(signal, *, now: datetime | None = None) -> list[Alert]:
    """Write the alert of a just-recorded signal (in its transaction): none when it has no alert
    tier or the coin was just alerted; SUPPRESSED when its tier is switched off or muted; else
    PENDING, or DIGESTED when a cap holds it back. Idempotent: a second call returns the existing
    row.

    `now` (default `market_now()`: the replay clock in a replay, else the wall clock) is the
    alert's `created_at` and the moment the caps count back from, so a replay's caps and digests
    follow market time. A `/mute` is in wall time (the person muted for real hours)."""
    context = signal_context(signal)
    tier = signal_tier(signal, context)
    if tier is None:
        return []
    tier = AlertTier(tier)
    now = now or market_now()
    # Outside a replay market time is the wall time; in one, a mute still counts real hours.
    wall_now = timezone.now() if settings.MARKET_SOURCE == "replay" else now
    channel, chat_id = alert_destination()
    with transaction.atomic():
        chat_lock(channel, chat_id)
        existing = list(
            Alert.objects.filter(
                signal=signal, chat_id=chat_id, kind=AlertKind.SIGNAL, channel=channel
            )
        )
        if existing:
            return existing
        earlier = already_alerted(signal, tier, channel, chat_id)
        if earlier is not None:
            logger.info(
                "no alert for signal #%s (%s %s): alert #%s (TIER %s) covers it",
                signal.pk,
                signal.symbol,
                signal.direction,
                earlier.pk,
                earlier.tier,
            )
            return []
        alert = Alert(
            channel=channel,
            chat_id=chat_id,
            tier=tier,
            signal=signal,
            kind=AlertKind.SIGNAL,
            text=render_signal_alert(signal, tier, context),
            disable_notification=not sound_on(tier),
            created_at=now,
        )
        try:
            with transaction.atomic():  # a savepoint: a lost race must not poison the caller
                if tier_enabled(tier) and not tier_muted(tier, wall_now):
                    caps.alert_admit(alert, now)
                else:
                    alert.state = AlertState.SUPPRESSED
                    alert.save()
        except IntegrityError:
            # Unreachable under the chat lock; kept so a duplicate never aborts the signal.
            return list(Alert.objects.filter(signal=signal, chat_id=chat_id, kind=alert.kind))
    logger.info(
        "alert #%s: TIER %s %s %s (%s) -> %s",
        alert.pk,
        int(tier),
        signal.symbol,
        signal.direction,
        signal.scanner,
        alert.state,
    )
    return [alert]


def send_soon() -> None:
    """Queue the send task after the transaction commits. Only a nudge: the rows are the truth
    and the periodic sweep sends them even if this message is lost."""

    def queue() -> None:
        from celery import current_app as app

        try:
            app.send_task(SEND_TASK)
        except Exception:  # a broker hiccup must not fail the caller; the sweep will send it
            logger.warning("could not queue %s; the next sweep sends the alerts", SEND_TASK)

    transaction.on_commit(queue)


def alert_resend(alert: Alert) -> bool:
    """Send a FAILED or UNCONFIRMED alert again (PENDING, due now). False if its state changed
    meanwhile or it is not resendable."""
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert.pk, state__in=RESENDABLE_STATES).update(
            state=AlertState.PENDING,
            next_attempt_at=None,
            claimed_at=None,
        )
        if updated:
            send_soon()
    if updated:
        alert.refresh_from_db()
        logger.info("alert #%s queued to be sent again", alert.pk)
    return bool(updated)


def alert_history() -> QuerySet[Alert]:
    """The outbox, newest first, each alert with its signal: what /api/alerts/ and the
    dashboard's alerts page list (every signed-in user reads it; alerts have no owner)."""
    return Alert.objects.select_related("signal").order_by("-created_at", "-id")


def watchlist_alerts(watchlist: Watchlist) -> QuerySet[Alert]:
    """The signal alerts on the coins `watchlist` holds now, newest first (digests and summaries
    have no coin). Ownership is the caller's business: look the watchlist up among the user's."""
    return alert_history().filter(
        kind=AlertKind.SIGNAL, signal__symbol__in=watchlist.coins.values("symbol")
    )


def digests_flush() -> list[int]:
    """Make every open digest (PENDING, held until its hour of market time ends) due now and
    nudge the sender: for the end of a replay, whose market hour may never end. Returns the ids.
    The digests stay rows of the outbox: sent, or retried, like any alert."""
    with transaction.atomic():
        ids = list(
            Alert.objects.select_for_update()
            .filter(kind=AlertKind.DIGEST, state=AlertState.PENDING, next_attempt_at__isnull=False)
            .values_list("pk", flat=True)
        )
        if ids:
            Alert.objects.filter(pk__in=ids).update(next_attempt_at=None)
            send_soon()
    if ids:
        logger.info("open digest(s) %s due now", ids)
    return ids
