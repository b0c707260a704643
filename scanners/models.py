"""Scans: runs, their batches, per-coin results and failures, schedules and watchlists."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

# --- scans ------------------------------------------------------------------------------------

# Scanner names a run can have; `all` runs the four (SCAN_PIPELINE_CONTRACT.md, section 1).
RUN_SCANNERS = ("smart_money", "mss", "rsi", "social")


class ScannerName(models.TextChoices):
    SMART_MONEY = "smart_money", "Smart money"
    MSS = "mss", "MSS (new listings)"
    RSI = "rsi", "RSI screener"
    SOCIAL = "social", "Social trending"
    ALL = "all", "All four"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "On demand"


class Watchlist(models.Model):
    """A user's named list of coins; a scan of it replaces the universe."""

    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="watchlists")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_watchlist_name")
        ]
        ordering = ["owner", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"


class WatchlistCoin(models.Model):
    """One coin of a watchlist, as a spot symbol (BTC/USDT) checked against the Market rows."""

    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="coins")
    symbol = models.CharField(max_length=64)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["watchlist", "symbol"], name="unique_watchlist_coin")
        ]
        ordering = ["watchlist", "symbol"]

    def __str__(self) -> str:
        return self.symbol


class ScanRun(models.Model):
    """One scan: its scope, progress counts (updated as batches finish) and outcome."""

    scanner = models.CharField(max_length=16, choices=ScannerName.choices)
    status = models.CharField(
        max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    trigger = models.CharField(max_length=8, choices=RunTrigger.choices, default=RunTrigger.MANUAL)
    as_of = models.DateTimeField(help_text="Market time the scan sees the market at.")
    symbols = models.JSONField(default=list, help_text="The coins scanned, in batch order.")
    watchlist = models.ForeignKey(
        Watchlist, on_delete=models.SET_NULL, null=True, blank=True, related_name="scan_runs"
    )
    requested_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="scan_runs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    coins_total = models.PositiveIntegerField(default=0)
    coins_done = models.PositiveIntegerField(default=0)
    coins_failed = models.PositiveIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    batch_size = models.PositiveIntegerField(
        default=0,
        help_text="Coins per batch, fixed at creation (0: a run from before it was kept).",
    )
    signals_recorded = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # Liveness, read by the watchdog (scanners/watchdog.py) and the overlap guard: set at
    # creation, when a batch starts or is written, and when the watchdog re-sends work.
    progressed_at = models.DateTimeField(
        default=timezone.now, help_text="Last time the run moved (created, a batch started or "
        "was written, the watchdog re-sent its work)."
    )  # fmt: skip
    watchdog_stalls = models.PositiveIntegerField(
        default=0,
        help_text="Times in a row the watchdog found the run stalled (reset when a batch is "
        "written); at SCAN_WATCHDOG_MAX_RESENDS the run is finished as failed.",
    )
    watchdog_resends = models.PositiveIntegerField(
        default=0, help_text="Batches the watchdog re-sent, in all."
    )
    watchdog_finishes = models.PositiveIntegerField(
        default=0, help_text="Times the watchdog re-sent the final step (finish_scan)."
    )
    watchdog_log = models.TextField(
        blank=True, default="", help_text="What the watchdog did to this run, one line each."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["scanner", "status"], name="scanrun_scanner_status")]
        # A scan of the whole universe (or its top N coins) is global work: staff, or whoever an
        # admin grants it. Anyone may scan coins they name or a watchlist of theirs.
        permissions = [("scan_universe", "Can scan the whole universe or its top coins")]

    def __str__(self) -> str:
        return f"{self.scanner} scan #{self.pk} as of {self.as_of:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration(self):
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def coins_processed(self) -> int:
        return self.coins_done + self.coins_failed


class ScanBatch(models.Model):
    """A batch of a run that has been written. Its unique key is what makes a redelivered batch
    write nothing twice and count nothing twice: rows and counts are written in the transaction
    that inserts it."""

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    coins_done = models.PositiveIntegerField(default=0)
    coins_failed = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="unique_scan_batch")]

    def __str__(self) -> str:
        return f"batch {self.number} of run #{self.run_id}"


class ScanResult(models.Model):
    """One scanner's result for one coin in one run (docs/SCORING.md, "Result per coin")."""

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="results")
    scanner = models.CharField(max_length=16)
    symbol = models.CharField(max_length=64)
    as_of = models.DateTimeField()
    scores = models.JSONField(default=dict)
    # None: the scanner's own rule did not fire (a missing value, not an empty string).
    direction = models.CharField(max_length=5, null=True, blank=True)  # noqa: DJ001
    component = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)
    inputs = models.JSONField(default=dict)
    completeness = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "scanner", "symbol"], name="unique_scan_result")
        ]
        indexes = [
            # "The latest result of each scanner for a coin" walks this index backwards; `id`
            # (the tie-breaker among results of one as_of) ends it, so the newest row of a
            # (symbol, scanner) is the first entry of one probe, without a sort.
            models.Index(fields=["symbol", "scanner", "as_of", "id"], name="scanresult_latest"),
            # "The coins' results in an hour" (the ranking's latest scan of each coin) reads one
            # hour, not each coin's whole history (the index above has no scanner to pin).
            models.Index(fields=["as_of", "symbol"], name="scanresult_as_of"),
        ]

    def __str__(self) -> str:
        return f"{self.scanner} {self.symbol} @ {self.as_of:%Y-%m-%d %H:%M}"


class CoinFailure(models.Model):
    """A coin a run could not scan, and why."""

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="failures")
    symbol = models.CharField(max_length=64)
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "symbol"], name="unique_coin_failure")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} failed in run #{self.run_id}"


class ScanSchedule(models.Model):
    """Per scanner: the row start_scan locks to refuse overlapping runs, and in a replay the market
    time its next scheduled scan is due."""

    scanner = models.CharField(max_length=16, choices=ScannerName.choices, unique=True)
    next_due = models.DateTimeField(
        null=True, blank=True, help_text="Market time the next scheduled scan is due (replay)."
    )
    last_run = models.ForeignKey(
        ScanRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.scanner} schedule"
