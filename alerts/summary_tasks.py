"""Celery tasks of the summaries and the bot (queue `alerts`); registered through celeryconfig's
`imports` (autodiscovery only finds `alerts.tasks`).

- `alerts.daily_summary`, `alerts.weekly_report`, `alerts.monthly_report`: beat's crontab at
  DAILY_SUMMARY_HOUR in TIME_ZONE (every day / Mondays / the 1st), outside a replay. Each writes
  the last complete period's summary into the outbox once; running again changes nothing.
- `alerts.replay_summaries`: sent by the replay clock's tick (scanners.advance_replay_clock); writes
  the summaries whose send time has passed in market time.
- `alerts.poll_bot_updates`: beat every BOT_POLL_SECONDS while TELEGRAM_BOT_TOKEN is set.
"""

from __future__ import annotations

from datetime import date

from celery import shared_task

from alerts import bot, summaries
from alerts.models import AlertKind


def _send(kind: str, day: str | None) -> dict:
    if day:
        period = summaries.period_containing(kind, date.fromisoformat(day))
    else:
        period = summaries.last_complete_period(kind)
    alert, created = summaries.summary_send(period)
    # alert None: the period ends before the first scan, so there is nothing to report.
    return {
        "alert": alert.pk if alert is not None else None,
        "created": created,
        "period": period.first_day.isoformat(),
    }


# All are safe to run twice: one row per (kind, chat, period), enforced by a unique constraint.
@shared_task(name="alerts.daily_summary", ignore_result=True, acks_late=True, time_limit=120)
def daily_summary(day: str | None = None) -> dict:
    """Yesterday's summary (market days in TIME_ZONE), or `day`'s (ISO date)."""
    return _send(AlertKind.DAILY_SUMMARY, day)


@shared_task(name="alerts.weekly_report", ignore_result=True, acks_late=True, time_limit=120)
def weekly_report(day: str | None = None) -> dict:
    """Last week's report (Monday to Sunday), or that of the week containing `day`."""
    return _send(AlertKind.WEEKLY_REPORT, day)


@shared_task(name="alerts.monthly_report", ignore_result=True, acks_late=True, time_limit=120)
def monthly_report(day: str | None = None) -> dict:
    """Last month's report, or that of the month containing `day`."""
    return _send(AlertKind.MONTHLY_REPORT, day)


@shared_task(name="alerts.replay_summaries", ignore_result=True, acks_late=True, time_limit=120)
def replay_summaries() -> list[int]:
    """In a replay: the summaries due by market time (nothing outside a replay)."""
    return [alert.pk for alert in summaries.replay_summaries_due()]


@shared_task(
    name="alerts.poll_bot_updates",
    ignore_result=True,
    # Not acks_late: a lost poll is simply the next tick's; the offset lives in the database.
    soft_time_limit=25,
    time_limit=30,
)
def poll_bot_updates() -> dict[str, int]:
    """Answer the bot commands that arrived since the last poll (allowed chats only)."""
    return bot.bot_poll()
