"""The one interface every market-data source implements, and the values it returns.

Scanners call a `MarketDataSource` and cannot tell which one it is: the replay source reads the
candle store as of the replay clock, a live source asks the exchange and its data vendors. The
rules every source keeps:

- Every read takes an explicit `as_of` (aware, UTC) and returns nothing published after it: a
  candle is visible only once it has closed (`open_time + timeframe <= as_of`), a funding
  settlement only once it has settled.
- Methods are synchronous and batch-oriented: they take many symbols and return a dict with one
  entry per requested symbol (a live source runs its requests concurrently inside).
- A value a source cannot give is a `Missing(reason)`, never 0, NaN or a bare None, so a scanner
  can score without it, lower its completeness and say why.
- A source that fails as a whole (exchange down, every request refused) raises `SourceError`;
  a failure that concerns one symbol is that symbol's `Missing`.

Symbols are ccxt's unified form: `BTC/USDT` for spot, `BTC/USDT:USDT` for the USDT-M perpetual.
Derivatives data (funding, open interest, long/short, taker flow) is asked for with the spot
symbol and read from its perpetual (`perpetual_symbol`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Self

from market.models import MarketType
from market.values import (
    CandleSeries,
    Fundamentals,
    Funding,
    LargeTrades,
    LongShortRatio,
    MarketInfo,
    Maybe,
    OpenInterestNow,
    OpenInterestPoint,
    Social,
    TakerFlow,
    Ticker,
    TrendingCoin,
)


class SourceError(Exception):
    """A market-data source failed as a whole: nothing it would return can be trusted.

    `source` names the source ("replay", "binance"); the message says what failed in words a user
    can act on.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


def perpetual_symbol(symbol: str) -> str:
    """The USDT-M perpetual of a spot symbol: BTC/USDT -> BTC/USDT:USDT (a perp stays itself)."""
    if ":" in symbol:
        return symbol
    _base, _, quote = symbol.partition("/")
    return f"{symbol}:{quote}"


def unique(symbols: Iterable[str]) -> list[str]:
    """The symbols in their first order, each once."""
    return list(dict.fromkeys(symbols))


# --- the interface -----------------------------------------------------------------------------


class MarketDataSource(abc.ABC):
    """Where scanners get market data. Subclasses set `name` and implement every method.

    Every method returning a dict has exactly one entry per requested symbol (duplicates
    collapsed): the value, or `Missing` with the reason.
    """

    name: str = ""
    # True when the methods may be called from several threads at once and then overlap their
    # waiting (a network source); the scan batch then asks for independent inputs side by side.
    parallel_reads: bool = False

    @abc.abstractmethod
    def now(self) -> datetime:
        """The source's current market time: the replay clock for a replay, the wall clock live."""

    @abc.abstractmethod
    def markets(self, *, as_of: datetime, market_type: str = MarketType.SPOT) -> list[MarketInfo]:
        """Markets of the configured exchange that existed at as_of."""

    @abc.abstractmethod
    def candles(
        self, symbols: Sequence[str], *, timeframe: str = "1h", as_of: datetime, limit: int
    ) -> dict[str, Maybe[CandleSeries]]:
        """The last `limit` closed candles (close time <= as_of) of each symbol, oldest first."""

    @abc.abstractmethod
    def tickers(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Ticker]]:
        """Rolling 24h figures; Missing when no candle closed in the 24 h before as_of."""

    @abc.abstractmethod
    def funding_rates(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Funding]]:
        """Latest funding settlement at or before as_of of each symbol's perpetual."""

    @abc.abstractmethod
    def open_interest(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[OpenInterestNow]]:
        """Open interest of each symbol's perpetual at as_of, with its 24h change."""

    @abc.abstractmethod
    def open_interest_history(
        self, symbol: str, *, as_of: datetime, hours: int
    ) -> Maybe[list[OpenInterestPoint]]:
        """Open interest of the symbol's perpetual in the `hours` before as_of, oldest first."""

    @abc.abstractmethod
    def long_short_ratio(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[LongShortRatio]]:
        """Top traders' long/short ratio of each symbol's perpetual."""

    @abc.abstractmethod
    def taker_flow(
        self, symbols: Sequence[str], *, as_of: datetime, window: timedelta = timedelta(hours=24)
    ) -> dict[str, Maybe[TakerFlow]]:
        """Taker buy and sell volume over the window ending at as_of."""

    @abc.abstractmethod
    def large_trades(
        self,
        symbols: Sequence[str],
        *,
        as_of: datetime,
        min_usd: float,
        window: timedelta = timedelta(hours=1),
    ) -> dict[str, Maybe[LargeTrades]]:
        """Value of trades of at least `min_usd` in the window ending at as_of."""

    @abc.abstractmethod
    def fundamentals(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Fundamentals]]:
        """Market cap, FDV, circulating and total supply."""

    @abc.abstractmethod
    def trending(self, *, as_of: datetime) -> Maybe[list[TrendingCoin]]:
        """The vendor's trending coins, rank 1 first."""

    @abc.abstractmethod
    def social(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Social]]:
        """Galaxy score, AltRank, social volume and its 24h change, sentiment."""

    @abc.abstractmethod
    def listing_times(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[datetime]]:
        """When each market was listed; Missing for a market not listed by as_of."""

    def close(self) -> None:  # noqa: B027 - optional hook: most sources hold nothing to release
        """Release what the source holds (HTTP sessions); a source is usable until then."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
