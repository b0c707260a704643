"""Service tasks: the beat heartbeat and the worker round-trip probe used by the health endpoint."""

from __future__ import annotations

from celery import shared_task

from cryptosatx import services


# Idempotent (an upsert of "now"), so a redelivered message is harmless: acks_late.
@shared_task(name="cryptosatx.heartbeat", ignore_result=True, acks_late=True)
def heartbeat() -> None:
    """Scheduled by beat, run by a worker: a fresh row proves beat, broker and a worker all move."""
    services.heartbeat_record("beat")


@shared_task(name="cryptosatx.ping", acks_late=True)
def ping() -> str:
    """Answered by any worker on the default queue; the health endpoint times the round trip."""
    return "pong"
