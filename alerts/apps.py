"""The alerts app: tiers, outbox, Telegram delivery. Built by the alerts issue."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"

    def ready(self) -> None:
        from alerts import receivers  # noqa: F401  (connects the signal_recorded receiver)
