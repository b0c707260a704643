"""Celery tasks of the alerts app (queue `alerts`): thin wrappers around alerts.delivery."""

from __future__ import annotations

from celery import shared_task

from alerts import delivery


@shared_task(
    name="alerts.send_pending",
    ignore_result=True,
    # Safe to run twice, even at once: rows are claimed under a row lock with a conditional update,
    # and a SENT row is never claimed again. A redelivered message finds nothing or the next rows.
    acks_late=True,
    soft_time_limit=100,
    time_limit=120,
)
def send_pending() -> dict[str, int]:
    """Send the due alerts within Telegram's limits; queued on commit of each new alert."""
    report = delivery.outbox_send_due(max_seconds=delivery.SEND_BATCH_SECONDS)
    if delivery.outbox_has_due():
        # More than one batch's worth (or a retry falling due just after): go on in a new task.
        send_pending.delay()
    return report.as_dict()


@shared_task(
    name="alerts.sweep_outbox",
    ignore_result=True,
    # A second sweep changes nothing (conditional updates): expiring is harmless.
    soft_time_limit=25,
    time_limit=30,
)
def sweep_outbox() -> dict[str, int]:
    """Beat, every 30 s: stale SENDING → UNCONFIRMED (then the policy), due rows → send_pending."""
    unconfirmed = delivery.outbox_sweep_stale()
    due = delivery.outbox_has_due()
    if due:
        send_pending.delay()
    return {"unconfirmed": len(unconfirmed), "queued_send": int(due)}
