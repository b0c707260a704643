"""Bot commands (docs/ALERTS.md, "Bot commands"), answered only to TELEGRAM_ALLOWED_CHAT_IDS.

`handle_update(update)` takes one Telegram update (the Bot API's JSON, as a dict) and returns the
reply text (Telegram HTML), or None: for a chat not in TELEGRAM_ALLOWED_CHAT_IDS (checked first,
before anything is read or written: a stranger gets nothing, not even an error), for an update
without a text message, and for text that is not a command.

`bot_poll()` (task `alerts.poll_bot_updates`, beat every BOT_POLL_SECONDS while a bot token is set)
asks Telegram for new updates with getUpdates from the offset kept in `BotState`, answers each one
through the outbox (an Alert row of kind "command_reply" to the asking chat, sent by the normal
delivery: in order, within Telegram's limits, retried through outages), and advances the offset in
the same transaction. The BotState row is locked for the whole poll, so two pollers never answer
one update twice; a poll that dies before committing leaves the offset where it was and the next
poll answers the same updates (the replies of the dead one were rolled back with it).

Commands:
- `/start`, `/help`: what the bot can do.
- `/status`: health (`cryptosatx.services.health_report`: database, broker, workers, beat, replay
  clock), scans queued/running, and the last run of each scanner.
- `/top [n]`: the first n (default 10, at most 30) rows of the unified ranking (`ranking_latest`).
- `/performance [days]`: the analytics over the last `days` (default 30, 1–3650) of market time:
  overall and per tier, with n, win rate, its 95 % Wilson interval and the judgement.
- `/watchlist`: the watchlists of the install's owner. A chat is mapped to a user as follows: the
  first active superuser (lowest id) — a self-hosted install has one owner, and every allowed chat
  is that owner's.
- `/mute <tier> <hours>`: alerts of TIER <tier> (1, 2 or 3; "T2", "TIER_2" also accepted) written
  during the next <hours> (0 < hours ≤ 720, wall time) are SUPPRESSED: kept, listed in the daily
  summary, never sent one by one. `/mute <tier> 0` ends the tier's mute. A mute covers the alert
  destination (TELEGRAM_CHAT_ID), whichever allowed chat asked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, AlertChannel, AlertKind, AlertMute, AlertTier, BotState
from alerts.rendering import e, number
from alerts.services import send_soon
from core import health_hook

logger = logging.getLogger(__name__)

DEFAULT_TOP = 10
MAX_TOP = 30
DEFAULT_PERFORMANCE_DAYS = 30
MAX_PERFORMANCE_DAYS = 3650
MAX_MUTE_HOURS = 720.0
BOT_STATE_PK = 1
HELP = (
    "<b>CryptoSatX bot</b>\n"
    "/status – scans, workers, last runs\n"
    "/top [n] – the unified ranking (default 10)\n"
    "/performance [days] – real performance per tier (default 30 days)\n"
    "/watchlist – your watchlists\n"
    "/mute &lt;tier&gt; &lt;hours&gt; – silence TIER 1, 2 or 3 alerts (hours 0: unmute)"
)


class Refusal(ValueError):
    """A command the bot understood but cannot do as asked; the message is the reply."""


# --- the update ---------------------------------------------------------------------------------


def update_message(update: dict[str, Any]) -> dict[str, Any] | None:
    message = update.get("message")
    return message if isinstance(message, dict) else None


def update_chat_id(update: dict[str, Any]) -> str | None:
    message = update_message(update)
    chat = (message or {}).get("chat")
    if not isinstance(chat, dict) or chat.get("id") is None:
        return None
    return str(chat["id"])


def chat_allowed(chat_id: str | None) -> bool:
    if not chat_id:
        return False
    allowed = {str(chat).strip() for chat in settings.TELEGRAM_ALLOWED_CHAT_IDS or ()}
    return chat_id in allowed


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """("top", ["5"]) from "/top@cryptosatx_bot 5"; None when the text is not a command."""
    parts = text.strip().split()
    if not parts or not parts[0].startswith("/") or len(parts[0]) < 2:
        return None
    command = parts[0][1:].split("@", 1)[0].lower()
    return command, parts[1:]


def handle_update(update: dict[str, Any]) -> str | None:
    """The reply to one update, or None (a stranger, no text, not a command)."""
    chat_id = update_chat_id(update)
    if not chat_allowed(chat_id):
        return None  # before anything else: strangers get nothing and change nothing
    text = (update_message(update) or {}).get("text")
    if not isinstance(text, str):
        return None
    parsed = parse_command(text)
    if parsed is None:
        return None
    command, args = parsed
    handler = COMMANDS.get(command)
    if handler is None:
        return f"Unknown command /{e(command)}.\n\n{HELP}"
    try:
        return handler(args, str(chat_id))
    except Refusal as refusal:
        return e(str(refusal))


# --- commands -----------------------------------------------------------------------------------


def _whole(args: list[str], default: int, low: int, high: int, what: str) -> int:
    if not args:
        return default
    try:
        value = int(args[0])
    except ValueError:
        raise Refusal(f"{what} must be a whole number from {low} to {high}.") from None
    if not low <= value <= high:
        raise Refusal(f"{what} must be a whole number from {low} to {high}.")
    return value


def command_start(args: list[str], chat_id: str) -> str:
    return HELP


def _when(moment) -> str:
    if moment is None:
        return "–"
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M}"


def command_status(args: list[str], chat_id: str) -> str:
    from scanners.models import RUN_SCANNERS, RunStatus, ScanRun

    report = health_hook.report_fresh()
    mark = {"ok": "✅", "waiting": "⏳", "error": "❌"}
    lines = [f"<b>Status: {mark.get(report['status'], '')} {e(report['status'])}</b>"]
    for name in ("database", "broker", "worker", "beat", "replay_clock", "exchange_bans"):
        check = report.get(name)
        if check is None:
            continue
        detail = ""
        if name == "worker" and check.get("workers"):
            detail = f" ({e(', '.join(check['workers']))})"
        elif name == "replay_clock" and check.get("market_time"):
            detail = f" (market time {e(check['market_time'])})"
        elif check.get("error"):
            detail = f" ({e(str(check['error'])[:200])})"
        lines.append(f"{mark.get(check['status'], '')} {e(name)}: {e(check['status'])}{detail}")
    active = ScanRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    lines += ["", f"Scans queued/running: <b>{active.count()}</b>", "<b>Last runs</b>"]
    for scanner in (*RUN_SCANNERS, "all"):
        run = ScanRun.objects.filter(scanner=scanner).order_by("-created_at", "-id").first()
        if run is None:
            lines.append(f"• {e(scanner)}: never")
            continue
        lines.append(
            f"• {e(scanner)}: {e(run.status)}, as of {e(_when(run.as_of))}, "
            f"{run.coins_done}/{run.coins_total} coins"
            + (f", finished {e(_when(run.finished_at))}" if run.finished_at else "")
        )
    return "\n".join(lines)


def command_top(args: list[str], chat_id: str) -> str:
    from scoring.ranking import ranking_latest

    n = _whole(args, DEFAULT_TOP, 1, MAX_TOP, "n")
    rows = list(ranking_latest()[:n])
    if not rows:
        return "The ranking is empty: no scan has finished yet."
    lines = [f"<b>Top {len(rows)}</b> (unified ranking)"]
    for position, row in enumerate(rows, 1):
        lines.append(
            f"{position}. <b>{e(row.symbol)}</b> {e(row.direction)} "
            f"{e(number(row.unified_score))}/100 · {e(row.tier)} · "
            f"confidence {e(row.confidence)} %"
        )
    return "\n".join(lines)


def command_performance(args: list[str], chat_id: str) -> str:
    from alerts.summaries import performance_line
    from tracking.analytics import performance_by, performance_summary
    from tracking.performance_filters import PerformanceFilters

    days = _whole(args, DEFAULT_PERFORMANCE_DAYS, 1, MAX_PERFORMANCE_DAYS, "days")
    filters = PerformanceFilters(days=days).resolved()
    overall = performance_summary(filters)
    groups = performance_by("tier", filters)["groups"]
    lines = [
        f"<b>Performance, last {days} day{'s' if days != 1 else ''}</b> "
        f"({e(overall['horizon'])} outcome)",
        f"Signals: {overall['total_signals']} · checked {overall['outcomes_checked']} · "
        f"pending {overall['outcomes_pending']}",
        performance_line("All", overall),
        *(performance_line(group["group"] or "no tier", group) for group in groups),
    ]
    return "\n".join(lines)


def chat_owner(chat_id: str):
    """The user whose watchlists a chat sees: the first active superuser (see the module doc)."""
    return get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()


def command_watchlist(args: list[str], chat_id: str) -> str:
    from scanners.models import Watchlist

    owner = chat_owner(chat_id)
    if owner is None:
        return "No owner: create a superuser (manage.py createsuperuser) to see watchlists here."
    watchlists = list(
        Watchlist.objects.filter(owner=owner).prefetch_related("coins").order_by("name", "pk")
    )
    if not watchlists:
        return f"{e(owner.get_username())} has no watchlists."
    lines = [f"<b>Watchlists of {e(owner.get_username())}</b>"]
    for watchlist in watchlists:
        coins = sorted(coin.symbol for coin in watchlist.coins.all())
        shown = ", ".join(coins[:30]) + (f" … (+{len(coins) - 30})" if len(coins) > 30 else "")
        lines.append(f"• <b>{e(watchlist.name)}</b> ({len(coins)}): {e(shown) or '–'}")
    return "\n".join(lines)


TIER_ARGUMENT = re.compile(r"^(?:t|tier[_ ]?)?([123])$", re.IGNORECASE)


def command_mute(args: list[str], chat_id: str) -> str:
    usage = "Usage: /mute <tier 1-3> <hours> (hours 0 ends the mute)."
    if len(args) != 2:
        raise Refusal(usage)
    match = TIER_ARGUMENT.match(args[0])
    try:
        hours = float(args[1])
    except ValueError:
        raise Refusal(usage) from None
    if match is None or not 0 <= hours <= MAX_MUTE_HOURS:
        raise Refusal(usage + f" At most {number(MAX_MUTE_HOURS, 0)} hours.")
    tier = AlertTier(int(match.group(1)))
    now = timezone.now()
    if hours == 0:
        ended = AlertMute.objects.filter(tier=tier, until__gt=now).update(until=now)
        return f"TIER {int(tier)} alerts are on again." + ("" if ended else " (It was not muted.)")
    until = now + timedelta(hours=hours)
    AlertMute.objects.create(tier=tier, until=until, muted_by_chat=chat_id, created_at=now)
    return (
        f"🔇 TIER {int(tier)} alerts muted for {e(number(hours))} h, until "
        f"{e(_when(until))} ({e(settings.TIME_ZONE)}). They are kept and listed in the daily "
        "summary."
    )


COMMANDS = {
    "start": command_start,
    "help": command_start,
    "status": command_status,
    "top": command_top,
    "performance": command_performance,
    "watchlist": command_watchlist,
    "mute": command_mute,
}


# --- polling ------------------------------------------------------------------------------------


def _bot(loop: asyncio.AbstractEventLoop):
    from telegram import Bot
    from telegram.request import HTTPXRequest

    request = HTTPXRequest(
        connect_timeout=5.0,
        read_timeout=settings.TELEGRAM_READ_TIMEOUT_SECONDS,
        write_timeout=5.0,
        pool_timeout=5.0,
        httpx_kwargs={"trust_env": False},
    )
    return Bot(
        settings.TELEGRAM_BOT_TOKEN,
        base_url=f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot",
        request=request,
    )


def reply_alert(chat_id: str, text: str) -> Alert:
    """A command's reply in the outbox, to the chat that asked."""
    return Alert.objects.create(
        channel=AlertChannel.TELEGRAM,
        chat_id=chat_id,
        tier=AlertTier.TIER_3,
        kind=AlertKind.COMMAND_REPLY,
        text=text,
        disable_notification=False,
    )


