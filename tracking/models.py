"""Signals: what a scanner's rule or the unified ranking said, with the price it said it at."""

from __future__ import annotations

from django.db import models

UNIFIED = "unified"


class SignalScanner(models.TextChoices):
    SMART_MONEY = "smart_money", "Smart money"
    MSS = "mss", "MSS"
    RSI = "rsi", "RSI screener"
    SOCIAL = "social", "Social trending"
    UNIFIED = UNIFIED, "Unified ranking"


class Direction(models.TextChoices):
    LONG = "LONG", "Long"
    SHORT = "SHORT", "Short"


class Signal(models.Model):
    """A recorded signal (SCANNERS.md, "Signals"). At most one per (scanner, symbol, direction)
    within SIGNAL_COOLDOWN_HOURS of market time, enforced under the `SignalKey` row lock."""

    scanner = models.CharField(max_length=16, choices=SignalScanner.choices)
    symbol = models.CharField(max_length=64)
    direction = models.CharField(max_length=5, choices=Direction.choices)
    as_of = models.DateTimeField()
    entry_price = models.FloatField()
    scanner_score = models.FloatField(null=True, blank=True)
    scores = models.JSONField(default=dict, blank=True)
    unified_score = models.FloatField(null=True, blank=True)
    tier = models.CharField(max_length=6, blank=True, default="")
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    completeness = models.FloatField()
    reasons = models.JSONField(default=list)
    scan_run = models.ForeignKey(
        "scanners.ScanRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="signals",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["scanner", "symbol", "direction", "as_of"], name="signal_key"),
            models.Index(fields=["as_of"], name="signal_as_of"),
        ]
        ordering = ["-as_of", "-id"]

    def __str__(self) -> str:
        return f"{self.scanner} {self.direction} {self.symbol} @ {self.as_of:%Y-%m-%d %H:%M}"


class SignalKey(models.Model):
    """One row per (scanner, symbol, direction): the lock that serialises the cooldown check and
    the insert, so two concurrent finish_scans cannot both record a signal for the same key."""

    scanner = models.CharField(max_length=16)
    symbol = models.CharField(max_length=64)
    direction = models.CharField(max_length=5)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scanner", "symbol", "direction"], name="unique_signal_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scanner} {self.symbol} {self.direction}"
