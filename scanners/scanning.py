"""Scan runs: the universe, starting a run as a Celery chord, writing a batch, progress counts.

A scan is a `ScanRun` and a chord: `scan_start` picks the coins (the universe by 24h quote volume,
a watchlist, or explicit symbols), refuses to overlap a live run of the same scanner, creates the
run and sends `chord(group(scanners.scan_batch per SCAN_BATCH_SIZE coins), tracking.finish_scan)`.
Both are sent by name: the chord body lives in the tracking app, which scanners may not import.
A run is live while its progress (`progressed_at`) moved within SCAN_STALE_SECONDS; a stalled run
no longer blocks a new one, and the watchdog (scanners/watchdog.py) finishes it.

`scan_batch_run` never raises for its coins: a coin that fails, or a whole batch whose source
fails, is recorded as `CoinFailure` rows, so the chord always completes. Its rows and the run's
counts are written in the transaction that inserts the batch's `ScanBatch` row, unique on (run,
number): a redelivered batch (acks_late) writes nothing twice and counts nothing twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from celery import Signature, chord, group, signature
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.row_writer import db_datetime, db_datetimes, insert_rows, json_text
from market.models import Market, MarketType
from market.replay_clock import market_now
from market.sources import get_market_source
from market.sources.base import MarketDataSource, SourceError
from market.times import show_time
from market.values import Missing
from scanners.algorithms.common import HOUR, ScannerConfig
from scanners.models import (
    RUN_SCANNERS,
    CoinFailure,
    RunStatus,
    RunTrigger,
    ScanBatch,
    ScannerName,
    ScanResult,
    ScanRun,
    ScanSchedule,
    Watchlist,
)

logger = logging.getLogger(__name__)

QUOTE = "USDT"
FINISH_TASK = "tracking.finish_scan"
BATCH_TASK = "scanners.scan_batch"

# Stablecoins (and fiat tokens) quoted against USDT: their "price action" is noise around 1.
STABLECOINS = frozenset(
    {
        "USDT", "USDC", "BUSD", "TUSD", "DAI", "FDUSD", "USDP", "PAX", "PYUSD", "USDD", "GUSD",
        "UST", "USTC", "SUSD", "LUSD", "FRAX", "USDE", "USD1", "USDS", "RLUSD", "BFUSD", "XUSD",
        "USDJ", "EUR", "EURI", "AEUR", "EURT", "GBP", "TRY", "BRL", "AUD", "IDRT", "BIDR", "UAH",
        "ZAR", "RUB", "NGN", "ARS", "PLN", "RON", "JPY", "MXN", "COP", "CZK",
    }
)  # fmt: skip
# Binance's leveraged tokens: BTCUP, BTCDOWN, ETHBULL, ETHBEAR.
LEVERAGED_SUFFIXES = ("UP", "DOWN", "BULL", "BEAR")

INTERVAL_SETTINGS = {
    "rsi": "RSI_SCREENER_INTERVAL_HOURS",
    "smart_money": "SMART_MONEY_INTERVAL_HOURS",
    "mss": "MSS_DISCOVERY_INTERVAL_HOURS",
    "social": "SOCIAL_INTERVAL_HOURS",
}


class ScanRefused(Exception):
    """A scan that cannot start (an overlapping run, nothing to scan); the message says why."""


class UnknownSymbols(ValueError):
    """Symbols with no spot market of the configured exchange; `symbols` lists them."""

    def __init__(self, symbols: Sequence[str], reason: str | None = None) -> None:
        self.symbols = list(symbols)
        reason = reason or f"no {settings.EXCHANGE} spot market"
        super().__init__(f"unknown symbol(s): {', '.join(self.symbols)} ({reason})")


# --- settings ----------------------------------------------------------------------------------


def batch_size() -> int:
    return settings.SCAN_BATCH_SIZE


def scanner_interval(scanner: str) -> timedelta:
    """The scanner's schedule interval; for `all`, the longest of the four."""
    if scanner == ScannerName.ALL:
        return max(scanner_interval(name) for name in RUN_SCANNERS)
    # Read by computed name: every INTERVAL_SETTINGS value is in the settings table
    # (tests/test_config.py checks it).
    return timedelta(hours=float(getattr(settings, INTERVAL_SETTINGS[scanner])))


