"""Service heartbeats (the last time each background component was seen doing work) and the
progress of the replay."""

from django.db import models


class Heartbeat(models.Model):
    """Written by the `cryptosatx.heartbeat` task that beat schedules and a worker executes, so a
    fresh row proves both; the health endpoint reads it."""

    component = models.CharField(max_length=32, unique=True)
    seen_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.component} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class ReplayState(models.TextChoices):
    RUNNING = "running", "Running"
    INTERRUPTED = "interrupted", "Interrupted (resumable)"
    FINISHED = "finished", "Finished"


class ReplayPurpose(models.TextChoices):
    REPLAY = "replay", "Replay (manage.py replay)"
    HISTORY_FILL = "history_fill", "Filling the demo's history (make run)"


class ReplayProgress(models.Model):
    """The replay under way or the last one (one row: there is one replay clock). Written whole
    when the replay stops (Ctrl-C, an error) or ends, so an interrupted replay resumes where it
    stopped; meanwhile its hour reached, every second or so (cryptosatx/replay.py)."""

    start = models.DateTimeField()
    end = models.DateTimeField()
    symbols = models.JSONField(null=True, blank=True, help_text="None: the universe.")
    state = models.CharField(max_length=12, choices=ReplayState.choices)
    purpose = models.CharField(
        max_length=12, choices=ReplayPurpose.choices, default=ReplayPurpose.REPLAY
    )
    reached = models.DateTimeField(null=True, help_text="The last market hour whose work is done.")
    hours_done = models.PositiveIntegerField(default=0)
    hours_total = models.PositiveIntegerField(default=0)
    next_due = models.JSONField(default=dict, help_text="Scanner -> market time it is next due.")
    run_ids = models.JSONField(default=list, help_text="The scan runs this replay started.")
    refused = models.PositiveIntegerField(default=0)
    saved_clock = models.JSONField(
        null=True, help_text="The replay clock as the replay found it; put back at its end."
    )
    keep_clock = models.BooleanField(
        default=False, help_text="Leave the clock where the replay ends (the history fill)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "replay progress"

    def __str__(self) -> str:
        return f"replay {self.start:%Y-%m-%d} → {self.end:%Y-%m-%d}: {self.state}"
