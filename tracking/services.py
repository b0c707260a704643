"""Recording signals after a scan run, and finishing the run.

A signal is recorded when a scanner's own rule fired for a coin in the run (smart money, MSS, RSI,
social; whale and volume are components only), and when a coin's final row of an hour entered
TIER_1/TIER_2 of the unified ranking (scanner `unified`; decided once the hour's last run has
ranked, `scoring.ranking`). At most one per (scanner, symbol, direction) within
SIGNAL_COOLDOWN_HOURS of market time: the check and the insert run under a row lock on the key's
`SignalKey` row, so two finish_scans running at once cannot both insert. The entry price is the
price at the signal's as_of (`candle_store.entry_price_at`); a coin without one, or whose last 1h
candle closed more than 1 h before as_of, gets no signal (logged as a warning).

A signal tracked by hand (`manual_signal_track`) is its user's: scanner `manual`, an `owner`, a
cooldown of its own per owner (it never takes a scanner's slot), and an entry price that is the
market's or close to it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from core import read_cache
from core.permissions import VIEW_ALL_SIGNALS, sees_everyones
from core.row_lock import lock_row
from market import candle_store
from market.times import ms_to_datetime
from market.values import Missing
from scanners.models import RUN_SCANNERS, RunStatus, ScanResult, ScanRun
from scanners.scanning import run_fail_missing_coins, run_mark_finished
from scoring.models import UnifiedRanking
from scoring.ranking import (
    RankingUpdate,
    ranking_mark_decided,
    ranking_update_for_run,
    ranking_update_for_runs,
)
from tracking.models import MANUAL, UNIFIED, Signal, SignalKey
from tracking.signals import signal_recorded

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignalCandidate:
    scanner: str
    symbol: str
    direction: str
    as_of: datetime
    completeness: float
    scanner_score: float | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    ranking: UnifiedRanking | None = None


def cooldown() -> timedelta:
    return timedelta(hours=float(settings.SIGNAL_COOLDOWN_HOURS))


# What a scanner's signal candidate reads of its result.
_FIRED_COLUMNS = ("scanner", "symbol", "direction", "as_of", "completeness", "component", "scores",
                  "reasons")  # fmt: skip


def fired_results(runs: Sequence[ScanRun]) -> dict[int, list[tuple[Any, ...]]]:
    """Per run, its results whose scanner's own rule fired (`_FIRED_COLUMNS` each, by symbol
    and scanner): what its signal candidates read, for several runs in one statement. Read as
    values (not `inputs`, ~1.3 KB of JSON a row that no candidate reads)."""
    by_run: dict[int, list[tuple[Any, ...]]] = {run.pk: [] for run in runs}
    fired = (
        ScanResult.objects.filter(
            run__in=runs, scanner__in=RUN_SCANNERS, direction__in=["LONG", "SHORT"]
        )
        .order_by("symbol", "scanner")
        .values_list("run_id", *_FIRED_COLUMNS)
    )
    for run_id, *columns in fired:
        by_run[run_id].append(tuple(columns))
    return by_run


def signal_candidates(
    run: ScanRun, update: RankingUpdate, *, fired: Sequence[tuple[Any, ...]] | None = None
) -> list[SignalCandidate]:
    """What the run says: scanner rules that fired, then the coins whose final row of an hour
    entered TIER_1/TIER_2 (`update.due`: of this run's hour once no other run of it is still to
    rank, and of earlier hours whose last run never ranked). `fired`: the run's
    `fired_results`, when the caller read them (else read here)."""
    rankings = {row.symbol: row for row in update.rows}
    candidates = []
    if fired is None:
        fired = fired_results([run])[run.pk]
    for scanner, symbol, direction, as_of, completeness, component, scores, reasons in fired:
        value = component.get(direction)
        candidates.append(
            SignalCandidate(
                scanner=scanner,
                symbol=symbol,
                direction=direction,
                as_of=as_of,
                completeness=completeness,
                scanner_score=float(value) if value is not None else None,
                scores=scores,
                reasons=list(reasons),
                ranking=rankings.get(symbol),
            )
        )
    for ranking in update.due:
        if ranking.enters_signal_tier:
            candidates.append(
                SignalCandidate(
                    scanner=UNIFIED,
                    symbol=ranking.symbol,
                    direction=ranking.direction,
                    as_of=ranking.as_of,
                    completeness=ranking.completeness,
                    scanner_score=ranking.unified_score,
                    scores={"LONG": ranking.score_long, "SHORT": ranking.score_short},
                    reasons=list(ranking.reasons),
                    ranking=ranking,
                )
            )
    return candidates


def signals_record_for_run(
    run: ScanRun, update: RankingUpdate, *, fired: Sequence[tuple[Any, ...]] | None = None
) -> list[Signal]:
    """Record the run's signals (cooldown and entry price permitting); returns the new ones.
    The due unified rows are marked decided afterwards, recorded or refused. `fired`: the run's
    `fired_results`, when the caller read them.

    Idempotent: run again, every candidate finds its own signal inside the cooldown.
    """
    candidates = signal_candidates(run, update, fired=fired)
    if not candidates:
        signals_refresh_unified_context(update)
        return []
    markets = candle_store.markets_by_symbol(
        {candidate.symbol for candidate in candidates}, exchange=settings.EXCHANGE
    )
    prices: dict[tuple[str, datetime], float | Missing] = {}
    recorded = []
    for candidate in candidates:
        key = (candidate.symbol, candidate.as_of)
        if key not in prices:
            market = markets.get(candidate.symbol)
            prices[key] = (
                Missing(f"no {settings.EXCHANGE} spot market {candidate.symbol}")
                if market is None
                else candle_store.entry_price_at(market, candidate.as_of)
            )
        price = prices[key]
        if isinstance(price, Missing):
            logger.warning(
                "no %s %s signal for %s: no entry price (%s)",
                candidate.scanner,
                candidate.direction,
                candidate.symbol,
                price.reason,
            )
            continue
        # A unified signal belongs to the run of its row's latest result, whichever run decided.
        signal_run = run if candidate.scanner != UNIFIED else candidate.ranking.scan_run
        signal = signal_record(candidate, entry_price=price, run=signal_run)
        if signal is not None:
            recorded.append(signal)
    ranking_mark_decided(update.due)
    signals_refresh_unified_context(update)
    return recorded


def signals_refresh_unified_context(update: RankingUpdate) -> int:
    """Once the run's hour is final, give the hour's scanner-rule signals the unified score, tier
    and confidence of their coin's final row (a run that finished earlier recorded them with the
    row as it stood then), so they do not depend on the order the hour's runs finished in."""
    if not update.hour_final or update.hour is None:
        return 0
    in_hour = list(
        Signal.objects.filter(as_of__gte=update.hour, as_of__lt=update.hour + timedelta(hours=1))
        .exclude(scanner=UNIFIED)
        .only("pk", "symbol", "unified_score", "tier", "confidence")
    )
    if not in_hour:  # most hours: no scanner rule fired, no row to read
        return 0
    hour_rows = {
        symbol: context
        for symbol, *context in UnifiedRanking.objects.filter(hour=update.hour).values_list(
            "symbol", "unified_score", "tier", "confidence"
        )
    }
    changed = 0
    for signal in in_hour:
        context = tuple(hour_rows.get(signal.symbol, (None, "", None)))
        if (signal.unified_score, signal.tier, signal.confidence) != context:
            Signal.objects.filter(pk=signal.pk).update(
                unified_score=context[0], tier=context[1], confidence=context[2]
            )
            changed += 1
    if changed:
        read_cache.bump(read_cache.PERFORMANCE)  # the tier of signals in the statistics moved
    return changed


