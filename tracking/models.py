"""Signals: what a scanner's rule or the unified ranking said, with the price it said it at."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

UNIFIED = "unified"
# Signals tracked by hand through the API: their user's, outside every scanner's statistics.
MANUAL = "manual"


class SignalScanner(models.TextChoices):
    SMART_MONEY = "smart_money", "Smart money"
    MSS = "mss", "MSS"
    RSI = "rsi", "RSI screener"
    SOCIAL = "social", "Social trending"
    UNIFIED = UNIFIED, "Unified ranking"
    MANUAL = MANUAL, "Manual (tracked through the API)"


class Direction(models.TextChoices):
    LONG = "LONG", "Long"
    SHORT = "SHORT", "Short"


class Signal(models.Model):
    """A recorded signal (docs/SCORING.md, "Signals"). At most one per (scanner, symbol, direction)
    within SIGNAL_COOLDOWN_HOURS of market time, enforced under the `SignalKey` row lock.

    A `manual` signal (tracked by hand, tracking.services.manual_signal_track) has an `owner`:
    only they (and holders of tracking.view_signal) see it, its cooldown is the owner's own, and
    it is left out of the rollups and of every statistic unless asked for with scanner=manual.
    Scanner and unified signals have no owner."""

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
    owner = models.ForeignKey(
        "auth.User",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="manual_signals",
        help_text="Who tracked it (manual signals only).",
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
    """One horizon of one signal's outcome (docs/SCORING.md, "Outcomes"): the durable due time a
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
            # The analytics (tracking/window_aggregates.py) read a window's checks one signal at
            # a time (7.7k signals in a 7-day window of 1M outcomes). On PostgreSQL this index
            # also carries the columns they aggregate, so those reads are index-only scans that
            # never visit the table. Not folded into the unique constraint: Django does not create a
            # unique constraint with `include` at all on a database without covering indexes
            # (SQLite, the embedded default), which would lose the uniqueness there. On SQLite
            # this is a plain index on (signal, horizon).
            models.Index(
                fields=["signal", "horizon"],
                include=["id", "status", "outcome", "adjusted_return_pct", "excess_return_pct"],
                name="outcome_check_signal_cover",
            ),
            # The best and worst checked outcomes of a window (tracking/window_aggregates.py):
            # walked from either end of the returns until enough of them fall in the window.
            models.Index(
                fields=["horizon", "adjusted_return_pct"],
                condition=models.Q(status=CheckStatus.DONE),
                name="outcome_check_top",
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

    class Meta:
        # Switching the tracker is global: staff, or whoever an admin grants it (cryptosatx/
        # permissions.py).
        permissions = [("control_tracker", "Can start and stop the outcome tracker")]

    def __str__(self) -> str:
        return f"outcome tracker ({'enabled' if self.enabled else 'disabled'})"


# --- rollups ------------------------------------------------------------------------------------


class RollupLevel(models.IntegerChoices):
    """Which of the signal's columns a rollup row keeps; the others are stored as "" (all)."""

    TOTAL = 0, "none (all signals)"
    DIMENSIONS = 1, "scanner, tier, direction"
    SYMBOL = 2, "symbol"


class OutcomeRollup(models.Model):
    """Additive aggregates of the signals and their outcome checks per UTC day of the signals'
    as_of (tracking/rollups.py), so a long analytics window reads days, not rows.

    A ledger, not a set of counters: database triggers on the signal and check tables append
    the change of every write as a row (in the writing transaction, whatever the writer: the
    outcome workers, a bulk COPY, a test factory), and `rollups_compact` folds the rows of a key
    into one (`merged`). The numbers of a key are the sums over its rows, so they are right
    whether or not it was compacted; appending never locks a shared row, so concurrent outcome
    workers neither wait for each other nor deadlock on the same day's totals.

    Rows with horizon "" carry the signal count (`signals`); the others one horizon's checks.
    Returns are summed in integer units of 10^-ROUND_DIGITS percent (the precision the outcome
    checks round to), so sums are exact and do not depend on the order they are added in.
    """

    level = models.PositiveSmallIntegerField(choices=RollupLevel.choices)
    day = models.DateField(help_text="UTC date of the signals' as_of.")
    horizon = models.CharField(max_length=3, blank=True)
    scanner = models.CharField(max_length=16, blank=True)
    tier = models.CharField(max_length=6, blank=True)
    direction = models.CharField(max_length=5, blank=True)
    symbol = models.CharField(max_length=64, blank=True)
    merged = models.BooleanField(default=False)
    signals = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0, help_text="Open checks (pending or claimed).")
    unavailable = models.BigIntegerField(default=0)
    n = models.BigIntegerField(default=0, help_text="Checked (DONE) outcomes.")
    wins = models.BigIntegerField(default=0)
    losses = models.BigIntegerField(default=0)
    neutral = models.BigIntegerField(default=0)
    # Checked outcomes with an adjusted return: all, wins, losses (the averages' denominators).
    returns = models.BigIntegerField(default=0)
    win_returns = models.BigIntegerField(default=0)
    loss_returns = models.BigIntegerField(default=0)
    # Sums of adjusted returns (10^-9 %): all, wins, losses, positive ones, negative ones.
    sum_return = models.BigIntegerField(default=0)
    sum_win = models.BigIntegerField(default=0)
    sum_loss = models.BigIntegerField(default=0)
    sum_positive = models.BigIntegerField(default=0)
    sum_negative = models.BigIntegerField(default=0)
    excess_n = models.BigIntegerField(default=0)
    sum_excess = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["level", "horizon", "day"], name="outcome_rollup_read"),
            # What `rollups_compact` looks for.
            models.Index(
                fields=["level", "day"],
                condition=models.Q(merged=False),
                name="outcome_rollup_fresh",
            ),
        ]

    def __str__(self) -> str:
        return f"rollup L{self.level} {self.day} {self.horizon or 'signals'}"
