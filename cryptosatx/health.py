"""GET /api/health: open to anyone (load balancers, `make run`'s users), reveals no data."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cryptosatx.services import health_report


@never_cache
@require_GET
def health_view(request: HttpRequest) -> JsonResponse:
    report = health_report()
    # 503 when a part is down, so a probe needs only the status code; the body says which part.
    status = 503 if report["status"] == "error" else 200
    return JsonResponse(report, status=status)
