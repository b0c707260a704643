"""The demo's history, from its first minute.

On the first `make run` the replay clock stands at the start of the stored history, and every
statistic would say "too few to judge" for a long while. So the runner replays the first
REPLAY_FILL_DAYS of it in the background, at full speed (the replay's in-process path), while the
web server is already up; the live replay clock then goes on from where the fill ended. While it
runs, the clock is held by the fill (beat's tick waits), the console logs its progress and
/api/health says "filling history: 2024-01-12, 40 %". A fill cut short (Ctrl-C) resumes on the
next `make run`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections

from cryptosatx.models import ReplayProgress, ReplayPurpose, ReplayState
from cryptosatx.replay import HourDone, Replay, ReplayPlan, interrupted_replay, plan_of
from market.replay_clock import ensure_clock

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0


def history_fill_due() -> tuple[ReplayPlan, ReplayProgress | None] | None:
    """The fill to do now, with the interrupted one it resumes; None when there is none to do:
    not a replay, REPLAY_FILL_DAYS is 0, an empty store, or a clock that has moved on its own or
    already had its fill."""
    if settings.MARKET_SOURCE != "replay" or settings.REPLAY_FILL_DAYS <= 0:
        return None
    interrupted = interrupted_replay()
    if interrupted is not None and interrupted.purpose == ReplayPurpose.HISTORY_FILL:
        return plan_of(interrupted), interrupted
    if ReplayProgress.objects.filter(purpose=ReplayPurpose.HISTORY_FILL).exists():
        return None
    clock = ensure_clock()
    if clock is None or clock.ticks or clock.finished:
        return None
    end = min(clock.market_time + timedelta(days=settings.REPLAY_FILL_DAYS), clock.end)
    plan = ReplayPlan(
        start=clock.market_time, end=end, keep_clock=True, purpose=ReplayPurpose.HISTORY_FILL
    )
    return plan, None


def progress_text(progress: ReplayProgress) -> str:
    """`filling history: 2024-01-12, 40 %` (or `replaying history: …` for manage.py replay)."""
    what = (
        "filling history" if progress.purpose == ReplayPurpose.HISTORY_FILL else "replaying history"
    )
    reached = progress.reached or progress.start
    percent = 100 * progress.hours_done / progress.hours_total if progress.hours_total else 0
    return f"{what}: {reached:%Y-%m-%d}, {percent:.0f} %"


def replay_under_way() -> ReplayProgress | None:
    """The replay or fill running now, if one is."""
    return ReplayProgress.objects.filter(state=ReplayState.RUNNING).first()


class HistoryFill(threading.Thread):
    """The fill, on a thread of the runner; `stop()` ends it after the market hour under way."""

    def __init__(self, plan: ReplayPlan, resume_from: ReplayProgress | None) -> None:
        super().__init__(name="history-fill", daemon=True)
        self.plan = plan
        self.resume_from = resume_from
        self.replay = Replay(plan, on_hour=self._log_progress)
        self._logged_at = 0.0
        self._began = time.monotonic()
        self._hours_before = resume_from.hours_done if resume_from else 0

    def run(self) -> None:
        logger.info(
            "filling history: replaying %s to %s at full speed in the background",
            f"{self.plan.start:%Y-%m-%d %H:%M}",
            f"{self.plan.end:%Y-%m-%d %H:%M} UTC",
        )
        try:
            self.replay.run(resume_from=self.resume_from)
        except Exception:
            logger.exception("filling history failed; the live clock goes on from where it was")
            return
        finally:
            connections.close_all()
        if self.replay.stopped:
            logger.info("filling history stopped; the next `make run` resumes it")
        else:
            logger.info(
                "history filled up to %s; the replay clock goes on from there",
                f"{self.plan.end:%Y-%m-%d %H:%M} UTC",
            )

    def stop(self) -> None:
        self.replay.stop()

    def _log_progress(self, done: HourDone) -> None:
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_SECONDS and done.hours_done < done.hours_total:
            return
        self._logged_at = now
        rate = (done.hours_done - self._hours_before) / max(now - self._began, 1e-9)
        left = (done.hours_total - done.hours_done) / rate if rate else 0
        logger.info(
            "filling history: %s, %d %% (%.1f market h/s, about %d s left)",
            f"{done.market_time:%Y-%m-%d}",
            100 * done.hours_done // done.hours_total,
            rate,
            left,
        )
