"""The embedded store's fast candle write (thousands of rows a statement, as bound parameters).

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

from market import importing
from market.models import Candle, Market, MarketType, PriceSeries
from market.sources.binance.history import _insert_candles_sqlite
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


def _candles(hours: int, first_close: float, taker: list[float]) -> importing.ParsedFile:
    times = datetime_to_ms(START) + HOUR_MS * np.arange(hours, dtype=np.int64)
    close = first_close + np.arange(hours, dtype=np.float64) / 3  # non-terminating decimals
    return importing.ParsedFile(
        path=Path("klines"),
        sha256="",
        layout=None,
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
        "BTC/USDT": _candles(2, 60_000.0, [1.25, float("nan")]),
        "ETH/USDT": _candles(1, 3_000.0, [0.5]),
    }

    inserted = _insert_candles_sqlite(todo, {"BTC/USDT": btc, "ETH/USDT": eth}, "1h", sqlite)

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
    _insert_candles_sqlite(
        {"BTC/USDT": _candles(2, 60_000.0, [1.0, 2.0])}, {"BTC/USDT": btc}, "1h", sqlite
    )

    again = _candles(3, 61_000.0, [5.0, 6.0, 7.0])  # overlaps both stored hours, adds one
    inserted = _insert_candles_sqlite({"BTC/USDT": again}, {"BTC/USDT": btc}, "1h", sqlite)

    closes = [row[7] for row in _stored(sqlite)]
    assert inserted == 1
    assert closes == [60_000.0, 60_000.0 + 1 / 3, 61_000.0 + 2 / 3]


def test_the_fast_sqlite_insert_writes_a_table_longer_than_one_statement(sqlite, monkeypatch):
    monkeypatch.setattr("market.sources.binance.history.SQLITE_ROWS_PER_INSERT", 2)
    btc = _market(sqlite, 7, "BTC/USDT")
    eth = _market(sqlite, 9, "ETH/USDT")
    todo = {
        "BTC/USDT": _candles(3, 60_000.0, [1.0, 2.0, 3.0]),
        "ETH/USDT": _candles(2, 3_000.0, [4.0, 5.0]),
    }

    inserted = _insert_candles_sqlite(todo, {"BTC/USDT": btc, "ETH/USDT": eth}, "1h", sqlite)

    assert inserted == 5
    assert [(row[0], row[9]) for row in _stored(sqlite)] == [
        (7, 1.0),
        (7, 2.0),
        (7, 3.0),
        (9, 4.0),
        (9, 5.0),
    ]
