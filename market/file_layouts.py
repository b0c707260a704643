"""Market data files: which files are data, what a file holds by its name, and its columns.

The contract:

* **What a file is** comes from its name alone (`parse_layout`): `BTC_USDT-1h.csv.gz` is spot
  `BTC/USDT`, `BTC_USDT_USDT-1h-futures.csv` the perpetual `BTC/USDT:USDT`, `...-1h-mark.csv` its
  mark-price candles, `...-8h-funding_rate.csv` its funding settlements. `file_name` is the
  inverse: the name the exporter gives a stored series, which `parse_layout` reads back.
* **Formats**, by suffix: the CSV layout of the shared market data
  (`timestamp_ms,open,high,low,close,volume[,taker_buy_volume]` or `timestamp_ms,funding_rate`),
  freqtrade JSON (`[[ms, o, h, l, c, v], ...]`) and freqtrade feather
  (`date, open, high, low, close, volume`), each optionally gzipped except feather. A funding
  file's rate is its second CSV column, or the `open` column of freqtrade's files. Reading and
  checking the rows is market.file_validation's job.
* **Which files** (`collect_files`): inside a folder, only names with a data suffix; a file named
  explicitly is always taken, so a wrong name is reported rather than skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from market.models import ImportKind, Market, MarketType, PriceSeries
from market.times import TIMEFRAMES

# The model fields a candle file's columns fill, in the CSV layout's order.
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "taker_buy_volume")
CANDLE_HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
CANDLE_HEADER_WITH_TAKER = (*CANDLE_HEADER, "taker_buy_volume")
FUNDING_HEADER = ("timestamp_ms", "funding_rate")
FEATHER_COLUMNS = ("date", "open", "high", "low", "close", "volume")

# Longest first, so `x.csv.gz` is not taken for a `.gz` of unknown kind.
DATA_SUFFIXES = (".csv.gz", ".json.gz", ".csv", ".json", ".feather")

# freqtrade's candle types; only these three are stored, the others (index, premiumIndex, ...)
# are named in the rejection so the user knows why.
_SUFFIX_SERIES = {"futures": PriceSeries.TRADES, "mark": PriceSeries.MARK}
_FUNDING_SUFFIX = "funding_rate"


class ImportFileError(Exception):
    """A file that cannot be imported. Nothing from it was written.

    `row` is the 1-based data row (the header is not a row), or None for a problem with the file
    as a whole (name, header, encoding, compression).
    """

    def __init__(self, path: Path | str, row: int | None, reason: str) -> None:
        self.path = Path(path)
        self.row = row
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        return f"{self.path}: {where}{self.reason}"


class ImportPathError(ValueError):
    """A path given to `collect_files` does not exist. Raised before anything is imported."""


@dataclass(frozen=True)
class FileLayout:
    """What a file holds, read from its name."""

    kind: str  # ImportKind
    base: str
    quote: str
    settle: str  # "" for spot
    timeframe: str  # "" for funding: the name's timeframe is not the settlement interval
    series: str  # PriceSeries for candles, "" for funding
    file_format: str  # "csv" | "json" | "feather"
    compressed: bool

    @property
    def market_type(self) -> str:
        return MarketType.FUTURES if self.settle else MarketType.SPOT

    @property
    def symbol(self) -> str:
        """ccxt's unified symbol: BTC/USDT for spot, BTC/USDT:USDT for a perpetual."""
        return f"{self.base}/{self.quote}" + (f":{self.settle}" if self.settle else "")

    @property
    def label(self) -> str:
        if self.kind == ImportKind.FUNDING:
            return f"{self.symbol} funding"
        mark = " mark" if self.series == PriceSeries.MARK else ""
        return f"{self.symbol} {self.timeframe}{mark}"


