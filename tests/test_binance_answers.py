"""Binance's big answers (klines, aggTrades) read into float tables: the typed decoding a scan
uses and the generic reading it falls back to agree, and a bad answer names what is wrong."""

from __future__ import annotations

import orjson
import pytest

from httpengine.calls import BadResponse
from market.sources.binance.decoding import (
    AGG_TRADES_DECODER,
    KLINES_DECODER,
    decoded,
    klines_table,
    trades_table,
)


def _kline(open_ms: int, close: str = "101.5", taker: str = "3.25") -> list:
    return [
        open_ms, "100.0", "102.0", "99.5", close, "12.5",
        open_ms + 3_599_999, "1262.5", 42, taker, "328.1", "0",
    ]  # fmt: skip


def _trade(ident: int, price: str = "100.5", maker: bool = True) -> dict:
    return {
        "a": ident, "p": price, "q": "0.25", "f": ident, "l": ident,
        "T": 1_715_212_800_000 + ident, "m": maker, "M": True,
    }  # fmt: skip


def _body(rows: list) -> str:
    return orjson.dumps(rows).decode()


def test_typed_klines_read_as_the_generic_reading_does():
    body = _body([_kline(0), _kline(3_600_000, close="0.00000123", taker="0")])

    typed = klines_table(decoded(body, KLINES_DECODER), "klines")
    generic = klines_table(decoded(body, None), "klines")

    assert typed.tolist() == generic.tolist()
    assert typed[1].tolist() == [3_600_000, 100.0, 102.0, 99.5, 0.00000123, 12.5, 0.0]


def test_typed_trades_read_as_the_generic_reading_does():
    body = _body([_trade(1), _trade(2, price="0.00012345", maker=False)])

    typed = trades_table(decoded(body, AGG_TRADES_DECODER), "trades")
    generic = trades_table(decoded(body, None), "trades")

    assert typed.tolist() == generic.tolist()
    assert typed[1].tolist() == [0.00012345, 0.25, 1_715_212_800_002, 2, 0.0]


def test_a_kline_with_a_nan_close_is_a_bad_answer_naming_the_row():
    body = _body([_kline(0), _kline(3_600_000, close="NaN")])

    with pytest.raises(BadResponse, match="kline 2 has no valid close"):
        klines_table(decoded(body, KLINES_DECODER), "klines")


def test_a_kline_row_too_short_is_a_bad_answer_naming_the_row():
    body = _body([_kline(0)[:6]])

    with pytest.raises(BadResponse, match="kline 1 is not a 12-field row"):
        klines_table(decoded(body, KLINES_DECODER), "klines")


def test_a_kline_with_a_price_that_is_not_a_number_is_a_bad_answer_naming_the_row():
    body = _body([_kline(0, close="n/a")])

    with pytest.raises(BadResponse, match="kline 1 has no valid close"):
        klines_table(decoded(body, KLINES_DECODER), "klines")


def test_a_trade_without_a_price_is_a_bad_answer():
    trade = _trade(1)
    del trade["p"]

    with pytest.raises(BadResponse, match="a trade is malformed"):
        trades_table(decoded(_body([trade]), AGG_TRADES_DECODER), "trades")


@pytest.mark.parametrize("price", ["NaN", "0", "-1.5"])
def test_a_trade_with_a_price_that_is_not_positive_is_a_bad_answer(price):
    body = _body([_trade(1), _trade(2, price=price)])

    with pytest.raises(BadResponse, match="invalid price"):
        trades_table(decoded(body, AGG_TRADES_DECODER), "trades")


def test_an_error_answer_to_a_typed_call_is_read_as_json():
    body = '{"code": -1121, "msg": "Invalid symbol."}'

    assert decoded(body, KLINES_DECODER) == {"code": -1121, "msg": "Invalid symbol."}


def test_a_body_that_is_not_json_raises_the_value_error_ccxt_reports():
    # ccxt's parse_json catches ValueError and hands back the text, which _call refuses.
    assert issubclass(orjson.JSONDecodeError, ValueError)
    with pytest.raises(orjson.JSONDecodeError):
        decoded('[[1, "2"', KLINES_DECODER)
