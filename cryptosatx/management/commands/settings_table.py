"""`python manage.py settings_table`: the README's settings table, from the settings registry."""

from django.core.management.base import BaseCommand

from cryptosatx.config import settings_table_markdown


class Command(BaseCommand):
    help = "Print every environment setting with its default and meaning, as a Markdown table."

    def handle(self, *args, **options) -> None:
        self.stdout.write(settings_table_markdown(), ending="")
