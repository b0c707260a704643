"""What every scanner shares: its result, its settings, point tables and honest missing inputs.

A scanner is a pure function of typed, point-in-time inputs (`docs/SCORING.md` is the
contract for every number). It never reads the database or the network and never sees a value
published after its `as_of`. An input the source could not give is a `Missing`: it scores no
points, lowers `completeness` and is named in the reasons - it is never replaced by 0, 50 or an
average.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from market.times import show_time
from market.values import CandleSeries, Funding, Maybe, Missing

Direction = Literal["LONG", "SHORT"] | None
LONG: Literal["LONG"] = "LONG"
SHORT: Literal["SHORT"] = "SHORT"

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
FUNDING_PERIOD = timedelta(hours=8)


@dataclass(frozen=True)
class ScannerResult:
    """One scanner's verdict on one coin as of one moment (persisted whether it fired or not)."""

    scanner: str  # "smart_money" | "mss" | "rsi" | "social" | "whale" | "volume"
    symbol: str  # "BTC/USDT"
    as_of: datetime
    scores: dict[str, float]  # only the scores that could be computed
    direction: Direction  # the scanner's own rule fired in this direction; None: nothing fired
    component: dict[str, float | None]  # unified-score component 0..100 per direction
    reasons: list[str]  # human sentences, including what was missing
    inputs: dict[str, Any]  # the raw inputs used (JSON-safe), missing ones as {"missing": reason}
    completeness: float  # 0..1, share of the scanner's inputs that were available


@dataclass(frozen=True)
class ScannerConfig:
    """Every scanner threshold; each field is the setting of the same name in lower case."""

    rsi_window: int = 500
    rsi_oversold_threshold: float = 25.0
    rsi_overbought_threshold: float = 75.0
    accumulation_alert_threshold: int = 7
    distribution_alert_threshold: int = 7
    mss_max_age_hours: float = 72.0
    mss_alert_threshold: float = 75.0
    mss_min_completeness: float = 0.5
    social_alert_threshold: float = 75.0
    whale_trade_usd: float = 100_000.0

    @classmethod
    def from_settings(cls, settings: Any = None) -> ScannerConfig:
        """The thresholds from Django settings (or any object with the upper-case names)."""
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        # Read by computed name: every field's upper-case name is in the settings table
        # (tests/test_config.py checks it).
        return cls(**{item.name: getattr(settings, item.name.upper()) for item in fields(cls)})


# --- numbers and words --------------------------------------------------------------------------


def clamp(value: float, low: float = 0.0, high: float = 100.0) -> float:
    """`value` limited to [low, high]."""
    return min(max(value, low), high)


def pct(value: float, digits: int = 2) -> str:
    """A percentage as reasons show it: +4.20 %."""
    return f"{value:+.{digits}f} %"


def rate_pct(rate: float) -> str:
    """A funding rate (a fraction) as a percentage: 0.0001 -> 0.0100 %."""
    return f"{rate * 100:.4f} %"


def number(value: float) -> str:
    """A number without needless digits: 3 -> 3, 3.5 -> 3.5, 0.5501 -> 0.5501."""
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.6g}"


def plural(count: float, word: str) -> str:
    return f"{number(count)} {word}" + ("" if count == 1 else "s")


