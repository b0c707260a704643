"""Gathering a batch's scanner inputs from a market-data source, and scoring the batch.

`gather_inputs` asks the source once per method for the whole batch (never once per coin) and
builds each coin's typed, point-in-time inputs; `scan_coins` scores them. One coin's failure
(its data breaks the input builders, a scanner raises on it, or a source method raises only when
that coin is asked for) becomes that coin's `CoinOutcome.error`: the batch never raises for one
coin. A `SourceError` - the source failed as a whole - propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django import db

from market.sources.base import MarketDataSource, SourceError, unique
from market.times import require_aware
from market.values import Maybe, Missing
from scanners.algorithms.common import HOUR, ScannerConfig, ScannerResult
from scanners.algorithms.common import UP_CANDLE_WINDOW as _UP_CANDLE_WINDOW
from scanners.algorithms.mss import MssInputs, is_new_listing, score_mss
from scanners.algorithms.rsi import RsiInputs, score_rsi
from scanners.algorithms.smart_money import SmartMoneyInputs, score_smart_money
from scanners.algorithms.social import SocialInputs, score_social
from scanners.algorithms.volume import CANDLES_NEEDED as VOLUME_CANDLES
from scanners.algorithms.volume import VolumeInputs, score_volume_spike
from scanners.algorithms.whale import WhaleInputs, score_whale

SCANNERS = ("smart_money", "mss", "rsi", "social", "whale", "volume")
# What a run of each name computes: whale and volume ride along with smart money as components.
RUNS: dict[str, tuple[str, ...]] = {
    "smart_money": ("smart_money", "whale", "volume"),
    "mss": ("mss",),
    "rsi": ("rsi",),
    "social": ("social",),
    "whale": ("whale",),
    "volume": ("volume",),
    "all": SCANNERS,
}

PRICE_CHANGE_7D_CANDLES = 168 + 1  # the last close and the close 168 h before it
PRICE_CHANGE_24H_CANDLES = 24 + 1
PRESSURE_CANDLES = int(_UP_CANDLE_WINDOW / HOUR)  # 72 (the 24 h taker window lies inside)
NOT_NEW = "not fetched: the coin is not a new listing, so MSS does not score it"


def expand_scanners(scanners: str | Iterable[str]) -> tuple[str, ...]:
    """The scanners a run computes, in `SCANNERS` order: "all" is all six, "smart_money" adds
    whale and volume. ValueError for an unknown name."""
    names = [scanners] if isinstance(scanners, str) else list(scanners)
    wanted: set[str] = set()
    for name in names:
        if name not in RUNS:
            raise ValueError(f"unknown scanner {name!r}; expected one of: {', '.join(RUNS)}")
        wanted.update(RUNS[name])
    return tuple(name for name in SCANNERS if name in wanted)


def candles_needed(scanners: Iterable[str], config: ScannerConfig) -> int:
    """How many 1h candles the batch asks for: the most any of its scanners needs."""
    needs = {
        "rsi": config.rsi_window,
        "smart_money": max(PRICE_CHANGE_7D_CANDLES, PRESSURE_CANDLES, PRICE_CHANGE_24H_CANDLES),
        "mss": PRESSURE_CANDLES,
        "social": PRICE_CHANGE_24H_CANDLES,
        "volume": VOLUME_CANDLES,
        "whale": 0,
    }
    return max([needs[name] for name in scanners] + [0])


@dataclass(frozen=True)
class CoinInputs:
    """One coin's inputs for each requested scanner (None: not requested), or why none exist."""

    symbol: str
    as_of: datetime
    rsi: RsiInputs | None = None
    smart_money: SmartMoneyInputs | None = None
    mss: MssInputs | None = None
    social: SocialInputs | None = None
    whale: WhaleInputs | None = None
    volume: VolumeInputs | None = None
    error: str | None = None


@dataclass(frozen=True)
class CoinOutcome:
    """What scanning one coin gave: its results, or the error that stopped it (then no results)."""

    symbol: str
    results: list[ScannerResult] = field(default_factory=list)
    error: str | None = None


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Batch:
    """Calls source methods for the whole batch, isolating a coin whose call raises."""

    def __init__(self, source: MarketDataSource, symbols: Sequence[str]) -> None:
        self.source = source
        self.symbols = list(symbols)
        self.errors: dict[str, str] = {}

    def ask(
        self,
        what: str,
        call: Callable[[list[str]], dict[str, Maybe[Any]]],
        symbols: Sequence[str] | None = None,
    ) -> dict[str, Maybe[Any]]:
        """`call` once for all symbols; if it raises (other than SourceError), once per symbol,
        and a symbol whose own call raises gets that error."""
        asked = [s for s in (self.symbols if symbols is None else symbols) if s not in self.errors]
        if not asked:
            return {}
        try:
            answer = call(asked)
        except SourceError:
            raise
        except Exception:
            answer = {}
            for symbol in asked:
                try:
                    answer.update(call([symbol]))
                except SourceError:
                    raise
                except Exception as error:
                    self.errors[symbol] = f"{describe_error(error)} (reading {what})"
        return answer

    def get(self, answer: dict[str, Maybe[Any]], symbol: str, what: str) -> Maybe[Any]:
        if symbol in answer:
            return answer[symbol]
        return Missing(f"the {self.source.name or 'market-data'} source gave no {what}")