def signal_record(
    candidate: SignalCandidate,
    *,
    entry_price: float,
    run: ScanRun | None = None,
    owner: AbstractBaseUser | None = None,
) -> Signal | None:
    """Insert the signal unless one of the same (scanner, symbol, direction) lies within the
    cooldown of its as_of; None when the cooldown holds. Sends `signal_recorded` inside the
    transaction.

    A manual signal (scanner `manual`) needs its `owner`, and its cooldown is the owner's: only
    their own manual signals of the same symbol and direction hold it back, under a lock on the
    owner's row. A scanner's signal has no owner."""
    window = cooldown()
    key = {
        "scanner": candidate.scanner,
        "symbol": candidate.symbol,
        "direction": candidate.direction,
    }
    manual = candidate.scanner == MANUAL
    if manual != (owner is not None):
        raise ValueError("a manual signal needs its owner, and only a manual signal has one")
    with transaction.atomic():
        if manual:
            # Serialises one user's manual signals; nobody else's (no scanner's key row).
            type(owner).objects.select_for_update().filter(pk=owner.pk).first()
        else:
            lock_row(SignalKey, **key)  # serialises check + insert per key
        recent = Signal.objects.filter(
            **key,
            owner=owner,
            as_of__gt=candidate.as_of - window,
            as_of__lt=candidate.as_of + window,
        ).exists()
        if recent:
            logger.debug("signal %s suppressed by the cooldown", key)
            return None
        ranking = candidate.ranking
        signal = Signal.objects.create(
            **key,
            as_of=candidate.as_of,
            entry_price=entry_price,
            scanner_score=candidate.scanner_score,
            scores=candidate.scores,
            unified_score=ranking.unified_score if ranking else None,
            tier=ranking.tier if ranking else "",
            confidence=ranking.confidence if ranking else None,
            completeness=candidate.completeness,
            reasons=candidate.reasons,
            scan_run=run,
            owner=owner,
        )
        signal_recorded.send(sender=Signal, instance=signal)
    logger.info(
        "signal: %s %s %s at %g (%s)",
        signal.scanner,
        signal.direction,
        signal.symbol,
        signal.entry_price,
        f"{signal.tier} {signal.unified_score:.1f}" if signal.unified_score is not None else "-",
    )
    return signal


