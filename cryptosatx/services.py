"""Service health: heartbeats and the checks behind GET /api/health."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from celery.result import allow_join_result
from django.conf import settings
from django.db import connection
from django.utils import timezone

from celeryconfig import HEARTBEAT_SECONDS
from cryptosatx.celery import app
from cryptosatx.models import Heartbeat

BEAT_STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
WORKER_PROBE_TIMEOUT = 3.0


def heartbeat_record(component: str, **detail: Any) -> None:
    Heartbeat.objects.update_or_create(
        component=component, defaults={"seen_at": timezone.now(), "detail": detail}
    )


def check_database() -> dict[str, Any]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any driver error means the same thing to an operator
        return {"status": "error", "error": str(error)}
    return {
        "status": "ok",
        "engine": connection.vendor,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
    }


def check_broker() -> dict[str, Any]:
    transport = settings.CELERY_BROKER_URL.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:
        return {"status": "error", "transport": transport, "error": str(error)}
    return {"status": "ok", "transport": transport, "embedded": settings.EMBEDDED}


def check_worker() -> dict[str, Any]:
    """A real task through the broker to a worker and back; plus worker names where the broker
    supports broadcast (Redis; the in-process memory broker does not)."""
    from cryptosatx.tasks import ping

    started = time.monotonic()
    try:
        result = ping.apply_async(expires=WORKER_PROBE_TIMEOUT)
        # The web process waits on the answer on purpose: that is the probe.
        with allow_join_result():
            answer = result.get(timeout=WORKER_PROBE_TIMEOUT, interval=0.05, propagate=True)
    except Exception as error:
        return {
            "status": "error",
            "error": f"no worker answered within {WORKER_PROBE_TIMEOUT:.0f} s ({error!r})",
        }
    report: dict[str, Any] = {
        "status": "ok" if answer == "pong" else "error",
        "round_trip_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if not settings.EMBEDDED:
        try:
            report["workers"] = sorted(
                name for reply in app.control.ping(timeout=1.0) for name in reply
            )
        except Exception as error:
            report["workers_error"] = str(error)
    return report


def check_beat() -> dict[str, Any]:
    beat = Heartbeat.objects.filter(component="beat").first()
    if beat is None:
        return {"status": "waiting", "detail": "no heartbeat from beat yet"}
    age = timezone.now() - beat.seen_at
    return {
        "status": "ok" if age <= BEAT_STALE_AFTER else "error",
        "last_heartbeat": beat.seen_at.isoformat(),
        "seconds_ago": round(age.total_seconds(), 1),
    }


def check_replay_clock() -> dict[str, Any]:
    from scanners.models import ReplayClock

    if settings.MARKET_SOURCE != "replay":
        return {"status": "ok", "detail": "not a replay"}
    clock = ReplayClock.objects.filter(pk=1).first()
    if clock is None:
        return {"status": "waiting", "detail": "no replay clock yet (empty candle store?)"}
    return {
        "status": "ok",
        "market_time": clock.market_time.isoformat(),
        "start": clock.start.isoformat(),
        "end": clock.end.isoformat(),
        "ticks": clock.ticks,
        "finished": clock.finished,
    }


def check_exchange_bans() -> dict[str, Any]:
    """Bans an exchange answered with HTTP 418, shared by every process through Redis: while one
    is in force no call goes to that exchange, and the operator should know why scans fail."""
    from scanners.market_data.http import active_ban_details, show_epoch

    try:
        bans = active_ban_details()
    except Exception as error:  # the ban registry's Redis is down: say so, do not hide it
        return {"status": "error", "error": f"ban registry unreachable: {error}"}
    if not bans:
        return {"status": "ok", "bans": {}}
    return {
        "status": "error",
        "bans": {
            name: {"until": show_epoch(ban["until"]), "reason": ban["reason"]}
            for name, ban in bans.items()
        },
    }


def check_alert_settings() -> dict[str, Any]:
    """The alert settings, read-only (GET /api/health is public: no token and no chat id, only
    whether they are set). Always ok: wrong values are refused at start-up."""
    token_set = bool(str(settings.TELEGRAM_BOT_TOKEN or "").strip())
    chat_set = bool(str(settings.TELEGRAM_CHAT_ID or "").strip())
    return {
        "status": "ok",
        "channel": "telegram" if token_set and chat_set else "console",
        "telegram_bot_token_set": token_set,
        "telegram_chat_id_set": chat_set,
        "tier_1_enabled": bool(settings.TELEGRAM_TIER_1_ENABLED),
        "tier_2_enabled": bool(settings.TELEGRAM_TIER_2_ENABLED),
        "tier_3_enabled": bool(settings.TELEGRAM_TIER_3_ENABLED),
        "max_alerts_per_hour": settings.MAX_ALERTS_PER_HOUR,
        "tier_1_max_per_day": settings.TIER_1_MAX_PER_DAY,
        "tier_2_max_per_day": settings.TIER_2_MAX_PER_DAY,
        "unconfirmed_policy": settings.ALERT_UNCONFIRMED_POLICY,
        "daily_summary_hour": settings.DAILY_SUMMARY_HOUR,
        "site_url": settings.SITE_URL,
    }


def health_report() -> dict[str, Any]:
    """Status of every part, and `status` ok only when all of them are ok."""
    checks = {
        "database": check_database(),
        "broker": check_broker(),
    }
    checks["worker"] = (
        check_worker()
        if checks["broker"]["status"] == "ok"
        else {"status": "error", "error": "broker unreachable"}
    )
    if checks["database"]["status"] == "ok":
        checks["beat"] = check_beat()
        checks["replay_clock"] = check_replay_clock()
    checks["exchange_bans"] = check_exchange_bans()
    checks["alert_settings"] = check_alert_settings()
    statuses = {check["status"] for check in checks.values()}
    overall = "ok" if statuses == {"ok"} else ("error" if "error" in statuses else "waiting")
    return {
        "status": overall,
        "time": timezone.now().isoformat(),
        "market_source": settings.MARKET_SOURCE,
        **checks,
    }
