"""Receivers of the alerts app, connected in `AlertsConfig.ready()`."""

from __future__ import annotations

from django.dispatch import receiver

from alerts.models import AlertState
from alerts.services import alerts_for_signal, send_soon
from tracking.models import Signal
from tracking.signals import signal_recorded


@receiver(signal_recorded, sender=Signal, dispatch_uid="alerts.alerts_for_signal")
def create_alerts(sender: type[Signal], instance: Signal, **kwargs) -> None:
    """The signal's alert, in the transaction that records it: both or neither. The send task is
    queued once the transaction commits."""
    alerts = alerts_for_signal(instance)
    if any(alert.state == AlertState.PENDING for alert in alerts):
        send_soon()
