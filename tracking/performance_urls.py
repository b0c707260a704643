"""The performance API routes, mounted at /api/performance/ (the original product's paths)."""

from django.urls import path

from tracking.performance_api import PerformanceViewSet, TrackerViewSet, TrackSignalViewSet


def _get(action: str) -> object:
    return PerformanceViewSet.as_view({"get": action})


urlpatterns = [
    path("stats", _get("stats"), name="performance-stats"),
    path("report", _get("report"), name="performance-report"),
    path("by-scanner", _get("by_scanner"), name="performance-by-scanner"),
    path("by-tier", _get("by_tier"), name="performance-by-tier"),
    path("by-interval", _get("by_interval"), name="performance-by-interval"),
    path("by-signal-type", _get("by_signal_type"), name="performance-by-signal-type"),
    path("by-symbol", _get("by_symbol"), name="performance-by-symbol"),
    path("top-performers", _get("top_performers"), name="performance-top-performers"),
    path("recommendations", _get("recommendations"), name="performance-recommendations"),
    path(
        "tracker-stats",
        TrackerViewSet.as_view({"get": "stats"}),
        name="performance-tracker-stats",
    ),
    path(
        "tracker/start",
        TrackerViewSet.as_view({"post": "start"}),
        name="performance-tracker-start",
    ),
    path(
        "tracker/stop",
        TrackerViewSet.as_view({"post": "stop"}),
        name="performance-tracker-stop",
    ),
    path(
        "track-signal",
        TrackSignalViewSet.as_view({"post": "create"}),
        name="performance-track-signal",
    ),
]
