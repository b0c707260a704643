from django.apps import AppConfig


class CryptosatxConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cryptosatx"
    verbose_name = "Service health"

    def ready(self) -> None:
        from alerts import bot
        from cryptosatx import (
            broker_checks,  # noqa: F401  (registers its system check)
            services,
        )

        # Looked up per call, so the report is always the one cryptosatx.services has now.
        bot.health_report_provide(lambda: services.health_report())
