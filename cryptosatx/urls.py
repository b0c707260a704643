from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import APIRootView

from alerts import urls as alerts_urls
from cryptosatx import health
from market import urls as market_urls
from scanners import urls as scanners_urls
from tracking import performance_urls
from tracking import urls as tracking_urls

# Django's own errors: JSON in the error envelope under /api/, Django's HTML pages elsewhere.
handler400 = "core.api.handler400"
handler403 = "core.api.handler403"
handler404 = "core.api.handler404"
handler500 = "core.api.handler500"

admin.site.site_header = "CryptoSatX"
admin.site.site_title = "CryptoSatX admin"
admin.site.index_title = "Markets, scans and signals"

# The API root lists every resource reachable without an id: {path: url name}. Every app's router
# collections, the unified ranking, every /api/performance/ endpoint, health and the schema.
API_ROOT = (
    {
        prefix: f"{basename}-list"
        for module in (market_urls, scanners_urls, tracking_urls, alerts_urls)
        for prefix, _viewset, basename in module.router.registry
    }
    | {"scan/unified-ranking": "unified-ranking"}
    | {f"performance/{pattern.pattern}": pattern.name for pattern in performance_urls.urlpatterns}
    | {"health": "health", "schema": "schema", "docs": "swagger-ui"}
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", health.health_view, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", APIRootView.as_view(api_root_dict=API_ROOT), name="api-root"),
    path("api/", include("market.urls")),
    path("api/", include("scanners.urls")),
    path("api/", include("scoring.urls")),
    path("api/", include("tracking.urls")),
    path("api/", include("alerts.urls")),
    path("api/performance/", include("tracking.performance_urls")),
    path("", include("web.urls")),
]
