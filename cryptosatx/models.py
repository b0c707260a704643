"""Service heartbeats: the last time each background component was seen doing work."""

from django.db import models


class Heartbeat(models.Model):
    """Written by the `cryptosatx.heartbeat` task that beat schedules and a worker executes, so a
    fresh row proves both; the health endpoint reads it."""

    component = models.CharField(max_length=32, unique=True)
    seen_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.component} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
