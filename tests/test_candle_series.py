"""A `CandleSeries` window (`tail`, `closed_after`) keeps the series' guarantees: the same candles,
parallel arrays of one length, read-only."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from market.times import datetime_to_ms, ms_to_datetime
from market.values import CandleSeries
from tests.factories import START

HOUR_MS = 3_600_000


def series(count: int) -> CandleSeries:
    open_time = datetime_to_ms(START) + HOUR_MS * np.arange(count, dtype=np.int64)
    prices = np.arange(count, dtype=np.float64) + 100.0
    return CandleSeries("BTCUSDT", "1h", open_time, prices, prices + 1, prices - 1, prices,
                        prices * 10, np.full(count, np.nan))  # fmt: skip


ARRAYS = ("open_time", "open", "high", "low", "close", "volume", "taker_buy_volume")


@pytest.mark.parametrize("window", [lambda s: s.tail(5), lambda s: s.closed_after(
    ms_to_datetime(int(s.open_time[7])) + timedelta(minutes=30))])  # fmt: skip
def test_a_window_of_a_series_is_its_newest_candles_read_only(window):
    whole = series(12)
    part = window(whole)
    assert (part.symbol, part.timeframe, len(part)) == ("BTCUSDT", "1h", 5)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(part, name), getattr(whole, name)[-5:])
        assert not getattr(part, name).flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            getattr(part, name)[0] = 0


def test_a_window_past_the_newest_candle_is_empty():
    whole = series(3)
    part = whole.closed_after(ms_to_datetime(int(whole.open_time[-1])) + timedelta(hours=2))
    assert len(part) == 0
    assert part.last_close_time is None
