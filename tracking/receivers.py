"""Receivers of the tracking app, connected in `TrackingConfig.ready()`."""

from __future__ import annotations

from django.dispatch import receiver

from tracking.models import Signal
from tracking.outcomes import checks_create_for
from tracking.signals import signal_recorded


@receiver(signal_recorded, sender=Signal, dispatch_uid="tracking.outcome_checks")
def create_outcome_checks(sender: type[Signal], instance: Signal, **kwargs) -> None:
    """The signal's five outcome checks, in the transaction that records it: both or neither."""
    checks_create_for(instance)
