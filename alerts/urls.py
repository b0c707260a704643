"""Alerts API routes, mounted at /api/."""

from alerts import api
from cryptosatx.api import ApiRouter

router = ApiRouter()
router.register("alerts", api.AlertViewSet)

urlpatterns = router.urls
