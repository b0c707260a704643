"""TradeTally: per-minute sums of aggregate trades, exact for windows of whole minutes."""

from __future__ import annotations

import numpy as np
import pytest

from market.sources.trade_tally import MINUTE_MS, TradeTally

T0 = 1_714_521_600_000  # 2024-05-01 00:00 UTC, a whole minute


def trades(*rows: tuple[float, float, int, int, bool]) -> np.ndarray:
    """aggTrades rows (price, quantity, time ms, id, buyer-is-maker) as the source parses them."""
    return np.array([(p, q, t, i, float(m)) for p, q, t, i, m in rows], dtype=np.float64)


def test_a_window_sums_every_trade_and_the_large_ones_by_taker_side():
    tally = TradeTally(min_usd=1_000, from_ms=T0, to_ms=T0)
    tally.add(
        trades(
            (10.0, 50.0, T0 + 1, 1, False),  # 500: small
            (10.0, 200.0, T0 + 30_000, 2, False),  # 2,000: large taker buy
            (10.0, 300.0, T0 + MINUTE_MS, 3, True),  # 3,000: large taker sell, end of minute 0
            (10.0, 100.0, T0 + MINUTE_MS + 1, 4, True),  # 1,000: large sell, minute 1
        ),
        up_to_ms=T0 + 2 * MINUTE_MS,
    )
    assert tally.window(T0, T0 + MINUTE_MS) == (5_500.0, 2_000.0, 3_000.0, 2)
    assert tally.window(T0, T0 + 2 * MINUTE_MS) == (6_500.0, 2_000.0, 4_000.0, 3)
    assert tally.last_id == 4


def test_trades_already_counted_or_after_the_frontier_are_ignored():
    tally = TradeTally(min_usd=1_000, from_ms=T0, to_ms=T0 + MINUTE_MS)
    tally.add(
        trades(
            (1.0, 1.0, T0 + MINUTE_MS, 7, False),  # at the old frontier: counted before
            (1.0, 2.0, T0 + MINUTE_MS + 5, 8, False),
            (1.0, 4.0, T0 + 2 * MINUTE_MS + 1, 9, False),  # after the new frontier
        ),
        up_to_ms=T0 + 2 * MINUTE_MS,
    )
    assert tally.window(T0 + MINUTE_MS, T0 + 2 * MINUTE_MS)[0] == 2.0
    assert tally.last_id == 8  # the next read starts after the last trade inside


def test_a_window_the_tally_has_not_read_whole_is_refused():
    tally = TradeTally(min_usd=1, from_ms=T0 + MINUTE_MS, to_ms=T0 + 3 * MINUTE_MS)
    assert tally.covers(T0 + MINUTE_MS, T0 + 3 * MINUTE_MS)
    assert not tally.covers(T0, T0 + 2 * MINUTE_MS)
    assert not tally.covers(T0 + MINUTE_MS, T0 + 4 * MINUTE_MS)
    with pytest.raises(ValueError, match="has not read"):
        tally.window(T0, T0 + 2 * MINUTE_MS)


def test_a_window_must_be_whole_minutes():
    tally = TradeTally(min_usd=1, from_ms=T0, to_ms=T0 + MINUTE_MS)
    with pytest.raises(ValueError, match="whole minutes"):
        tally.window(T0 + 1, T0 + MINUTE_MS)


def test_forgetting_the_old_minutes_moves_the_start():
    tally = TradeTally(min_usd=1, from_ms=T0, to_ms=T0)
    tally.add(
        trades((1.0, 1.0, T0 + 10, 1, False), (1.0, 2.0, T0 + MINUTE_MS + 10, 2, False)),
        up_to_ms=T0 + 2 * MINUTE_MS,
    )
    tally.forget_before(T0 + MINUTE_MS)
    assert tally.from_ms == T0 + MINUTE_MS
    assert tally.window(T0 + MINUTE_MS, T0 + 2 * MINUTE_MS)[0] == 2.0
    assert not tally.covers(T0, T0 + 2 * MINUTE_MS)


def test_a_tally_survives_its_json_form_and_anything_else_reads_as_none():
    tally = TradeTally(min_usd=100_000, from_ms=T0, to_ms=T0)
    tally.add(trades((2.0, 3.0, T0 + 5, 11, True)), up_to_ms=T0 + MINUTE_MS)
    again = TradeTally.from_json(tally.to_json())
    assert again == tally
    assert TradeTally.from_json(None) is None
    assert TradeTally.from_json({"min_usd": 1}) is None
