"""Outcome checks: every signal's result at 1h, 4h, 24h, 7d and 30d (docs/SCORING.md, "Outcomes").

The durable truth is a row per (signal, horizon) with its due time T (ARCHITECTURE.md, "Outcome
checks"); the broker only ever holds the next few minutes of work.

- `checks_create_for(signal)` makes the five rows inside the transaction that records the signal
  (the `signal_recorded` receiver), so a signal never exists without its checks.
- `checks_sweep()` (beat, every minute; and the replay clock's tick) claims the rows falling due
  and sends them to the `outcomes` queue in batches of at most BATCH_SIZE ids that share one due
  time. Live, it claims LOOKAHEAD ahead and sends each batch with `eta` = its due time; a row
  claimed by a sweep whose task never ran (worker killed, Redis restarted empty) is claimed again
  once both its claim and its due time are `claim_stale_after()` (15 min) old. In a replay "now"
  is the replay clock's market time, which is not wall time, so an eta would be meaningless: it
  claims what is due by the clock and sends it at once, and a T beyond the clock is simply not
  due yet.
- `checks_run(ids)` computes each check from the candle store as of its own T and writes the
  result with a conditional update (`status in (PENDING, CLAIMED)` and the attempts it read), so a
  repeat, a duplicate delivery, a late run or a restart changes nothing once a result is written.

Definitions (all reads bounded by T, so a late run equals an on-time one):
- price(T) = close of the last 1h candle whose close time is <= T (`candle_store.price_at`). If
  that candle closed GAP_TOLERANCE or more before T, or no candle closed in (as_of, T], T falls in
  a gap: the check is retried RETRY_DELAY later (market time), up to MAX_ATTEMPTS attempts, then
  marked UNAVAILABLE with the reason. A price is never guessed.
- `return_pct = (price(T) − entry)/entry × 100`, rounded to ROUND_DIGITS decimals so that float
  noise cannot move a result that lies exactly on a threshold; `adjusted_return_pct` is it for
  LONG and its negation for SHORT; `outcome_for` applies WIN_THRESHOLD_PCT / LOSS_THRESHOLD_PCT.
- The window is the 1h candles whose close time lies in (as_of, T]. `mfe_pct` is the best
  direction-adjusted excursion from the entry over the window (LONG: highest high, SHORT: lowest
  low), `mae_pct` the worst (LONG: lowest low, SHORT: highest high); both signed, so a LONG that
  never traded above its entry has a negative mfe_pct.
- `first_barrier`: walking the window in order, the first candle reaching the win level (LONG:
  high >= entry × (1 + WIN/100); SHORT: low <= entry × (1 − WIN/100)) or the loss level (LONG:
  low <= entry × (1 − LOSS/100); SHORT: high >= entry × (1 + LOSS/100)) decides: `win`, `loss`,
  `both_in_one_candle` when one candle reaches both (hourly data cannot tell which came first),
  `none` when no candle reaches either.
- `btc_return_pct` = BTC/USDT's return from price(as_of) to price(T), unadjusted (what the market
  did). `excess_return_pct = adjusted_return_pct − (btc_return_pct for LONG, −btc_return_pct for
  SHORT)`: how much better the signal did than taking the same side on BTC. Without a BTC price
  both are left empty; the check itself does not fail for it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby, islice

import numpy as np
from celery import current_app
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from core import read_cache
from market import candle_store
from market.models import Candle, Market, PriceSeries
from market.replay_clock import get_clock
from market.sources import get_market_source
from market.times import show_time
from market.values import Missing
from tracking.models import (
    HORIZON_DELTAS,
    Barrier,
    CheckStatus,
    Direction,
    Outcome,
    OutcomeCheck,
    Signal,
    TrackerState,
)

logger = logging.getLogger(__name__)

RUN_TASK = "tracking.run_outcome_checks"
BTC = "BTC/USDT"
BATCH_SIZE = 200  # check ids per task: one task per check cannot keep up (Celery ~600 tasks/s)
LOOKAHEAD = timedelta(minutes=5)  # live: claimed this far ahead and held by the worker until eta
CLAIM_CHUNK = 5_000  # rows claimed per transaction of a sweep
GAP_TOLERANCE = timedelta(hours=2)  # a last candle closed this long before T: a gap at T
MAX_ATTEMPTS = 3
RETRY_DELAY = timedelta(hours=1)  # market time between attempts of a check without a price
ROUND_DIGITS = 9
# A raw move this close to a barrier is rounded before it is compared (see `excursions`).
_BARRIER_SLACK = 1e-6
OPEN = (CheckStatus.PENDING, CheckStatus.CLAIMED)
TRACKER_PK = 1


def claim_stale_after() -> timedelta:
    """A claim this old (wall time) whose check is still open was lost: claim it again. Longer
    than LOOKAHEAD plus a busy queue: the setting OUTCOME_CLAIM_STALE_SECONDS (15 min)."""
    return timedelta(seconds=settings.OUTCOME_CLAIM_STALE_SECONDS)


# --- rules ---------------------------------------------------------------------------------------


def outcome_for(direction: str, return_pct: float, *, win: float, loss: float) -> Outcome:
    """LONG: return >= +win WIN, <= −loss LOSS; SHORT: <= −win WIN, >= +loss LOSS; else NEUTRAL."""
    adjusted = adjusted_return(direction, return_pct)
    if adjusted >= win:
        return Outcome.WIN
    if adjusted <= -loss:
        return Outcome.LOSS
    return Outcome.NEUTRAL


def barrier_prices(
    direction: str, entry: float, *, win: float | None = None, loss: float | None = None
) -> tuple[float, float]:
    """(win price, loss price): where a signal's move from `entry` reaches the WIN and the LOSS
    barrier of `outcome_for` and `excursions`. LONG: entry × (1 + win/100) and
    entry × (1 − loss/100); SHORT mirrored. `win`/`loss` default to WIN_THRESHOLD_PCT and
    LOSS_THRESHOLD_PCT."""
    win = float(settings.WIN_THRESHOLD_PCT) if win is None else win
    loss = float(settings.LOSS_THRESHOLD_PCT) if loss is None else loss
    sign = -1.0 if direction == Direction.SHORT else 1.0
    return entry * (1 + sign * win / 100), entry * (1 - sign * loss / 100)


def excursion_price(direction: str, entry: float, move_pct: float) -> float:
    """The price a direction-adjusted move (an MFE or MAE, in percent) from `entry` stands for:
    LONG entry × (1 + move/100), SHORT entry × (1 − move/100)."""
    sign = -1.0 if direction == Direction.SHORT else 1.0
    return entry * (1 + sign * move_pct / 100)


def adjusted_return(direction: str, return_pct: float) -> float:
    """The return in the signal's favour: as it is for LONG, negated for SHORT."""
    return -return_pct if direction == Direction.SHORT else return_pct