def json_safe(value: Any) -> Any:
    """`value` as plain JSON: Missing -> {"missing": reason}, datetimes as ISO text, NaN -> None."""
    # The usual values first, by exact type (what the checks below would answer for them): a
    # scan encodes tens of thousands of them an hour of replay.
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, Missing):
        return {"missing": value.reason}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds() / 3600  # hours
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, Sequence):
        return [json_safe(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a JSON-safe scanner input")


# --- point tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """One row of a point table: `points` when `low <(=) value <(=) high` (None: unbounded)."""

    points: float
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = False
    high_inclusive: bool = False
    label: str = ""  # how the reasons show the condition, e.g. "≤ 5 M"

    def matches(self, value: float) -> bool:
        if self.low is not None and (
            value < self.low or (value == self.low and not self.low_inclusive)
        ):
            return False
        return self.high is None or not (
            value > self.high or (value == self.high and not self.high_inclusive)
        )


@dataclass(frozen=True)
class PointTable:
    """Ordered bands: the first that matches gives the points, else `otherwise`."""

    bands: tuple[Band, ...]
    otherwise: float = 0.0
    otherwise_label: str = "otherwise"

    @property
    def maximum(self) -> float:
        return max([band.points for band in self.bands] + [self.otherwise])

    def score(self, value: float) -> tuple[float, str]:
        """The points for `value` and the label of the band that gave them."""
        for band in self.bands:
            if band.matches(value):
                return band.points, band.label
        return self.otherwise, self.otherwise_label


def at_most(high: float, points: float, label: str) -> Band:
    return Band(points, high=high, high_inclusive=True, label=label)


def below(high: float, points: float, label: str) -> Band:
    return Band(points, high=high, label=label)


def at_least(low: float, points: float, label: str) -> Band:
    return Band(points, low=low, low_inclusive=True, label=label)


def above(low: float, points: float, label: str) -> Band:
    return Band(points, low=low, label=label)


def between(low: float, high: float, points: float, label: str) -> Band:
    return Band(points, low=low, high=high, low_inclusive=True, high_inclusive=True, label=label)


# --- completeness bookkeeping -------------------------------------------------------------------


@dataclass
class Tally:
    """Collects a scanner's reasons, raw inputs and which inputs were available."""

    inputs_total: int
    reasons: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    available: int = 0

    def have(self, name: str, value: Any) -> None:
        self.available += 1
        self.inputs[name] = json_safe(value)

    def missing(self, name: str, label: str, value: Missing) -> None:
        self.inputs[name] = json_safe(value)
        self.reasons.append(f"{label} unavailable: {value.reason} — scored no points")

    def say(self, sentence: str) -> None:
        self.reasons.append(sentence)

    @property
    def completeness(self) -> float:
        return self.available / self.inputs_total if self.inputs_total else 0.0


# --- reading candles as of a moment ---------------------------------------------------------------


def nothing_scored(scanner: str, inputs: Any, tally: Tally) -> ScannerResult:
    """The result of a scanner whose inputs were all missing: no scores, no direction, no
    component in either direction, completeness 0, and the tally's reasons saying why."""
    return ScannerResult(
        scanner=scanner,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={},
        direction=None,
        component={LONG: None, SHORT: None},
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=0.0,
    )


def candles_until(candles: CandleSeries, as_of: datetime) -> CandleSeries:
    """The candles of `candles` that had closed at `as_of` (close time <= as_of)."""
    return candles.closed_by(as_of)


# A candle input whose latest candle closed more than this before as_of is stale: the market was
# halted, the source had an outage, or the history has a hole there (docs/SCORING.md, "Stale is
# missing"). Scoring it would present hours-old prices as the market at as_of.
CANDLE_MAX_AGE = HOUR


def fresh_candles(candles: Maybe[CandleSeries], as_of: datetime) -> Maybe[CandleSeries]:
    """The candles closed at as_of, or Missing when the latest of them closed more than
    `CANDLE_MAX_AGE` before as_of (the reason says how long before). No candle closed at all is
    left to the caller, which says what it needed."""
    if isinstance(candles, Missing):
        return candles
    closed = candles_until(candles, as_of)
    last = closed.last_close_time
    if last is not None and as_of - last > CANDLE_MAX_AGE:
        return Missing(
            f"latest 1h candle closed {_hours_text(as_of - last)} before as_of "
            f"(at {show_time(last)}, as_of {show_time(as_of)}): a data gap"
        )
    return closed


def _hours_text(span: timedelta) -> str:
    hours = span / HOUR
    return f"{hours:.0f} h" if hours == int(hours) else f"{hours:.1f} h"


def closed_between(candles: CandleSeries, start: datetime, end: datetime) -> CandleSeries:
    """The candles whose close time is in (start, end]."""
    return candles_until(candles, end).closed_after(start)


def price_change_pct(candles: Maybe[CandleSeries], as_of: datetime, hours: int) -> Maybe[float]:
    """Close of the last candle closed at as_of vs the close of the candle `hours` h before it."""
    candles = fresh_candles(candles, as_of)
    if isinstance(candles, Missing):
        return candles
    if not len(candles):
        return Missing(f"no 1h candle closed at or before {show_time(as_of)}")
    then = candles.open_time[-1] - hours * 3_600_000
    index = int(np.searchsorted(candles.open_time, then))
    if index >= len(candles) or candles.open_time[index] != then:
        return Missing(
            f"no 1h candle {hours} h before the last one "
            f"(which closed at {show_time(candles.last_close_time)})"
        )
    before = float(candles.close[index])
    if before <= 0:
        return Missing(f"the close {hours} h earlier was not positive")
    return (float(candles.close[-1]) - before) / before * 100


# --- inputs shared by several scanners ----------------------------------------------------------


@dataclass(frozen=True)
class Pressure:
    """Buying and selling pressure of one coin: shares of volume, and how they were measured.

    `method` is "taker" (taker-buy share of the last 24 h volume; sell = 1 - buy) or
    "up_candles" (share of the last 72 h volume on up-candles, close > open; sell: on down-candles).
    """

    buy_share: float
    sell_share: float
    method: Literal["taker", "up_candles"]
    candles: int

    def describe(self) -> str:
        if self.method == "taker":
            return f"taker-buy share of the last 24 h volume ({plural(self.candles, 'candle')})"
        return (
            "share of volume on up-candles over the last 72 h "
            f"({plural(self.candles, 'candle')}; the source has no taker volume)"
        )


TAKER_WINDOW = timedelta(hours=24)
UP_CANDLE_WINDOW = timedelta(hours=72)
# Fewest candles a pressure window needs (docs/SCORING.md): one candle after a listing is not a
# day's buying pressure. MSS's buy share of a new listing needs fewer.
PRESSURE_MIN_CANDLES = 24


def pressure_from_candles(
    candles: Maybe[CandleSeries], as_of: datetime, *, min_candles: int = PRESSURE_MIN_CANDLES
) -> Maybe[Pressure]:
    """Taker-buy share of the 24 h volume; without taker volume, the 72 h up-candle share.

    Missing when the window holds fewer than `min_candles` closed candles, or when the latest
    candle is stale (`fresh_candles`).
    """
    candles = fresh_candles(candles, as_of)
    if isinstance(candles, Missing):
        return candles
    day = candles.closed_after(as_of - TAKER_WINDOW)
    if len(day) and not np.isnan(day.taker_buy_volume).any():
        if len(day) < min_candles:
            return Missing(
                f"only {plural(len(day), '1h candle')} in the 24 h before {show_time(as_of)}; "
                f"pressure needs at least {min_candles}"
            )
        total = float(day.volume.sum())
        if total > 0:
            buy = float(day.taker_buy_volume.sum()) / total
            return Pressure(buy, 1.0 - buy, "taker", len(day))
    window = candles.closed_after(as_of - UP_CANDLE_WINDOW)
    if not len(window):
        return Missing(f"no 1h candle closed in the 72 h before {show_time(as_of)}")
    if len(window) < min_candles:
        return Missing(
            f"only {plural(len(window), '1h candle')} in the 72 h before {show_time(as_of)}; "
            f"pressure needs at least {min_candles}"
        )
    total = float(window.volume.sum())
    if total <= 0:
        return Missing("no volume traded in the last 72 h")
    up = float(window.volume[window.close > window.open].sum()) / total
    down = float(window.volume[window.close < window.open].sum()) / total
    return Pressure(up, down, "up_candles", len(window))


@dataclass(frozen=True)
class FundingPer8h:
    """The latest funding rate of the perpetual, per 8 h, and how it was normalised."""

    rate_8h: float  # fraction per 8 h (0.0001 = 0.01 %)
    rate: float  # as published, per `interval_hours`
    interval_hours: float | None  # None: the source did not know it (taken as 8 h)
    funding_time: datetime | None = None

    @classmethod
    def from_funding(cls, funding: Funding) -> FundingPer8h:
        if isinstance(funding.interval, Missing) or funding.interval <= timedelta(0):
            return cls(funding.rate, funding.rate, None, funding.funding_time)
        hours = funding.interval / HOUR
        return cls(funding.rate * 8 / hours, funding.rate, hours, funding.funding_time)

    def describe(self) -> str:
        if self.interval_hours is None:
            return f"funding {rate_pct(self.rate_8h)} (interval unknown, taken as per 8 h)"
        if self.interval_hours == 8:
            return f"funding {rate_pct(self.rate_8h)} per 8 h"
        return (
            f"funding {rate_pct(self.rate_8h)} per 8 h "
            f"(normalised from {rate_pct(self.rate)} per {number(self.interval_hours)} h)"
        )


def funding_per_8h(funding: Maybe[Funding]) -> Maybe[FundingPer8h]:
    return funding if isinstance(funding, Missing) else FundingPer8h.from_funding(funding)


def maybe_attr(value: Any, name: str) -> Any:
    """`value.name`, or `value` itself when it is Missing."""
    return value if isinstance(value, Missing) else getattr(value, name)
