"""The unified ranking: one row per coin and hour; the latest row per symbol is the ranking.

`RankedRun` records which runs' final steps have ranked their hour, so the last of them can tell
that it is the last (scoring/ranking.py).
"""

from __future__ import annotations

from django.db import models


class UnifiedRanking(models.Model):
    """A coin's unified score in one hour (`scoring.services.UnifiedScore`, stored).

    One row per (symbol, hour): every scan run of that hour recomputes it from the results with
    as_of ≤ the row's as_of, so it ends the same whichever run finishes last (docs/SCORING.md,
    "One ranking per coin and hour").
    """

    scan_run = models.ForeignKey(
        "scanners.ScanRun",
        on_delete=models.CASCADE,
        related_name="rankings",
        help_text="The run of the latest result the row was computed from.",
    )
    symbol = models.CharField(max_length=64)
    hour = models.DateTimeField(help_text="The hour the row ranks the coin in (as_of, floored).")
    as_of = models.DateTimeField(help_text="The latest scan of the coin in that hour.")
    direction = models.CharField(max_length=5)
    unified_score = models.FloatField()
    score_long = models.FloatField(null=True, blank=True)
    score_short = models.FloatField(null=True, blank=True)
    tier = models.CharField(max_length=6)
    score_tier = models.CharField(max_length=6)
    confirmations = models.PositiveSmallIntegerField()
    confirmed_by = models.JSONField(default=list)
    confidence = models.PositiveSmallIntegerField()
    recommendation = models.CharField(max_length=16)
    completeness = models.FloatField()
    breakdown = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)
    notes = models.JSONField(default=list)
    enters_signal_tier = models.BooleanField(
        default=False,
        help_text="The coin entered TIER_1/TIER_2 (in this direction) with this row: "
        "a unified signal is due.",
    )
    signal_decided = models.BooleanField(
        default=False,
        help_text="The unified signal this row is due has been decided (recorded, or refused "
        "by the cooldown or for want of an entry price).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Every run of the hour upserts the same row; its index also serves "the previous
            # rows of these coins" (symbol, hour range).
            models.UniqueConstraint(fields=["symbol", "hour"], name="unique_ranking_coin_hour")
        ]
        indexes = [
            models.Index(fields=["symbol", "as_of"], name="ranking_symbol_as_of"),
            # "The rows of an hour" (its signals' context, its undecided entries) reads one hour,
            # not every row the table holds: a scan that grew with history.
            models.Index(fields=["hour"], name="ranking_hour"),
            # "The undecided entries of the last day" (every final step asks): only the few rows
            # whose unified signal is due and undecided, not the day's every row.
            models.Index(
                fields=["hour"],
                condition=models.Q(enters_signal_tier=True, signal_decided=False),
                name="ranking_undecided_entries",
            ),
        ]
        ordering = ["-as_of", "-unified_score"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.direction} {self.unified_score:.1f} {self.tier}"


class RankedRun(models.Model):
    """A scan run whose final step has ranked its coins (committed with the rows it wrote).

    A run of the hour that is queued or running and has no `RankedRun` is still to rank: while
    one exists, the unified signals of the hour wait for it.
    """

    run = models.OneToOneField(
        "scanners.ScanRun", on_delete=models.CASCADE, primary_key=True, related_name="ranked"
    )
    hour = models.DateTimeField(db_index=True)
    ranked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"run #{self.run_id} ranked for {self.hour:%Y-%m-%d %H:00}"
