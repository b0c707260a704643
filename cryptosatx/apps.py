from django.apps import AppConfig


class CryptosatxConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cryptosatx"
    verbose_name = "Service health"

    def ready(self) -> None:
        from core import health_hook
        from cryptosatx import (
            broker_checks,  # noqa: F401  (registers its system check)
            services,
        )

        # Looked up per call, so the report is always the one cryptosatx.services has now.
        health_hook.provide(
            fresh=lambda: services.health_report(),
            # A page never waits for the process's first probe: it shows "waiting" instead.
            kept=lambda: services.health_prober().report(first_wait=0),
            public=lambda report: services.public_health(report),
        )