def percent_change(start: float, end: float) -> float:
    return round((end - start) / start * 100, ROUND_DIGITS)


@dataclass(frozen=True)
class Excursions:
    mfe_pct: float
    mae_pct: float
    first_barrier: str


def excursions(
    direction: str,
    entry: float,
    highs: Sequence[float] | np.ndarray,
    lows: Sequence[float] | np.ndarray,
    *,
    win: float,
    loss: float,
) -> Excursions:
    """MFE, MAE and the first barrier touched over the window's candles (oldest first).

    Each candle's move is `percent_change` from the entry (rounded to ROUND_DIGITS); in numpy:
    rounding is monotone, so the extremes are the rounded extremes of the raw moves, and only the
    candles whose raw move lies within a hair of a barrier are rounded one by one (Python's
    round, exactly as `percent_change`) to decide which touched it first.
    """
    high_moves = (np.asarray(highs, dtype=np.float64) - entry) / entry * 100
    low_moves = (np.asarray(lows, dtype=np.float64) - entry) / entry * 100
    if direction == Direction.SHORT:
        favourable, adverse = -low_moves, -high_moves
    else:
        favourable, adverse = high_moves, low_moves
    if not len(favourable):
        raise ValueError("excursions over an empty window")
    first = Barrier.NONE
    near = (favourable >= win - _BARRIER_SLACK) | (adverse <= -loss + _BARRIER_SLACK)
    for index in np.flatnonzero(near):
        best = round(float(favourable[index]), ROUND_DIGITS)
        worst = round(float(adverse[index]), ROUND_DIGITS)
        hit_win, hit_loss = best >= win, worst <= -loss
        if hit_win or hit_loss:
            first = (
                Barrier.BOTH if hit_win and hit_loss else Barrier.WIN if hit_win else Barrier.LOSS
            )
            break
    return Excursions(
        mfe_pct=round(float(favourable.max()), ROUND_DIGITS),
        mae_pct=round(float(adverse.min()), ROUND_DIGITS),
        first_barrier=first,
    )


