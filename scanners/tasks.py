"""Celery tasks of the scanners app: thin wrappers around services, named and routed by name."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from scanners.replay_clock import advance_clock


@shared_task(
    name="scanners.advance_replay_clock", ignore_result=True, soft_time_limit=50, time_limit=60
)
def advance_replay_clock() -> None:
    """Beat's tick of the replay clock (every REPLAY_TICK_SECONDS); does nothing outside a replay
    or while the store is empty."""
    if settings.MARKET_SOURCE == "replay":
        advance_clock()
