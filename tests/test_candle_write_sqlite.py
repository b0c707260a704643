"""The candle writer on the embedded store (thousands of rows a statement, as bound parameters).

The suite's database is PostgreSQL, so these tests open their own SQLite file with the
product's schema and compare what the fast insert wrote with what Django's SQLite backend
would write for the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.db.utils import ConnectionHandler

from market.candle_writer import CandleRows, FundingRows, insert_new_rows
from market.models import Candle, FundingRate, Market, MarketType, PriceSeries
from market.times import datetime_to_ms

HOUR_MS = 3_600_000
START = datetime(2024, 5, 9, tzinfo=UTC)


@pytest.fixture
def sqlite(tmp_path: Path, django_db_blocker):
    # Its own handler: the suite's `connections` (PostgreSQL) are left alone.
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "store.db")}}
    )
    connection = handler["default"]
    with django_db_blocker.unblock():
        with connection.schema_editor(atomic=False) as editor:
            editor.create_model(Market)
            editor.create_model(Candle)
            editor.create_model(FundingRate)
        yield connection
        connection.close()


def _market(connection, pk: int, symbol: str) -> Market:
    market = Market(
        pk=pk,
        exchange="binance",
        symbol=symbol,
        base=symbol.split("/")[0],
        quote="USDT",
        market_type=MarketType.SPOT,
    )
    fields = Market._meta.concrete_fields
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = [
        field.get_db_prep_save(getattr(market, field.attname), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO scanners_market ({names}) VALUES ({', '.join(['%s'] * len(values))})",
            values,
        )
    return market


def _candles(market: Market, hours: int, first_close: float, taker: list[float]) -> CandleRows:
    times = datetime_to_ms(START) + HOUR_MS * np.arange(hours, dtype=np.int64)
    close = first_close + np.arange(hours, dtype=np.float64) / 3  # non-terminating decimals
    return CandleRows(
        market_id=market.pk,
        timeframe="1h",
        series=PriceSeries.TRADES,
        times_ms=times,
        values={
            "open": close - 0.1,
            "high": close + 0.2,
            "low": close - 0.3,
            "close": close,
            "volume": np.full(hours, 12.5),
            "taker_buy_volume": np.array(taker, dtype=np.float64),
        },
    )


def _stored(connection) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT market_id, timeframe, series, open_time, open, high, low, close, volume, "
            "taker_buy_volume FROM scanners_candle ORDER BY market_id, open_time"
        )
        return [tuple(row) for row in cursor.fetchall()]


def test_the_fast_sqlite_insert_writes_each_value_as_the_django_backend_would(sqlite):
    btc = _market(sqlite, 7, "BTC/USDT")
    eth = _market(sqlite, 9, "ETH/USDT")
    todo = {
        "BTC/USDT": _candles(btc, 2, 60_000.0, [1.25, float("nan")]),
        "ETH/USDT": _candles(eth, 1, 3_000.0, [0.5]),
    }

    inserted = insert_new_rows(todo.values(), database=sqlite)

    expected = []
    for market, parsed in ((btc, todo["BTC/USDT"]), (eth, todo["ETH/USDT"])):
        for index, open_ms in enumerate(parsed.times_ms.tolist()):
            moment = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
            taker = parsed.values["taker_buy_volume"][index]
            expected.append(
                (
                    market.pk,
                    "1h",
                    str(PriceSeries.TRADES.value),
                    sqlite.ops.adapt_datetimefield_value(moment),
                    *(parsed.values[name][index].item() for name in ("open", "high", "low")),
                    parsed.values["close"][index].item(),
                    parsed.values["volume"][index].item(),
                    None if np.isnan(taker) else taker.item(),
                )
            )
    assert inserted == 3
    stored = _stored(sqlite)
    assert [(*row[:3], str(row[3]), *row[4:]) for row in stored] == [
        (*row[:3], str(row[3]), *row[4:]) for row in expected
    ]


def test_the_fast_sqlite_insert_keeps_the_rows_already_stored(sqlite):
    btc = _market(sqlite, 7, "BTC/USDT")
    insert_new_rows([_candles(btc, 2, 60_000.0, [1.0, 2.0])], database=sqlite)

    again = _candles(btc, 3, 61_000.0, [5.0, 6.0, 7.0])  # overlaps both stored hours, adds one
    inserted = insert_new_rows([again], database=sqlite)

    closes = [row[7] for row in _stored(sqlite)]
    assert inserted == 1
    assert closes == [60_000.0, 60_000.0 + 1 / 3, 61_000.0 + 2 / 3]


def test_the_fast_sqlite_insert_writes_a_table_longer_than_one_statement(sqlite, monkeypatch):
    monkeypatch.setattr("market.candle_writer.SQLITE_ROWS_PER_STATEMENT", 2)
    btc = _market(sqlite, 7, "BTC/USDT")
    eth = _market(sqlite, 9, "ETH/USDT")
    todo = [_candles(btc, 3, 60_000.0, [1.0, 2.0, 3.0]), _candles(eth, 2, 3_000.0, [4.0, 5.0])]

    inserted = insert_new_rows(todo, database=sqlite)

    assert inserted == 5
    assert [(row[0], row[9]) for row in _stored(sqlite)] == [
        (7, 1.0),
        (7, 2.0),
        (7, 3.0),
        (9, 4.0),
        (9, 5.0),
    ]


def test_funding_rates_go_through_the_same_write(sqlite):
    btc = _market(sqlite, 7, "BTC/USDT")
    times = datetime_to_ms(START) + 8 * HOUR_MS * np.arange(2, dtype=np.int64)
    rates = FundingRows(btc.pk, times, np.array([0.0001, -0.00025]))

    assert insert_new_rows([rates], database=sqlite) == 2
    assert insert_new_rows([rates], database=sqlite) == 0

    with sqlite.cursor() as cursor:
        cursor.execute(
            "SELECT market_id, funding_time, rate FROM scanners_fundingrate ORDER BY funding_time"
        )
        stored = [tuple(row) for row in cursor.fetchall()]
    expected = [
        (7, str(sqlite.ops.adapt_datetimefield_value(datetime.fromtimestamp(ms / 1000, tz=UTC))))
        for ms in times.tolist()
    ]
    assert [(row[0], str(row[1])) for row in stored] == expected
    assert [row[2] for row in stored] == [0.0001, -0.00025]


def test_one_batch_may_mix_timeframes_series_and_funding(sqlite):
    btc = _market(sqlite, 7, "BTC/USDT")
    hourly = _candles(btc, 4, 60_000.0, [1.0] * 4)
    first = {name: column[:1] for name, column in hourly.values.items()}
    four_hourly = CandleRows(btc.pk, "4h", PriceSeries.TRADES, hourly.times_ms[:1], first)
    mark = CandleRows(btc.pk, "1h", PriceSeries.MARK, hourly.times_ms, hourly.values)
    funding = FundingRows(btc.pk, hourly.times_ms[:1], np.array([0.0001]))

    inserted = insert_new_rows([hourly, four_hourly, mark, funding], database=sqlite)

    assert inserted == 4 + 1 + 4 + 1
    assert sorted({row[1:3] for row in _stored(sqlite)}) == [
        ("1h", "mark"),
        ("1h", "trades"),
        ("4h", "trades"),
    ]


def test_a_time_that_is_not_a_whole_second_is_refused_and_nothing_is_written(sqlite):
    btc = _market(sqlite, 7, "BTC/USDT")
    good = _candles(btc, 2, 60_000.0, [1.0, 2.0])
    off = CandleRows(btc.pk, "1h", PriceSeries.TRADES, good.times_ms + 1, good.values)

    with pytest.raises(ValueError, match="whole seconds"):
        insert_new_rows([good, off], database=sqlite)
    assert _stored(sqlite) == []