Reads = dict[str, tuple[str, Callable[[list[str]], dict[str, Maybe[Any]]], list[str]]]
T = TypeVar("T")


def _read_all(
    batch: _Batch,
    reads: Reads,
    *,
    parallel: bool,
    meanwhile: Callable[[], T] | None = None,
) -> tuple[dict[str, dict[str, Maybe[Any]]], T | None]:
    """Every read of `reads` through `batch.ask`, and `meanwhile()` in the calling thread: one
    after another, or side by side in threads when the source can serve concurrent calls.
    Returns (the answers by read, what `meanwhile` returned). A SourceError from any read
    propagates."""
    if not parallel or len(reads) + (meanwhile is not None) < 2:
        answers = {
            name: batch.ask(what, call, symbols) for name, (what, call, symbols) in reads.items()
        }
        return answers, meanwhile() if meanwhile is not None else None

    def ask(what: str, call: Callable, symbols: list[str]) -> dict[str, Maybe[Any]]:
        try:
            return batch.ask(what, call, symbols)
        finally:
            # A pool thread's database connection (candle write-through) must not outlive it.
            db.connection.close()

    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="scan-read") as pool:
        futures = {name: pool.submit(ask, *read) for name, read in reads.items()}
        also = meanwhile() if meanwhile is not None else None
        return {name: future.result() for name, future in futures.items()}, also


def gather_inputs(
    source: MarketDataSource,
    symbols: Sequence[str],
    *,
    as_of: datetime,
    scanners: str | Iterable[str],
    config: ScannerConfig | None = None,
) -> dict[str, CoinInputs]:
    """Each coin's typed inputs as of `as_of`, from one call per source method for the batch."""
    require_aware(as_of)
    config = config or ScannerConfig.from_settings()
    wanted = expand_scanners(scanners)
    symbols = unique(symbols)
    batch = _Batch(source, symbols)

    limit = candles_needed(wanted, config)
    by_name: dict[str, tuple[str, Callable[[list[str]], dict[str, Maybe[Any]]]]] = {
        "candles": (
            "1h candles",
            lambda s: source.candles(s, timeframe="1h", as_of=as_of, limit=limit),
        ),
        "funding": ("funding", lambda s: source.funding_rates(s, as_of=as_of)),
        "open_interest": ("open interest", lambda s: source.open_interest(s, as_of=as_of)),
        "social": ("social metrics", lambda s: source.social(s, as_of=as_of)),
        "fundamentals": ("fundamentals", lambda s: source.fundamentals(s, as_of=as_of)),
        "long_short": ("long/short ratio", lambda s: source.long_short_ratio(s, as_of=as_of)),
        "large": (
            "large trades",
            lambda s: source.large_trades(
                s, as_of=as_of, min_usd=config.whale_trade_usd, window=HOUR
            ),
        ),
    }

    def reads_of(names: Iterable[str], of: list[str]) -> Reads:
        return {name: (*by_name[name], of) for name in names}

    # What every coin needs is read at once, side by side with the listing times. MSS scores new
    # listings only: what only it needs is asked, once the listing times are known, for those.
    smart = "smart_money" in wanted
    every = ["candles"] if limit else []
    new_only = ["fundamentals", "long_short"]
    for name, for_every in (
        ("funding", smart),
        ("open_interest", smart),
        ("social", smart or "social" in wanted),
    ):
        (every if for_every else new_only).append(name)
    if "whale" in wanted:
        every.append("large")

    def new_listings() -> tuple[dict[str, Maybe[Any]], list[str], dict[str, Any]]:
        """(listing times, the new listings, the reads asked for those alone)."""
        if "mss" not in wanted:
            return {}, [], {}
        listed = batch.ask("listing times", lambda s: source.listing_times(s, as_of=as_of))
        new = [
            symbol
            for symbol in symbols
            if is_new_listing(batch.get(listed, symbol, "listing time"), as_of, config)
        ]
        if not new:
            return listed, new, {}
        answers, _ = _read_all(batch, reads_of(new_only, new), parallel=source.parallel_reads)
        return listed, new, answers

    answers, found = _read_all(
        batch, reads_of(every, symbols), parallel=source.parallel_reads, meanwhile=new_listings
    )
    assert found is not None
    listed, new, for_new = found
    answers.update(for_new)
    candles = answers.get("candles", {})
    funding = answers.get("funding", {})
    open_interest = answers.get("open_interest", {})
    social = answers.get("social", {})
    fundamentals = answers.get("fundamentals", {})
    long_short = answers.get("long_short", {})
    large = answers.get("large", {})
    trending: Maybe[Any] = Missing("not asked for")
    if "social" in wanted:
        trending = source.trending(as_of=as_of)

    gathered: dict[str, CoinInputs] = {}
    for symbol in symbols:
        if symbol in batch.errors:
            gathered[symbol] = CoinInputs(symbol, as_of, error=batch.errors[symbol])
            continue
        try:
            gathered[symbol] = _coin_inputs(
                symbol,
                as_of,
                wanted,
                config,
                candles=batch.get(candles, symbol, "1h candles"),
                funding=batch.get(funding, symbol, "funding rate"),
                open_interest=batch.get(open_interest, symbol, "open interest"),
                social=batch.get(social, symbol, "social metrics"),
                fundamentals=batch.get(fundamentals, symbol, "fundamentals"),
                long_short=batch.get(long_short, symbol, "long/short ratio"),
                large_trades=batch.get(large, symbol, "large trades"),
                listed_at=batch.get(listed, symbol, "listing time"),
                trending=trending,
                is_new=symbol in new,
            )
        except Exception as error:
            gathered[symbol] = CoinInputs(symbol, as_of, error=describe_error(error))
    return gathered


