"""The values market data comes as: candles as numpy arrays, tickers, funding, open interest,
taker flow, fundamentals, social. A value a source cannot give is a `Missing(reason)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self, TypeVar

import numpy as np

from market.times import (
    MILLISECOND,
    TIMEFRAMES,
    datetime_to_ms,
    ms_to_datetime,
    timeframe_duration,
)

T = TypeVar("T")
# Each timeframe's length in epoch milliseconds: read for every slice of a series by time.
_TIMEFRAME_MS = {name: duration // MILLISECOND for name, duration in TIMEFRAMES.items()}


@dataclass(frozen=True)
class Missing:
    """An input a source cannot give, and why. Falsy, so `if value:` skips it; never a number."""

    reason: str

    def __bool__(self) -> bool:
        return False


# A value or the reason it is missing.
Maybe = T | Missing


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketInfo:
    """A market as it stood at as_of. `listed_at_source` says where `listed_at` came from."""

    exchange: str
    symbol: str
    base: str
    quote: str
    market_type: str
    listed_at: datetime | None
    listed_at_source: str
    active: bool


def _frozen_array(values: np.ndarray, dtype: type) -> np.ndarray:
    if _frozen(values, dtype):
        # Nobody can write it (nor the arrays it views): sharing it is as safe as a copy. The
        # replay's in-memory candles and the slices of a series (`tail`, `closed_after`) are so.
        return values
    array = np.array(values, dtype=dtype)  # a copy: the caller's array stays the caller's
    array.setflags(write=False)
    return array


def _frozen(values: object, dtype: type) -> bool:
    """`values` is a C-contiguous ndarray of `dtype` that neither it nor any array it is a view
    of can be written through."""
    if not (isinstance(values, np.ndarray) and values.dtype == dtype and values.flags.c_contiguous):
        return False
    array: object = values
    while array is not None:
        if not isinstance(array, np.ndarray) or array.flags.writeable:
            return False
        array = array.base
    return True


@dataclass(frozen=True, eq=False)
class CandleSeries:
    """Closed candles of one market, oldest first, as parallel read-only numpy arrays.

    `open_time` is int64 milliseconds since the epoch (UTC); prices and volumes are float64;
    `taker_buy_volume` is NaN where the source does not know it. A gap in the market's history is
    a jump in `open_time`: candles are never invented to fill it.
    """

    symbol: str
    timeframe: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker_buy_volume: np.ndarray

    def __post_init__(self) -> None:
        timeframe_duration(self.timeframe)  # ValueError for a timeframe we do not know
        object.__setattr__(self, "open_time", _frozen_array(self.open_time, np.int64))
        for name in ("open", "high", "low", "close", "volume", "taker_buy_volume"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), np.float64))
        lengths = {
            len(getattr(self, name))
            for name in ("open_time", "open", "high", "low", "close", "volume", "taker_buy_volume")
        }
        if len(lengths) != 1:
            raise ValueError(f"candle arrays of {self.symbol} differ in length: {sorted(lengths)}")

    @classmethod
    def empty(cls, symbol: str, timeframe: str) -> Self:
        nothing = np.empty(0)
        return cls(symbol, timeframe, nothing, *([nothing] * 6))

    def __len__(self) -> int:
        return len(self.open_time)

    @property
    def timeframe_ms(self) -> int:
        return _TIMEFRAME_MS[self.timeframe]  # a known timeframe: `__post_init__` checked it

    @property
    def close_time(self) -> np.ndarray:
        """Close time of each candle in epoch milliseconds (open time + timeframe)."""
        return self.open_time + self.timeframe_ms

    @property
    def first_open_time(self) -> datetime | None:
        return ms_to_datetime(self.open_time[0]) if len(self) else None

    @property
    def last_close_time(self) -> datetime | None:
        """When the newest candle closed; None for an empty series."""
        return ms_to_datetime(self.open_time[-1] + self.timeframe_ms) if len(self) else None

    def tail(self, count: int) -> CandleSeries:
        """The newest `count` candles."""
        start = max(len(self) - count, 0)
        return self._slice(slice(start, None))

    def closed_after(self, moment: datetime) -> CandleSeries:
        """The candles whose close time is after `moment` (e.g. as_of - 24h for a 24h window)."""
        return self._slice(slice(self._closed_count(moment), None))

    def closed_by(self, moment: datetime, limit: int | None = None) -> CandleSeries:
        """The candles closed at `moment` (close time <= moment): the newest `limit` of them when
        given. The series itself when that is all of it, else a view of its arrays (no copy)."""
        end = self._closed_count(moment)
        start = 0 if limit is None else max(end - limit, 0)
        if start == 0 and end == len(self.open_time):
            return self
        return self._slice(slice(start, end))

    def _closed_count(self, moment: datetime) -> int:
        """How many candles had closed at `moment`, the oldest first."""
        # close time <= moment is open time <= moment - timeframe: no close_time array is built.
        last_open = datetime_to_ms(moment) - self.timeframe_ms
        return int(self.open_time.searchsorted(last_open, side="right"))

    def _slice(self, part: slice) -> CandleSeries:
        # Built without `__post_init__`: a contiguous slice of this series' arrays is a view of
        # them, as read-only and as C-contiguous, the lengths stay equal and the timeframe was
        # checked. The scans slice series tens of thousands of times an hour of replay, and the
        # checks cost more than the slicing.
        part_of = CandleSeries.__new__(CandleSeries)
        own = self.__dict__
        fields = part_of.__dict__
        fields["symbol"] = own["symbol"]
        fields["timeframe"] = own["timeframe"]
        for name in _ARRAYS:
            fields[name] = own[name][part]
        return part_of


_ARRAYS = ("open_time", "open", "high", "low", "close", "volume", "taker_buy_volume")


@dataclass(frozen=True)
class Ticker:
    """Rolling 24h figures at as_of, from the candles that closed in the 24 h before it.

    `open_24h` is the open of the oldest of those candles; `quote_volume_24h` is in the quote
    currency. `last_candle_close` is the close time of the newest candle used, so a consumer sees
    how fresh `last` is, and `candles` how many hourly candles the window held (24 without gaps).
    """

    symbol: str
    last: float
    open_24h: float
    high_24h: float
    low_24h: float
    base_volume_24h: float
    quote_volume_24h: float
    change_24h_pct: float
    last_candle_close: datetime
    candles: int


@dataclass(frozen=True)
class Funding:
    """The latest funding settlement of a perpetual at or before as_of.

    `rate` is a fraction per funding period (0.0001 = 0.01 %); `interval` is the time between its
    last two settlements, so a 4-hourly rate can be compared with 8-hourly ones.
    """

    symbol: str
    perp_symbol: str
    rate: float
    funding_time: datetime
    interval: Maybe[timedelta]


@dataclass(frozen=True)
class OpenInterestPoint:
    timestamp: datetime
    open_interest: float  # contracts, in the base asset
    open_interest_value: Maybe[float]  # in the quote currency


@dataclass(frozen=True)
class OpenInterestNow:
    """Open interest of the symbol's perpetual at as_of and its change over the 24 h before."""

    symbol: str
    perp_symbol: str
    timestamp: datetime
    open_interest: float
    open_interest_value: Maybe[float]
    open_interest_24h_ago: Maybe[float]
    change_24h_pct: Maybe[float]


