"""Market-data API routes, mounted at /api/ (the router's root lists them)."""

from rest_framework.routers import DefaultRouter

from scanners import api

router = DefaultRouter()
router.include_format_suffixes = False  # ?format=json does the same, without doubling the schema
router.register("markets", api.MarketViewSet)
router.register("candles", api.CandlesViewSet, basename="candles")
router.register("replay-clock", api.ReplayClockViewSet, basename="replay-clock")

urlpatterns = router.urls
