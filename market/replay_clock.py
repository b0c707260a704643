"""The replay clock: the market time a replay stands at, one row advanced by beat.

The clock is created from the candle store the first time it is needed: it starts
REPLAY_WARMUP_HOURS after the earliest spot candle (or at REPLAY_START) and ends where the stored
history ends. Every REPLAY_TICK_SECONDS beat calls `advance_clock`, which moves it by
REPLAY_SPEED x REPLAY_TICK_SECONDS of market time under a row lock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from market.candle_store import PRICE_TIMEFRAME, CandleBounds, annotate_candle_bounds
from market.models import Market, MarketType, ReplayClock
from market.times import show_time, timeframe_duration

logger = logging.getLogger(__name__)

CLOCK_PK = 1  # the clock is a single row


def configured_step() -> timedelta:
    """Market time per tick: REPLAY_SPEED market seconds per real second, every tick."""
    return timedelta(seconds=settings.REPLAY_SPEED * settings.REPLAY_TICK_SECONDS)


def store_span(*, exchange: str | None = None) -> CandleBounds | None:
    """Earliest first open and latest last close of the exchange's spot 1h candles; None if none.

    One query: per market, a probe at each end of its candle index.
    """
    bounds = list(
        annotate_candle_bounds(
            Market.objects.filter(
                exchange=exchange or settings.EXCHANGE, market_type=MarketType.SPOT
            )
        )
        .filter(first_open_time__isnull=False)
        .values_list("first_open_time", "last_open_time")
    )
    if not bounds:
        return None
    firsts, lasts = zip(*bounds, strict=True)
    return CandleBounds(min(firsts), max(lasts) + timeframe_duration(PRICE_TIMEFRAME))


def get_clock() -> ReplayClock | None:
    """The replay clock, if it has been created."""
    return ReplayClock.objects.filter(pk=CLOCK_PK).first()


def ensure_clock() -> ReplayClock | None:
    """The replay clock, created from the store if there is none yet; None for an empty store.

    Start: REPLAY_START if set, else the earliest spot candle + REPLAY_WARMUP_HOURS floored to the
    hour (so indicators have history from the first tick), never after the end. End: the close
    time of the last stored candle.
    """
    clock = get_clock()
    if clock is not None:
        return clock
    span = store_span()
    if span is None:
        return None
    end = span.last_close_time
    start = settings.REPLAY_START or _floor_hour(
        span.first_open_time + timedelta(hours=settings.REPLAY_WARMUP_HOURS)
    )
    if start > end:
        logger.warning(
            "replay start %s is after the end of the stored data (%s); the replay starts finished",
            show_time(start),
            show_time(end),
        )
        start = end
    # Two first ticks may race here: the primary key makes one insert win and the other read it.
    clock, created = ReplayClock.objects.get_or_create(
        pk=CLOCK_PK,
        defaults={
            "market_time": start,
            "start": start,
            "end": end,
            "step": configured_step(),
            "finished": start >= end,
        },
    )
    if created:
        logger.info(
            "replay clock created: %s to %s, %s of market time per tick",
            show_time(clock.start),
            show_time(clock.end),
            clock.step,
        )
    return clock


def reset_clock(*, start: datetime | None = None) -> ReplayClock | None:
    """Drop the clock and create it anew from the store as it is now (start: `start`, else the
    REPLAY_START / warm-up rule); None for an empty store. For after importing more history."""
    with transaction.atomic():
        ReplayClock.objects.filter(pk=CLOCK_PK).delete()
        clock = ensure_clock()
        if clock is not None and start is not None:
            clock.start = clock.market_time = min(start, clock.end)
            clock.finished = clock.market_time >= clock.end
            clock.save(update_fields=["start", "market_time", "finished", "updated_at"])
    return clock


def advance_clock(*, min_interval: timedelta | None = None) -> ReplayClock | None:
    """Move the clock one step forward, capped at its end (then it is finished); None if the
    store is empty or a replay holds the clock (`held_until`: it moves the clock itself, and
    beat's due scans and sweep would repeat its work).

    The read-modify-write runs under a row lock, so concurrent calls step one after another and
    never lose or repeat a step. A call within `min_interval` of real time after the previous
    step (default: half a tick) does nothing: a second beat or a redelivered tick must not move
    the market twice as fast.
    """
    if ensure_clock() is None:
        logger.debug("replay clock not started: the store holds no 1h spot candles")
        return None
    if min_interval is None:
        min_interval = timedelta(seconds=settings.REPLAY_TICK_SECONDS / 2)
    with transaction.atomic():
        clock = ReplayClock.objects.select_for_update().get(pk=CLOCK_PK)
        if clock.held_until is not None and clock.held_until > timezone.now():
            logger.debug("replay tick skipped: a replay drives the clock")
            return None
        if clock.finished:
            return clock
        since_last = timezone.now() - clock.updated_at
        if clock.ticks and since_last < min_interval:
            logger.debug("replay tick skipped: the clock moved %s ago", since_last)
            return clock
        clock.step = configured_step()  # REPLAY_SPEED may have changed since the clock was made
        clock.market_time = min(clock.market_time + clock.step, clock.end)
        clock.ticks += 1
        clock.finished = clock.market_time >= clock.end
        clock.save(update_fields=["market_time", "step", "ticks", "finished", "updated_at"])
    logger.info(
        "replay clock %s (tick %d)%s",
        show_time(clock.market_time),
        clock.ticks,
        ", finished: end of the stored data" if clock.finished else "",
    )
    return clock


def market_now() -> datetime:
    """The current market time: the replay clock's in a replay that has one, else the wall clock."""
    if settings.MARKET_SOURCE == "replay":
        market_time = (
            ReplayClock.objects.filter(pk=CLOCK_PK).values_list("market_time", flat=True).first()
        )
        if market_time is not None:
            return market_time
    return timezone.now()


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
