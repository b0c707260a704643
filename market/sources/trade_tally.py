"""A coin's aggregate trades summed per minute, so each scan reads only the trades since the last.

Whale activity needs the value of every trade of the last hour and of the large ones among them
(docs/SCORING.md). Reading the whole hour again at every scan costs a busy coin dozens of aggTrades
pages (weight 4 each), and 500 coins more than Binance's whole spot budget of a minute. A tally
keeps, per minute, the traded value, the large taker buys, the large taker sells and the number
of large trades, together with the id of the last trade read: the next scan asks only for the
trades after that id.

Exactness: minute m holds the trades stamped in (m x 60 s, (m + 1) x 60 s], so a window whose
ends are whole minutes is a sum of whole buckets, and a tally answers a window only when it has
read every trade of it (`covers`). Nothing is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MINUTE_MS = 60_000


@dataclass
class TradeTally:
    """The trades of one market read so far: every trade stamped in (`from_ms`, `to_ms`].

    `last_id` is the aggregate-trade id of the last trade stamped at or before `to_ms`;
    `minutes` maps a minute index to [value, large buy value, large sell value, large count].
    """

    min_usd: float
    from_ms: int
    to_ms: int
    last_id: int | None = None
    minutes: dict[int, list[float]] = field(default_factory=dict)

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """True when every trade of (start_ms, end_ms] has been read."""
        return self.from_ms <= start_ms and end_ms <= self.to_ms

    def add(self, trades: np.ndarray, *, up_to_ms: int) -> None:
        """Count the trades of an aggTrades table (price, quantity, time ms, id, buyer-is-maker)
        stamped in (to_ms, up_to_ms], then extend the tally to `up_to_ms`. The caller has read
        every trade up to `up_to_ms`; rows outside the range are ignored."""
        if len(trades):
            times = trades[:, 2]
            inside = (times > self.to_ms) & (times <= up_to_ms)
            if inside.any():
                rows = trades[inside]
                values = rows[:, 0] * rows[:, 1]
                large = values >= self.min_usd
                sells = rows[:, 4] > 0  # the buyer was the maker: a taker sell
                minutes = ((rows[:, 2].astype(np.int64) - 1) // MINUTE_MS).astype(np.int64)
                keys, slots = np.unique(minutes, return_inverse=True)
                sums = np.zeros((len(keys), 4))
                np.add.at(sums[:, 0], slots, values)
                np.add.at(sums[:, 1], slots, np.where(large & ~sells, values, 0.0))
                np.add.at(sums[:, 2], slots, np.where(large & sells, values, 0.0))
                np.add.at(sums[:, 3], slots, large.astype(np.float64))
                for key, row in zip(keys.tolist(), sums.tolist(), strict=True):
                    bucket = self.minutes.setdefault(key, [0.0, 0.0, 0.0, 0.0])
                    for index in range(4):
                        bucket[index] += row[index]
                self.last_id = int(rows[-1, 3])
        self.to_ms = max(self.to_ms, up_to_ms)

    def forget_before(self, start_ms: int) -> None:
        """Drop the minutes before `start_ms` (a whole minute); the tally then starts there."""
        first = start_ms // MINUTE_MS
        self.minutes = {key: value for key, value in self.minutes.items() if key >= first}
        self.from_ms = max(self.from_ms, start_ms)

    def window(self, start_ms: int, end_ms: int) -> tuple[float, float, float, int]:
        """(value, large buys, large sells, large count) of (start_ms, end_ms], whole minutes,
        which the tally must cover."""
        if start_ms % MINUTE_MS or end_ms % MINUTE_MS:
            raise ValueError("a tally window starts and ends on whole minutes")
        if not self.covers(start_ms, end_ms):
            raise ValueError("the tally has not read every trade of the window")
        first, last = start_ms // MINUTE_MS, end_ms // MINUTE_MS
        total = buy = sell = count = 0.0
        for key, (value, large_buy, large_sell, large_count) in self.minutes.items():
            if first <= key < last:
                total += value
                buy += large_buy
                sell += large_sell
                count += large_count
        return total, buy, sell, int(count)

    def to_json(self) -> dict[str, Any]:
        return {
            "min_usd": self.min_usd,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "last_id": self.last_id,
            "minutes": {str(key): value for key, value in self.minutes.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> TradeTally | None:
        """The tally stored by `to_json`, or None for anything else (a foreign or old entry)."""
        try:
            return cls(
                min_usd=float(data["min_usd"]),
                from_ms=int(data["from_ms"]),
                to_ms=int(data["to_ms"]),
                last_id=None if data["last_id"] is None else int(data["last_id"]),
                minutes={
                    int(key): [float(part) for part in value]
                    for key, value in data["minutes"].items()
                },
            )
        except (KeyError, TypeError, ValueError):
            return None
