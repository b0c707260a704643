"""Market data: one interface (`base.MarketDataSource`), a source per MARKET_SOURCE."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from market.sources.base import MarketDataSource

# MARKET_SOURCE value -> the class that serves it (imported on first use).
SOURCES = {
    "replay": "market.sources.replay.ReplaySource",
    "binance": "market.sources.binance.source.BinanceSource",
}


def get_market_source(name: str | None = None) -> MarketDataSource:
    """A new source of the kind `name`, by default settings.MARKET_SOURCE."""
    name = name or settings.MARKET_SOURCE
    try:
        path = SOURCES[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"MARKET_SOURCE={name!r} is not a market-data source; expected one of: "
            f"{', '.join(SOURCES)}"
        ) from None
    return import_string(path)()
