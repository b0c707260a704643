"""The scanners' API routes, mounted at /api/ (cryptosatx/urls.py lists them at the API root)."""

from core.api import ApiRouter
from scanners import api, watchlist_api

router = ApiRouter()
router.register("scans", api.ScanRunViewSet)
router.register("watchlists", watchlist_api.WatchlistViewSet, basename="watchlist")

urlpatterns = router.urls
