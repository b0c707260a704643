"""Receivers of the tracking app, connected in `TrackingConfig.ready()`."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core import read_cache
from tracking.models import OutcomeCheck, Signal
from tracking.outcomes import checks_create_for
from tracking.signals import signal_recorded


@receiver(signal_recorded, sender=Signal, dispatch_uid="tracking.outcome_checks")
def create_outcome_checks(sender: type[Signal], instance: Signal, **kwargs) -> None:
    """The signal's five outcome checks, in the transaction that records it: both or neither."""
    checks_create_for(instance)


@receiver(post_save, sender=Signal, dispatch_uid="tracking.read_cache_signal_save")
@receiver(post_delete, sender=Signal, dispatch_uid="tracking.read_cache_signal_delete")
@receiver(post_save, sender=OutcomeCheck, dispatch_uid="tracking.read_cache_check_save")
@receiver(post_delete, sender=OutcomeCheck, dispatch_uid="tracking.read_cache_check_delete")
def performance_changed(sender: type, **kwargs: Any) -> None:
    """A signal or outcome check saved or deleted one at a time (a signal recorded, a user
    deleted with their manual signals, the shell, a test's factory): the cached performance
    answers are stale. The bulk writers (the outcome workers' batches, check creation, the
    unified context refresh, a rollup rebuild) bump where they write, since they send no signal."""
    read_cache.bump(read_cache.PERFORMANCE)