def scanners_of(scanner: str) -> list[str]:
    """The scanner names `scan_coins` runs for a run of `scanner`."""
    return list(RUN_SCANNERS) if scanner == ScannerName.ALL else [scanner]


# --- symbols and the universe ------------------------------------------------------------------


def normalize_symbol(raw: str) -> str:
    """BTC, btc, BTCUSDT, BTC/USDT and BTC-USDT all mean the spot market BTC/USDT."""
    text = raw.strip().upper().replace("-", "/")
    if "/" in text:
        base, _, quote = text.partition("/")
        return f"{base}/{quote or QUOTE}"
    if text.endswith(QUOTE) and len(text) > len(QUOTE):
        text = text[: -len(QUOTE)]
    return f"{text}/{QUOTE}"


def symbols_validate(raw_symbols: Iterable[str]) -> list[str]:
    """The symbols normalised, duplicates dropped, in order; UnknownSymbols listing every symbol
    without a spot market of the configured exchange."""
    symbols = list(dict.fromkeys(normalize_symbol(s) for s in raw_symbols if s.strip()))
    known = set(
        Market.objects.filter(
            exchange=settings.EXCHANGE, market_type=MarketType.SPOT, symbol__in=symbols
        ).values_list("symbol", flat=True)
    )
    unknown = [symbol for symbol in symbols if symbol not in known]
    if unknown:
        if settings.MARKET_SOURCE != "replay":
            # Live, the store knows the markets a universe scan or fetch_ohlcv has read so far:
            # saying "no market" would be wrong for a coin the exchange lists.
            raise UnknownSymbols(
                unknown,
                f"not among the {settings.EXCHANGE} spot markets read so far; a universe scan "
                "(--coins N) or fetch_ohlcv reads them",
            )
        raise UnknownSymbols(unknown)
    return symbols


def is_excluded_base(base: str, bases: set[str]) -> bool:
    """Stablecoins, and leveraged tokens: a base ending in UP/DOWN/BULL/BEAR whose stem is itself a
    listed base (BTCUP -> BTC), so JUP or SUPER stay in."""
    base = base.upper()
    if base in STABLECOINS:
        return True
    return any(
        base.endswith(suffix) and base[: -len(suffix)] in bases for suffix in LEVERAGED_SUFFIXES
    )


def universe_select(source: MarketDataSource, *, as_of: datetime, size: int) -> list[str]:
    """The top `size` active USDT spot markets by 24h quote volume at as_of (docs/SCORING.md)."""
    markets = [
        market
        for market in source.markets(as_of=as_of, market_type=MarketType.SPOT)
        if market.quote == QUOTE and market.active
    ]
    bases = {market.base.upper() for market in markets}
    candidates = [m.symbol for m in markets if not is_excluded_base(m.base, bases)]
    if not candidates:
        return []
    tickers = source.tickers(candidates, as_of=as_of)
    ranked = sorted(
        (
            (ticker.quote_volume_24h, symbol)
            for symbol, ticker in tickers.items()
            if not isinstance(ticker, Missing) and ticker.quote_volume_24h > 0
        ),
        key=lambda pair: (-pair[0], pair[1]),
    )
    return [symbol for _volume, symbol in ranked[:size]]


# --- keeping whale trade tallies current ----------------------------------------------------------


@dataclass(frozen=True)
class TallyRefresh:
    """What one refresh of the trade tallies read: the coins asked, and each coin whose new
    trades could not all be read, with the reason (it is read again by the next refresh or
    scan, from where its tally stopped)."""

    coins: int
    unread: dict[str, str]


def refresh_trade_tallies(
    *, source: MarketDataSource | None = None, as_of: datetime | None = None
) -> TallyRefresh:
    """Read the aggregate trades the universe's coins made since their tallies' last trade, so
    a scan's whale read covers only the minutes since this refresh. Every SCAN_UNIVERSE_SIZE
    coin by 24h volume at `as_of` (default: market_now()) is asked; a SourceError (a ban, an
    unreachable exchange) propagates. Meant for a live source (TRADE_TALLY_REFRESH_SECONDS)."""
    as_of = as_of or market_now()
    own_source = source is None
    source = source or get_market_source()
    try:
        coins = universe_select(source, as_of=as_of, size=settings.SCAN_UNIVERSE_SIZE)
        config = ScannerConfig.from_settings()
        found = source.large_trades(coins, as_of=as_of, min_usd=config.whale_trade_usd, window=HOUR)
    finally:
        if own_source:
            source.close()
    unread = {symbol: value.reason for symbol, value in found.items() if isinstance(value, Missing)}
    logger.info(
        "trade tallies of %d coins read up to %s%s",
        len(coins),
        show_time(as_of),
        f"; {len(unread)} not fully read, e.g. {next(iter(unread.values()))}" if unread else "",
    )
    return TallyRefresh(coins=len(coins), unread=unread)


