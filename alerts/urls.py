"""Alerts API routes, mounted at /api/."""

from django.urls import path

from alerts import api
from core.api import ApiRouter

router = ApiRouter()
router.register("alerts", api.AlertViewSet)

urlpatterns = [
    *router.urls,
    path(
        "watchlists/<int:pk>/alerts",
        api.WatchlistAlertViewSet.as_view({"get": "list"}),
        name="watchlist-alerts",
    ),
]
