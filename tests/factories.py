"""factory_boy factories for the candle store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory

from market.models import Candle, FundingRate, Market, MarketType

START = datetime(2024, 1, 1, tzinfo=UTC)


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market
        django_get_or_create = ("exchange", "market_type", "symbol")

    exchange = "binance"
    base = factory.Sequence(lambda n: f"C{n}")
    quote = "USDT"
    symbol = factory.LazyAttribute(lambda m: f"{m.base}/{m.quote}")
    market_type = MarketType.SPOT


class CandleFactory(factory.django.DjangoModelFactory):
    """Hourly candles one after another; override open_time to make gaps."""

    class Meta:
        model = Candle

    market = factory.SubFactory(MarketFactory)
    timeframe = "1h"
    open_time = factory.Sequence(lambda n: START + timedelta(hours=n))
    open = 100.0
    high = 101.0
    low = 99.0
    close = 100.5
    volume = 10.0


class FundingRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FundingRate

    market = factory.SubFactory(
        MarketFactory,
        market_type=MarketType.FUTURES,
        symbol=factory.LazyAttribute(lambda m: f"{m.base}/{m.quote}:{m.quote}"),
    )
    funding_time = factory.Sequence(lambda n: START + timedelta(hours=8 * n))
    rate = 0.0001


def hourly_candles(
    market: Market, closes: list[float | None], start: datetime = START
) -> list[Candle]:
    """Store one 1h candle per close from `start`; a None leaves a gap (no candle) at that hour."""
    candles = [
        Candle(
            market=market,
            timeframe="1h",
            open_time=start + timedelta(hours=i),
            open=close,
            high=close * 1.01,
            low=close * 0.99,
            close=close,
            volume=10.0,
        )
        for i, close in enumerate(closes)
        if close is not None
    ]
    return Candle.objects.bulk_create(candles)


# --- scans, rankings, signals, watchlists ------------------------------------------------------


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")


class WatchlistFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scanners.Watchlist"

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"watchlist {n}")


class ScanRunFactory(factory.django.DjangoModelFactory):
    """A run as the pipeline leaves it: finished, its symbols all done."""

    class Meta:
        model = "scanners.ScanRun"

    scanner = "rsi"
    status = "finished"
    as_of = START + timedelta(days=10)
    symbols = factory.LazyFunction(list)
    coins_total = factory.LazyAttribute(lambda run: len(run.symbols))
    coins_done = factory.LazyAttribute(lambda run: len(run.symbols))
    batches_total = 1
    batches_done = 1


class ScanResultFactory(factory.django.DjangoModelFactory):
    """A scanner's result; `component` drives the unified score, `direction` its own rule."""

    class Meta:
        model = "scanners.ScanResult"

    run = factory.SubFactory(ScanRunFactory)
    scanner = factory.LazyAttribute(lambda result: result.run.scanner)
    symbol = "C0/USDT"
    as_of = factory.LazyAttribute(lambda result: result.run.as_of)
    scores = factory.LazyFunction(dict)
    direction = None
    component = factory.LazyFunction(lambda: {"LONG": 50.0, "SHORT": 50.0})
    reasons = factory.LazyFunction(list)
    inputs = factory.LazyFunction(dict)
    completeness = 1.0


class UnifiedRankingFactory(factory.django.DjangoModelFactory):
    """A coin's row of the unified ranking, as finish_scan stores it."""

    class Meta:
        model = "scoring.UnifiedRanking"

    scan_run = factory.SubFactory(ScanRunFactory, scanner="all")
    symbol = factory.Sequence(lambda n: f"R{n}/USDT")
    as_of = factory.LazyAttribute(lambda row: row.scan_run.as_of)
    hour = factory.LazyAttribute(lambda row: row.as_of.replace(minute=0, second=0, microsecond=0))
    direction = "LONG"
    unified_score = 60.0
    score_long = factory.LazyAttribute(lambda row: row.unified_score)
    score_short = 20.0
    tier = "TIER_3"
    score_tier = factory.LazyAttribute(lambda row: row.tier)
    confirmations = 1
    confirmed_by = factory.LazyFunction(lambda: ["rsi"])
    confidence = 60
    recommendation = "WATCHLIST"
    completeness = 0.75
    breakdown = factory.LazyFunction(dict)
    reasons = factory.LazyFunction(list)
    notes = factory.LazyFunction(list)


class SignalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tracking.Signal"

    scanner = "rsi"
    symbol = "BTC/USDT"
    direction = "LONG"
    as_of = factory.Sequence(lambda n: START + timedelta(hours=n))
    entry_price = 100.0
    scanner_score = 77.0
    completeness = 1.0
    reasons = factory.LazyFunction(lambda: ["RSI 23.0 < 25"])


# --- outcome checks ----------------------------------------------------------------------------


class OutcomeCheckFactory(factory.django.DjangoModelFactory):
    """One horizon of a signal's outcome, open and due at the signal's as_of + the horizon."""

    class Meta:
        model = "tracking.OutcomeCheck"

    signal = factory.SubFactory(SignalFactory)
    horizon = "1h"
    due_at = factory.LazyAttribute(lambda check: check.signal.as_of + _horizon_delta(check.horizon))
    run_at = factory.LazyAttribute(lambda check: check.due_at)


def _horizon_delta(horizon: str) -> timedelta:
    from tracking.models import HORIZON_DELTAS

    return HORIZON_DELTAS[horizon]


class CheckedOutcomeFactory(OutcomeCheckFactory):
    """A DONE check of a signal (default horizon 24h) with the given unadjusted `return_pct`;
    the adjusted return and the outcome follow docs/SCORING.md with the default thresholds (WIN at
    +5, LOSS at −3, direction-adjusted)."""

    horizon = "24h"
    status = "done"
    attempts = 1
    return_pct = 0.0
    exit_price = factory.LazyAttribute(
        lambda check: check.signal.entry_price * (1 + check.return_pct / 100)
    )
    adjusted_return_pct = factory.LazyAttribute(
        lambda check: -check.return_pct if check.signal.direction == "SHORT" else check.return_pct
    )
    outcome = factory.LazyAttribute(
        lambda check: (
            "WIN"
            if check.adjusted_return_pct >= 5
            else "LOSS"
            if check.adjusted_return_pct <= -3
            else "NEUTRAL"
        )
    )


class AlertFactory(factory.django.DjangoModelFactory):
    """An outbox row to a Telegram chat, PENDING; `text` is valid Telegram HTML."""

    class Meta:
        model = "alerts.Alert"

    channel = "telegram"
    chat_id = "1001"
    tier = 1
    kind = "digest"  # no signal needed (signal alerts are made by alerts_for_signal)
    text = factory.Sequence(lambda n: f"<b>alert {n}</b>")
    state = "pending"


class SignalAlertFactory(factory.django.DjangoModelFactory):
    """An alert of a signal in the outbox (console channel, PENDING unless told)."""

    class Meta:
        model = "alerts.Alert"

    channel = "console"
    chat_id = ""
    tier = 2
    signal = factory.SubFactory(SignalFactory, symbol=factory.Sequence(lambda n: f"A{n}/USDT"))
    kind = "signal"
    text = factory.LazyAttribute(lambda alert: f"alert of {alert.signal.symbol}")
    state = "pending"


# --- summaries and bot commands ----------------------------------------------------------------


def _in_three_hours() -> datetime:
    from django.utils import timezone

    return timezone.now() + timedelta(hours=3)


class AlertMuteFactory(factory.django.DjangoModelFactory):
    """A `/mute` in force for the next 3 hours (wall time)."""

    class Meta:
        model = "alerts.AlertMute"

    tier = 2
    until = factory.LazyFunction(_in_three_hours)
    muted_by_chat = "1001"


def telegram_update(chat_id: str | int, text: str, *, update_id: int | None = None) -> dict:
    """A Bot API update carrying one text message from a private chat (what getUpdates returns)."""
    update: dict = {
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": int(chat_id), "type": "private"},
            "from": {"id": int(chat_id), "is_bot": False, "first_name": "Tester"},
            "text": text,
        }
    }
    if update_id is not None:
        update["update_id"] = update_id
    return update
