"""Signals API routes, mounted at /api/."""

from cryptosatx.api import ApiRouter
from tracking import api

router = ApiRouter()
router.register("signals", api.SignalViewSet)

urlpatterns = router.urls
