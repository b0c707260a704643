"""Signals API routes, mounted at /api/."""

from core.api import ApiRouter
from tracking import api

router = ApiRouter()
router.register("signals", api.SignalViewSet)

urlpatterns = router.urls
