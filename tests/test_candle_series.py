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


def test_closed_by_a_moment_is_the_candles_closed_then_and_the_newest_limit_of_them():
    whole = series(12)
    # The 8th candle closes at open_time[8]; the 9th is still open half an hour later.
    moment = ms_to_datetime(int(whole.open_time[8])) + timedelta(minutes=30)
    closed = whole.closed_by(moment)
    assert len(closed) == 8
    np.testing.assert_array_equal(closed.close_time, whole.close_time[:8])
    assert (closed.close_time <= datetime_to_ms(moment)).all()
    newest = whole.closed_by(moment, limit=3)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(newest, name), getattr(whole, name)[5:8])
        assert not getattr(newest, name).flags.writeable
    at_close = ms_to_datetime(int(whole.close_time[4]))
    assert len(whole.closed_by(at_close)) == 5  # a candle closing exactly then has closed


def test_closed_by_a_moment_after_every_close_is_the_series_itself():
    whole = series(4)
    after = ms_to_datetime(int(whole.close_time[-1]))
    assert whole.closed_by(after) is whole
    assert whole.closed_by(after, limit=10) is whole
    assert len(whole.closed_by(ms_to_datetime(int(whole.open_time[0])))) == 0
