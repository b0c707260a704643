"""The candle writer on PostgreSQL: one COPY per table and key, existing rows win, new ones count.

The SQLite side is tests/test_candle_write_sqlite.py; importing and the live source go through the
same `insert_new_rows` (tests/test_import_ohlcv.py, tests/test_binance_source.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from market.candle_writer import CandleRows, FundingRows, insert_new_rows
from market.models import Candle, FundingRate, PriceSeries
from market.times import datetime_to_ms
from tests.factories import MarketFactory

pytestmark = pytest.mark.django_db

START = datetime(2024, 5, 9, tzinfo=UTC)
HOUR_MS = 3_600_000


def _candles(market_id: int, hours: int, close: float) -> CandleRows:
    times = datetime_to_ms(START) + HOUR_MS * np.arange(hours, dtype=np.int64)
    closes = close + np.arange(hours, dtype=np.float64) / 3
    values = {
        "open": closes,
        "high": closes + 1,
        "low": closes - 1,
        "close": closes,
        "volume": np.full(hours, 2.5),
        "taker_buy_volume": np.full(hours, np.nan),
    }
    return CandleRows(market_id, "1h", PriceSeries.TRADES, times, values)


def test_many_markets_and_funding_in_one_batch_keep_the_rows_already_stored():
    btc, eth = MarketFactory(symbol="BTC/USDT"), MarketFactory(symbol="ETH/USDT")
    insert_new_rows([_candles(btc.pk, 2, 100.0)])

    funding = FundingRows(btc.pk, np.array([datetime_to_ms(START)]), np.array([0.0001]))
    batch = [_candles(btc.pk, 3, 200.0), _candles(eth.pk, 2, 50.0), funding]
    inserted = insert_new_rows(batch)

    assert inserted == 1 + 2 + 1
    btc_closes = Candle.objects.filter(market=btc).order_by("open_time")
    assert list(btc_closes.values_list("close", flat=True)) == [100.0, 100.0 + 1 / 3, 200.0 + 2 / 3]
    assert Candle.objects.filter(market=eth, taker_buy_volume__isnull=True).count() == 2
    stored = FundingRate.objects.get(market=btc)
    assert (stored.funding_time, stored.rate) == (START, 0.0001)
    assert Candle.objects.get(market=eth, open_time=START + timedelta(hours=1)).close == 50 + 1 / 3


def test_progress_counts_every_row_written():
    btc = MarketFactory(symbol="BTC/USDT")
    seen: list[int] = []

    insert_new_rows([_candles(btc.pk, 3, 100.0)], on_rows=seen.append)

    assert sum(seen) == 3


def test_a_missing_value_column_is_refused():
    btc = MarketFactory(symbol="BTC/USDT")
    rows = _candles(btc.pk, 1, 100.0)
    partial = CandleRows(
        btc.pk, "1h", PriceSeries.TRADES, rows.times_ms, {"close": rows.values["close"]}
    )

    with pytest.raises(ValueError, match="lack open, high, low, volume, taker_buy_volume"):
        insert_new_rows([partial])
    assert not Candle.objects.exists()
