"""Celery configuration (https://docs.celeryq.dev/en/stable/userguide/configuration.html), all of
it: cryptosatx/celery.py only loads this module, and Django's settings hold no Celery option.

Values that vary between machines come from Django settings of the table in cryptosatx/config.py
(CELERY_BROKER_URL, CELERY_RESULT_BACKEND, CELERY_TASK_TIME_LIMIT, CELERY_VISIBILITY_TIMEOUT, the
beat intervals ...), read here as plain `settings.X`; everything else here is policy.
"""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings
from kombu import Queue

broker_url = settings.CELERY_BROKER_URL
# Unset: the Redis broker keeps the results too; with the in-process broker, an in-process cache.
result_backend = settings.CELERY_RESULT_BACKEND or (
    "cache+memory://" if broker_url == "memory://" else broker_url
)
result_expires = timedelta(days=1)

# JSON only: tasks take ids and plain values, never pickled objects.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

timezone = settings.TIME_ZONE
enable_utc = True

QUEUES = ("scans", "outcomes", "alerts", "default")
task_queues = [Queue(name) for name in QUEUES]
task_default_queue = "default"
# Routes by task-name pattern, so every task declares its name and lands on its app's queue.
task_routes = {
    # The chord body of a scan runs beside its batches; exact names come before the globs.
    "tracking.finish_scan": {"queue": "scans"},
    # The watchdog must not wait behind the batches of the scans it watches.
    "scanners.watch_scans": {"queue": "default"},
    "scanners.*": {"queue": "scans"},
    "scoring.*": {"queue": "scans"},
    "tracking.*": {"queue": "outcomes"},
    "alerts.*": {"queue": "alerts"},
    "cryptosatx.*": {"queue": "default"},
}

# Tasks opt in to acks_late one by one (only the idempotent ones); a long task holds one message.
task_acks_late = False
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = settings.CELERY_TASK_TIME_LIMIT
task_soft_time_limit = int(settings.CELERY_TASK_TIME_LIMIT * 0.9)

broker_connection_retry_on_startup = True
# Redis redelivers an unacknowledged message after this long; it must exceed the longest task and
# the longest eta (plus the task run after it), or a message still held would run twice. Workers
# and beat refuse to start with less (cryptosatx/broker_checks.py). A killed worker's batch does
# not wait for it: the scan watchdog re-sends it after SCAN_STALE_SECONDS.
broker_transport_options = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
if broker_url == "memory://":
    # The in-process broker is polled; a short interval keeps `make run` snappy at no real cost.
    broker_transport_options["polling_interval"] = 0.05

# Flower and the health endpoint watch task events.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True

worker_hijack_root_logger = False
beat_schedule_filename = str(settings.VAR_DIR / "celerybeat-schedule")
if "django_celery_beat" in settings.INSTALLED_APPS:
    # Schedules live in the database and are editable in the admin (pause, re-time, kwargs);
    # `manage.py sync_schedules` creates the scanners' rows when missing (scanners/schedules.py).
    beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"


# Beat's heartbeat interval; the health endpoint calls beat stale after three missed beats.
HEARTBEAT_SECONDS = 10
# The summaries' and the bot's tasks live outside alerts/tasks.py (autodiscovery's only module).
imports = ("alerts.summary_tasks",)


def build_beat_schedule() -> dict[str, dict]:
    """Periodic tasks fixed by the code, their intervals read from the settings when called
    (OUTCOME_SWEEP_SECONDS, SCAN_WATCHDOG_SECONDS, ALERT_SWEEP_SECONDS, REPLAY_TICK_SECONDS,
    DAILY_SUMMARY_HOUR, TRADE_TALLY_REFRESH_SECONDS, BOT_POLL_SECONDS).

    The scanners are not here: each is a PeriodicTask row ("scan rsi", ...) that beat's
    DatabaseScheduler reads and an operator can pause or re-time in the admin; `sync_schedules`
    creates them from the *_INTERVAL_HOURS settings when missing. In a replay the replay clock's
    tick starts the scans due in market time (scanners/schedules.py).
    """
    schedule: dict[str, dict] = {
        "heartbeat": {
            "task": "cryptosatx.heartbeat",
            "schedule": timedelta(seconds=HEARTBEAT_SECONDS),
            "options": {"expires": HEARTBEAT_SECONDS},
        },
        # Durable outcome checks: the rows due within the next few minutes claimed and sent with
        # eta (ARCHITECTURE.md, tracking/outcomes.py).
        "sweep-outcome-checks": {
            "task": "tracking.sweep_outcome_checks",
            "schedule": timedelta(seconds=settings.OUTCOME_SWEEP_SECONDS),
            "options": {"expires": settings.OUTCOME_SWEEP_SECONDS},
        },
        # Stalled scans: lost batches or a lost final step re-sent, hopeless runs failed.
        "watch-scans": {
            "task": "scanners.watch_scans",
            "schedule": timedelta(seconds=settings.SCAN_WATCHDOG_SECONDS),
            "options": {"expires": settings.SCAN_WATCHDOG_SECONDS},
        },
        # The alert outbox: stale SENDING rows → UNCONFIRMED (then the policy), due rows sent
        # (alerts/delivery.py). A lost send-task message delays an alert by at most this long.
        "sweep-alert-outbox": {
            "task": "alerts.sweep_outbox",
            "schedule": timedelta(seconds=settings.ALERT_SWEEP_SECONDS),
            "options": {"expires": settings.ALERT_SWEEP_SECONDS},
        },
    }
    if settings.MARKET_SOURCE == "replay":
        schedule["advance-replay-clock"] = {
            "task": "scanners.advance_replay_clock",
            "schedule": timedelta(seconds=settings.REPLAY_TICK_SECONDS),
            "options": {"expires": settings.REPLAY_TICK_SECONDS},
        }
    else:
        # Summaries at DAILY_SUMMARY_HOUR:00 in TIME_ZONE (the app's `timezone`). In a replay the
        # clock's tick sends `alerts.replay_summaries` instead, by market time.
        hour = int(settings.DAILY_SUMMARY_HOUR)
        schedule["daily-summary"] = {
            "task": "alerts.daily_summary",
            "schedule": crontab(hour=hour, minute=0),
        }
        schedule["weekly-report"] = {
            "task": "alerts.weekly_report",
            "schedule": crontab(hour=hour, minute=0, day_of_week="mon"),
        }
        schedule["monthly-report"] = {
            "task": "alerts.monthly_report",
            "schedule": crontab(hour=hour, minute=0, day_of_month="1"),
        }
    refresh = int(settings.TRADE_TALLY_REFRESH_SECONDS)
    if settings.MARKET_SOURCE == "binance" and refresh:
        # A live scan then reads the trades of the minutes since, not of its whole hour.
        schedule["refresh-trade-tallies"] = {
            "task": "scanners.refresh_trade_tallies",
            "schedule": timedelta(seconds=refresh),
            "options": {"expires": refresh},
        }
    if str(settings.TELEGRAM_BOT_TOKEN or "").strip():
        # The bot's getUpdates poller.
        schedule["poll-bot-updates"] = {
            "task": "alerts.poll_bot_updates",
            "schedule": timedelta(seconds=settings.BOT_POLL_SECONDS),
            "options": {"expires": settings.BOT_POLL_SECONDS},
        }
    return schedule


beat_schedule = build_beat_schedule()