@dataclass(frozen=True)
class LongShortRatio:
    """Top traders' long/short ratio of the perpetual (long share / short share)."""

    symbol: str
    timestamp: datetime
    ratio: float
    long_share: float
    short_share: float


@dataclass(frozen=True)
class TakerFlow:
    """Taker buy and sell volume (base asset) over `window` ending at `timestamp`."""

    symbol: str
    timestamp: datetime
    window: timedelta
    buy_volume: float
    sell_volume: float

    @property
    def buy_sell_ratio(self) -> Maybe[float]:
        if self.sell_volume <= 0:
            return Missing("no taker sell volume in the window, so no buy/sell ratio")
        return self.buy_volume / self.sell_volume

    @property
    def buy_share(self) -> Maybe[float]:
        total = self.buy_volume + self.sell_volume
        if total <= 0:
            return Missing("no taker volume in the window")
        return self.buy_volume / total


@dataclass(frozen=True)
class LargeTrades:
    """Trades of at least `min_usd` in the window (window_start, window_end].

    `buy_usd`/`sell_usd` is the value of the large taker buys and sells, `total_usd` the value of
    every trade in the window, so the large trades' share of it can be computed.
    """

    symbol: str
    window_start: datetime
    window_end: datetime
    min_usd: float
    buy_usd: float
    sell_usd: float
    total_usd: float
    count: int


@dataclass(frozen=True)
class Fundamentals:
    """Market capitalisation and supply from a data vendor (CoinGecko); each part may be missing."""

    symbol: str
    timestamp: datetime
    market_cap: Maybe[float]
    fdv: Maybe[float]
    circulating_supply: Maybe[float]
    total_supply: Maybe[float]


@dataclass(frozen=True)
class TrendingCoin:
    """One coin of the vendor's trending list; rank 1 is the most trending."""

    base: str
    rank: int
    name: str
    vendor_id: str


@dataclass(frozen=True)
class Social:
    """Social metrics (LunarCrush); each part may be missing."""

    symbol: str
    timestamp: datetime
    galaxy_score: Maybe[float]
    alt_rank: Maybe[int]
    social_volume: Maybe[float]
    social_volume_change_24h_pct: Maybe[float]
    sentiment: Maybe[float]
