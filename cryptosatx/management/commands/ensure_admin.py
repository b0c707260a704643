"""`python manage.py ensure_admin`: the first admin user, created once."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Create the admin user if no superuser exists. Password from ADMIN_PASSWORD, or a random "
        "one printed once (it is stored only as a hash)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("Admin user exists; its password is unchanged.")
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(
                f"Created admin user '{username}' with the password in ADMIN_PASSWORD."
            )
            return
        banner = "=" * 64
        self.stdout.write(
            self.style.WARNING(
                f"{banner}\nCreated admin user '{username}' with password: {password}\n"
                "It is shown only this once; change it in the admin.\n"
                f"{banner}"
            )
        )
