"""The scanners' API routes, mounted at /api/ (cryptosatx/urls.py lists them at the API root)."""

from cryptosatx.api import ApiRouter
from scanners import api, watchlist_api

router = ApiRouter()
router.register("markets", api.MarketViewSet)
router.register("candles", api.CandlesViewSet, basename="candles")
router.register("replay-clock", api.ReplayClockViewSet, basename="replay-clock")
router.register("scans", api.ScanRunViewSet)
router.register("watchlists", watchlist_api.WatchlistViewSet, basename="watchlist")

urlpatterns = router.urls
