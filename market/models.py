"""The market store: markets, candles, funding rates, open interest, imports and the replay clock.

All times are UTC (`market.times`). The tables keep the `scanners_` names they were created with:
the models moved here from scanners/ without copying any data (migration market 0001).
"""

from __future__ import annotations

from django.db import models


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
        # The table keeps the name it had when these models lived in scanners/.
        db_table = "scanners_market"
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
        # The table keeps the name it had when these models lived in scanners/.
        db_table = "scanners_candle"
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
        # The table keeps the name it had when these models lived in scanners/.
        db_table = "scanners_fundingrate"
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
        # The table keeps the name it had when these models lived in scanners/.
        db_table = "scanners_openinterest"
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
        # The table keeps the name it had when these models lived in scanners/.
        db_table = "scanners_importrecord"
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
    held_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A replay drives the clock until then (wall time, renewed every market hour); "
        "beat's tick leaves it alone meanwhile.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table keeps the name it had when these models lived in scanners/.
        db_table = "scanners_replayclock"

    def __str__(self) -> str:
        return f"replay clock at {self.market_time:%Y-%m-%d %H:%M} UTC"
