"""Signals: what a scanner's rule or the unified ranking said, with the price it said it at."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

UNIFIED = "unified"


class SignalScanner(models.TextChoices):
    SMART_MONEY = "smart_money", "Smart money"
    MSS = "mss", "MSS"
    RSI = "rsi", "RSI screener"
    SOCIAL = "social", "Social trending"
    UNIFIED = UNIFIED, "Unified ranking"
    MANUAL = "manual", "Manual (tracked through the API)"


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


# --- outcome checks -----------------------------------------------------------------------------


class Horizon(models.TextChoices):
    H1 = "1h", "1 hour"
    H4 = "4h", "4 hours"
    H24 = "24h", "24 hours"
    D7 = "7d", "7 days"
    D30 = "30d", "30 days"


HORIZON_DELTAS: dict[str, timedelta] = {
    Horizon.H1: timedelta(hours=1),
    Horizon.H4: timedelta(hours=4),
    Horizon.H24: timedelta(hours=24),
    Horizon.D7: timedelta(days=7),
    Horizon.D30: timedelta(days=30),
}


class CheckStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its run_at (first attempt or a retry)
    CLAIMED = "claimed", "Claimed"  # a sweeper sent it to a worker at claimed_at
    DONE = "done", "Done"
    UNAVAILABLE = "unavailable", "Unavailable"  # final: no price at T after every attempt


class Outcome(models.TextChoices):
    WIN = "WIN", "Win"
    LOSS = "LOSS", "Loss"
    NEUTRAL = "NEUTRAL", "Neutral"


class Barrier(models.TextChoices):
    WIN = "win", "Win level first"
    LOSS = "loss", "Loss level first"
    BOTH = "both_in_one_candle", "Both in one candle"
    NONE = "none", "Neither"


class OutcomeCheck(models.Model):
    """One horizon of one signal's outcome (SCANNERS.md, "Outcomes"): the durable due time a
    sweeper claims, and the result a worker writes once (ARCHITECTURE.md, "Outcome checks").

    Returns and excursions are in percent. `adjusted_return_pct`, `mfe_pct` and `mae_pct` are
    direction-adjusted (positive = in the signal's favour); `excess_return_pct` is the adjusted
    return minus BTC's return adjusted the same way (see tracking/outcomes.py).
    """

    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="outcome_checks")
    horizon = models.CharField(max_length=3, choices=Horizon.choices)
    due_at = models.DateTimeField(help_text="T = the signal's as_of + the horizon (market time).")
    run_at = models.DateTimeField(
        help_text="When the next attempt is due (market time): due_at, later for a retry."
    )
    status = models.CharField(
        max_length=11, choices=CheckStatus.choices, default=CheckStatus.PENDING
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    checked_at = models.DateTimeField(
        null=True, blank=True, help_text="Wall time the result (or the final failure) was written."
    )
    exit_price = models.FloatField(null=True, blank=True)
    return_pct = models.FloatField(null=True, blank=True)
    adjusted_return_pct = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=7, choices=Outcome.choices, blank=True, default="")
    mfe_pct = models.FloatField(null=True, blank=True)
    mae_pct = models.FloatField(null=True, blank=True)
    first_barrier = models.CharField(max_length=18, choices=Barrier.choices, blank=True, default="")
    btc_return_pct = models.FloatField(null=True, blank=True)
    excess_return_pct = models.FloatField(null=True, blank=True)
    unavailable_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["signal", "horizon"], name="unique_outcome_check")
        ]
        indexes = [
            # The analytics (tracking/analytics.py) read a window's checks one signal at a time
            # (7.7k signals in a 7-day window of 1M outcomes). On PostgreSQL this index also
            # carries the columns they aggregate, so those reads are index-only scans that never
            # visit the table. Not folded into the unique constraint: Django does not create a
            # unique constraint with `include` at all on a database without covering indexes
            # (SQLite, the embedded default), which would lose the uniqueness there. On SQLite
            # this is a plain index on (signal, horizon).
            models.Index(
                fields=["signal", "horizon"],
                include=["id", "status", "outcome", "adjusted_return_pct", "excess_return_pct"],
                name="outcome_check_signal_cover",
            ),
            models.Index(fields=["status", "due_at"], name="outcome_check_due"),
            models.Index(fields=["status", "run_at"], name="outcome_check_run"),
        ]
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"{self.horizon} check of signal #{self.signal_id}: {self.status}"


class TrackerState(models.Model):
    """The outcome tracker's switch and last sweep (one row, pk=1). Disabled, the sweeper sends
    nothing: checks wait in their table, nothing is lost."""

    enabled = models.BooleanField(default=True)
    last_sweep_at = models.DateTimeField(null=True, blank=True, help_text="Wall time.")
    last_sweep_market_time = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"outcome tracker ({'enabled' if self.enabled else 'disabled'})"
