"""RSI screener: classic RSI(14) on closed 1h candles (docs/SCORING.md, "RSI screener")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from market.times import show_time
from market.values import CandleSeries, Maybe, Missing
from scanners.algorithms.common import (
    LONG,
    SHORT,
    Direction,
    ScannerConfig,
    ScannerResult,
    Tally,
    fresh_candles,
    nothing_scored,
)

SCANNER = "rsi"
RSI_PERIOD = 14


def rsi(closes: np.ndarray, period: int = RSI_PERIOD) -> float:
    """The RSI of the last close: classic definition, as TA-Lib's `RSI(close, period)[-1]`.

    The first average gain and loss are the simple means of the first `period` changes, then
    Wilder's smoothing `avg = (avg * (period - 1) + x) / period` runs over the rest. ValueError
    with fewer than `period + 1` closes; NaN when the closes never moved (RSI is undefined there;
    TA-Lib says 0, which would read as "deeply oversold").
    """
    closes = np.asarray(closes, dtype=np.float64)
    if closes.ndim != 1 or len(closes) < period + 1:
        raise ValueError(f"RSI({period}) needs at least {period + 1} closes, got {len(closes)}")
    changes = np.diff(closes)
    gains = np.where(changes > 0, changes, 0.0)
    losses = np.where(changes < 0, -changes, 0.0)
    avg_gain = float(gains[:period].mean())
    avg_loss = float(losses[:period].mean())
    kept = float(period - 1)  # the same product as with the int: it converts exactly
    divisor = float(period)
    for gain, loss in zip(gains[period:].tolist(), losses[period:].tolist(), strict=True):
        avg_gain = (avg_gain * kept + gain) / divisor
        avg_loss = (avg_loss * kept + loss) / divisor
    total = avg_gain + avg_loss
    if total == 0:
        return math.nan
    return 100.0 * avg_gain / total


@dataclass(frozen=True, eq=False)
class RsiInputs:
    """The closes of the last `RSI_WINDOW` closed 1h candles at as_of, oldest first."""

    symbol: str
    as_of: datetime
    closes: Maybe[np.ndarray]
    last_close_time: datetime | None = None

    @classmethod
    def build(
        cls, symbol: str, as_of: datetime, candles: Maybe[CandleSeries], *, window: int
    ) -> RsiInputs:
        candles = fresh_candles(candles, as_of)
        if isinstance(candles, Missing):
            return cls(symbol, as_of, candles)
        recent = candles.tail(window)
        return cls(symbol, as_of, recent.close, recent.last_close_time)


def score_rsi(inputs: RsiInputs, *, config: ScannerConfig) -> ScannerResult:
    """RSI < oversold -> LONG, RSI > overbought -> SHORT; component LONG 100 - RSI, SHORT RSI."""
    tally = Tally(inputs_total=1)
    closes = inputs.closes
    value: Maybe[float]
    if isinstance(closes, Missing):
        value = closes
    elif len(closes) < RSI_PERIOD + 1:
        value = Missing(
            f"only {len(closes)} closed 1h candles at {show_time(inputs.as_of)}, "
            f"RSI({RSI_PERIOD}) needs {RSI_PERIOD + 1}"
        )
    else:
        value = rsi(closes, RSI_PERIOD)
        if math.isnan(value):
            value = Missing(f"the price did not move over the last {len(closes)} candles")

    if not isinstance(closes, Missing):
        tally.inputs["candles"] = len(closes)
        tally.inputs["window"] = config.rsi_window
        tally.inputs["last_close_time"] = (
            inputs.last_close_time.isoformat() if inputs.last_close_time else None
        )
        tally.inputs["last_close"] = float(closes[-1]) if len(closes) else None
    if isinstance(value, Missing):
        tally.missing("rsi", f"RSI({RSI_PERIOD})", value)
        return nothing_scored(SCANNER, inputs, tally)

    tally.have("rsi", value)
    shown = f"RSI({RSI_PERIOD}) {value:.2f} over {len(closes)} closed 1h candles"
    direction: Direction = None
    if value < config.rsi_oversold_threshold:
        direction = LONG
        tally.say(f"{shown} < {config.rsi_oversold_threshold:g} (oversold): LONG")
    elif value > config.rsi_overbought_threshold:
        direction = SHORT
        tally.say(f"{shown} > {config.rsi_overbought_threshold:g} (overbought): SHORT")
    else:
        tally.say(
            f"{shown} is between {config.rsi_oversold_threshold:g} and "
            f"{config.rsi_overbought_threshold:g}: no signal"
        )
    return ScannerResult(
        scanner=SCANNER,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={"rsi": value},
        direction=direction,
        component={LONG: 100.0 - value, SHORT: value},
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=tally.completeness,
    )
