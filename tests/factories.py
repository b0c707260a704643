"""factory_boy factories for the candle store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory

from scanners.models import Candle, FundingRate, Market, MarketType

START = datetime(2024, 1, 1, tzinfo=UTC)


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market
        django_get_or_create = ("exchange", "market_type", "symbol")

    exchange = "binance"
    base = factory.Sequence(lambda n: f"C{n}")
    quote = "USDT"
    symbol = factory.LazyAttribute(lambda m: f"{m.base}/{m.quote}")
    market_type = MarketType.SPOT


class CandleFactory(factory.django.DjangoModelFactory):
    """Hourly candles one after another; override open_time to make gaps."""

    class Meta:
        model = Candle

    market = factory.SubFactory(MarketFactory)
    timeframe = "1h"
    open_time = factory.Sequence(lambda n: START + timedelta(hours=n))
    open = 100.0
    high = 101.0
    low = 99.0
    close = 100.5
    volume = 10.0


class FundingRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FundingRate

    market = factory.SubFactory(
        MarketFactory,
        market_type=MarketType.FUTURES,
        symbol=factory.LazyAttribute(lambda m: f"{m.base}/{m.quote}:{m.quote}"),
    )
    funding_time = factory.Sequence(lambda n: START + timedelta(hours=8 * n))
    rate = 0.0001


def hourly_candles(
    market: Market, closes: list[float | None], start: datetime = START
) -> list[Candle]:
    """Store one 1h candle per close from `start`; a None leaves a gap (no candle) at that hour."""
    candles = [
        Candle(
            market=market,
            timeframe="1h",
            open_time=start + timedelta(hours=i),
            open=close,
            high=close * 1.01,
            low=close * 0.99,
            close=close,
            volume=10.0,
        )
        for i, close in enumerate(closes)
        if close is not None
    ]
    return Candle.objects.bulk_create(candles)
