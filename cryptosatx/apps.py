from django.apps import AppConfig


class CryptosatxConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cryptosatx"
    verbose_name = "Service health"

    def ready(self) -> None:
        from cryptosatx import broker_checks  # noqa: F401  (registers its system check)
