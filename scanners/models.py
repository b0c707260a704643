"""The candle store: markets, candles, funding rates, open interest, and the replay clock.

All times are UTC. A candle is identified by its open time; it is *closed*, and so visible to a
point-in-time read as of T, only when `open_time + timeframe <= T`.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

TIMEFRAMES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "8h": timedelta(hours=8),
    "1d": timedelta(days=1),
}


def timeframe_duration(timeframe: str) -> timedelta:
    """The length of one candle of `timeframe`; ValueError for a timeframe we do not store."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}"
        ) from None


class MarketType(models.TextChoices):
    SPOT = "spot", "Spot"
    FUTURES = "futures", "USDT-M perpetual"


class ListingSource(models.TextChoices):
    EXCHANGE = "exchange", "Exchange metadata"
    FIRST_CANDLE = "first_candle", "First stored candle"


class Market(models.Model):
    """A tradable market. Symbols use ccxt's unified form: BTC/USDT (spot), BTC/USDT:USDT (perp)."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=64)
    base = models.CharField(max_length=32)
    quote = models.CharField(max_length=16)
    market_type = models.CharField(max_length=8, choices=MarketType.choices)
    listed_at = models.DateTimeField(null=True, blank=True)
    listed_at_source = models.CharField(
        max_length=16, choices=ListingSource.choices, blank=True, default=""
    )
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "market_type", "symbol"], name="unique_market"
            )
        ]
        ordering = ["exchange", "market_type", "symbol"]

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} ({self.market_type})"


class PriceSeries(models.TextChoices):
    TRADES = "trades", "Traded price"
    MARK = "mark", "Mark price"


class Candle(models.Model):
    """One OHLCV candle. Prices are floats: market data, never money we account with."""

    # No index of its own: the unique constraint's index leads with the market and serves
    # every lookup by market; a second index would only slow bulk writes.
    market = models.ForeignKey(
        Market, on_delete=models.CASCADE, related_name="candles", db_index=False
    )
    timeframe = models.CharField(max_length=4)
    series = models.CharField(max_length=8, choices=PriceSeries.choices, default=PriceSeries.TRADES)
    open_time = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(help_text="Base-asset volume.")
    taker_buy_volume = models.FloatField(
        null=True,
        blank=True,
        help_text="Base-asset volume bought by takers, when the source has it.",
    )

    class Meta:
        constraints = [
            # The natural key; its index also serves "last N closed candles before T" reads,
            # which filter on its leading columns and walk open_time backwards.
            models.UniqueConstraint(
                fields=["market", "timeframe", "series", "open_time"], name="unique_candle"
            ),
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("low")), name="candle_high_not_below_low"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.market.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class FundingRate(models.Model):
    """A perpetual's funding settlement. `rate` is a fraction per period: 0.0001 = 0.01 %."""

    # No index of its own: the unique constraint's index leads with the market and serves
    # every lookup by market; a second index would only slow bulk writes.
    market = models.ForeignKey(
        Market, on_delete=models.CASCADE, related_name="funding_rates", db_index=False
    )
    funding_time = models.DateTimeField()
    rate = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["market", "funding_time"], name="unique_funding")
        ]

    def __str__(self) -> str:
        return f"{self.market.symbol} funding {self.rate:+.6f} @ {self.funding_time:%Y-%m-%d %H:%M}"


class OpenInterest(models.Model):
    """Open interest of a perpetual at a time (contracts in base asset, value in quote)."""

    # No index of its own: the unique constraint's index leads with the market and serves
    # every lookup by market; a second index would only slow bulk writes.
    market = models.ForeignKey(
        Market, on_delete=models.CASCADE, related_name="open_interest", db_index=False
    )
    timestamp = models.DateTimeField()
    open_interest = models.FloatField()
    open_interest_value = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["market", "timestamp"], name="unique_open_interest")
        ]
        verbose_name_plural = "open interest"

    def __str__(self) -> str:
        return f"{self.market.symbol} OI {self.open_interest:g} @ {self.timestamp:%Y-%m-%d %H:%M}"


class ImportKind(models.TextChoices):
    CANDLES = "candles", "Candles"
    FUNDING = "funding", "Funding rates"


class ImportRecord(models.Model):
    """One file accepted by import_ohlcv: what it held and how much of it was new."""

    path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=ImportKind.choices)
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="imports")
    timeframe = models.CharField(max_length=4, blank=True, default="")
    series = models.CharField(max_length=8, blank=True, default="")
    rows = models.PositiveIntegerField()
    inserted = models.PositiveIntegerField()
    first_time = models.DateTimeField(null=True)
    last_time = models.DateTimeField(null=True)
    gaps = models.PositiveIntegerField(default=0, help_text="Missing intervals inside the file.")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.path} ({self.inserted} of {self.rows} new)"


class ReplayClock(models.Model):
    """The market time a replay stands at. One row (pk=1); beat advances it in steps.

    Scanners and outcome checks in a replay read the candle store as of `market_time`.
    """

    market_time = models.DateTimeField()
    start = models.DateTimeField()
    end = models.DateTimeField(
        help_text="Close time of the last stored candle; the clock stops here."
    )
    step = models.DurationField(help_text="Market time added per tick.")
    ticks = models.PositiveIntegerField(default=0)
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"replay clock at {self.market_time:%Y-%m-%d %H:%M} UTC"


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
            # "The latest result of each scanner for a coin" walks this index backwards.
            models.Index(fields=["symbol", "scanner", "as_of"], name="scanresult_latest")
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