# --- creating and sweeping ----------------------------------------------------------------------


def checks_create_for(signal: Signal) -> list[OutcomeCheck]:
    """The signal's five checks (one per horizon, due at as_of + horizon). Idempotent."""
    checks = [
        OutcomeCheck(
            signal=signal,
            horizon=horizon,
            due_at=signal.as_of + delta,
            run_at=signal.as_of + delta,
        )
        for horizon, delta in HORIZON_DELTAS.items()
    ]
    OutcomeCheck.objects.bulk_create(checks, ignore_conflicts=True)
    read_cache.bump(read_cache.PERFORMANCE)  # new pending checks (bulk_create sends no signal)
    return list(OutcomeCheck.objects.filter(signal=signal))


def tracker_state() -> TrackerState:
    state, _ = TrackerState.objects.get_or_create(pk=TRACKER_PK)
    return state


def tracker_set_enabled(enabled: bool) -> TrackerState:
    """Switch the sweeper on or off. Off, checks wait in their table (nothing is lost) and are
    sent by the first sweep after it is switched on again."""
    state = tracker_state()
    TrackerState.objects.filter(pk=state.pk).update(enabled=enabled)
    state.refresh_from_db()
    return state


def sweep_time() -> tuple[datetime, bool]:
    """(now, in_replay): the replay clock's market time while a replay has a clock, else the
    wall clock."""
    if settings.MARKET_SOURCE == "replay":
        clock = get_clock()
        if clock is not None:
            return clock.market_time, True
    return timezone.now(), False


def checks_sweep(*, now: datetime | None = None, run_here: bool = False) -> int:
    """Claim the open checks falling due and send them; returns how many were sent.
    `now`: the market time of the replay that calls (it stands the clock there), so the clock
    is not read again; None: the clock's time in a replay, else the wall clock (`sweep_time`).
    `run_here`: run them in this process instead (`checks_run`, what the task calls), as the
    replay's in-process path does.

    Claims PENDING rows with run_at <= now (+ LOOKAHEAD live) and CLAIMED rows whose claim is
    stale (claimed and, live, due for longer than CLAIM_STALE_AFTER), under
    `select_for_update(skip_locked=True)` (PostgreSQL; a no-op on SQLite), so two sweepers never
    claim the same row. Live, the rows sharing a run_at go out in tasks of at most BATCH_SIZE ids
    with `eta` = run_at; in a replay all go at once, in tasks of at most BATCH_SIZE ids. A send
    that fails (broker down) gives its rows back to PENDING and raises; the next sweep sends them.
    """
    state = tracker_state()
    if not state.enabled:
        logger.info("outcome sweep skipped: the tracker is disabled")
        return 0
    in_replay = now is not None
    if now is None:
        now, in_replay = sweep_time()
    until = now if in_replay else now + LOOKAHEAD
    sent = 0
    while True:
        claimed = _claim(until, in_replay=in_replay)
        if run_here:
            for batch in _batches([pk for pk, _ in claimed], BATCH_SIZE):
                # In a replay the clock stands at the sweep's time while it runs the checks.
                checks_run(batch, now=now if in_replay else None)
            sent += len(claimed)
        else:
            sent += _send(claimed, eta=not in_replay)
        if len(claimed) < CLAIM_CHUNK:
            break
    TrackerState.objects.filter(pk=state.pk).update(
        last_sweep_at=timezone.now(), last_sweep_market_time=now
    )
    if sent:
        logger.info("outcome sweep at %s: %d checks sent", show_time(now), sent)
    return sent


