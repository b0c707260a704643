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
        help_text="Wall time a RETRYING row (or an open digest, PENDING) is due; empty: now.",
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
    # Wall time (caps count in it); a default rather than auto_now_add so tests can place rows.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["signal", "chat_id", "kind"],
                condition=models.Q(signal__isnull=False),
                name="unique_signal_alert",
            )
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
