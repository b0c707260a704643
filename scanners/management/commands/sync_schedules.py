"""`python manage.py sync_schedules`: create the scanners' beat schedules that are missing."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from scanners import schedules


class Command(BaseCommand):
    help = (
        "Create the PeriodicTask rows of the scanners (django-celery-beat) from the "
        "*_INTERVAL_HOURS settings when they are missing; rows edited in the admin stay as "
        "they are."
    )

    def handle(self, *args, **options) -> None:
        if not schedules.beat_in_database():
            self.stdout.write("django_celery_beat is not installed: beat uses the settings.")
            return
        created = schedules.sync_schedules()
        if created:
            self.stdout.write(f"Created schedules: {', '.join(created)}")
        else:
            self.stdout.write("Scanner schedules already exist; left as they are.")
