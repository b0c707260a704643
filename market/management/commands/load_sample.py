"""`python manage.py load_sample`: import the bundled market sample when the store is empty."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from market.models import Candle


class Command(BaseCommand):
    help = "Import SAMPLE_DATA_DIR into the candle store if it holds no candles yet."

    def handle(self, *args, **options) -> None:
        if Candle.objects.exists():
            self.stdout.write("Candle store already holds data; sample not imported.")
            return
        sample = settings.SAMPLE_DATA_DIR
        if not sample.is_dir():
            raise CommandError(f"SAMPLE_DATA_DIR {sample} is not a folder")
        self.stdout.write(f"Empty candle store: importing the bundled sample from {sample}")
        call_command("import_ohlcv", str(sample), stdout=self.stdout, stderr=self.stderr)