# --- starting a run ----------------------------------------------------------------------------


def scan_start(
    scanner: str,
    *,
    watchlist_id: int | None = None,
    symbols: Sequence[str] | None = None,
    coins: int | None = None,
    as_of: datetime | None = None,
    trigger: str = RunTrigger.MANUAL,
    requested_by_id: int | None = None,
    source: MarketDataSource | None = None,
    send: bool = True,
) -> ScanRun:
    """Create a run of `scanner` and send its chord (after the creating transaction commits).
    `send=False` sends nothing: the caller runs the batches and the final step itself, at once
    (the replay's in-process path, by the same services the tasks call); the run is created
    running, started now, as the first batch would make it.

    Scope, first that applies: the watchlist, the explicit symbols (validated), else the universe
    (top `coins` or SCAN_UNIVERSE_SIZE). Raises ScanRefused while a run of the same scanner is
    queued or running and live (progress within SCAN_STALE_SECONDS; a stalled one is left to the
    watchdog and blocks nothing), and when there is nothing to scan; UnknownSymbols for symbols
    without a market. The overlap is checked in the transaction that creates the run, and also
    before the universe is picked when no `source` is given.
    """
    if scanner not in ScannerName.values:
        raise ScanRefused(
            f"unknown scanner {scanner!r}; expected one of: {', '.join(ScannerName.values)}"
        )
    as_of = as_of or market_now()
    if source is None:
        # Cheap early refusal before a source is opened and the universe computed. With a source
        # given (the replay's, whose markets and tickers are read once an hour) picking the
        # universe costs less than the check: the one in the transaction below decides alone.
        _refuse_overlap(scanner)
    watchlist = None
    if watchlist_id is not None:
        watchlist = Watchlist.objects.filter(pk=watchlist_id).first()
        if watchlist is None:
            raise ScanRefused(f"watchlist {watchlist_id} does not exist")
        chosen = list(watchlist.coins.order_by("symbol").values_list("symbol", flat=True))
        if not chosen:
            raise ScanRefused(f"watchlist {watchlist.name!r} has no coins to scan")
    elif symbols:
        chosen = symbols_validate(symbols)
    else:
        size = coins or settings.SCAN_UNIVERSE_SIZE
        own_source = source is None
        source = source or get_market_source()
        try:
            chosen = universe_select(source, as_of=as_of, size=size)
        finally:
            if own_source:
                source.close()
        if not chosen:
            raise ScanRefused(
                f"no {QUOTE} spot market traded in the 24 h before {show_time(as_of)}: "
                "nothing to scan (is market data imported?)"
            )
    size = batch_size()
    with transaction.atomic():
        lock = _schedule_lock(scanner)
        _refuse_overlap(scanner)
        run = ScanRun.objects.create(
            scanner=scanner,
            trigger=trigger,
            as_of=as_of,
            symbols=chosen,
            watchlist=watchlist,
            requested_by_id=requested_by_id,
            coins_total=len(chosen),
            batches_total=math.ceil(len(chosen) / size),
            batch_size=size,
            # Run at once by the caller: running now, which spares its first batch a statement.
            **({} if send else _running_now()),
        )
        lock.last_run = run
        lock.save(update_fields=["last_run"])
        if send:
            transaction.on_commit(lambda: _send_chord(run))
    logger.info(
        "scan #%d %s started: %d coins in %d batches as of %s",
        run.pk,
        scanner,
        run.coins_total,
        run.batches_total,
        show_time(as_of),
    )
    return run


def _running_now() -> dict[str, Any]:
    """The fields of a run that starts now (what its first batch's `run_progress` stores)."""
    now = timezone.now()
    return {"status": RunStatus.RUNNING, "started_at": now, "progressed_at": now}


