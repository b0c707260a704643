"""The replay source: the candle store read as of the replay clock.

What a replay knows is what the store holds: 1h candles (spot, and perpetuals where imported),
funding settlements, and open interest where a live run recorded it. Everything else a live source
gets from Binance's 30-day endpoints, CoinGecko or LunarCrush is `Missing`, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings

from market import candle_store
from market.models import ListingSource, Market, MarketType, OpenInterest
from market.replay_clock import ensure_clock
from market.sources.base import MarketDataSource, SourceError, perpetual_symbol, unique
from market.times import require_aware, show_time
from market.values import (
    CandleSeries,
    Fundamentals,
    Funding,
    LargeTrades,
    LongShortRatio,
    MarketInfo,
    Maybe,
    Missing,
    OpenInterestNow,
    OpenInterestPoint,
    Social,
    TakerFlow,
    Ticker,
    TrendingCoin,
)

DAY = timedelta(hours=24)
# Funding settles every 8 h or more often; a latest settlement older than this means the perpetual
# was not trading at as_of (or the store has a hole there), so its rate says nothing about as_of.
FUNDING_MAX_AGE = timedelta(hours=24)
# Open interest is recorded at least hourly; a reading older than this is no reading of as_of.
OPEN_INTEREST_MAX_AGE = timedelta(hours=2)

NOT_IN_REPLAY = {
    "long_short": "top-trader long/short ratios are not in the replay data: "
    "Binance serves only 30 days of them",
    "taker_flow": "perpetual taker buy/sell volume is not in the replay data: "
    "Binance serves only 30 days of it",
    "large_trades": "individual trades are not in the replay data: it holds 1h candles only",
    "fundamentals": "market cap, FDV and supply are not in the replay data: "
    "they come from CoinGecko, live only",
    "trending": "trending ranks are not in the replay data: CoinGecko publishes only the "
    "current list",
    "social": "social metrics are not in the replay data: they come from LunarCrush, live only",
}


def tickers_from_candles(
    hourly: dict[str, Maybe[CandleSeries]], as_of: datetime
) -> dict[str, Maybe[Ticker]]:
    """Rolling 24h tickers from each symbol's last 1h candles closed by as_of (Missing when none
    closed in the 24 h before it). Also what the live source answers for a past as_of."""
    result: dict[str, Maybe[Ticker]] = {}
    for symbol, candles in hourly.items():
        if isinstance(candles, Missing):
            result[symbol] = candles
            continue
        window = candles.closed_after(as_of - DAY)
        if not len(window):
            result[symbol] = Missing(
                f"no 1h candle of {symbol} closed in the 24 h before {show_time(as_of)} "
                f"(the last closed at {show_time(candles.last_close_time)})"
            )
        elif window.open[0] <= 0:
            result[symbol] = Missing(f"the 24h open price of {symbol} is not positive")
        else:
            result[symbol] = _ticker(symbol, window)
    return result


class ReplaySource(MarketDataSource):
    """Market data from the candle store, as of the replay clock.

    `clock` replaces the replay clock as the source's `now()` (a backtest walking its own time);
    by default `now()` is the clock's market time, and the clock is created from the store on
    first use.
    """

    name = "replay"

    def __init__(
        self,
        *,
        exchange: str | None = None,
        clock: Callable[[], datetime] | None = None,
        memory: candle_store.CandleMemory | None = None,
    ) -> None:
        self.exchange = exchange or settings.EXCHANGE
        self._clock = clock
        # With `memory` (a replay's in-process source): candles come from it, and markets and
        # tickers, which nothing changes during a replay, are read once per as_of (every scan of
        # an hour picks its universe from the same ones).
        self.memory = memory
        self._markets_as_of: dict[tuple[datetime, str], list[MarketInfo]] = {}
        self._tickers_as_of: dict[tuple[datetime, tuple[str, ...]], dict[str, Maybe[Ticker]]] = {}
        self._memo_as_of: datetime | None = None
        self._market_rows: dict[str, Market | None] = {}
        self._every_market: dict[str, list[Market]] = {}

    def now(self) -> datetime:
        if self._clock is not None:
            return require_aware(self._clock(), "clock time")
        clock = ensure_clock()
        if clock is None:
            raise SourceError(
                self.name,
                f"the candle store holds no 1h spot candles of {self.exchange}; "
                "import market data first (manage.py import_ohlcv)",
            )
        return clock.market_time

    # --- markets and candles ----------------------------------------------------------------

    def markets(self, *, as_of: datetime, market_type: str = MarketType.SPOT) -> list[MarketInfo]:
        if self.memory is None:
            return self._read_markets(as_of, market_type)
        self._forget_other_hours(as_of)
        key = (as_of, market_type)
        if key not in self._markets_as_of:
            self._markets_as_of[key] = self._read_markets(as_of, market_type)
        return self._markets_as_of[key]

    def _read_markets(self, as_of: datetime, market_type: str) -> list[MarketInfo]:
        every = Market.objects.filter(exchange=self.exchange, market_type=market_type)
        if self.memory is None:
            annotated = candle_store.annotate_candle_bounds(every, as_of=as_of).filter(
                first_open_time__isnull=False
            )
            traded = [(m, m.first_open_time, m.last_open_time) for m in annotated]
        else:
            # The markets once (nothing adds any during a replay), their bounds from memory.
            if market_type not in self._every_market:
                self._every_market[market_type] = list(every)
            markets = self._every_market[market_type]
            bounds = self.memory.candle_bounds_bulk(markets, as_of=as_of)
            traded = [(m, *bounds[m.pk]) for m in markets if m.pk in bounds]
        hour = timedelta(hours=1)
        return [
            MarketInfo(
                exchange=market.exchange,
                symbol=market.symbol,
                base=market.base,
                quote=market.quote,
                market_type=market.market_type,
                listed_at=first_open_time,
                listed_at_source=ListingSource.FIRST_CANDLE,
                # Market.active is today's status; as of as_of, a market is active while it trades.
                active=last_open_time + hour > as_of - candle_store.STALE_AFTER,
            )
            for market, first_open_time, last_open_time in traded
        ]

    def candles(
        self, symbols: Sequence[str], *, timeframe: str = "1h", as_of: datetime, limit: int
    ) -> dict[str, Maybe[CandleSeries]]:
        symbols = unique(symbols)
        found = self._markets(symbols)
        read = (
            candle_store.closed_candles_bulk
            if self.memory is None
            else self.memory.closed_candles_bulk
        )
        series = read(list(found.values()), timeframe=timeframe, as_of=as_of, limit=limit)
        result: dict[str, Maybe[CandleSeries]] = {}
        for symbol in symbols:
            market = found.get(symbol)
            if market is None:
                result[symbol] = self._no_market(symbol)
            elif not len(candles := series[market.pk]):
                result[symbol] = Missing(
                    f"no {timeframe} candle of {symbol} closed at or before {show_time(as_of)}"
                )
            else:
                result[symbol] = candles
        return result

    def tickers(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Ticker]]:
        if self.memory is not None:
            self._forget_other_hours(as_of)
            key = (as_of, tuple(symbols))
            if key not in self._tickers_as_of:
                self._tickers_as_of[key] = self._read_tickers(symbols, as_of)
            return self._tickers_as_of[key]
        return self._read_tickers(symbols, as_of)

    def _forget_other_hours(self, as_of: datetime) -> None:
        """A replay moves forward: what was read for another as_of is not asked again."""
        if self._memo_as_of != as_of:
            self._markets_as_of.clear()
            self._tickers_as_of.clear()
            self._memo_as_of = as_of

    def _read_tickers(self, symbols: Sequence[str], as_of: datetime) -> dict[str, Maybe[Ticker]]:
        return tickers_from_candles(
            self.candles(symbols, timeframe="1h", as_of=as_of, limit=24), as_of
        )

    def listing_times(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[datetime]]:
        symbols = unique(symbols)
        found = self._markets(symbols)
        first_open: dict[int, datetime | None]
        if self.memory is None:
            first_open = dict(
                candle_store.annotate_candle_bounds(
                    Market.objects.filter(pk__in=[market.pk for market in found.values()]),
                    as_of=as_of,
                ).values_list("pk", "first_open_time")
            )
        else:
            # The same first candles, from memory: no query per scan that asks for listings.
            bounds = self.memory.candle_bounds_bulk(list(found.values()), as_of=as_of)
            first_open = {
                market.pk: bounds[market.pk][0] if market.pk in bounds else None
                for market in found.values()
            }
        result: dict[str, Maybe[datetime]] = {}
        for symbol in symbols:
            market = found.get(symbol)
            if market is None:
                result[symbol] = self._no_market(symbol)
            elif first_open[market.pk] is None:
                result[symbol] = Missing(
                    f"{symbol} has no 1h candle closed at or before {show_time(as_of)}: "
                    "not listed yet"
                )
            else:
                result[symbol] = first_open[market.pk]
        return result

    # --- derivatives -------------------------------------------------------------------------

    def funding_rates(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Funding]]:
        symbols = unique(symbols)
        perps = {symbol: perpetual_symbol(symbol) for symbol in symbols}
        found = self._markets(perps.values())
        read = (
            candle_store.recent_funding_bulk
            if self.memory is None
            else self.memory.recent_funding_bulk
        )
        recent = read(list(found.values()), as_of)
        result: dict[str, Maybe[Funding]] = {}
        for symbol, perp in perps.items():
            market = found.get(perp)
            settlement = recent.get(market.pk) if market is not None else None
            if market is None:
                result[symbol] = Missing(f"no perpetual {perp} on {self.exchange} in the store")
            elif settlement is None:
                result[symbol] = Missing(
                    f"no funding settlement of {perp} at or before as_of ({show_time(as_of)})"
                )
            elif settlement.funding_time <= as_of - FUNDING_MAX_AGE:
                result[symbol] = Missing(
                    f"the latest funding settlement of {perp} at or before {show_time(as_of)} is "
                    f"from {show_time(settlement.funding_time)}, more than 24 h earlier"
                )
            else:
                result[symbol] = Funding(
                    symbol=symbol,
                    perp_symbol=perp,
                    rate=settlement.rate,
                    funding_time=settlement.funding_time,
                    interval=_funding_interval(perp, settlement),
                )
        return result

    def open_interest(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[OpenInterestNow]]:
        symbols = unique(symbols)
        perps = {symbol: perpetual_symbol(symbol) for symbol in symbols}
        found = self._markets(perps.values())
        # Every perpetual's reading now and a day ago, read at once.
        read = (
            candle_store.open_interest_at_bulk
            if self.memory is None
            else self.memory.open_interest_at_bulk
        )
        now = read(list(found.values()), as_of)
        day_before = read(list(found.values()), as_of - DAY)
        result: dict[str, Maybe[OpenInterestNow]] = {}
        for symbol, perp in perps.items():
            market = found.get(perp)
            latest = now.get(market.pk) if market else None
            if latest is None:
                result[symbol] = _no_open_interest(perp)
            elif latest.timestamp <= as_of - OPEN_INTEREST_MAX_AGE:
                result[symbol] = Missing(
                    f"the latest stored open interest of {perp} is from "
                    f"{show_time(latest.timestamp)}, more than 2 h before {show_time(as_of)}"
                )
            else:
                day_ago = _open_interest_near(market, as_of - DAY, day_before.get(market.pk))
                result[symbol] = OpenInterestNow(
                    symbol=symbol,
                    perp_symbol=perp,
                    timestamp=latest.timestamp,
                    open_interest=latest.open_interest,
                    open_interest_value=_value_of(latest),
                    open_interest_24h_ago=day_ago,
                    change_24h_pct=_change_pct(latest.open_interest, day_ago),
                )
        return result

    def open_interest_history(
        self, symbol: str, *, as_of: datetime, hours: int
    ) -> Maybe[list[OpenInterestPoint]]:
        perp = perpetual_symbol(symbol)
        market = self._markets([perp]).get(perp)
        stored = (
            candle_store.open_interest_between(
                market, start=as_of - timedelta(hours=hours), end=as_of
            )
            if market is not None
            else []
        )
        if not stored:
            return _no_open_interest(perp)
        return [
            OpenInterestPoint(row.timestamp, row.open_interest, _value_of(row)) for row in stored
        ]

    def long_short_ratio(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[LongShortRatio]]:
        return _all_missing(symbols, as_of, NOT_IN_REPLAY["long_short"])

    def taker_flow(
        self, symbols: Sequence[str], *, as_of: datetime, window: timedelta = DAY
    ) -> dict[str, Maybe[TakerFlow]]:
        return _all_missing(symbols, as_of, NOT_IN_REPLAY["taker_flow"])

    # --- trades and vendors ------------------------------------------------------------------

    def large_trades(
        self,
        symbols: Sequence[str],
        *,
        as_of: datetime,
        min_usd: float,
        window: timedelta = timedelta(hours=1),
    ) -> dict[str, Maybe[LargeTrades]]:
        return _all_missing(symbols, as_of, NOT_IN_REPLAY["large_trades"])

    def fundamentals(
        self, symbols: Sequence[str], *, as_of: datetime
    ) -> dict[str, Maybe[Fundamentals]]:
        return _all_missing(symbols, as_of, NOT_IN_REPLAY["fundamentals"])

    def trending(self, *, as_of: datetime) -> Maybe[list[TrendingCoin]]:
        require_aware(as_of)
        return Missing(NOT_IN_REPLAY["trending"])

    def social(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Maybe[Social]]:
        return _all_missing(symbols, as_of, NOT_IN_REPLAY["social"])

    # --- helpers -----------------------------------------------------------------------------

    def _markets(self, symbols: Iterable[str]) -> dict[str, Market]:
        if self.memory is None:
            return candle_store.markets_by_symbol(symbols, exchange=self.exchange)
        symbols = list(symbols)
        unread = [symbol for symbol in symbols if symbol not in self._market_rows]
        if unread:
            found = candle_store.markets_by_symbol(unread, exchange=self.exchange)
            # A symbol without a market (most spot coins have no perpetual) is remembered too:
            # nothing adds markets during a replay, so it is not asked again every batch.
            self._market_rows.update({symbol: found.get(symbol) for symbol in unread})
        return {
            symbol: market
            for symbol in symbols
            if (market := self._market_rows.get(symbol)) is not None
        }

    def _no_market(self, symbol: str) -> Missing:
        kind = "perpetual" if ":" in symbol else "spot market"
        return Missing(f"no {kind} {symbol} on {self.exchange} in the store")


def _ticker(symbol: str, window: CandleSeries) -> Ticker:
    last = float(window.close[-1])
    open_24h = float(window.open[0])
    return Ticker(
        symbol=symbol,
        last=last,
        open_24h=open_24h,
        high_24h=float(window.high.max()),
        low_24h=float(window.low.min()),
        base_volume_24h=float(window.volume.sum()),
        # The store keeps base volume only; each hour's quote volume is taken at its close.
        quote_volume_24h=float(np.sum(window.volume * window.close)),
        change_24h_pct=(last - open_24h) / open_24h * 100,
        last_candle_close=window.last_close_time,
        candles=len(window),
    )


def _funding_interval(perp: str, settlement: candle_store.RecentFunding) -> Maybe[timedelta]:
    if settlement.previous_time is None:
        return Missing(f"only one funding settlement of {perp} is stored, so no interval")
    # Settlement timestamps may carry a millisecond of jitter; intervals are whole minutes.
    gap = settlement.funding_time - settlement.previous_time
    return timedelta(minutes=round(gap / timedelta(minutes=1)))


def _no_open_interest(perp: str) -> Missing:
    return Missing(
        f"open interest of {perp} is not in the replay data: "
        "Binance serves only 30 days of open-interest history"
    )


def _open_interest_near(
    market: Market, moment: datetime, reading: OpenInterest | None
) -> Maybe[float]:
    """The open interest of `reading` (the market's latest at or before `moment`), if recent."""
    if reading is None or reading.timestamp <= moment - OPEN_INTEREST_MAX_AGE:
        return Missing(f"no stored open interest of {market.symbol} around {show_time(moment)}")
    return reading.open_interest


def _value_of(reading: OpenInterest) -> Maybe[float]:
    if reading.open_interest_value is None:
        return Missing("the open interest's value in the quote currency was not recorded")
    return reading.open_interest_value


def _change_pct(now: float, before: Maybe[float]) -> Maybe[float]:
    if isinstance(before, Missing):
        return before
    if before <= 0:
        return Missing("open interest 24 h earlier was 0, so no percentage change")
    return (now - before) / before * 100


def _all_missing(symbols: Sequence[str], as_of: datetime, reason: str) -> dict[str, Missing]:
    require_aware(as_of)
    missing = Missing(reason)
    return dict.fromkeys(unique(symbols), missing)