def _coin_inputs(
    symbol: str,
    as_of: datetime,
    wanted: Sequence[str],
    config: ScannerConfig,
    *,
    candles: Maybe[Any],
    funding: Maybe[Any],
    open_interest: Maybe[Any],
    social: Maybe[Any],
    fundamentals: Maybe[Any],
    long_short: Maybe[Any],
    large_trades: Maybe[Any],
    listed_at: Maybe[Any],
    trending: Maybe[Any],
    is_new: bool,
) -> CoinInputs:
    parts: dict[str, Any] = {}
    if "rsi" in wanted:
        parts["rsi"] = RsiInputs.build(symbol, as_of, candles, window=config.rsi_window)
    if "smart_money" in wanted:
        parts["smart_money"] = SmartMoneyInputs.build(
            symbol,
            as_of,
            candles=candles,
            funding=funding,
            open_interest=open_interest,
            social=social,
        )
    if "mss" in wanted:
        if is_new:
            parts["mss"] = MssInputs.build(
                symbol,
                as_of,
                listed_at=listed_at,
                candles=candles,
                fundamentals=fundamentals,
                social=social,
                open_interest=open_interest,
                funding=funding,
                long_short=long_short,
            )
        else:
            nothing = Missing(NOT_NEW)
            parts["mss"] = MssInputs(
                symbol, as_of, listed_at, *([nothing] * 10)
            )  # score_mss returns None for it
    if "social" in wanted:
        parts["social"] = SocialInputs.build(
            symbol, as_of, social=social, trending=trending, candles=candles
        )
    if "whale" in wanted:
        parts["whale"] = WhaleInputs.build(symbol, as_of, large_trades=large_trades)
    if "volume" in wanted:
        parts["volume"] = VolumeInputs.build(symbol, as_of, candles=candles)
    return CoinInputs(symbol, as_of, **parts)


SCORERS: dict[str, Callable[..., ScannerResult | None]] = {
    "smart_money": score_smart_money,
    "mss": score_mss,
    "rsi": score_rsi,
    "social": score_social,
    "whale": score_whale,
    "volume": score_volume_spike,
}


def score_coin(inputs: CoinInputs, *, config: ScannerConfig) -> CoinOutcome:
    """Every requested scanner's result for one coin; a scanner that raises fails the coin."""
    if inputs.error is not None:
        return CoinOutcome(inputs.symbol, [], inputs.error)
    results: list[ScannerResult] = []
    try:
        for name in SCANNERS:
            scanner_inputs = getattr(inputs, name)
            if scanner_inputs is None:
                continue
            result = SCORERS[name](scanner_inputs, config=config)
            if result is not None:
                results.append(result)
    except Exception as error:
        return CoinOutcome(inputs.symbol, [], f"{describe_error(error)} (scoring {name})")
    return CoinOutcome(inputs.symbol, results, None)


def scan_coins(
    source: MarketDataSource,
    symbols: Sequence[str],
    *,
    as_of: datetime,
    scanners: str | Iterable[str],
    config: ScannerConfig | None = None,
) -> list[CoinOutcome]:
    """Gather and score a batch: one outcome per symbol (in order, duplicates collapsed)."""
    config = config or ScannerConfig.from_settings()
    gathered = gather_inputs(source, symbols, as_of=as_of, scanners=scanners, config=config)
    return [score_coin(gathered[symbol], config=config) for symbol in unique(symbols)]