def _schedule_lock(scanner: str) -> ScanSchedule:
    """The scanner's ScanSchedule row, locked for this transaction (created when missing)."""
    lock = ScanSchedule.objects.select_for_update().filter(scanner=scanner).first()
    if lock is not None:  # the row exists but for a scanner's first scan: one statement
        return lock
    ScanSchedule.objects.bulk_create([ScanSchedule(scanner=scanner)], ignore_conflicts=True)
    return ScanSchedule.objects.select_for_update().get(scanner=scanner)


def stale_window() -> timedelta:
    """How long a queued or running run may go without progress before it counts as stalled."""
    return timedelta(seconds=float(settings.SCAN_STALE_SECONDS))


def _refuse_overlap(scanner: str) -> None:
    """ScanRefused while a live run of `scanner` exists. A stalled run (no progress for the stale
    window: a killed worker, a lost chord) blocks nothing: the watchdog takes it over."""
    now = timezone.now()
    window = stale_window()
    live = (
        ScanRun.objects.filter(
            scanner=scanner,
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
            progressed_at__gte=now - window,
        )
        .order_by("created_at")
        .first()
    )
    if live is not None:
        created, moved = now - live.created_at, now - live.progressed_at
        raise ScanRefused(
            f"a {scanner} scan is already {live.status} (run #{live.pk}, created "
            f"{age_text(created)} ago, {live.coins_processed}/{live.coins_total} coins done, "
            f"last progress {age_text(moved)} ago); a new one is refused until it finishes or "
            f"makes no progress for {age_text(window)}"
        )


def age_text(span: timedelta) -> str:
    """A span as people read it: 45 s, 12 min, 3.5 h."""
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _send_chord(run: ScanRun) -> None:
    try:
        send_batches(run, range(run.batches_total))
    except Exception as error:
        ScanRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error=f"could not send the scan to the broker: {error}",
        )
        raise


def batch_symbols(run: ScanRun, number: int) -> list[str]:
    """The coins of batch `number` of the run: its slice of `symbols` by the batch size the run
    was created with, so a re-sent batch holds exactly the coins of the original."""
    size = run.batch_size or batch_size()
    return list(run.symbols[number * size : (number + 1) * size])


def send_batches(run: ScanRun, numbers: Iterable[int]) -> None:
    """Send `chord(group(scan_batch of each numbered batch), finish_scan)`. Used to start a run
    and by the watchdog to re-send a stalled run's unwritten batches: a batch already written
    writes nothing again, and finish_scan finishes a run once."""
    header = group(
        signature(BATCH_TASK, args=(run.pk, batch_symbols(run, number), number))
        for number in numbers
    )
    # Immutable: finish_scan(run_id) reads the batches from the database, not their results.
    chord(header)(finish_signature(run))


def finish_signature(run: ScanRun) -> Signature:
    """The final step of the run, by name: the chord body lives in tracking."""
    return signature(FINISH_TASK, args=(run.pk,), immutable=True)


# --- one batch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchReport:
    run_id: int
    number: int
    written: bool  # False: this batch had been written before (a redelivery), or the run is over
    coins_done: int
    coins_failed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "batch": self.number,
            "written": self.written,
            "coins_done": self.coins_done,
            "coins_failed": self.coins_failed,
        }


def scan_batch_run(
    run_id: int,
    symbols: Sequence[str],
    number: int,
    *,
    source: MarketDataSource | None = None,
    run: ScanRun | None = None,
) -> BatchReport:
    """Scan one batch of a run and record it; never raises for its coins or its source.

    `run`: the run as its caller holds it (the replay's in-process path, which created it and
    runs each of its batches once, one after another, at once), instead of reading it again; its
    status must be current. A held run already running is not marked as progressed when a batch
    starts: it progressed a moment ago (created running by `scan_start(send=False)`, or its
    previous batch written). A redelivered batch, or one of a run that is over, writes nothing:
    a task's batch is looked up before it is scanned (a redelivery costs no scan); a batch its
    caller holds the run of is not (it is new), and should it come twice all the same, the batch
    row's key still writes and counts it once."""
    if run is None:
        run = ScanRun.objects.filter(pk=run_id).first()
        redelivered = ScanBatch.objects.filter(run_id=run_id, number=number)
    else:
        redelivered = None
    if run is None or run.status in (RunStatus.FINISHED, RunStatus.FAILED):
        logger.info("batch %s of scan #%s skipped: the run is gone or over", number, run_id)
        return BatchReport(run_id, number, False, 0, 0)
    if redelivered is not None and redelivered.exists():
        logger.info("batch %d of scan #%d was written before (redelivered): nothing to do", number,
                    run_id)  # fmt: skip
        return BatchReport(run_id, number, False, 0, 0)
    if redelivered is not None:
        run_progress(run_id)
    elif run.status != RunStatus.RUNNING:
        run_progress(run_id, run=run)
    symbols = list(dict.fromkeys(symbols))
    results, failures = _scan(run, symbols, source)
    return _write_batch(run, number, symbols, results, failures)


