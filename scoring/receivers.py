"""Receivers of the scoring app, connected in `ScoringConfig.ready()`."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from core import read_cache
from scoring.models import UnifiedRanking


@receiver(post_save, sender=UnifiedRanking, dispatch_uid="scoring.read_cache_save")
@receiver(post_delete, sender=UnifiedRanking, dispatch_uid="scoring.read_cache_delete")
def ranking_changed(sender: type[UnifiedRanking], **kwargs: Any) -> None:
    """A ranking row saved or deleted one at a time (the shell, a test's factory, a scan run
    deleted with its rows): the cached rankings are stale. The scans' own bulk upsert bumps in
    `ranking_update_for_run`, where no signal is sent."""
    read_cache.bump(read_cache.RANKING)
