"""Delivery of the alert outbox: claim due rows, send them within Telegram's limits, record.

What is promised (docs/ALERTS.md says it in plain words):

- an alert whose send Telegram confirmed (a message id recorded, state SENT) is never sent again:
  a retried task, a second worker or a restart all find the row SENT and skip it;
- an alert is claimed (PENDING/RETRYING → SENDING, `claimed_at` stamped) before the call and marked
  SENT with one conditional update `filter(pk, state=SENDING)` after it. If the process dies in
  between, nobody knows whether Telegram got the message (it has no idempotency key), so the
  sweeper turns the stale SENDING row into UNCONFIRMED and applies ALERT_UNCONFIRMED_POLICY:
  `hold` (a person decides in the admin) or `resend` (back to PENDING; may duplicate);
- an outage (connection refused, 5xx) or a 429 makes the row RETRYING with a due time (backoff, or
  Telegram's `retry_after`): delayed, never lost;
- per chat, alerts go out in creation order: a chat's oldest unsent alert is its head, and a head
  that is SENDING or waiting to retry blocks the later alerts of that chat;
- Telegram's limits: 1 message/s per chat, 30/s overall, 20/min per group chat, counted in fixed
  windows by `httpengine.engine`'s budgets — `RedisBudget` (shared by every worker) when
  Redis is the broker or RATE_BUDGET_REDIS_URL is set, `LocalBudget` (this process) otherwise.

Services (keyword-only, callable from tasks, tests and the admin): `outbox_claim`,
`outbox_send_due`, `outbox_sweep_stale`, `outbox_apply_unconfirmed_policy`.
"""

from __future__ import annotations

import asyncio
import html
import logging
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.html import strip_tags

from alerts.models import Alert, AlertState

logger = logging.getLogger(__name__)

CONSOLE = "console"
TELEGRAM = "telegram"

# How long one `outbox_send_due` call keeps sending (and waiting for retries falling due).
SEND_BATCH_SECONDS = 50.0
# HTTP timeouts of the Bot API client besides the read timeout (TELEGRAM_READ_TIMEOUT_SECONDS),
# which leaves the outcome unknown (UNCONFIRMED).
CONNECT_TIMEOUT_SECONDS = 5.0

PER_CHAT_PER_SECOND = 1
OVERALL_PER_SECOND = 30
PER_GROUP_PER_MINUTE = 20
BUDGET_PREFIX = "cryptosatx:telegram"

LIVE_STATES = (AlertState.PENDING, AlertState.RETRYING, AlertState.SENDING)


def send_timeout() -> float:
    """Seconds after which a SENDING row belongs to a worker that vanished."""
    return settings.ALERT_SEND_TIMEOUT_SECONDS


