"""The alert outbox (ALERTS_CONTRACT.md, section 1).

Every alert is a row, written in the transaction that records its signal; a task on the `alerts`
queue sends the due rows. The row is the truth: a lost task message, a restart or a Telegram
outage loses nothing, and a row that reached SENT is never sent again.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertTier(models.IntegerChoices):
    TIER_1 = 1, "TIER 1 (urgent)"
    TIER_2 = 2, "TIER 2 (high)"
    TIER_3 = 3, "TIER 3 (medium)"


class AlertState(models.TextChoices):
    PENDING = "pending", "Pending"  # written, not yet tried (a digest: not before next_attempt_at)
    SENDING = "sending", "Sending"  # a worker claimed it and is calling Telegram right now
    SENT = "sent", "Sent"  # Telegram answered with a message id (console: logged)
    RETRYING = "retrying", "Retrying"  # the last try failed; next_attempt_at says when
    UNCONFIRMED = "unconfirmed", "Unconfirmed"  # SENDING whose worker vanished: sent or not?
    FAILED = "failed", "Failed"  # gave up (bad chat, bot blocked): resend from the admin
    DIGESTED = "digested", "Folded into a digest"  # by a cap; `digest` says which
    SUPPRESSED = "suppressed", "Suppressed"  # its tier is switched off: kept, never sent


class AlertChannel(models.TextChoices):
    TELEGRAM = "telegram", "Telegram"
    CONSOLE = "console", "Console log"


class AlertKind(models.TextChoices):
    SIGNAL = "signal", "Signal"
    DIGEST = "digest", "Digest"
    DAILY_SUMMARY = "daily_summary", "Daily summary"
    WEEKLY_REPORT = "weekly_report", "Weekly report"
    MONTHLY_REPORT = "monthly_report", "Monthly report"
    COMMAND_REPLY = "command_reply", "Bot command reply"


# States a worker may still send, and states a person can send again.
SENDABLE_STATES = (AlertState.PENDING, AlertState.RETRYING)
RESENDABLE_STATES = (AlertState.FAILED, AlertState.UNCONFIRMED)


class Alert(models.Model):
    """One message to one chat: a signal's alert, a digest of alerts a cap held back, or a
    summary/report. `text` is rendered once, in Telegram's HTML parse mode."""

    channel = models.CharField(max_length=10, choices=AlertChannel.choices)
    chat_id = models.CharField(
        max_length=64, blank=True, default="", help_text="Telegram chat id; empty on the console."
    )
    tier = models.PositiveSmallIntegerField(choices=AlertTier.choices)
    signal = models.ForeignKey(
        "tracking.Signal",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alerts",
        help_text="The signal alerted; empty for digests, summaries and reports.",
    )
    kind = models.CharField(max_length=16, choices=AlertKind.choices, default=AlertKind.SIGNAL)
    text = models.TextField(help_text="The message as sent (Telegram HTML parse mode).")
    disable_notification = models.BooleanField(
        default=False, help_text="Delivered without sound (TIER 3 and digests)."
    )
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When a RETRYING row is due (wall time) or an open digest, PENDING, is due (market "
            "time); empty: now."
        ),
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    telegram_message_id = models.BigIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    digest = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="folded",
        help_text="The digest this alert was folded into by a cap.",
    )
    # Signal alerts and digests: market time (the replay clock in a replay, else the wall clock;
    # caps count in it). Other rows: wall time. A default rather than auto_now_add so tests can
    # place rows.
    created_at = models.DateTimeField(default=timezone.now)
    # Summaries and reports (alerts/summaries.py): the first day of the period they cover.
    period = models.DateField(
        null=True,
        blank=True,
        help_text="Summaries/reports: first day (in TIME_ZONE) of the period covered.",
    )

    class Meta:
        # Resending is global (it posts to the chat again): staff, or whoever an admin grants it.
        permissions = [("resend_alert", "Can send a failed or unconfirmed alert again")]
        constraints = [
            models.UniqueConstraint(
                fields=["signal", "chat_id", "kind"],
                condition=models.Q(signal__isnull=False),
                name="unique_signal_alert",
            ),
            # One summary/report per period and chat: a repeated beat tick sends nothing twice.
            models.UniqueConstraint(
                fields=["kind", "channel", "chat_id", "period"],
                condition=models.Q(period__isnull=False),
                name="unique_period_alert",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="alert_due"),
            models.Index(fields=["chat_id", "created_at"], name="alert_chat_created"),
            models.Index(fields=["created_at"], name="alert_created"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        what = f"signal #{self.signal_id}" if self.signal_id else self.get_kind_display().lower()
        return f"TIER {self.tier} {what} to {self.channel} {self.chat_id}: {self.state}".replace(
            "  ", " "
        )


class AlertChat(models.Model):
    """One row per (channel, chat): the lock that serialises the cap count and the insert, so
    two signals recorded at once cannot both take the last slot of an hour."""

    channel = models.CharField(max_length=10, choices=AlertChannel.choices)
    chat_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "chat_id"], name="unique_alert_chat")
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.chat_id}".strip()


class AlertMute(models.Model):
    """`/mute <tier> <hours>` from an allowed chat: alerts of this tier written before `until`
    (wall time) are SUPPRESSED (kept, listed in the daily summary, never sent). A mute applies to
    every alert destination (there is one: TELEGRAM_CHAT_ID, or the console)."""

    tier = models.PositiveSmallIntegerField(choices=AlertTier.choices)
    until = models.DateTimeField(help_text="Wall time the mute ends.")
    muted_by_chat = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tier", "until"], name="alertmute_tier_until")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"TIER {self.tier} muted until {self.until:%Y-%m-%d %H:%M}"


class BotState(models.Model):
    """The bot poller's single row (pk 1): the next getUpdates offset (Telegram confirms every
    update below it), advanced in the transaction that stores the replies."""

    update_offset = models.BigIntegerField(default=0)
    polled_at = models.DateTimeField(null=True, blank=True, help_text="Wall time.")

    def __str__(self) -> str:
        return f"bot state (offset {self.update_offset})"
