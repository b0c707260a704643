"""Caps on alerts sent one by one, counted in market time (`created_at`, which
services.alerts_for_signal sets to `market_now()`: the replay clock in a replay, else the wall
clock): MAX_ALERTS_PER_HOUR across tiers in the last hour, and TIER_1_MAX_PER_DAY /
TIER_2_MAX_PER_DAY per tier in the last 24 hours. A replay that runs a market day in minutes
therefore sends what a live day would, not one hour's worth.

A row counts while it is or may be on its way to the phone: SENT, PENDING, SENDING, RETRYING and
UNCONFIRMED (it may have arrived). Digests, summaries and reports do not count: the caps limit
alerts sent one by one, and a digest is what the rest become.

When a cap is hit nothing is dropped. The higher tier wins: with the hour full, a new alert takes
the slot of the lowest-tier alert of the hour still waiting (PENDING, a lower tier than its own),
which is folded into the digest instead; otherwise the new alert is folded. A folded row gets
state DIGESTED and points to the chat's open digest (a PENDING digest row, sent when the oldest
alert of the hour leaves the window, at most an hour of market time later: its `next_attempt_at`
is in market time, which the outbox compares with `market_now()`), whose text is rendered again.
At the end of a replay `services.digests_flush` makes the open digest due at once.

Callers hold the chat's `AlertChat` row lock (see services.alerts_for_signal).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min

from alerts.models import Alert, AlertKind, AlertState, AlertTier
from alerts.rendering import cap_reason, render_digest

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
COUNTED_STATES = (
    AlertState.SENT,
    AlertState.PENDING,
    AlertState.SENDING,
    AlertState.RETRYING,
    AlertState.UNCONFIRMED,
)


def daily_cap(tier: int) -> int | None:
    """The day's cap of a tier; None: no daily cap (TIER 3 has only the hourly one)."""
    if tier == AlertTier.TIER_1:
        return int(settings.TIER_1_MAX_PER_DAY)
    if tier == AlertTier.TIER_2:
        return int(settings.TIER_2_MAX_PER_DAY)
    return None


def counted(channel: str, chat_id: str, since: datetime):
    return Alert.objects.filter(
        channel=channel,
        chat_id=chat_id,
        kind=AlertKind.SIGNAL,
        state__in=COUNTED_STATES,
        created_at__gt=since,
    )


def hourly_count(channel: str, chat_id: str, now: datetime) -> int:
    return counted(channel, chat_id, now - HOUR).count()


def daily_count(channel: str, chat_id: str, tier: int, now: datetime) -> int:
    return counted(channel, chat_id, now - DAY).filter(tier=tier).count()


def digest_due(channel: str, chat_id: str, now: datetime) -> datetime:
    """When the open digest goes out: as the oldest alert of the hour leaves the window."""
    oldest = counted(channel, chat_id, now - HOUR).aggregate(oldest=Min("created_at"))["oldest"]
    return (oldest or now) + HOUR


def digest_fold(alert: Alert, now: datetime) -> Alert:
    """Fold `alert` (saved or not) into the chat's open digest, creating it if needed; returns
    the digest. The alert is saved as DIGESTED."""
    digest = (
        Alert.objects.select_for_update()
        .filter(
            channel=alert.channel,
            chat_id=alert.chat_id,
            kind=AlertKind.DIGEST,
            state=AlertState.PENDING,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if digest is None:
        digest = Alert.objects.create(
            channel=alert.channel,
            chat_id=alert.chat_id,
            kind=AlertKind.DIGEST,
            tier=alert.tier,
            text="",
            disable_notification=True,
            state=AlertState.PENDING,
            next_attempt_at=digest_due(alert.channel, alert.chat_id, now),
            created_at=now,
        )
    alert.state = AlertState.DIGESTED
    alert.digest = digest
    alert.next_attempt_at = None
    alert.save()
    folded = list(Alert.objects.filter(digest=digest).select_related("signal"))
    digest.tier = min(row.tier for row in folded)
    digest.text = render_digest(folded, cap_reason())
    digest.save(update_fields=["tier", "text"])
    return digest


def alert_admit(alert: Alert, now: datetime) -> Alert:
    """Save a new, enabled one-by-one alert as PENDING if the caps allow, else fold it (or a
    lower-tier alert of the hour, to make room for it) into the digest. Returns the alert."""
    cap = daily_cap(alert.tier)
    if cap is not None and daily_count(alert.channel, alert.chat_id, alert.tier, now) >= cap:
        digest_fold(alert, now)
        return alert
    if hourly_count(alert.channel, alert.chat_id, now) >= int(settings.MAX_ALERTS_PER_HOUR):
        victim = (
            Alert.objects.select_for_update()
            .filter(
                channel=alert.channel,
                chat_id=alert.chat_id,
                kind=AlertKind.SIGNAL,
                state=AlertState.PENDING,
                tier__gt=alert.tier,
                created_at__gt=now - HOUR,
            )
            .order_by("-tier", "-created_at", "-id")
            .first()
        )
        if victim is None:
            digest_fold(alert, now)
            return alert
        digest_fold(victim, now)
    alert.state = AlertState.PENDING
    alert.save()
    return alert