@dataclass(frozen=True)
class MarketHour:
    """The last closed 1h candle of a market as of a time: its close is the market price."""

    close: float
    low: float
    high: float
    closed_at: datetime


def market_hour(symbol: str, as_of: datetime) -> MarketHour | Missing:
    """The market's last 1h candle closed at or before as_of, by the rules of a signal's entry
    price, `candle_store.entry_price_at` (Missing when there is none, or it is over 1 h old)."""
    market = candle_store.markets_by_symbol([symbol], exchange=settings.EXCHANGE).get(symbol)
    if market is None:
        return Missing(f"no {settings.EXCHANGE} spot market {symbol}")
    price = candle_store.entry_price_at(market, as_of)
    if isinstance(price, Missing):
        return price
    last = candle_store.closed_candles(market, as_of=as_of, limit=1)
    return MarketHour(
        close=float(last.close[-1]),
        low=float(last.low[-1]),
        high=float(last.high[-1]),
        closed_at=ms_to_datetime(last.close_time[-1]),
    )


def entry_price_check(price: float | None, hour: MarketHour | Missing, symbol: str) -> float:
    """The entry price of a manual signal: the market price when none is given; a given one must
    be finite, above 0 and within that hour's low–high widened by MANUAL_PRICE_TOLERANCE_PCT.
    A refusal is a ValidationError on `price` that says why."""
    if price is not None and (not math.isfinite(price) or price <= 0):
        raise ValidationError({"price": ["must be a finite number greater than 0"]})
    if isinstance(hour, Missing):
        what = "no market price to take" if price is None else "cannot be checked against it"
        raise ValidationError({"price": [f"{what}: {hour.reason}"]})
    if price is None:
        return hour.close
    tolerance = float(settings.MANUAL_PRICE_TOLERANCE_PCT) / 100
    low, high = hour.low * (1 - tolerance), hour.high * (1 + tolerance)
    if not low <= price <= high:
        raise ValidationError(
            {
                "price": [
                    f"{price:g} is far from the market: {symbol} traded {hour.low:g}–"
                    f"{hour.high:g} in the hour to {hour.closed_at:%Y-%m-%d %H:%M} UTC; an entry "
                    f"price must lie within {low:g}–{high:g} (that range widened by "
                    f"{settings.MANUAL_PRICE_TOLERANCE_PCT:g} %, MANUAL_PRICE_TOLERANCE_PCT)"
                ]
            }
        )
    return price


def manual_signal_track(
    owner: AbstractBaseUser,
    *,
    symbol: str,
    direction: str,
    as_of: datetime,
    price: float | None = None,
    score: float | None = None,
    tier: str | None = None,
) -> Signal | None:
    """Record a signal tracked by hand: scanner `manual`, owned by `owner`, entry price checked
    by `entry_price_check` (ValidationError naming `price` when refused). None when the owner's
    own cooldown holds (another manual signal of theirs, same symbol and direction). Its outcome
    checks are made like every signal's; it gets no alert (it has no scanner scores)."""
    entry = entry_price_check(price, market_hour(symbol, as_of), symbol)
    candidate = SignalCandidate(
        scanner=MANUAL,
        symbol=symbol,
        direction=direction,
        as_of=as_of,
        completeness=1.0,
        scanner_score=score,
        reasons=[f"tracked through the API by {owner.get_username()}"],
        # signal_record takes the tier from the ranking row: an unsaved one carries it.
        ranking=UnifiedRanking(tier=tier, unified_score=None, confidence=None) if tier else None,
    )
    return signal_record(candidate, entry_price=entry, owner=owner)


