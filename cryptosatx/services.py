"""Service health: heartbeats and the checks behind GET /api/health.

The checks that cost a round trip (broker connection, a task through a worker and back, worker
names, the exchange-ban registry in Redis) run in a background thread of each web process, every
`PROBE_INTERVAL_SECONDS` (`HealthProber`); a health request reads that kept state and runs only
the cheap checks itself (the database, beat's heartbeat row, the replay clock, the alert
settings). Kept state older than `PROBE_STALE_AFTER_SECONDS` makes its parts an error: a stuck
prober must not keep a stale "ok" alive.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.result import allow_join_result
from django.conf import settings
from django.db import connection
from django.utils import timezone

from celeryconfig import HEARTBEAT_SECONDS
from cryptosatx.celery import app
from cryptosatx.history_fill import progress_text, replay_under_way
from cryptosatx.models import Heartbeat

logger = logging.getLogger(__name__)

BEAT_STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
WORKER_PROBE_TIMEOUT = 3.0
# One probe (broker, worker round trip, worker names, bans) per web process this often: a few
# round trips a minute whatever the request rate.
PROBE_INTERVAL_SECONDS = 5.0
# A probe takes at most ~7 s (broker 2 s + its retry, worker 3 s, names 1 s); kept state older
# than a few missed probes means the prober is stuck or gone.
PROBE_STALE_AFTER_SECONDS = 30.0
# The first request of a process waits this long for the first probe, not for every probe.
FIRST_PROBE_WAIT_SECONDS = 10.0
# The parts the background prober checks; the others are checked per request.
PROBED_PARTS = ("broker", "worker", "exchange_bans")
# A process answers health requests from one report this long (its database reads included): 20
# clients calling without pause then cost a few queries a second, not a few per call.
REPORT_REUSE_SECONDS = 1.0


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
    from market.models import ReplayClock

    if settings.MARKET_SOURCE != "replay":
        return {"status": "ok", "detail": "not a replay"}
    clock = ReplayClock.objects.filter(pk=1).first()
    if clock is None:
        return {"status": "waiting", "detail": "no replay clock yet (empty candle store?)"}
    check = {
        "status": "ok",
        "market_time": clock.market_time.isoformat(),
        "start": clock.start.isoformat(),
        "end": clock.end.isoformat(),
        "ticks": clock.ticks,
        "finished": clock.finished,
    }
    under_way = replay_under_way()
    if under_way is not None:
        check["history"] = progress_text(under_way)
    return check


def check_exchange_bans() -> dict[str, Any]:
    """Bans an exchange answered with HTTP 418, shared by every process through Redis: while one
    is in force no call goes to that exchange, and the operator should know why scans fail."""
    from httpengine.calls import show_epoch
    from httpengine.registry import active_ban_details

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


def probe_background_parts() -> dict[str, dict[str, Any]]:
    """The checks that cost a round trip: broker, worker (when the broker answers), bans."""
    checks = {"broker": check_broker()}
    checks["worker"] = (
        check_worker()
        if checks["broker"]["status"] == "ok"
        else {"status": "error", "error": "broker unreachable"}
    )
    checks["exchange_bans"] = check_exchange_bans()
    return checks


@dataclass(frozen=True)
class ProbedParts:
    """The background checks as of one probe: `checks` by part, `probed_at` epoch seconds,
    `age_seconds` when read (None: no probe has finished yet)."""

    checks: dict[str, dict[str, Any]]
    probed_at: float | None
    age_seconds: float | None


def health_report(probed: ProbedParts | None = None) -> dict[str, Any]:
    """Status of every part, and `status` ok only when all of them are ok ("error" when one
    is, else "waiting"). `probed`: the background checks as kept by a `HealthProber`; without
    it they run here, now (the bot's /status: a rare call that wants a fresh answer)."""
    checks = {"database": check_database()}
    if probed is None:
        probed = ProbedParts(probe_background_parts(), time.time(), 0.0)
    checks.update(probed.checks)
    if checks["database"]["status"] == "ok":
        checks["beat"] = check_beat()
        checks["replay_clock"] = check_replay_clock()
    checks["alert_settings"] = check_alert_settings()
    statuses = {check["status"] for check in checks.values()}
    overall = "ok" if statuses == {"ok"} else ("error" if "error" in statuses else "waiting")
    report: dict[str, Any] = {
        "status": overall,
        "time": timezone.now().isoformat(),
        "market_source": settings.MARKET_SOURCE,
        **checks,
    }
    if probed.probed_at is not None:
        report["probed_at"] = datetime.fromtimestamp(probed.probed_at, UTC).isoformat()
        report["probed_seconds_ago"] = round(probed.age_seconds or 0.0, 1)
    return report


def public_health(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see of `report`: the status, the names of the parts that are down and
    what a replay filling history is doing; no host, port, error text, version or worker name."""
    down = sorted(
        name
        for name, check in report.items()
        if isinstance(check, dict) and check.get("status") == "error"
    )
    public = {"status": report["status"], "down": down}
    history = (report.get("replay_clock") or {}).get("history")
    if history:
        public["history"] = history
    return public


class HealthProber:
    """Runs `probe_background_parts` in a daemon thread of this process every `interval`
    seconds and keeps the last answer for the health endpoint, so no request waits on a broker
    or worker round trip.

    Started on first use in each process (`kept()`), so a web server that forks its workers
    (gunicorn) gets one prober per worker process, and `make run`'s one process one prober that
    reaches its in-process broker and worker. `clock` is epoch seconds (tests step it)."""

    def __init__(
        self,
        *,
        interval: float = PROBE_INTERVAL_SECONDS,
        stale_after: float = PROBE_STALE_AFTER_SECONDS,
        clock=time.time,
    ) -> None:
        self.interval = float(interval)
        self.stale_after = float(stale_after)
        self.clock = clock
        self._lock = threading.Lock()
        self._state: tuple[dict[str, dict[str, Any]], float] | None = None
        self._first = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._report: tuple[dict[str, Any], float] | None = None

    def refresh(self) -> None:
        """Run the background checks now, in the calling thread, and keep their answer."""
        checks = probe_background_parts()
        with self._lock:
            self._state = (checks, self.clock())
        self._first.set()

    def start(self) -> None:
        """Start the probing thread unless it runs in this process already (a forked child
        inherits the object but not the thread)."""
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if alive and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="health-prober", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = FIRST_PROBE_WAIT_SECONDS) -> None:
        """Stop the thread after its current probe; wait for it up to `timeout` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        from django.db import connections

        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # one failed probe must not end the probing; its age then shows
                logger.exception("health probe failed")
            finally:
                connections.close_all()  # this thread's only; a probe needs no database
            self._stop.wait(self.interval)

    def kept(self, *, first_wait: float = FIRST_PROBE_WAIT_SECONDS) -> ProbedParts:
        """The kept background checks, their age, and "error" for each when older than
        `stale_after`. Starts the thread if needed; only a process's first call may wait (up to
        `first_wait` seconds) for the first probe, which all concurrent first calls share."""
        self.start()
        if not self._first.is_set():
            self._first.wait(first_wait)
        return self.read()

    def report(
        self,
        *,
        reuse: float = REPORT_REUSE_SECONDS,
        first_wait: float = FIRST_PROBE_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """`health_report` over the kept state (`kept(first_wait=...)`), the same one for
        `reuse` seconds. `first_wait=0`: never wait for the first probe (its parts then say
        "waiting")."""
        moment = self.clock()
        with self._lock:
            cached = self._report
        if cached is not None and 0 <= moment - cached[1] < reuse:
            return cached[0]
        probed = self.kept(first_wait=first_wait)
        report = health_report(probed)
        if probed.probed_at is not None:  # a report before the first probe is nobody else's
            with self._lock:
                self._report = (report, moment)
        return report

    def read(self) -> ProbedParts:
        """The kept background checks as `kept()` gives them, without starting or waiting."""
        with self._lock:
            state = self._state
        if state is None:
            waiting = {"status": "waiting", "detail": "the first background probe is under way"}
            return ProbedParts({name: dict(waiting) for name in PROBED_PARTS}, None, None)
        checks, probed_at = state
        age = max(0.0, self.clock() - probed_at)
        if age <= self.stale_after:
            return ProbedParts(checks, probed_at, age)
        stale = {
            name: {
                "status": "error",
                "stale": True,
                "error": f"last probed {age:.0f} s ago (more than {self.stale_after:.0f} s): "
                "the background probe is stuck or gone",
                "last": check,
            }
            for name, check in checks.items()
        }
        return ProbedParts(stale, probed_at, age)


_prober = HealthProber()


def health_prober() -> HealthProber:
    """This process's prober (the health endpoint's kept state)."""
    return _prober
