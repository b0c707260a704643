"""The market API's routes, mounted at /api/ (cryptosatx/urls.py lists them at the API root)."""

from core.api import ApiRouter
from market import api

router = ApiRouter()
router.register("markets", api.MarketViewSet)
router.register("candles", api.CandlesViewSet, basename="candles")
router.register("replay-clock", api.ReplayClockViewSet, basename="replay-clock")

urlpatterns = router.urls
