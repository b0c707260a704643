"""A test-only URLconf: the product's routes and error handlers, plus a plain Django view under
/api/ that raises (so the 500 handler can be tested without a failing view in the product)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from cryptosatx import urls as product_urls
from cryptosatx.urls import handler400, handler403, handler404, handler500  # noqa: F401


def raising_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug outside DRF")


urlpatterns = [path("api/test-only/raises", raising_view), *product_urls.urlpatterns]
