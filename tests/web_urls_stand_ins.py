"""The site's URLconf with stand-ins for the dashboard pages other pages link to and that may not
be built yet (the signal page, the performance page): a test can then check that a link points
where the page will be. A page that exists is used as it is; only a missing one gets a stand-in.
For `@pytest.mark.urls("tests.web_urls_stand_ins")`."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLResolver, include, path

from cryptosatx.urls import urlpatterns as site
from web import urls as web_urls


def stand_in(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse(f"stand-in for {request.path}")


LINKED = [
    path("signals/<int:pk>/", stand_in, name="signal"),
    path("performance/", stand_in, name="performance"),
]
present = {getattr(pattern, "name", None) for pattern in web_urls.urlpatterns}
web_patterns = [*web_urls.urlpatterns, *(p for p in LINKED if p.name not in present)]

urlpatterns = [
    *(p for p in site if not (isinstance(p, URLResolver) and p.app_name == "web")),
    path("", include((web_patterns, "web"))),
]
