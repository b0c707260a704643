"""Start-up checks of the broker's timing: the visibility timeout and the scan stale window.

Redis redelivers a message that a worker fetched and has not acknowledged (acks_late tasks, and
every task sent with eta or countdown, which a worker holds unacknowledged until it is due) once
CELERY_VISIBILITY_TIMEOUT has passed. A timeout shorter than a task's time limit, or than an eta
lead plus the time limit of the task run then, would have a healthy task run twice. So it must be
at least the longest such hold plus MARGIN_SECONDS:

- the longest `time_limit` of any task of the app (a task without one has task_time_limit);
- the outcome checks, sent with eta up to `tracking.outcomes.LOOKAHEAD` (5 min) ahead: that lead
  plus `tracking.run_outcome_checks`' time limit.

SCAN_STALE_SECONDS must exceed `scanners.scan_batch`'s time limit, or the watchdog would take a
batch still running for a lost one.

Workers and beat refuse to start (`SystemExit` with the message, from cryptosatx/celery.py), and
`manage.py check` (run by migrate, runserver and the worker's Django set-up) reports an error.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from celery import Celery
from django.conf import settings
from django.core import checks
from django.utils.module_loading import autodiscover_modules

MARGIN_SECONDS = 60
BATCH_TASK = "scanners.scan_batch"
OUTCOME_TASK = "tracking.run_outcome_checks"


@dataclass(frozen=True)
class Hold:
    """How long a message may stay unacknowledged at a worker, and why."""

    seconds: float
    why: str


def _time_limit(app: Celery, name: str) -> float:
    task = app.tasks[name]
    return float(task.time_limit or app.conf.task_time_limit or 0)


def longest_hold(app: Celery) -> Hold:
    """The longest a healthy message stays unacknowledged (see the module docstring)."""
    from tracking.outcomes import LOOKAHEAD

    # Every task registered. Not app.loader.import_default_modules(): under the worker's Django
    # fixup that runs the system checks, which would call this again.
    autodiscover_modules("tasks")
    for module in app.conf.imports or ():
        importlib.import_module(module)
    holds = [
        Hold(_time_limit(app, name), f"the time limit of {name}")
        for name in app.tasks
        if not name.startswith("celery.")
    ]
    lead = LOOKAHEAD.total_seconds()
    holds.append(
        Hold(
            lead + _time_limit(app, OUTCOME_TASK),
            f"an outcome check's eta lead ({lead:g} s) plus the time limit of {OUTCOME_TASK}",
        )
    )
    return max(holds, key=lambda hold: hold.seconds)


def broker_timing_problems(app: Celery) -> list[str]:
    """Why the configured timings are unsafe, one message each; empty when they are fine."""
    problems = []
    hold = longest_hold(app)
    visibility = app.conf.broker_transport_options.get("visibility_timeout")
    needed = hold.seconds + MARGIN_SECONDS
    if visibility is not None and visibility < needed:
        problems.append(
            f"CELERY_VISIBILITY_TIMEOUT={visibility:g} is too short: Redis would deliver a task "
            f"again while a worker still runs it. It must be at least {needed:g} s: "
            f"{hold.why} ({hold.seconds:g} s) plus a {MARGIN_SECONDS} s margin."
        )
    batch_limit = _time_limit(app, BATCH_TASK)
    stale = float(settings.SCAN_STALE_SECONDS)
    if stale <= batch_limit:
        problems.append(
            f"SCAN_STALE_SECONDS={stale:g} is too short: the scan watchdog would re-send batches "
            f"still running. It must exceed the time limit of {BATCH_TASK} ({batch_limit:g} s)."
        )
    return problems


def refuse_unsafe_broker_timing(app: Celery) -> None:
    """Stop the process (a worker or beat starting) when the timings are unsafe. SystemExit,
    because Celery's signals log and swallow ordinary exceptions from their receivers."""
    problems = broker_timing_problems(app)
    if problems:
        raise SystemExit("cryptosatx: start-up refused: " + " ".join(problems))


@checks.register(checks.Tags.compatibility)
def check_broker_timing(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """`manage.py check`: the same rules as a Django system check error."""
    from cryptosatx.celery import app

    return [checks.Error(problem, id="cryptosatx.E101") for problem in broker_timing_problems(app)]