def _claim(until: datetime, *, in_replay: bool) -> list[tuple[int, datetime]]:
    wall = timezone.now()
    stale_before = wall - claim_stale_after()
    stale = Q(status=CheckStatus.CLAIMED, claimed_at__lt=stale_before)
    if not in_replay:
        # Live, a worker holds a claimed check until its eta: the claim is lost only once the
        # check has been due for the stale time as well (run_at is wall time there).
        stale &= Q(run_at__lt=stale_before)
    due = Q(status=CheckStatus.PENDING) | stale
    with transaction.atomic():
        rows = list(
            OutcomeCheck.objects.select_for_update(skip_locked=True)
            .filter(due, run_at__lte=until)
            .order_by("run_at", "id")
            .values_list("id", "run_at")[:CLAIM_CHUNK]
        )
        if rows:
            OutcomeCheck.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                status=CheckStatus.CLAIMED, claimed_at=wall
            )
    return rows


def _send(claimed: list[tuple[int, datetime]], *, eta: bool) -> int:
    sent: list[int] = []
    try:
        # Live, a batch shares its eta; in a replay everything goes at once, so any rows may share.
        for run_at, rows in groupby(claimed, key=lambda row: row[1] if eta else None):
            ids = [pk for pk, _ in rows]
            for batch in _batches(ids, BATCH_SIZE):
                current_app.send_task(RUN_TASK, args=[batch], eta=run_at if eta else None)
                sent.extend(batch)
    except Exception:
        unsent = [pk for pk, _ in claimed if pk not in set(sent)]
        OutcomeCheck.objects.filter(pk__in=unsent, status=CheckStatus.CLAIMED).update(
            status=CheckStatus.PENDING, claimed_at=None
        )
        logger.exception("outcome sweep: sending failed; %d checks back to pending", len(unsent))
        raise
    return len(sent)


