from django.apps import AppConfig


class WebConfig(AppConfig):
    """The dashboard: server-rendered pages over the same services as the API."""

    name = "web"
    verbose_name = "Dashboard"
