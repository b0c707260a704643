"""The fake exchange's served series: candles with their derived kline and trade columns.

`Series` is one market's candle series as the Binance venues serve it (klines rows and aggregate
trades, formatted once and kept); `Perp` a perpetual listed as of now. Both are built by the core
(`fakes.exchange.core`) from the data folder and read by every venue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakes.exchange import synthetic as syn
from fakes.exchange.data import DAY_MS, HOUR_MS, Candles, Market

_KLINE_ROW = '[%d,"%.8f","%.8f","%.8f","%.8f","%.8f",%d,"%.8f",%d,"%.8f","%.8f","0"]'
_SPOT_TRADE = '{"a":%d,"p":"%.8f","q":"%.8f","f":%d,"l":%d,"T":%d,"m":%s,"M":true}'
_FAPI_TRADE = '{"a":%d,"p":"%.8f","q":"%.8f","f":%d,"l":%d,"T":%d,"m":%s}'
# Candles per series whose formatted aggregate trades are kept (see Series.trade_texts).
_TRADE_TEXT_CANDLES = 48


class Series:
    """One served candle series with the derived kline columns and a cache of formatted rows."""

    def __init__(self, candles: Candles, key: int) -> None:
        c = candles
        self.candles = c
        self.times = c.times
        # Derived columns are kept to the few that need the whole series (memory: ~500 coins
        # of 4 years fit in about 1 GB); the rest is computed per row when it is formatted.
        self.share = syn.taker_share(key, c.times, c.open, c.high, c.low, c.close).astype(
            np.float32
        )
        self._median_quote_volume: float | None = None
        self.trades = syn.trade_counts(key, c.times, c.volume, c.close)
        self.first_trade_id = np.concatenate([[0], np.cumsum(self.trades)]).astype(np.int64)
        self.key = key
        self._rows: list[bytes | None] = [None] * len(c)
        self._trade_texts: dict[tuple[int, bool], list[str]] = {}

    def _format_rows(self, i0: int, i1: int) -> None:
        """Format (and keep) klines rows i0..i1-1: whole columns at once, as Python numbers, so
        a page costs one `%` per row rather than a numpy scalar read per field."""
        c = self.candles
        part = slice(i0, i1)
        open_, high, low, close, volume = (
            np.asarray(column[part], dtype=np.float64)
            for column in (c.open, c.high, c.low, c.close, c.volume)
        )
        typical = (open_ + high + low + close) / 4
        taker = np.asarray(c.taker_buy_volume[part], dtype=np.float64)
        # NaN: the file does not say; the synthetic taker share stands in.
        taker = np.where(np.isnan(taker), volume * self.share[part].astype(np.float64), taker)
        times = np.asarray(c.times[part], dtype=np.int64)
        columns = zip(
            times.tolist(),
            open_.tolist(),
            high.tolist(),
            low.tolist(),
            close.tolist(),
            volume.tolist(),
            (times + HOUR_MS - 1).tolist(),
            (volume * typical).tolist(),
            np.asarray(self.trades[part], dtype=np.int64).tolist(),
            taker.tolist(),
            (taker * typical).tolist(),
            strict=True,
        )
        self._rows[i0:i1] = [(_KLINE_ROW % fields).encode() for fields in columns]

    def quote_volume(self, i0: int, i1: int) -> np.ndarray:
        """Estimated quote volume of candles i0..i1-1: base volume x (o+h+l+c)/4."""
        c = self.candles
        typical = (c.open[i0:i1] + c.high[i0:i1] + c.low[i0:i1] + c.close[i0:i1]) / 4.0
        return c.volume[i0:i1] * typical

    def median_quote_volume(self) -> float:
        if self._median_quote_volume is None:
            self._median_quote_volume = float(np.median(self.quote_volume(0, len(self.times))))
        return self._median_quote_volume

    def klines(self, i0: int, i1: int) -> bytes:
        rows = self._rows
        missing = [i for i in range(i0, i1) if rows[i] is None]
        if missing:
            self._format_rows(missing[0], missing[-1] + 1)
        return b"[" + b",".join(rows[i0:i1]) + b"]"  # type: ignore[arg-type]

    def price_at(self, t: int) -> float | None:
        """Close of the last candle that closed by `t`."""
        i = int(np.searchsorted(self.times, t - HOUR_MS, side="right"))
        return float(self.candles.close[i - 1]) if i else None

    def trade_stamps(self, i: int, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and times of aggregate trades j0..j1-1 of candle i (times never decrease)."""
        n = int(self.trades[i])
        j1 = min(j1, n)
        if j1 <= j0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        js = np.arange(j0, j1, dtype=np.int64)
        ids = self.first_trade_id[i] + js
        t_open = int(self.candles.times[i])
        slot = HOUR_MS / n
        stamps = t_open + np.floor((js + syn.uniform(self.key, ids, 3) * 0.999) * slot)
        return ids, stamps.astype(np.int64)

    def format_trades(
        self, i: int, ids: np.ndarray, stamps: np.ndarray, futures: bool
    ) -> list[str]:
        """The JSON texts of candle i's trades `ids` (with their `stamps`, from trade_stamps)."""
        if not len(ids):
            return []
        c = self.candles
        n = int(self.trades[i])
        t_open = int(c.times[i])
        frac = (stamps - t_open) / HOUR_MS
        o, h, lo, cl = (float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]))
        first, second = (lo, h) if cl >= o else (h, lo)
        a = 0.15 + 0.25 * float(syn.uniform(self.key, t_open, 4))
        b = 0.55 + 0.3 * float(syn.uniform(self.key, t_open, 5))
        prices = np.interp(frac, [0.0, a, b, 1.0], [o, first, second, cl])
        prices = np.clip(prices * (1 + (syn.uniform(self.key, ids, 6) - 0.5) * 4e-4), lo, h)
        qty = float(c.volume[i]) / n * (0.2 + 1.6 * syn.uniform(self.key, ids, 7))
        maker = syn.uniform(self.key, ids, 8) >= self.share[i]
        template = _FAPI_TRADE if futures else _SPOT_TRADE
        sides = ["true" if m else "false" for m in maker.tolist()]
        return [
            template % (ident, price, quantity, ident, ident, stamp, side)
            for ident, price, quantity, stamp, side in zip(
                ids.tolist(), prices.tolist(), qty.tolist(), stamps.tolist(), sides, strict=True
            )
        ]

    def trade_texts(self, i: int, ids: np.ndarray, futures: bool) -> list[str]:
        """format_trades of candle i's consecutive trades `ids`, from a per-candle cache: pages
        of one busy hour are asked for again and again (each run of a benchmark, each scan), and
        formatting is most of what answering them costs."""
        if not len(ids):
            return []
        key = (i, futures)
        texts = self._trade_texts.get(key)
        if texts is None:
            every, stamps = self.trade_stamps(i, 0, int(self.trades[i]))
            texts = self.format_trades(i, every, stamps, futures)
            if len(self._trade_texts) >= _TRADE_TEXT_CANDLES:
                self._trade_texts.clear()  # a bound on memory; refilled on demand
            self._trade_texts[key] = texts
        first = int(ids[0]) - int(self.first_trade_id[i])
        return texts[first : first + len(ids)]

    def day_window(self, now: int) -> tuple[int, int]:
        """Indexes [i0, i1) of the closed candles of the last 24 hours as of `now`."""
        i1 = self.candles.visible(now)
        i0 = int(np.searchsorted(self.times, now - DAY_MS, side="left"))
        return min(i0, i1), i1

    def change_percent(self, now: int, hours: int) -> float | None:
        """Percent change of the close over the last `hours` hours as of `now`."""
        i1 = self.candles.visible(now)
        if not i1:
            return None
        i0 = int(np.searchsorted(self.times, now - hours * HOUR_MS - HOUR_MS, side="right"))
        if i0 == 0:
            return None
        before = float(self.candles.close[i0 - 1])
        last = float(self.candles.close[i1 - 1])
        return round((last / before - 1) * 100, 5) if before else None


@dataclass
class Perp:
    """A perpetual listed as of now: its candles (real, or spot's when synthetic)."""

    market: Market
    onboard: int
    series: Series | None
    synthetic_candles: bool