def _batches(items: list[int], size: int) -> Iterable[list[int]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# --- running ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    exit_price: float
    return_pct: float
    adjusted_return_pct: float
    outcome: str
    mfe_pct: float
    mae_pct: float
    first_barrier: str
    btc_return_pct: float | None
    excess_return_pct: float | None


class _Prices:
    """The candle store as a batch of checks needs it: 1h candles (high, low, close) read in a
    few range queries for all the batch's coins and BTC, then each check's window and prices are
    sliced out of them in numpy. The checks of a batch share T and mostly share as_of, so one
    range (the earliest as_of − GAP_TOLERANCE − 1h to the latest T) usually serves them all.

    Times are integer microseconds since the epoch; a market's loaded segments are
    (after, until, open times, highs, lows, closes): every 1h candle with after < open <= until.
    """

    def __init__(self) -> None:
        self.markets: dict[str, Market | None] = {}
        self.prices: dict[tuple[str, datetime], float | Missing] = {}
        self.segments: dict[int, list[tuple[int, int, np.ndarray, ...]]] = defaultdict(list)

    def load_markets(self, symbols: Iterable[str]) -> None:
        wanted = set(symbols) - set(self.markets)
        if not wanted:
            return
        found = candle_store.markets_by_symbol(wanted, exchange=settings.EXCHANGE)
        for symbol in wanted:
            self.markets[symbol] = found.get(symbol)

    def market(self, symbol: str) -> Market | None:
        if symbol not in self.markets:
            self.load_markets([symbol])
        return self.markets[symbol]

    def load(self, checks: Sequence[OutcomeCheck]) -> None:
        """Read the candles the checks need (their coin's and BTC's, as_of − 3 h to T) that are
        not loaded yet: one query per merged time range (and per _BULK_CHUNK markets)."""
        self.load_markets({BTC} | {check.signal.symbol for check in checks})
        needed: list[tuple[int, int, int]] = []
        for check in checks:
            after = _micros(check.signal.as_of) - _PRICE_REACH
            until = _micros(check.due_at) - _HOUR
            for symbol in (check.signal.symbol, BTC):
                market = self.markets[symbol]
                if market is not None and self._segment(market.pk, after, until) is None:
                    needed.append((after, until, market.pk))
        merged: list[tuple[int, int, set[int]]] = []
        for after, until, market_id in sorted(needed):
            if merged and after <= merged[-1][1] + _MERGE_SLACK:
                last_after, last_until, ids = merged[-1]
                ids.add(market_id)
                merged[-1] = (last_after, max(last_until, until), ids)
            else:
                merged.append((after, until, {market_id}))
        for after, until, ids in merged:
            self._read(after, until, sorted(ids))

    def _read(self, after: int, until: int, market_ids: list[int]) -> None:
        for chunk in candle_store.in_chunks(market_ids):
            rows = Candle.objects.filter(
                market_id__in=chunk,
                timeframe=candle_store.PRICE_TIMEFRAME,
                series=PriceSeries.TRADES,
                open_time__gt=_from_micros(after),
                open_time__lte=_from_micros(until),
            ).values_list("market_id", candle_store.EpochMs("open_time"), "high", "low", "close")
            table = candle_store.numeric_table(rows, width=5)
            # Sorted here, not by the database: by market, then open time, a slice per market.
            table = table[np.lexsort((table[:, 1], table[:, 0]))]
            starts = np.searchsorted(table[:, 0], chunk, side="left")
            ends = np.searchsorted(table[:, 0], chunk, side="right")
            for market_id, start, end in zip(chunk, starts, ends, strict=True):
                part = table[start:end]
                opens = part[:, 1].astype(np.int64) * 1000
                self.segments[market_id].append(
                    (after, until, opens, part[:, 2], part[:, 3], part[:, 4])
                )

    def _segment(self, market_id: int, after: int, until: int) -> tuple | None:
        for segment in self.segments.get(market_id, ()):
            if segment[0] <= after and until <= segment[1]:
                return segment
        return None

    def price(self, symbol: str, moment: datetime) -> float | Missing:
        """`candle_store.price_at(market, moment, max_age=GAP_TOLERANCE)`, from the loaded
        candles when they hold the answer; the store itself is asked only when they do not (no
        candle within GAP_TOLERANCE: a gap, whose reason names the last candle before it)."""
        key = (symbol, moment)
        if key not in self.prices:
            market = self.market(symbol)
            if market is None:
                self.prices[key] = Missing(f"no {settings.EXCHANGE} spot market {symbol}")
            else:
                self.prices[key] = self._loaded_price(market.pk, _micros(moment))
                if self.prices[key] is None:
                    self.prices[key] = candle_store.price_at(market, moment, max_age=GAP_TOLERANCE)
        return self.prices[key]

    def _loaded_price(self, market_id: int, moment: int) -> float | None:
        last_open = moment - _HOUR  # the last candle closed by the moment opened at or before
        segment = self._segment(market_id, moment - _PRICE_REACH, last_open)
        if segment is None:
            return None
        opens, closes = segment[2], segment[5]
        index = int(np.searchsorted(opens, last_open, side="right")) - 1
        # Closed GAP_TOLERANCE or more before the moment (or none at all): a gap; the store
        # writes its reason.
        if index < 0 or opens[index] + _HOUR <= moment - _GAP:
            return None
        return float(closes[index])

    def window(self, market: Market, check: OutcomeCheck) -> tuple[np.ndarray, np.ndarray]:
        """(highs, lows) of the market's 1h candles whose close lies in (as_of, T], oldest
        first."""
        after = _micros(check.signal.as_of) - _HOUR  # open > as_of − 1 h: closed after as_of
        until = _micros(check.due_at) - _HOUR
        segment = self._segment(market.pk, after, until)
        if segment is None:
            self.load([check])
            segment = self._segment(market.pk, after, until)
        opens = segment[2]
        start = int(np.searchsorted(opens, after, side="right"))
        end = int(np.searchsorted(opens, until, side="right"))
        return segment[3][start:end], segment[4][start:end]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_HOUR = timedelta(hours=1) // _MICRO
_GAP = GAP_TOLERANCE // _MICRO
# Candles from this long before a moment answer price(moment): the last close within the tolerance.
_PRICE_REACH = _GAP + _HOUR
_MERGE_SLACK = timedelta(days=2) // _MICRO  # time ranges this close are read as one


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def check_compute(check: OutcomeCheck, prices: _Prices | None = None) -> CheckResult | Missing:
    """The check's result from the candle store as of its own T (never later data)."""
    if prices is None:
        prices = _Prices()
        prices.load([check])
    signal = check.signal
    win, loss = float(settings.WIN_THRESHOLD_PCT), float(settings.LOSS_THRESHOLD_PCT)
    market = prices.market(signal.symbol)
    if market is None:
        return Missing(f"no {settings.EXCHANGE} spot market {signal.symbol} (delisted?)")
    exit_price = prices.price(signal.symbol, check.due_at)
    if isinstance(exit_price, Missing):
        return exit_price
    highs, lows = prices.window(market, check)
    if not len(highs):
        return Missing(
            f"no 1h candle of {signal.symbol} closed between the signal "
            f"({show_time(signal.as_of)}) and {show_time(check.due_at)}"
        )
    return_pct = percent_change(signal.entry_price, exit_price)
    adjusted = adjusted_return(signal.direction, return_pct)
    moves = excursions(signal.direction, signal.entry_price, highs, lows, win=win, loss=loss)
    btc_return = excess = None
    btc_start, btc_end = prices.price(BTC, signal.as_of), prices.price(BTC, check.due_at)
    if not isinstance(btc_start, Missing) and not isinstance(btc_end, Missing):
        btc_return = percent_change(btc_start, btc_end)
        excess = round(adjusted - adjusted_return(signal.direction, btc_return), ROUND_DIGITS)
    return CheckResult(
        exit_price=float(exit_price),
        return_pct=return_pct,
        adjusted_return_pct=adjusted,
        outcome=outcome_for(signal.direction, return_pct, win=win, loss=loss),
        mfe_pct=moves.mfe_pct,
        mae_pct=moves.mae_pct,
        first_barrier=moves.first_barrier,
        btc_return_pct=btc_return,
        excess_return_pct=excess,
    )


def checks_run(check_ids: Sequence[int], *, now: datetime | None = None) -> dict[str, int]:
    """Compute and write the open checks among `check_ids`; returns counts by what happened.
    `now`: the replay clock's market time, when the caller (a replay's sweep run here) knows
    it; None: read it (`sweep_time`).

    A check whose T is still ahead of now (market time) goes back to PENDING, unrun. Candles
    missing for a check are fetched once per batch through the market-data source (which writes
    them through to the store) before it gives up on them for this attempt. The batch's candles
    are read in one range query (`_Prices.load`) and its results written in one transaction.
    """
    if now is None:
        now, _ = sweep_time()
    checks = list(
        OutcomeCheck.objects.filter(pk__in=list(check_ids), status__in=OPEN)
        .select_related("signal")
        .only(*_RUN_FIELDS)
        .order_by("due_at", "id")
    )
    counts = {"done": 0, "retry": 0, "unavailable": 0, "not_due": 0, "skipped": 0}
    counts["skipped"] = len(set(check_ids)) - len(checks)
    early = [check.pk for check in checks if check.due_at > now]
    if early:
        OutcomeCheck.objects.filter(pk__in=early, status=CheckStatus.CLAIMED).update(
            status=CheckStatus.PENDING, claimed_at=None
        )
        counts["not_due"] = len(early)
        checks = [check for check in checks if check.due_at <= now]
    prices = _Prices()
    prices.load(checks)
    results = {check.pk: check_compute(check, prices) for check in checks}
    missing = [check for check in checks if isinstance(results[check.pk], Missing)]
    if missing and _fetch_missing(missing):
        prices = _Prices()
        prices.load(missing)
        for check in missing:
            results[check.pk] = check_compute(check, prices)
    for outcome, n in _write_batch(checks, results, now=now).items():
        counts[outcome] += n
    return counts


_RUN_FIELDS = (
    "id",
    "signal_id",
    "due_at",
    "run_at",
    "status",
    "attempts",
    "signal__id",
    "signal__symbol",
    "signal__direction",
    "signal__as_of",
    "signal__entry_price",
)


def _fetch_missing(checks: list[OutcomeCheck]) -> bool:
    """Ask the market-data source for the candles the checks lack (plus BTC's); True when it was
    asked. The replay source reads the same store, so there is nothing to fetch in a replay."""
    if settings.MARKET_SOURCE == "replay":
        return False
    by_time: dict[datetime, set[str]] = defaultdict(set)
    hours: dict[datetime, int] = defaultdict(int)
    for check in checks:
        by_time[check.due_at].update({check.signal.symbol, BTC})
        span = check.due_at - check.signal.as_of
        hours[check.due_at] = max(hours[check.due_at], int(span / timedelta(hours=1)) + 2)
    source = get_market_source()
    for due_at, symbols in by_time.items():
        try:
            source.candles(sorted(symbols), timeframe="1h", as_of=due_at, limit=hours[due_at])
        except Exception:
            logger.exception("outcome checks: fetching candles as of %s failed", show_time(due_at))
    return True


def _write_batch(
    checks: Sequence[OutcomeCheck], results: dict[int, CheckResult | Missing], *, now: datetime
) -> dict[str, int]:
    """Write the batch's results in one transaction, each under the conditional update (status
    open and the attempts it read); counts by what happened. On PostgreSQL one
    `UPDATE … FROM (VALUES …)` per kind of result; elsewhere `_write` per check."""
    counts: dict[str, int] = defaultdict(int)
    alias = router.db_for_write(OutcomeCheck)
    with transaction.atomic(using=alias):
        if connections[alias].vendor != "postgresql":
            for check in checks:
                counts[_write(check, results[check.pk], now=now)] += 1
            if counts["done"] or counts["unavailable"]:
                read_cache.bump(read_cache.PERFORMANCE)
            return counts
        done, unavailable, retry = [], [], []
        for check in checks:
            result = results[check.pk]
            if isinstance(result, CheckResult):
                done.append(check)
            elif check.attempts + 1 >= MAX_ATTEMPTS:
                unavailable.append(check)
            else:
                retry.append(check)
        wall = timezone.now()
        counts["done"] = _update_many(
            alias,
            done,
            [(check.pk, check.attempts, *_result_values(results[check.pk])) for check in done],
            _DONE_COLUMNS,
            "status = %s, attempts = t.attempts + 1, checked_at = %s, unavailable_reason = '', "
            + ", ".join(f"{name} = v.{name}" for name, _ in _DONE_COLUMNS),
            [CheckStatus.DONE, wall],
        )
        written = _update_many(
            alias,
            unavailable,
            [(check.pk, check.attempts, results[check.pk].reason) for check in unavailable],
            [("unavailable_reason", "text")],
            "status = %s, attempts = t.attempts + 1, checked_at = %s, "
            "unavailable_reason = v.unavailable_reason",
            [CheckStatus.UNAVAILABLE, wall],
            returning=True,
        )
        for check in unavailable:
            if check.pk in written:
                logger.warning(
                    "outcome check #%d unavailable: %s", check.pk, results[check.pk].reason
                )
        counts["unavailable"] = len(written)
        counts["retry"] = _update_many(
            alias,
            retry,
            [
                (
                    check.pk,
                    check.attempts,
                    results[check.pk].reason,
                    max(now, check.due_at) + RETRY_DELAY,
                )
                for check in retry
            ],
            [("unavailable_reason", "text"), ("run_at", "timestamp with time zone")],
            "status = %s, attempts = t.attempts + 1, claimed_at = NULL, run_at = v.run_at, "
            "unavailable_reason = v.unavailable_reason",
            [CheckStatus.PENDING],
        )
    counts["skipped"] = len(checks) - counts["done"] - counts["unavailable"] - counts["retry"]
    if counts["done"] or counts["unavailable"]:
        # After the batch's transaction (the second increment is then immediate): a retry
        # changes no answer (the check stays pending), a result or a final failure does.
        read_cache.bump(read_cache.PERFORMANCE)
    return counts


_DONE_COLUMNS = [
    ("exit_price", "double precision"),
    ("return_pct", "double precision"),
    ("adjusted_return_pct", "double precision"),
    ("outcome", "text"),
    ("mfe_pct", "double precision"),
    ("mae_pct", "double precision"),
    ("first_barrier", "text"),
    ("btc_return_pct", "double precision"),
    ("excess_return_pct", "double precision"),
]


def _result_values(result: CheckResult) -> tuple:
    return tuple(getattr(result, name) for name, _ in _DONE_COLUMNS)


def _update_many(
    alias: str,
    checks: Sequence[OutcomeCheck],
    rows: list[tuple],
    columns: list[tuple[str, str]],
    assignments: str,
    params: list,
    *,
    returning: bool = False,
) -> int | set[int]:
    """One PostgreSQL `UPDATE … FROM (VALUES (id, attempts read, *columns), …)` of the rows
    still open with the attempts read; the number written (the ids, with returning)."""
    if not rows:
        return set() if returning else 0
    table = OutcomeCheck._meta.db_table
    casts = ["bigint", "integer", *(kind for _, kind in columns)]
    row_sql = "(" + ", ".join(f"%s::{kind}" for kind in casts) + ")"
    names = ", ".join(["id", "attempts", *(name for name, _ in columns)])
    values = ", ".join([row_sql] * len(rows))
    condition = "t.id = v.id AND t.attempts = v.attempts AND t.status IN (%s, %s)"
    sql = (
        f"UPDATE {table} AS t SET {assignments} FROM (VALUES {values}) AS v({names}) "  # noqa: S608 - constant identifiers; values are params
        f"WHERE {condition}" + (" RETURNING t.id" if returning else "")
    )
    flat = [value for row in rows for value in row]
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [*params, *flat, *OPEN])
        if returning:
            return {pk for (pk,) in cursor.fetchall()}
        return cursor.rowcount


