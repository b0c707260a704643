"""What the signal page shows of one signal: its price path with the entry, the barriers, the
horizon checks and the excursions; and the scanner results it was decided from.

Every number is read, not recomputed: the candles through `market.candle_store.closed_candles`
(the read the candles API makes), the checks as the signals API serializes them
(`tracking.api.SignalDetailSerializer`), the barrier levels from `tracking.outcomes` (the rule
the checks apply), the breakdown from the coin's unified-ranking row of the signal's hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime

from market import candle_store
from market.api import MAX_CANDLES
from market.replay_clock import market_now
from market.times import ms_to_datetime
from scanners.models import ScanResult
from scoring.models import UnifiedRanking
from scoring.ranking import coin_hour
from tracking.api import SignalDetailSerializer
from tracking.models import HORIZON_DELTAS, Signal
from tracking.outcomes import barrier_prices, excursion_price

# The path is shown from this long before the signal (what led to it) to its last horizon.
BEFORE = timedelta(hours=48)
AFTER = max(HORIZON_DELTAS.values()) + timedelta(hours=1)
OUTCOME_COLORS = {"WIN": "up", "LOSS": "down", "NEUTRAL": "muted"}


@dataclass
class PricePath:
    """The chart's data: candles (oldest first, times in epoch seconds of their open) and the
    levels and markers drawn over them. `note` says why there are no candles, if there are none."""

    candles: list[dict[str, Any]]
    levels: list[dict[str, Any]]
    markers: list[dict[str, Any]]
    start: datetime
    end: datetime
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"candles": self.candles, "levels": self.levels, "markers": self.markers}


@dataclass
class ScannerInput:
    """One scanner's result the signal was decided from: its scores, reasons and inputs, and
    the inputs it had to do without (`missing`: input name → reason)."""

    scanner: str
    as_of: datetime
    direction: str | None
    completeness: float
    scores: dict[str, Any]
    reasons: list[str]
    inputs: dict[str, Any]
    missing: dict[str, str] = field(default_factory=dict)


def signal_checks(signal: Signal) -> list[dict[str, Any]]:
    """The signal's outcome checks, 1h … 30d, as GET /api/signals/<id> gives them, each with
    `due` (its due time as a datetime) beside the API's `due_at` string."""
    checks = [dict(check) for check in SignalDetailSerializer(signal).data["outcome_checks"]]
    for check in checks:
        check["due"] = parse_datetime(check["due_at"])
    return checks


def signal_levels(signal: Signal, checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The horizontal lines of the chart: entry, the WIN and LOSS barriers, and the MFE and MAE
    of the longest horizon checked so far (the widest window the path has been measured over)."""
    win, loss = barrier_prices(signal.direction, signal.entry_price)
    levels = [
        {"name": "entry", "label": "Entry", "price": signal.entry_price, "color": "accent"},
        {
            "name": "win",
            "label": f"Win barrier ({settings.WIN_THRESHOLD_PCT:+g} %)",
            "price": win,
            "color": "up",
        },
        {
            "name": "loss",
            "label": f"Loss barrier ({-settings.LOSS_THRESHOLD_PCT:+g} %)",
            "price": loss,
            "color": "down",
        },
    ]
    done = [check for check in checks if check["status"] == "done"]
    if done:
        widest = done[-1]
        for name, key in (("mfe", "mfe_pct"), ("mae", "mae_pct")):
            move = widest[key]
            if move is None:  # a check written before excursions were stored
                continue
            levels.append(
                {
                    "name": name,
                    "label": f"{name.upper()} {widest['horizon']} ({move:+.2f} %)",
                    "price": excursion_price(signal.direction, signal.entry_price, move),
                    "color": "warn",
                }
            )
    return levels


def price_path(signal: Signal, checks: list[dict[str, Any]]) -> PricePath:
    """The coin's 1h candles from BEFORE the signal to its last horizon (or the market time, if
    that is earlier), with the levels and a marker per horizon check on the candle whose close is
    the check's price (the last one closed at or before its due time)."""
    start = signal.as_of - BEFORE
    end = min(signal.as_of + AFTER, market_now())
    levels = signal_levels(signal, checks)
    market = candle_store.markets_by_symbol([signal.symbol], exchange=settings.EXCHANGE).get(
        signal.symbol
    )
    if market is None:
        note = f"no {settings.EXCHANGE} spot market {signal.symbol} in the candle store"
        return PricePath([], levels, [], start, end, note)
    series = candle_store.closed_candles(
        market, timeframe="1h", as_of=end, since=start, limit=MAX_CANDLES
    )
    hour = timedelta(hours=1)
    candles = [
        {
            "time": int(series.open_time[i]) // 1000,
            "open": float(series.open[i]),
            "high": float(series.high[i]),
            "low": float(series.low[i]),
            "close": float(series.close[i]),
        }
        for i in range(len(series))
    ]
    note = "" if candles else f"no 1h candle of {signal.symbol} closed in this window"
    closes = [ms_to_datetime(int(ms)) + hour for ms in series.open_time]
    markers = []
    entry_at = _candle_closed_by(closes, signal.as_of)
    if entry_at is not None:
        markers.append(
            {
                "time": candles[entry_at]["time"],
                "position": "belowBar" if signal.direction == "LONG" else "aboveBar",
                "shape": "arrowUp" if signal.direction == "LONG" else "arrowDown",
                "color": "accent",
                "text": f"{signal.direction} @ {signal.entry_price:g}",
                "name": "entry",
            }
        )
    for check in checks:
        at = _candle_closed_by(closes, check["due"])
        if at is None:  # not due yet, or past the candles read
            continue
        if check["status"] == "done":
            text = f"{check['horizon']} {check['outcome']} {check['adjusted_return_pct']:+.2f} %"
            color = OUTCOME_COLORS.get(check["outcome"], "muted")
        elif check["status"] == "unavailable":
            text, color = f"{check['horizon']} unavailable", "muted"
        else:
            text, color = f"{check['horizon']} {check['status']}", "muted"
        markers.append(
            {
                "time": candles[at]["time"],
                "position": "aboveBar" if signal.direction == "LONG" else "belowBar",
                "shape": "circle",
                "color": color,
                "text": text,
                "name": f"check-{check['horizon']}",
            }
        )
    markers.sort(key=lambda marker: marker["time"])
    for marker in markers:
        opened = datetime.fromtimestamp(marker["time"], UTC)
        marker["opened"] = opened.strftime("%Y-%m-%d %H:%M")
    return PricePath(candles, levels, markers, start, end, note)