def retry_backoff(attempts: int) -> float:
    """Seconds to wait before the next attempt after `attempts` failed ones (network error, 5xx):
    base * 2^(attempts-1), capped, with ±20 % jitter."""
    base = settings.ALERT_RETRY_BACKOFF_SECONDS
    delay = min(base * 2 ** max(attempts - 1, 0), settings.ALERT_RETRY_BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography


def telegram_configured() -> bool:
    return bool(settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_CHAT_ID)


def default_channel() -> str:
    """Telegram when a token and a chat are set, else the console log (what `make run` shows)."""
    return TELEGRAM if telegram_configured() else CONSOLE


def is_group(chat_id: str) -> bool:
    return str(chat_id).startswith("-")


# --- rate limits --------------------------------------------------------------------------------


class TelegramLimiter:
    """Telegram's limits as fixed-window budgets (reusing the market-data budget classes).

    One token per message from three budgets: `chat:<id>` (1 per 1 s window), `all` (30 per 1 s
    window) and, for group chats, `group:<id>` (20 per 60 s window). Fixed windows are aligned to
    the wall clock, so two messages to one chat can sit just either side of a window boundary;
    Telegram tolerates such short bursts, and its 429 (handled) is the backstop.
    """

    def __init__(self, redis_url: str | None = None) -> None:
        from httpengine.budgets import LocalBudget, RedisBudget
        from httpengine.registry import shared_redis_url

        url = shared_redis_url() if redis_url is None else redis_url
        if url:
            self.second: Any = RedisBudget(
                url, prefix=BUDGET_PREFIX, window_seconds=1.0, jitter_seconds=0.02
            )
            self.minute: Any = RedisBudget(
                url, prefix=BUDGET_PREFIX, window_seconds=60.0, jitter_seconds=0.1
            )
        else:
            self.second = LocalBudget(window_seconds=1.0, jitter_seconds=0.02)
            self.minute = LocalBudget(window_seconds=60.0, jitter_seconds=0.1)
        self.shared = bool(url)

    async def acquire(self, chat_id: str) -> None:
        if is_group(chat_id):
            await self.minute.acquire(f"group:{chat_id}", 1, PER_GROUP_PER_MINUTE)
        await self.second.acquire(f"chat:{chat_id}", 1, PER_CHAT_PER_SECOND)
        await self.second.acquire("all", 1, OVERALL_PER_SECOND)

    async def aclose(self) -> None:
        for budget in (self.second, self.minute):
            close = getattr(budget, "aclose", None)
            if close is not None:
                await close()


# --- claiming -----------------------------------------------------------------------------------


def _heads(
    live: list[Alert], now: datetime, market: datetime | None = None
) -> tuple[list[Alert], list[datetime]]:
    """Per (channel, chat), walking live rows in creation order: the row to send now, if any, and
    when a waiting chat falls due.

    A SENDING row, or a RETRYING one not yet due (`next_attempt_at` in wall time, against `now`),
    blocks its chat (so order holds). A PENDING row with a `next_attempt_at` is an open digest,
    held until that moment of MARKET time (`market`, default `now`: the caps count in market
    time, services.alerts_for_signal); it is passed over without blocking.
    """
    market = now if market is None else market
    by_chat: dict[tuple[str, str], list[Alert]] = {}
    for alert in live:
        by_chat.setdefault((alert.channel, str(alert.chat_id)), []).append(alert)
    ready: list[Alert] = []
    waits: list[datetime] = []
    for rows in by_chat.values():
        for alert in rows:
            if alert.state == AlertState.SENDING:
                break
            held = alert.state == AlertState.PENDING
            if alert.next_attempt_at is None or alert.next_attempt_at <= (market if held else now):
                ready.append(alert)
                break
            # An open digest's wait, told in wall time: as long as the market takes at 1:1.
            waits.append(now + (alert.next_attempt_at - market) if held else alert.next_attempt_at)
            if alert.state == AlertState.RETRYING:
                break
    ready.sort(key=lambda a: (a.created_at, a.pk))
    return ready, waits


def _market_now(now: datetime) -> datetime:
    """Market time for comparing open digests: the replay clock in a replay, else `now`."""
    if settings.MARKET_SOURCE == "replay":
        from market.replay_clock import market_now

        return market_now()
    return now


def _live() -> Any:
    return Alert.objects.filter(state__in=LIVE_STATES).order_by("created_at", "pk")


def outbox_claim(*, now: datetime | None = None, limit: int = 30) -> list[Alert]:
    """Claim the due head of each chat (at most `limit` chats): PENDING/RETRYING → SENDING.

    The live rows are locked with `select_for_update()` (short: nothing but this runs inside), so
    two claimers queue up instead of both taking a chat's head; the update is conditional on the
    state read, so a claimer on a database without row locks (SQLite serialises writers anyway)
    still never takes a row another one took. A chat whose head is SENDING, or RETRYING and not yet
    due, is skipped whole: that is what keeps each chat in creation order.
    """
    now = now or timezone.now()
    claimed: list[Alert] = []
    with transaction.atomic():
        ready, _ = _heads(list(_live().select_for_update()), now, _market_now(now))
        for head in ready[:limit]:
            taken = Alert.objects.filter(pk=head.pk, state=head.state).update(
                state=AlertState.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
            if taken == 1:
                head.state = AlertState.SENDING
                head.claimed_at = now
                head.attempts += 1
                claimed.append(head)
    return claimed


def next_due_at() -> datetime | None:
    """When the earliest waiting chat head falls due (None: nothing is waiting)."""
    now = timezone.now()
    ready, waits = _heads(list(_live()), now, _market_now(now))
    if ready:
        return now
    return min(waits) if waits else None


# --- recording outcomes -------------------------------------------------------------------------


def _mark(alert: Alert, **fields: Any) -> bool:
    """One conditional update from SENDING: False when the row was no longer ours (swept)."""
    return Alert.objects.filter(pk=alert.pk, state=AlertState.SENDING).update(**fields) == 1


def mark_sent(alert: Alert, *, message_id: int | None) -> bool:
    return _mark(
        alert,
        state=AlertState.SENT,
        sent_at=timezone.now(),
        telegram_message_id=message_id,
        next_attempt_at=None,
        last_error="",
    )


def mark_retrying(alert: Alert, *, delay: float, error: str) -> bool:
    return _mark(
        alert,
        state=AlertState.RETRYING,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=error[:1000],
    )


def mark_failed(alert: Alert, *, error: str) -> bool:
    return _mark(alert, state=AlertState.FAILED, next_attempt_at=None, last_error=error[:1000])


def mark_unconfirmed(alert: Alert, *, error: str) -> bool:
    marked = _mark(alert, state=AlertState.UNCONFIRMED, last_error=error[:1000])
    if marked:
        outbox_apply_unconfirmed_policy(alert_ids=[alert.pk])
    return marked


def outbox_apply_unconfirmed_policy(*, alert_ids: list[int], policy: str | None = None) -> int:
    """ALERT_UNCONFIRMED_POLICY for these UNCONFIRMED rows: `resend` → PENDING (sent again, so the
    chat may see it twice), `hold` → left UNCONFIRMED for a person. Returns how many were requeued.
    """
    policy = policy or settings.ALERT_UNCONFIRMED_POLICY
    if policy != "resend" or not alert_ids:
        return 0
    requeued = Alert.objects.filter(pk__in=alert_ids, state=AlertState.UNCONFIRMED).update(
        state=AlertState.PENDING, next_attempt_at=None, claimed_at=None
    )
    if requeued:
        logger.warning("alerts: %s unconfirmed alert(s) queued again (policy resend)", requeued)
    return requeued


def outbox_sweep_stale(*, now: datetime | None = None, timeout: float | None = None) -> list[int]:
    """SENDING rows whose send started more than the send timeout ago → UNCONFIRMED → policy.

    Returns the ids marked UNCONFIRMED (whatever the policy then did with them).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=send_timeout() if timeout is None else timeout)
    stale = list(
        Alert.objects.filter(state=AlertState.SENDING, claimed_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    marked: list[int] = []
    for pk in stale:
        # Conditional: a send that finished meanwhile keeps its SENT.
        if (
            Alert.objects.filter(pk=pk, state=AlertState.SENDING, claimed_at__lt=cutoff).update(
                state=AlertState.UNCONFIRMED,
                last_error="the send was cut off before Telegram's answer was recorded",
            )
            == 1
        ):
            marked.append(pk)
    if marked:
        logger.warning(
            "alerts: %s alert(s) unconfirmed (a worker vanished mid-send): %s", len(marked), marked
        )
        outbox_apply_unconfirmed_policy(alert_ids=marked)
    return marked


# --- sending ------------------------------------------------------------------------------------


def console_text(alert: Alert) -> str:
    text = html.unescape(strip_tags(alert.text)).strip()
    return f"ALERT [TIER {int(alert.tier)}] {text}"


def send_console(alert: Alert) -> None:
    logger.info("%s", console_text(alert))
    mark_sent(alert, message_id=None)


def _not_sent(error: BaseException) -> bool:
    """True when Telegram certainly never got the request: nothing was delivered."""
    import httpx
    from telegram.error import TelegramError

    cause = error.__cause__
    if cause is None or isinstance(cause, TelegramError):
        # Telegram (or its proxy) answered with an error status (5xx): the client maps it to
        # NetworkError, without a cause or from the failed parse of a non-JSON body.
        return True
    # Never connected (refused, connect timeout) or never left the pool: nothing reached Telegram.
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items()}


class _TelegramSender:
    """One Bot and one limiter on one event loop, for the length of an `outbox_send_due` call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        self.loop = loop
        request = HTTPXRequest(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.TELEGRAM_READ_TIMEOUT_SECONDS,
            write_timeout=CONNECT_TIMEOUT_SECONDS,
            pool_timeout=CONNECT_TIMEOUT_SECONDS,
            # Never a proxy from the environment: the API URL is the setting.
            httpx_kwargs={"trust_env": False},
        )
        self.bot = Bot(
            settings.TELEGRAM_BOT_TOKEN,
            base_url=f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot",
            request=request,
        )
        self.limiter = TelegramLimiter()

    def send(self, alert: Alert, report: SendReport) -> None:
        from telegram import LinkPreviewOptions
        from telegram.error import (
            BadRequest,
            ChatMigrated,
            Forbidden,
            InvalidToken,
            NetworkError,
            RetryAfter,
            TelegramError,
            TimedOut,
        )

        chat_id = str(alert.chat_id)
        self.loop.run_until_complete(self.limiter.acquire(chat_id))
        # The send starts now: re-stamp claimed_at so the rate-limit wait does not count toward
        # the send timeout. Zero rows: the sweeper took it meanwhile; leave it to the policy.
        if not Alert.objects.filter(pk=alert.pk, state=AlertState.SENDING).update(
            claimed_at=timezone.now()
        ):
            return
        try:
            message = self.loop.run_until_complete(
                self.bot.send_message(
                    chat_id=chat_id,
                    text=alert.text,
                    parse_mode="HTML",
                    disable_notification=bool(alert.disable_notification),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
        except RetryAfter as error:
            with warnings.catch_warnings():  # PTB 22 warns that it will become a timedelta
                warnings.simplefilter("ignore")
                delay = error.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            logger.warning("alerts: Telegram 429 for alert %s, retry in %s s", alert.pk, seconds)
            if mark_retrying(alert, delay=seconds, error=str(error)):
                report.retrying.append(alert.pk)
        except TimedOut as error:
            if _not_sent(error):
                if mark_retrying(alert, delay=retry_backoff(alert.attempts), error=repr(error)):
                    report.retrying.append(alert.pk)
            elif mark_unconfirmed(alert, error=f"no answer from Telegram: {error!r}"):
                report.unconfirmed.append(alert.pk)
        except (ChatMigrated, BadRequest, Forbidden, InvalidToken) as error:
            logger.error("alerts: Telegram refused alert %s: %s", alert.pk, error)
            if mark_failed(alert, error=f"{type(error).__name__}: {error}"):
                report.failed.append(alert.pk)
        except NetworkError as error:
            if _not_sent(error):
                logger.warning("alerts: Telegram unreachable for alert %s: %s", alert.pk, error)
                if mark_retrying(alert, delay=retry_backoff(alert.attempts), error=repr(error)):
                    report.retrying.append(alert.pk)
            elif mark_unconfirmed(alert, error=f"connection lost mid-send: {error!r}"):
                report.unconfirmed.append(alert.pk)
        except TelegramError as error:
            logger.error("alerts: Telegram error for alert %s: %s", alert.pk, error)
            if mark_failed(alert, error=f"{type(error).__name__}: {error}"):
                report.failed.append(alert.pk)
        else:
            if mark_sent(alert, message_id=message.message_id):
                report.sent.append(alert.pk)
            else:
                logger.error(
                    "alerts: alert %s was sent (message %s) but its row had been swept meanwhile",
                    alert.pk,
                    message.message_id,
                )

    def close(self) -> None:
        self.loop.run_until_complete(self.limiter.aclose())
        self.loop.run_until_complete(self.bot.shutdown())


def outbox_send_due(
    *,
    max_seconds: float | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> SendReport:
    """Send what is due, chat heads first, until nothing is due or `max_seconds` have passed.

    A retry falling due within the time left is waited for (so a 429's retry_after or a short
    outage is ridden out inside one call); later ones are left to the sweeper.
    """
    budget = SEND_BATCH_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget
    report = SendReport()
    loop: asyncio.AbstractEventLoop | None = None
    sender: _TelegramSender | None = None
    try:
        while time.monotonic() < deadline:
            claimed = outbox_claim()
            for alert in claimed:
                if alert.channel == TELEGRAM and telegram_configured():
                    if sender is None:
                        loop = asyncio.new_event_loop()
                        sender = _TelegramSender(loop)
                    sender.send(alert, report)
                else:
                    if alert.channel == TELEGRAM:
                        logger.warning(
                            "alerts: alert %s is for Telegram but no bot token/chat is set; "
                            "it goes to the console instead",
                            alert.pk,
                        )
                    send_console(alert)
                    report.sent.append(alert.pk)
            if claimed:
                continue
            due = next_due_at()
            left = deadline - time.monotonic()
            if due is None or left <= 0:
                return report
            wait = (due - timezone.now()).total_seconds()
            if wait > left:
                return report
            sleep(min(max(wait, 0.01), left))
        return report
    finally:
        if sender is not None:
            sender.close()
        if loop is not None:
            loop.close()


def outbox_has_due(*, now: datetime | None = None) -> bool:
    """Whether some chat has a row to send right now."""
    now = now or timezone.now()
    ready, _ = _heads(list(_live()), now, _market_now(now))
    return bool(ready)