def scan_finish(run_id: int, *, give_up: bool = False) -> ScanRun | None:
    """The chord body: update the ranking for the run's coins, record signals, mark it finished.

    Idempotent: a finished run is returned as it is. `give_up`: batches are missing (lost), so
    their coins are recorded as failed and the run finishes with what it has.
    """
    run = ScanRun.objects.filter(pk=run_id).first()
    if run is None:
        logger.warning("finish_scan: scan #%s does not exist", run_id)
        return None
    if run.status in (RunStatus.FINISHED, RunStatus.FAILED):
        return run
    if give_up:
        lost = run_fail_missing_coins(run, "the batch of this coin was lost (never completed)")
        logger.warning("scan #%d: %d coins of lost batches recorded as failed", run.pk, lost)
    update = ranking_update_for_run(run)
    signals = signals_record_for_run(run, update)
    total = Signal.objects.filter(scan_run=run).count()
    logger.debug("scan #%d recorded %d new signals", run.pk, len(signals))
    return run_mark_finished(run.pk, signals_recorded=total)


def signals_visible_to(
    user: AbstractBaseUser | AnonymousUser | None, signals: QuerySet[Signal] | None = None
) -> QuerySet[Signal]:
    """The signals `user` may see (of `signals`, default all, newest first): every scanner's and
    the ranking's, and manual ones only their own, unless they hold VIEW_ALL_SIGNALS
    (tracking.view_signal). The API and the dashboard both read through this, so another user's
    manual signal is a 404 in both."""
    signals = Signal.objects.order_by("-as_of", "-id") if signals is None else signals
    if sees_everyones(user, VIEW_ALL_SIGNALS):
        return signals
    owner_id = user.pk if user is not None and user.is_authenticated else None
    return signals.filter(~Q(scanner=MANUAL) | Q(owner_id=owner_id))


def scan_finish_hour(run_ids: Sequence[int]) -> list[ScanRun]:
    """The final steps of several runs of one hour whose batches are all written, in the order
    given: what `scan_finish` of each in turn stores, with the hour's ranking computed once
    (`ranking_update_for_runs`) instead of once per run. The replay's in-process path finishes
    an hour's scans so.

    Each run then records its signals and is marked finished in turn, as if it had ranked on
    its own: the unified signals, due once the hour is final, come with the last run (they
    belong to the run of their row's latest result whichever run decides them), and the
    earlier runs' scanner signals get the hour's final rows at once (`scan_finish` gives them
    those too, by `signals_refresh_unified_context`, when the hour's last run ranks). A run
    that is missing or already over is skipped, as `scan_finish` skips it.
    """
    # Each run read with the count of the signals it has already (a resumed hour's).
    had = (
        Signal.objects.filter(scan_run=OuterRef("pk"))
        .order_by()
        .values("scan_run")
        .annotate(total=Count("pk"))
        .values("total")
    )
    runs = [
        run
        for run in ScanRun.objects.filter(pk__in=list(run_ids)).annotate(
            signals_had=Coalesce(Subquery(had), 0)
        )
        if run.status not in (RunStatus.FINISHED, RunStatus.FAILED)
    ]
    if not runs:
        return []
    runs.sort(key=lambda run: list(run_ids).index(run.pk))
    update = ranking_update_for_runs(runs)
    fired = fired_results(runs)
    # Each run's count of signals as `scan_finish` takes it when it marks the run finished: the
    # signals it had, and those recorded for it by this run's and the earlier runs' steps (a
    # unified signal belongs to the run of its row's latest result, whichever step records it).
    totals = {run.pk: run.signals_had for run in runs}
    finished = []
    for number, run in enumerate(runs):
        last = number == len(runs) - 1
        each = RankingUpdate(
            rows=update.rows,
            due=update.due if last else [],
            hour=update.hour,
            hour_final=update.hour_final and last,
        )
        for signal in signals_record_for_run(run, each, fired=fired[run.pk]):
            if signal.scan_run_id in totals:
                totals[signal.scan_run_id] += 1
        finished.append(run_mark_finished(run.pk, signals_recorded=totals[run.pk], run=run))
    return finished
