"""GET /api/health: open to anyone (load balancers, `make run`'s users).

Anyone gets `{"status": "ok"|"waiting"|"error", "down": [names of the parts in error]}`; staff
(session or API token) get every part's details. 503 when a part is down, so a probe needs only
the status code. The answer comes from the state the background prober keeps fresh
(cryptosatx.services.HealthProber): a request costs at most a few database reads (none when the
process answered within the last second), never a broker or worker round trip.
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from cryptosatx import services


def _is_staff(request: HttpRequest) -> bool:
    """A staff user signed in (session) or sending `Authorization: Token <key>`. A wrong token
    only means the anonymous answer: health must answer a load balancer whatever it sends."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return bool(user.is_staff)
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return False
    return found is not None and bool(found[0].is_staff)


@never_cache
@require_GET
def health_view(request: HttpRequest) -> JsonResponse:
    report = services.health_prober().report()
    status = 503 if report["status"] == "error" else 200
    body = report if _is_staff(request) else services.public_health(report)
    return JsonResponse(body, status=status)