def run_progress(run_id: int, *, run: ScanRun | None = None) -> None:
    """A batch starts: a queued run becomes running (started now), and the run has progressed
    now (it is alive: the overlap guard and the watchdog read it). One statement.

    `run`: the run as its caller holds it (the replay's in-process path), brought up to date
    here. Its status picks a plain UPDATE instead of the conditional one (cheaper to build), each
    guarded by the status it assumes; should the stored status differ, the conditional one
    follows (two statements), so the stored outcome is the same either way."""
    now = timezone.now()
    plain = 0
    if run is not None and run.status == RunStatus.QUEUED:
        plain = ScanRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, progressed_at=now
        )
        if plain:
            run.status, run.started_at = RunStatus.RUNNING, now
    elif run is not None:
        # What the conditional UPDATE does to a run that is not queued: its start is kept.
        plain = (
            ScanRun.objects.filter(pk=run_id)
            .exclude(status=RunStatus.QUEUED)
            .update(progressed_at=now)
        )
    if run is not None and plain:
        run.progressed_at = now
        return
    queued = Q(status=RunStatus.QUEUED)
    ScanRun.objects.filter(pk=run_id).update(
        status=Case(
            When(queued, then=Value(RunStatus.RUNNING)),
            default=F("status"),
            output_field=ScanRun._meta.get_field("status"),
        ),
        started_at=Case(
            When(queued, then=Value(now)),
            default=F("started_at"),
            output_field=ScanRun._meta.get_field("started_at"),
        ),
        progressed_at=now,
    )


def _scan(
    run: ScanRun, symbols: list[str], source: MarketDataSource | None
) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    """The batch's results as rows for `_write_batch` (`RESULT_COLUMNS`), and its failures."""
    from scanners.inputs import scan_coins  # the algorithms' entry point (contract, section 1)

    own_source = source is None
    failures: dict[str, str] = {}
    results: list[tuple[Any, ...]] = []
    try:
        source = source or get_market_source()
        outcomes = scan_coins(source, symbols, as_of=run.as_of, scanners=scanners_of(run.scanner))
    except SourceError as error:
        logger.warning("scan #%d: the market source failed for a batch: %s", run.pk, error)
        return [], dict.fromkeys(symbols, f"market data source failed: {error}")
    except Exception as error:  # a batch never fails as a whole, or the chord would not finish
        logger.exception("scan #%d: a batch of %d coins failed", run.pk, len(symbols))
        return [], {symbol: f"scan failed: {type(error).__name__}: {error}" for symbol in symbols}
    finally:
        if own_source and source is not None:
            source.close()
    seen: set[str] = set()
    stamp = db_datetimes()
    now = db_datetime(timezone.now())
    for outcome in outcomes:
        if outcome.symbol not in symbols or outcome.symbol in seen:
            continue
        seen.add(outcome.symbol)
        if outcome.error:
            failures[outcome.symbol] = outcome.error
            continue
        for result in outcome.results:
            results.append(
                (
                    run.pk,
                    result.scanner,
                    result.symbol,
                    stamp(result.as_of),
                    json_text(result.scores, default=json_safe),
                    result.direction or None,
                    json_text(result.component, default=json_safe),
                    json_text(list(result.reasons), default=json_safe),
                    json_text(result.inputs, default=json_safe),
                    float(result.completeness),
                    now,
                )
            )
    for symbol in symbols:
        if symbol not in seen:
            failures[symbol] = "the scan returned no outcome for this coin"
    return results, failures


