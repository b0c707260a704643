"""The candle history of a Binance market in the candle store: what the store lacks and what to
ask Binance for (`fetch_plan`, `fetch_history`'s missing ranges), and writing fetched candles
through (checked by the importer's rules first).

`fetch_history` downloads a range resumably (manage.py fetch_ohlcv); `BinanceSource.candles` plans
its requests with `fetch_plan`, writes with `check_candles`/`write_candles` and answers with the
`merged` stored and fetched candles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
from django.db import transaction

from httpengine.calls import BadResponse
from market.candle_writer import CandleRows, insert_new_rows
from market.file_layouts import CANDLE_FIELDS, FileLayout, ImportFileError
from market.file_validation import ParsedFile, RawTable, validate_table
from market.models import Candle, ImportKind, Market, PriceSeries
from market.sources.binance.decoding import KLINES_PAGE, Listing
from market.times import datetime_to_ms, ms_to_datetime, require_aware, timeframe_duration
from market.values import CandleSeries, Maybe, Missing


class UnknownSymbol(ValueError):
    """The exchange does not list the symbol."""


@dataclass(frozen=True)
class Gap:
    """Candles absent between two stored ones: `after` is the last open before the hole."""

    after: datetime
    before: datetime
    missing: int


@dataclass(frozen=True)
class HistoryResult:
    """What `fetch_history` did for one symbol; `first`/`last` are the stored range's open times
    within the requested window."""

    symbol: str
    timeframe: str
    fetched: int
    inserted: int
    requests: int
    first: datetime | None
    last: datetime | None
    gaps: list[Gap]

    @property
    def missing_candles(self) -> int:
        return sum(gap.missing for gap in self.gaps)


class ReadKlines(Protocol):
    """Reads the closed klines of one market (BinanceSource._klines): `count` ending at `end`
    (start None) or from `start`, as a float table (see `decoding.klines_table`)."""

    def __call__(
        self,
        listing: Listing,
        timeframe: str,
        step_ms: int,
        *,
        start: int | None,
        end: int,
        count: int,
    ) -> np.ndarray: ...


def fetch_history(
    symbol: str,
    *,
    timeframe: str = "1h",
    since: datetime,
    until: datetime,
    listing_of: Callable[[str], Listing | None],
    market_row: Callable[[Listing], Market],
    now: Callable[[], datetime],
    read_klines: ReadKlines,
    on_progress: Callable[[int], object] | None = None,
    on_plan: Callable[[int], object] | None = None,
) -> HistoryResult:
    """Download the closed candles of `symbol` opened in [since, until) into the store.

    Resumable: only what the store lacks in that range is asked for (before its first
    candle, holes, after its last one), in pages of 1,000 from the oldest. A hole the exchange
    has no candles for stays a hole and is reported in `gaps`. `on_plan(n)` is told how many
    candles at most will be fetched, `on_progress(n)` each page's count. UnknownSymbol when
    Binance does not list the symbol.

    It reads through the source: `listing_of(symbol)` is the exchange's listing (None when
    there is none), `market_row(listing)` the store's Market row of it (created if missing),
    `now()` the source's clock and `read_klines` a page of closed klines.
    """
    require_aware(since, "since")
    require_aware(until, "until")
    step_ms = timeframe_duration(timeframe) // timedelta(milliseconds=1)
    listing = listing_of(symbol)
    if listing is None:
        kind = "USDT-M perpetual" if ":" in symbol else "spot market"
        raise UnknownSymbol(f"Binance lists no {kind} {symbol}")
    row = market_row(listing)
    first_ms = -(-datetime_to_ms(since) // step_ms) * step_ms
    last_ms = min(datetime_to_ms(until), datetime_to_ms(now())) // step_ms * step_ms
    last_ms -= step_ms  # the newest candle that has closed by until
    ranges = _missing_ranges(
        _stored_open_times(row, timeframe, first_ms, last_ms), first_ms, last_ms, step_ms
    )
    if on_plan is not None:
        on_plan(sum((end - start) // step_ms + 1 for start, end in ranges))
    fetched = inserted = requests = 0
    for start, end in ranges:
        cursor = start
        while cursor <= end:
            count = min(KLINES_PAGE, (end - cursor) // step_ms + 1)
            page = read_klines(listing, timeframe, step_ms, start=cursor, end=end, count=count)
            requests += 1
            answers: dict[str, Maybe[np.ndarray]] = {symbol: page}
            added = _store_candles(
                {symbol: page}, {symbol: listing}, {symbol: row}, timeframe, answers
            )
            if isinstance(answers[symbol], Missing):
                raise BadResponse(answers[symbol].reason)
            fetched += len(page)
            inserted += added
            if on_progress is not None:
                on_progress(len(page))
            if len(page) < count or not len(page):
                break  # the exchange has nothing more in this range: a gap stays a gap
            cursor = int(page[-1, 0]) + step_ms
    stored = _stored_open_times(row, timeframe, first_ms, last_ms)
    return HistoryResult(
        symbol=symbol,
        timeframe=timeframe,
        fetched=fetched,
        inserted=inserted,
        requests=requests,
        first=ms_to_datetime(int(stored[0])) if len(stored) else None,
        last=ms_to_datetime(int(stored[-1])) if len(stored) else None,
        gaps=_gaps(stored, step_ms),
    )


def _stored_open_times(row: Market, timeframe: str, first_ms: int, last_ms: int) -> np.ndarray:
    if last_ms < first_ms:
        return np.empty(0, dtype=np.int64)
    times = Candle.objects.filter(
        market=row,
        timeframe=timeframe,
        series=PriceSeries.TRADES,
        open_time__gte=ms_to_datetime(first_ms),
        open_time__lte=ms_to_datetime(last_ms),
    ).order_by("open_time")
    return np.array(
        [datetime_to_ms(t) for t in times.values_list("open_time", flat=True)], np.int64
    )


def _missing_ranges(
    stored: np.ndarray, first_ms: int, last_ms: int, step_ms: int
) -> list[tuple[int, int]]:
    """Inclusive [start, end] open-time ranges in [first_ms, last_ms] without stored candles."""
    if last_ms < first_ms:
        return []
    if not len(stored):
        return [(first_ms, last_ms)]
    ranges = []
    if stored[0] > first_ms:
        ranges.append((first_ms, int(stored[0]) - step_ms))
    holes = np.flatnonzero(np.diff(stored) > step_ms)
    ranges += [(int(stored[i]) + step_ms, int(stored[i + 1]) - step_ms) for i in holes]
    if stored[-1] < last_ms:
        ranges.append((int(stored[-1]) + step_ms, last_ms))
    return ranges


def _gaps(stored: np.ndarray, step_ms: int) -> list[Gap]:
    holes = np.flatnonzero(np.diff(stored) > step_ms)
    return [
        Gap(
            after=ms_to_datetime(int(stored[i])),
            before=ms_to_datetime(int(stored[i + 1])),
            missing=int((stored[i + 1] - stored[i]) // step_ms - 1),
        )
        for i in holes
    ]


def fetch_plan(
    series: CandleSeries, row: Market, *, limit: int, last_open: int, step_ms: int
) -> tuple[int | None, int] | None:
    """What to ask Binance for so the store holds the last `limit` candles up to `last_open`:
    None (it does), (None, limit) (the whole window, newest first) or (start, count) (the tail
    after the newest stored candle)."""
    if len(series):
        newest = int(series.open_time[-1])
        if newest >= last_open:
            if len(series) >= limit:
                return None
            # Fewer than asked: complete when the history starts there (listing known).
            listed = row.listed_at
            if listed is not None and int(series.open_time[0]) <= datetime_to_ms(listed):
                return None
            return (None, limit)
        behind = (last_open - newest) // step_ms
        if behind < limit and len(series) + behind >= limit:
            return (newest + step_ms, behind)
    return (None, limit)


def merged(
    stored: CandleSeries, parsed: ParsedFile, symbol: str, timeframe: str, limit: int
) -> CandleSeries:
    """The last `limit` candles of the stored series and the fetched (checked) ones; where both
    have an open time, the stored candle is kept, as the store keeps it."""
    names = ("open", "high", "low", "close", "volume", "taker_buy_volume")
    times = np.concatenate([stored.open_time, parsed.times_ms.astype(np.int64)])
    columns = [
        np.concatenate([getattr(stored, name), parsed.values[name].astype(np.float64)])
        for name in names
    ]
    # np.unique keeps the first index of each time: the stored row, as it comes first.
    _, first = np.unique(times, return_index=True)
    keep = first[-limit:]
    return CandleSeries(symbol, timeframe, times[keep], *(column[keep] for column in columns))


def _store_candles(
    tables: dict[str, np.ndarray],
    listings: dict[str, Listing | None],
    rows: dict[str, Market],
    timeframe: str,
    fetched: dict[str, Maybe[np.ndarray]],
) -> int:
    """Check and write fetched candles (existing ones kept); a bad answer is its coin's
    Missing in `fetched`, with the importer's reason. Returns the number of rows inserted."""
    checked = check_candles(tables, listings, timeframe, fetched)
    return write_candles(checked, rows, timeframe)