def _candle_closed_by(closes: list[datetime], moment: datetime) -> int | None:
    """Index of the last candle closed at or before `moment` (its close is price(moment)), among
    those after the window's start; None when none has, or `moment` is past the path's end."""
    if not closes or moment > closes[-1] + timedelta(hours=1):
        return None
    found = None
    for index, close in enumerate(closes):
        if close > moment:
            break
        found = index
    return found


def ranking_row(signal: Signal) -> UnifiedRanking | None:
    """The coin's unified-ranking row of the signal's hour: its breakdown says which components
    counted and which were missing, and why."""
    return (
        UnifiedRanking.objects.filter(symbol=signal.symbol, hour=coin_hour(signal.as_of))
        .order_by("-as_of", "-id")
        .first()
    )


def scanner_inputs(signal: Signal, row: UnifiedRanking | None) -> list[ScannerInput]:
    """The scanner results behind the signal: its own scanner's result in its run, and the
    result of every component the ranking row used (by the `as_of` its breakdown names)."""
    wanted: dict[str, datetime] = {}
    for name, component in (row.breakdown if row else {}).items():
        moment = parse_datetime(component.get("as_of") or "")
        if moment is not None:
            wanted[name] = moment
    results: dict[str, ScanResult] = {}
    if signal.scan_run_id is not None:
        own = (
            ScanResult.objects.filter(
                run_id=signal.scan_run_id, symbol=signal.symbol, scanner=signal.scanner
            )
            .order_by("-as_of", "-id")
            .first()
        )
        if own is not None:
            results[own.scanner] = own
    for name, moment in wanted.items():
        if name in results:
            continue
        found = (
            ScanResult.objects.filter(symbol=signal.symbol, scanner=name, as_of=moment)
            .order_by("-id")
            .first()
        )
        if found is not None:
            results[name] = found
    return [_scanner_input(result) for result in results.values()]


def _scanner_input(result: ScanResult) -> ScannerInput:
    inputs = result.inputs if isinstance(result.inputs, dict) else {}
    missing = {
        str(name): str(value["missing"])
        for name, value in inputs.items()
        if isinstance(value, dict) and set(value) == {"missing"}
    }
    return ScannerInput(
        scanner=result.scanner,
        as_of=result.as_of,
        direction=result.direction,
        completeness=result.completeness,
        scores=result.scores if isinstance(result.scores, dict) else {},
        reasons=[str(reason) for reason in result.reasons or []],
        inputs={name: value for name, value in inputs.items() if name not in missing},
        missing=missing,
    )
