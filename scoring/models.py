"""The unified ranking: one row per coin and scan run; the latest row per symbol is the ranking."""

from __future__ import annotations

from django.db import models


class UnifiedRanking(models.Model):
    """A coin's unified score after a scan run (`scoring.services.UnifiedScore`, stored)."""

    scan_run = models.ForeignKey(
        "scanners.ScanRun", on_delete=models.CASCADE, related_name="rankings"
    )
    symbol = models.CharField(max_length=64)
    as_of = models.DateTimeField()
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # finish_scan run twice writes each coin's row once.
            models.UniqueConstraint(fields=["scan_run", "symbol"], name="unique_run_ranking")
        ]
        indexes = [models.Index(fields=["symbol", "as_of"], name="ranking_symbol_as_of")]
        ordering = ["-as_of", "-unified_score"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.direction} {self.unified_score:.1f} {self.tier}"