# The columns of a batch's result rows: values as the database takes them (`core.row_writer`),
# JSON encoded once as it is built; `created_at` is the batch's time.
RESULT_COLUMNS = (
    "run_id",
    "scanner",
    "symbol",
    "as_of",
    "scores",
    "direction",
    "component",
    "reasons",
    "inputs",
    "completeness",
    "created_at",
)


def _write_batch(
    run: ScanRun,
    number: int,
    symbols: list[str],
    results: list[tuple[Any, ...]],
    failures: dict[str, str],
) -> BatchReport:
    # A coin with no result and no error (MSS: not a new listing) was scanned all the same.
    failed = len(failures)
    done = len(symbols) - failed
    try:
        # A batch row already there (a redelivery) fails the first INSERT: the transaction, which
        # has written nothing yet, rolls back whole, so no savepoint is needed around it.
        with transaction.atomic():
            ScanBatch.objects.create(run=run, number=number, coins_done=done, coins_failed=failed)
            insert_rows(ScanResult, RESULT_COLUMNS, results, ignore_conflicts=True)
            CoinFailure.objects.bulk_create(
                [
                    CoinFailure(run=run, symbol=symbol, error=error[:2000])
                    for symbol, error in failures.items()
                ],
                ignore_conflicts=True,
                batch_size=500,
            )
            ScanRun.objects.filter(pk=run.pk).update(
                coins_done=F("coins_done") + done,
                coins_failed=F("coins_failed") + failed,
                batches_done=F("batches_done") + 1,
                progressed_at=timezone.now(),
                watchdog_stalls=0,
            )
    except IntegrityError:
        logger.info("batch %d of scan #%d already written, or its run is gone: counted once",
                    number, run.pk)  # fmt: skip
        return BatchReport(run.pk, number, False, 0, 0)
    return BatchReport(run.pk, number, True, done, failed)


# --- finishing ---------------------------------------------------------------------------------


def run_fail_missing_coins(run: ScanRun, reason: str) -> int:
    """Record the coins of the run with neither a result nor a failure as failed (a lost batch);
    returns how many."""
    with transaction.atomic():
        locked = ScanRun.objects.select_for_update().get(pk=run.pk)
        seen = set(ScanResult.objects.filter(run=locked).values_list("symbol", flat=True))
        seen |= set(CoinFailure.objects.filter(run=locked).values_list("symbol", flat=True))
        missing = [symbol for symbol in locked.symbols if symbol not in seen]
        CoinFailure.objects.bulk_create(
            [CoinFailure(run=locked, symbol=symbol, error=reason) for symbol in missing],
            ignore_conflicts=True,
        )
        ScanRun.objects.filter(pk=run.pk).update(coins_failed=F("coins_failed") + len(missing))
    return len(missing)


def run_mark_finished(run_id: int, *, signals_recorded: int, run: ScanRun | None = None) -> ScanRun:
    """Mark the run finished (once: a second call changes nothing) and log its summary; returns
    the run as stored. `run`: the run as the caller read it after its batches were written (the
    replay's in-process path), brought up to date here instead of read again when this call is
    the one that finishes it."""
    now = timezone.now()
    # One statement; started_at is filled for a run none of whose batches started.
    finished = (
        ScanRun.objects.filter(pk=run_id)
        .exclude(status=RunStatus.FINISHED)
        .update(
            status=RunStatus.FINISHED,
            finished_at=now,
            signals_recorded=signals_recorded,
            started_at=Coalesce(
                F("started_at"), Value(now), output_field=ScanRun._meta.get_field("started_at")
            ),
        )
    )
    if finished and run is not None and run.pk == run_id:
        run.status, run.finished_at = RunStatus.FINISHED, now
        run.signals_recorded = signals_recorded
        run.started_at = run.started_at or now
    else:
        run = ScanRun.objects.get(pk=run_id)
    logger.info(
        "scan #%d %s finished in %s: %d coins done, %d failed, %d signals",
        run.pk,
        run.scanner,
        run.duration,
        run.coins_done,
        run.coins_failed,
        run.signals_recorded,
    )
    return run


# --- JSON ---------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """`value` as plain JSON: numpy numbers become floats, NaN/inf and Missing become None (with
    Missing as {"missing": reason}), datetimes ISO strings."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Missing):
        return {"missing": value.reason}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    if hasattr(value, "tolist"):  # numpy arrays
        return json_safe(value.tolist())
    return str(value)
