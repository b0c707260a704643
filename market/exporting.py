"""Export the candle store to the CSV.gz layout that `import_ohlcv` reads.

Contract: exporting and importing the files again reproduces the stored rows exactly. File names
are market.file_layouts' (`file_name`, which `parse_layout` reads back: `BTC_USDT-1h.csv.gz`,
`BTC_USDT_USDT-1h-futures.csv.gz`, `BTC_USDT_USDT-1h-mark.csv.gz`,
`BTC_USDT_USDT-8h-funding_rate.csv.gz`); times are millisecond candle open times (funding
settlement times); floats are written with `repr`, the shortest text that reads back as the same
float; the `taker_buy_volume` column appears only when a candle of the file has one, and is empty
where a candle has none. Files are written under a temporary name and renamed, and gzip gets no
timestamp, so the same data always gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db.models import QuerySet

from market.file_layouts import CANDLE_HEADER, CANDLE_HEADER_WITH_TAKER, FUNDING_HEADER, file_name
from market.models import Candle, FundingRate, ImportKind, Market, MarketType
from market.times import datetime_to_ms

# Rows fetched from the database per round trip while streaming a file.
CHUNK_SIZE = 10_000


class ExportError(ValueError):
    """The selection cannot be exported (e.g. a symbol with no market). Nothing was written."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    symbol: str
    kind: str  # ImportKind
    timeframe: str
    series: str
    rows: int

    def describe(self) -> str:
        what = "funding rates" if self.kind == ImportKind.FUNDING else "candles"
        return f"{self.path.name}: {self.rows:,} {what}"


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _write_csv_gz(path: Path, header: Sequence[str], lines: Iterable[str]) -> int:
    """Write header and lines to `path` atomically; return the number of lines."""
    partial = path.with_name(path.name + ".part")
    rows = 0
    try:
        with (
            partial.open("wb") as raw,
            # filename="" and mtime=0 keep names and dates out of the gzip header: same data, same
            # bytes, same sha256 in ImportRecord.
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed,
            io.TextIOWrapper(compressed, encoding="ascii", newline="\n") as text,
        ):
            text.write(",".join(header) + "\n")
            buffer: list[str] = []
            for line in lines:
                buffer.append(line)
                if len(buffer) >= CHUNK_SIZE:
                    text.write("".join(buffer))
                    rows += len(buffer)
                    buffer.clear()
            text.write("".join(buffer))
            rows += len(buffer)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _in_window(
    queryset: QuerySet, time_field: str, since: datetime | None, until: datetime | None
) -> QuerySet:
    if since is not None:
        queryset = queryset.filter(**{f"{time_field}__gte": since})
    if until is not None:
        queryset = queryset.filter(**{f"{time_field}__lt": until})
    return queryset


def _candle_lines(queryset: QuerySet, with_taker: bool) -> Iterable[str]:
    fields = ["open_time", "open", "high", "low", "close", "volume"]
    if with_taker:
        fields.append("taker_buy_volume")
    rows = queryset.order_by("open_time").values_list(*fields).iterator(chunk_size=CHUNK_SIZE)
    for open_time, *values in rows:
        yield f"{datetime_to_ms(open_time)},{','.join(map(_number, values))}\n"


def _funding_lines(queryset: QuerySet) -> Iterable[str]:
    rows = queryset.order_by("funding_time").values_list("funding_time", "rate")
    for funding_time, rate in rows.iterator(chunk_size=CHUNK_SIZE):
        yield f"{datetime_to_ms(funding_time)},{_number(rate)}\n"


def select_markets(
    *, exchange: str, symbols: Sequence[str] | None = None, market_type: str | None = None
) -> list[Market]:
    """Markets of `exchange`, optionally only `symbols` and one market type.

    ExportError if a requested symbol has no market (of that type) on the exchange.
    """
    markets = Market.objects.filter(exchange=exchange)
    if market_type:
        markets = markets.filter(market_type=market_type)
    if symbols:
        markets = markets.filter(symbol__in=symbols)
        found = set(markets.values_list("symbol", flat=True))
        unknown = [symbol for symbol in symbols if symbol not in found]
        if unknown:
            kind = f" {market_type}" if market_type else ""
            raise ExportError(f"no{kind} market {', '.join(unknown)} on {exchange}")
    return list(markets.order_by("market_type", "symbol"))


def export_store(
    outdir: Path | str,
    *,
    exchange: str,
    symbols: Sequence[str] | None = None,
    market_type: str | None = None,
    timeframe: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    funding: bool = False,
    on_file: Callable[[ExportedFile], object] | None = None,
) -> list[ExportedFile]:
    """Write one CSV.gz per market, timeframe and price series (and funding with `funding`).

    Only rows with `since <= time < until` are written; a series with no row in the window gets
    no file. Existing files of the same name are replaced. `on_file` is called after each file.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[ExportedFile] = []

    def done(exported: ExportedFile) -> None:
        written.append(exported)
        if on_file:
            on_file(exported)

    for market in select_markets(exchange=exchange, symbols=symbols, market_type=market_type):
        candles = Candle.objects.filter(market=market)
        if timeframe:
            candles = candles.filter(timeframe=timeframe)
        series_list = candles.order_by("timeframe", "series").values_list("timeframe", "series")
        for candle_timeframe, series in series_list.distinct():
            selected = _in_window(
                candles.filter(timeframe=candle_timeframe, series=series), "open_time", since, until
            )
            if not selected.exists():
                continue
            with_taker = selected.filter(taker_buy_volume__isnull=False).exists()
            header = CANDLE_HEADER_WITH_TAKER if with_taker else CANDLE_HEADER
            path = outdir / file_name(
                market, kind=ImportKind.CANDLES, timeframe=candle_timeframe, series=series
            )
            rows = _write_csv_gz(path, header, _candle_lines(selected, with_taker))
            done(
                ExportedFile(
                    path, market.symbol, ImportKind.CANDLES, candle_timeframe, series, rows
                )
            )
        if funding and market.market_type == MarketType.FUTURES:
            rates = _in_window(
                FundingRate.objects.filter(market=market), "funding_time", since, until
            )
            if rates.exists():
                path = outdir / file_name(market, kind=ImportKind.FUNDING)
                rows = _write_csv_gz(path, FUNDING_HEADER, _funding_lines(rates))
                done(ExportedFile(path, market.symbol, ImportKind.FUNDING, "", "", rows))
    return written
