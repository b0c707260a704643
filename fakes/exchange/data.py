"""The fake exchange's market: every candle and funding file of a data folder, in numpy arrays.

Loaded once at start (`load_folder`) with `market.file_validation.parse_file`, so the fake accepts
exactly the files the importer accepts. Only 1h candles are served (other timeframes in the folder
are skipped); mark-price candles are kept for `premiumIndex`. Several files for the same market
(BTC has an `-8h-` and a `-1h-` funding file) are merged, sorted and de-duplicated.

Point-in-time rule, everywhere: a candle is visible as of `now` only once it has closed
(`open_time + 1h <= now`), a funding settlement only once `funding_time <= now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "taker_buy_volume")


def parse_now(text: str) -> int:
    """An ISO time (naive means UTC; `Z` allowed) or epoch milliseconds, as epoch milliseconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def ms_to_iso(ms: int) -> str:
    """CoinGecko's time format: 2024-04-07T16:49:31.736Z."""
    value = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class Candles:
    """1h candles of one market; `times` are open times in ms, strictly increasing."""

    times: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker_buy_volume: np.ndarray  # NaN where the source does not say

    def __len__(self) -> int:
        return len(self.times)

    def visible(self, now_ms: int) -> int:
        """How many candles have closed by `now_ms` (they are the first ones)."""
        return int(np.searchsorted(self.times, now_ms - HOUR_MS, side="right"))

    @classmethod
    def merge(cls, parts: list[Candles]) -> Candles:
        if len(parts) == 1:
            return parts[0]
        times = np.concatenate([p.times for p in parts])
        order = np.argsort(times, kind="stable")
        times = times[order]
        keep = np.ones(len(times), dtype=bool)
        keep[1:] = times[1:] != times[:-1]
        columns = {
            name: np.concatenate([getattr(p, name) for p in parts])[order][keep]
            for name in CANDLE_FIELDS
        }
        return cls(times=times[keep], **columns)


@dataclass
class Funding:
    """Funding settlements of one perpetual (ms, rate as a fraction), strictly increasing."""

    times: np.ndarray
    rates: np.ndarray

    def visible(self, now_ms: int) -> int:
        return int(np.searchsorted(self.times, now_ms, side="right"))

    @classmethod
    def merge(cls, parts: list[Funding]) -> Funding:
        times = np.concatenate([p.times for p in parts])
        rates = np.concatenate([p.rates for p in parts])
        order = np.argsort(times, kind="stable")
        times, rates = times[order], rates[order]
        keep = np.ones(len(times), dtype=bool)
        keep[1:] = times[1:] != times[:-1]
        return cls(times=times[keep], rates=rates[keep])


@dataclass
class Market:
    """Everything known about one coin (BASE against QUOTE)."""

    base: str
    quote: str
    spot: Candles | None = None
    futures: Candles | None = None
    mark: Candles | None = None
    funding: Funding | None = None

    @property
    def symbol(self) -> str:
        """Binance's symbol: BTCUSDT."""
        return self.base + self.quote


@dataclass
class MarketData:
    """All markets of a data folder, keyed by Binance symbol (BTCUSDT)."""

    markets: dict[str, Market] = field(default_factory=dict)
    files: int = 0
    skipped: list[str] = field(default_factory=list)

    def last_spot_close(self) -> int | None:
        """Close time (ms) of the last spot candle of any market, or of any candle at all."""
        ends = [int(m.spot.times[-1]) + HOUR_MS for m in self.markets.values() if m.spot]
        if not ends:
            ends = [int(m.futures.times[-1]) + HOUR_MS for m in self.markets.values() if m.futures]
        return max(ends) if ends else None


def _candles_from(parsed) -> Candles:
    values = parsed.values
    return Candles(
        times=parsed.times_ms.astype(np.int64, copy=False),
        **{name: values[name].astype(np.float64, copy=False) for name in CANDLE_FIELDS},
    )