def check_candles(
    tables: dict[str, np.ndarray],
    listings: dict[str, Listing | None],
    timeframe: str,
    fetched: dict[str, Maybe[np.ndarray]],
) -> dict[str, ParsedFile]:
    """Fetched candles checked by the importer's rules, per coin; a coin whose answer breaks
    one becomes its Missing in `fetched` (with the importer's reason) and is left out."""
    checked: dict[str, ParsedFile] = {}
    for symbol, table in tables.items():
        listing = listings[symbol]
        assert listing is not None
        parsed = _parsed(table, listing, timeframe)
        if isinstance(parsed, Missing):
            fetched[symbol] = parsed
            continue
        checked[symbol] = parsed
    return checked


def write_candles(checked: dict[str, ParsedFile], rows: dict[str, Market], timeframe: str) -> int:
    """Write checked candles of many coins in one transaction through the candle writer
    (every coin's rows at once), keeping rows already stored; the number of rows inserted."""
    batch = [
        CandleRows(rows[symbol].pk, timeframe, PriceSeries.TRADES, parsed.times_ms, parsed.values)
        for symbol, parsed in checked.items()
        if parsed.rows
    ]
    if not batch:
        return 0
    with transaction.atomic():
        return insert_new_rows(batch)


def _parsed(table: np.ndarray, listing: Listing, timeframe: str) -> ParsedFile | Missing:
    """Fetched klines checked by the importer's rules (prices > 0, high >= low, on the grid...)."""
    settle = listing.symbol.partition(":")[2]
    layout = FileLayout(
        kind=ImportKind.CANDLES,
        base=listing.base,
        quote=listing.quote,
        settle=settle,
        timeframe=timeframe,
        series=PriceSeries.TRADES,
        file_format="json",
        compressed=False,
    )
    raw = RawTable(
        times_ms=table[:, 0].astype(np.int64),
        values={name: table[:, index] for index, name in enumerate(CANDLE_FIELDS[:5], start=1)},
    )
    taker = table[:, 6]
    raw.values["taker_buy_volume"] = np.where(np.isnan(taker), 0.0, taker)
    if np.isnan(taker).any():
        raw.nulls["taker_buy_volume"] = np.isnan(taker)
    try:
        return validate_table(
            Path(f"Binance {timeframe} klines of {listing.symbol}"), "", layout, raw
        )
    except ImportFileError as error:
        return Missing(str(error))