def _write(check: OutcomeCheck, result: CheckResult | Missing, *, now: datetime) -> str:
    """Write one check's result under the conditional update; what happened ("skipped" when
    another run got there first: the row count is not 1)."""
    still_open = OutcomeCheck.objects.filter(pk=check.pk, status__in=OPEN, attempts=check.attempts)
    wall = timezone.now()
    if isinstance(result, CheckResult):
        written = still_open.update(
            status=CheckStatus.DONE,
            attempts=F("attempts") + 1,
            checked_at=wall,
            unavailable_reason="",
            exit_price=result.exit_price,
            return_pct=result.return_pct,
            adjusted_return_pct=result.adjusted_return_pct,
            outcome=result.outcome,
            mfe_pct=result.mfe_pct,
            mae_pct=result.mae_pct,
            first_barrier=result.first_barrier,
            btc_return_pct=result.btc_return_pct,
            excess_return_pct=result.excess_return_pct,
        )
        return "done" if written == 1 else "skipped"
    attempt = check.attempts + 1
    if attempt >= MAX_ATTEMPTS:
        written = still_open.update(
            status=CheckStatus.UNAVAILABLE,
            attempts=attempt,
            checked_at=wall,
            unavailable_reason=result.reason,
        )
        if written == 1:
            logger.warning("outcome check #%d unavailable: %s", check.pk, result.reason)
        return "unavailable" if written == 1 else "skipped"
    written = still_open.update(
        status=CheckStatus.PENDING,
        attempts=attempt,
        claimed_at=None,
        run_at=max(now, check.due_at) + RETRY_DELAY,
        unavailable_reason=result.reason,
    )
    return "retry" if written == 1 else "skipped"


