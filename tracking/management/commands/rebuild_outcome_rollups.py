"""python manage.py rebuild_outcome_rollups: recompute the daily outcome rollups from the signal
and check rows (tracking/rollups.py). Idempotent; safe to run on a live database (writers to the
signal and check tables wait for it on PostgreSQL)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tracking.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute the daily outcome rollups from the signal and check rows."

    def handle(self, *args: object, **options: object) -> None:
        written = rollups_rebuild()
        self.stdout.write(f"outcome rollups rebuilt: {written} rows")
