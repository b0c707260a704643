"""Unified-ranking API routes, mounted at /api/."""

from django.urls import path

from scoring import api

urlpatterns = [
    path(
        "scan/unified-ranking",
        api.UnifiedRankingViewSet.as_view({"get": "list"}),
        name="unified-ranking",
    ),
]