# --- state ----------------------------------------------------------------------------------------


def tracker_stats() -> dict:
    """Pending (open: PENDING or CLAIMED), due, overdue, done, unavailable by reason, and the
    last sweep."""
    now, in_replay = sweep_time()
    state = tracker_state()
    open_checks = OutcomeCheck.objects.filter(status__in=OPEN)
    return {
        "enabled": state.enabled,
        "replay": in_replay,
        "now": now,
        "pending": open_checks.count(),
        "due": open_checks.filter(run_at__lte=now).count(),
        "overdue": open_checks.filter(run_at__lt=overdue_before(now)).count(),
        "done": OutcomeCheck.objects.filter(status=CheckStatus.DONE).count(),
        "unavailable": {
            row["unavailable_reason"]: row["n"]
            for row in OutcomeCheck.objects.filter(status=CheckStatus.UNAVAILABLE)
            .values("unavailable_reason")
            .annotate(n=Count("id"))
            .order_by("-n")
        },
        "last_sweep_at": state.last_sweep_at,
        "last_sweep_market_time": state.last_sweep_market_time,
    }


def overdue_before(now: datetime) -> datetime:
    """A check still open whose next attempt (run_at) is before this is overdue: a sweep should
    have sent it and a worker run it by now (sweeper stopped, tracker disabled, workers down)."""
    return now - claim_stale_after()
