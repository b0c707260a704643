"""Volume spike, a component of the unified score only (docs/SCORING.md, "Volume spike")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from market.times import show_time
from market.values import CandleSeries, Maybe, Missing
from scanners.algorithms.common import (
    DAY,
    LONG,
    SHORT,
    ScannerConfig,
    ScannerResult,
    Tally,
    clamp,
    fresh_candles,
    nothing_scored,
)

SCANNER = "volume"
RECENT_HOURS = 24
BASELINE_DAYS = 7
BASELINE_HOURS = BASELINE_DAYS * 24
CANDLES_NEEDED = RECENT_HOURS + BASELINE_HOURS  # 192


@dataclass(frozen=True)
class VolumeWindows:
    """Base volume of the last 24 h and of the 7 days before them (complete hourly windows)."""

    last_24h: float
    previous_7d: float

    @property
    def mean_daily_before(self) -> float:
        return self.previous_7d / BASELINE_DAYS


@dataclass(frozen=True)
class VolumeInputs:
    symbol: str
    as_of: datetime
    volumes: Maybe[VolumeWindows]

    @classmethod
    def build(cls, symbol: str, as_of: datetime, *, candles: Maybe[CandleSeries]) -> VolumeInputs:
        return cls(symbol, as_of, volume_windows(candles, as_of))


def volume_windows(candles: Maybe[CandleSeries], as_of: datetime) -> Maybe[VolumeWindows]:
    """The two windows from 1h candles; Missing unless all 24 + 168 hourly candles are there."""
    candles = fresh_candles(candles, as_of)
    if isinstance(candles, Missing):
        return candles
    recent = candles.closed_after(as_of - DAY)
    before = candles.closed_after(as_of - DAY - timedelta(hours=BASELINE_HOURS))
    before_count = len(before) - len(recent)
    if len(recent) < RECENT_HOURS or before_count < BASELINE_HOURS:
        return Missing(
            f"{len(recent)} of {RECENT_HOURS} hourly candles in the 24 h before "
            f"{show_time(as_of)} and {before_count} of {BASELINE_HOURS} in the 7 days before "
            "them: not enough for a volume spike"
        )
    return VolumeWindows(
        last_24h=float(recent.volume.sum()),
        previous_7d=float(before.volume[: len(before) - len(recent)].sum()),
    )


def score_volume_spike(inputs: VolumeInputs, *, config: ScannerConfig) -> ScannerResult:
    """r = last 24h volume / mean daily volume of the 7 days before; clamp(100 × (r − 1) / 2)."""
    tally = Tally(inputs_total=1)
    volumes = inputs.volumes
    if not isinstance(volumes, Missing) and volumes.previous_7d <= 0:
        volumes = Missing("no volume traded in the 7 days before the last 24 h")
    if isinstance(volumes, Missing):
        tally.missing("volumes", "volume history", volumes)
        return nothing_scored(SCANNER, inputs, tally)
    tally.have("volumes", {"last_24h": volumes.last_24h, "previous_7d": volumes.previous_7d})
    ratio = volumes.last_24h / volumes.mean_daily_before
    score = clamp(100 * (ratio - 1) / 2)
    tally.say(
        f"last 24 h volume {volumes.last_24h:,.4g} is {ratio:.2f}× the mean daily volume "
        f"{volumes.mean_daily_before:,.4g} of the 7 days before: spike score {score:.1f}"
    )
    return ScannerResult(
        scanner=SCANNER,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={"ratio": ratio, "volume_spike": score},
        direction=None,  # a component only: it never fires a signal of its own
        component={LONG: score, SHORT: score},
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=tally.completeness,
    )