def load_folder(paths: Path | str | Iterable[Path | str], *, workers: int = 4) -> MarketData:
    """Read every data file under `paths` (files or folders) with the importer's parser.

    Files the importer rejects, and candles of other timeframes than 1h, are skipped and listed
    in `skipped`. Raises FileNotFoundError for a path that does not exist.
    """
    from market.file_layouts import ImportFileError, ImportPathError, collect_files
    from market.file_validation import parse_file
    from market.models import ImportKind, PriceSeries

    if isinstance(paths, str | Path):
        paths = [paths]
    try:
        files, _ = collect_files(paths)
    except ImportPathError as exc:
        raise FileNotFoundError(str(exc)) from None

    def parse(path: Path):
        try:
            return parse_file(path)
        except ImportFileError as exc:
            return exc

    data = MarketData()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(parse, files))
    spot: dict[str, list[Candles]] = {}
    futures: dict[str, list[Candles]] = {}
    mark: dict[str, list[Candles]] = {}
    funding: dict[str, list[Funding]] = {}
    for path, result in zip(files, results, strict=True):
        if isinstance(result, ImportFileError):
            data.skipped.append(str(result))
            continue
        layout = result.layout
        symbol = layout.base + layout.quote
        if symbol not in data.markets:
            data.markets[symbol] = Market(base=layout.base, quote=layout.quote)
        if layout.kind == ImportKind.FUNDING:
            rates = result.values["rate"].astype(np.float64, copy=False)
            funding.setdefault(symbol, []).append(Funding(result.times_ms, rates))
        elif layout.timeframe != "1h":
            data.skipped.append(f"{path}: timeframe {layout.timeframe} (only 1h is served)")
            continue
        elif not layout.settle:
            spot.setdefault(symbol, []).append(_candles_from(result))
        elif layout.series == PriceSeries.MARK:
            mark.setdefault(symbol, []).append(_candles_from(result))
        else:
            futures.setdefault(symbol, []).append(_candles_from(result))
        data.files += 1
    for target, found in (("spot", spot), ("futures", futures), ("mark", mark)):
        for symbol, parts in found.items():
            setattr(data.markets[symbol], target, Candles.merge(parts))
    for symbol, parts in funding.items():
        data.markets[symbol].funding = Funding.merge(parts)
    data.markets = {
        symbol: market
        for symbol, market in sorted(data.markets.items())
        if market.spot or market.futures or market.funding or market.mark
    }
    return data


def load_store(exchange: str | None = None) -> MarketData:
    """The same market read from the Django candle store (1h trade candles, funding rates).

    Needs `django.setup()` done. `exchange` limits it to one exchange's markets.
    """
    from market.models import Candle, FundingRate
    from market.models import Market as MarketRow

    data = MarketData()
    markets = MarketRow.objects.all()
    if exchange:
        markets = markets.filter(exchange=exchange)
    for row in markets:
        symbol = row.base + row.quote
        market = data.markets.setdefault(symbol, Market(base=row.base, quote=row.quote))
        for series in ("trades", "mark"):
            values = list(
                Candle.objects.filter(market=row, timeframe="1h", series=series)
                .order_by("open_time")
                .values_list("open_time", *CANDLE_FIELDS)
            )
            if not values:
                continue
            times = np.array([int(v[0].timestamp() * 1000) for v in values], dtype=np.int64)
            columns = {
                name: np.array([np.nan if v[i] is None else v[i] for v in values], dtype=np.float64)
                for i, name in enumerate(CANDLE_FIELDS, start=1)
            }
            candles = Candles(times=times, **columns)
            if row.market_type == "spot":
                market.spot = candles
            elif series == "mark":
                market.mark = candles
            else:
                market.futures = candles
        rates = list(
            FundingRate.objects.filter(market=row)
            .order_by("funding_time")
            .values_list("funding_time", "rate")
        )
        if rates:
            market.funding = Funding(
                times=np.array([int(t.timestamp() * 1000) for t, _ in rates], dtype=np.int64),
                rates=np.array([r for _, r in rates], dtype=np.float64),
            )
        data.files += 1
    data.markets = {
        s: m for s, m in sorted(data.markets.items()) if m.spot or m.futures or m.funding or m.mark
    }
    return data