def bot_poll() -> dict[str, int]:
    """One getUpdates from the stored offset; each update answered (or ignored) and the offset
    advanced in one transaction. Returns counts (updates, replies, ignored)."""
    if not str(settings.TELEGRAM_BOT_TOKEN or "").strip():
        return {"updates": 0, "replies": 0, "ignored": 0}
    from telegram.error import TelegramError

    loop = asyncio.new_event_loop()
    bot = _bot(loop)
    report = {"updates": 0, "replies": 0, "ignored": 0}
    try:
        with transaction.atomic():
            BotState.objects.get_or_create(pk=BOT_STATE_PK)
            state = BotState.objects.select_for_update().get(pk=BOT_STATE_PK)
            try:
                updates = loop.run_until_complete(
                    bot.get_updates(
                        offset=state.update_offset or None,
                        timeout=0,
                        allowed_updates=["message"],
                    )
                )
            except TelegramError as error:
                logger.warning("bot: getUpdates failed: %s", error)
                return report
            for update in updates:
                payload = update.to_dict()
                reply = handle_update(payload)
                report["updates"] += 1
                if reply is None:
                    report["ignored"] += 1
                else:
                    reply_alert(str(update_chat_id(payload)), reply)
                    report["replies"] += 1
                state.update_offset = max(state.update_offset, update.update_id + 1)
            state.polled_at = timezone.now()
            state.save(update_fields=["update_offset", "polled_at"])
            if report["replies"]:
                send_soon()
    finally:
        loop.run_until_complete(bot.shutdown())
        loop.close()
    return report