def split_data_suffix(name: str) -> tuple[str, str] | None:
    """(stem, suffix) for a supported data file name, else None. Case of the suffix is ignored."""
    lowered = name.lower()
    for suffix in DATA_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def parse_layout(path: Path) -> FileLayout:
    """What `path` holds, from its name; ImportFileError ("unknown layout") for any other name."""
    split = split_data_suffix(path.name)
    if split is None:
        raise ImportFileError(
            path, None, f"unknown layout: expected a name ending in {', '.join(DATA_SUFFIXES)}"
        )
    stem, suffix = split
    file_format = suffix.split(".")[1]
    compressed = suffix.endswith(".gz")
    unknown = (
        "unknown layout: expected BASE_QUOTE-TF (spot), BASE_QUOTE_SETTLE-TF-futures, "
        "BASE_QUOTE_SETTLE-TF-mark or BASE_QUOTE_SETTLE-TF-funding_rate"
    )
    pair, _, rest = stem.partition("-")
    timeframe, _, candle_type = rest.partition("-")
    symbol_parts = pair.split("_")
    if (
        not timeframe
        or "-" in candle_type
        or len(symbol_parts) not in (2, 3)
        or not all(part.isalnum() and part.isascii() for part in symbol_parts)
    ):
        raise ImportFileError(path, None, unknown)
    base, quote = symbol_parts[0], symbol_parts[1]
    settle = symbol_parts[2] if len(symbol_parts) == 3 else ""
    if bool(settle) != bool(candle_type):
        # freqtrade names every futures file with its candle type and no spot file with one.
        raise ImportFileError(path, None, unknown)
    if candle_type == _FUNDING_SUFFIX:
        if file_format == "feather" and compressed:  # pragma: no cover - suffix table forbids it
            raise ImportFileError(path, None, unknown)
        return FileLayout(
            kind=ImportKind.FUNDING,
            base=base,
            quote=quote,
            settle=settle,
            timeframe="",
            series="",
            file_format=file_format,
            compressed=compressed,
        )
    if candle_type and candle_type not in _SUFFIX_SERIES:
        raise ImportFileError(
            path, None, f"unknown layout: candle type {candle_type!r} is not imported ({unknown})"
        )
    if timeframe not in TIMEFRAMES:
        raise ImportFileError(
            path,
            None,
            f"unknown layout: timeframe {timeframe!r} is not stored "
            f"(expected one of {', '.join(TIMEFRAMES)})",
        )
    return FileLayout(
        kind=ImportKind.CANDLES,
        base=base,
        quote=quote,
        settle=settle,
        timeframe=timeframe,
        series=_SUFFIX_SERIES.get(candle_type, PriceSeries.TRADES),
        file_format=file_format,
        compressed=compressed,
    )


def file_name(market: Market, *, kind: str, timeframe: str = "", series: str = "") -> str:
    """The CSV.gz name of one stored series of `market` (the inverse of `parse_layout`)."""
    base, _, rest = market.symbol.partition("/")
    quote, _, settle = rest.partition(":")
    if market.market_type == MarketType.FUTURES:
        pair = f"{base}_{quote}_{settle or quote}"
    else:
        pair = f"{base}_{quote}"
    if kind == ImportKind.FUNDING:
        # The timeframe in a funding name is decoration (freqtrade writes 8h); any works.
        return f"{pair}-8h-funding_rate.csv.gz"
    if series == PriceSeries.MARK:
        return f"{pair}-{timeframe}-mark.csv.gz"
    if market.market_type == MarketType.FUTURES:
        return f"{pair}-{timeframe}-futures.csv.gz"
    return f"{pair}-{timeframe}.csv.gz"


def collect_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[Path]]:
    """(files to import, files skipped) for files and folders.

    Folders are walked recursively in sorted order; inside a folder only names with a data
    suffix are taken (a README beside the data is skipped, not rejected). A file named
    explicitly is always taken, so a wrong name is reported. ImportPathError if a path does
    not exist.
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ImportPathError(f"no such file or folder: {', '.join(missing)}")
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        for found in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
            if hidden or not found.is_file():
                continue
            (files if split_data_suffix(found.name) else skipped).append(found)
    unique = list(dict.fromkeys(files))
    return unique, skipped
