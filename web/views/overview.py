"""The overview (`/`): what a trader opens every morning. Signed-in users.

Health: every user sees what /api/health shows anyone (the status, the parts that are down, the
history fill); staff also see each part's details, as /api/health gives staff.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core import health_hook


@login_required
def overview_page(request: HttpRequest) -> HttpResponse:
    report = health_hook.report_kept()
    parts = (
        {name: check for name, check in report.items() if isinstance(check, dict)}
        if request.user.is_staff
        else {}
    )
    return render(
        request,
        "web/overview.html",
        {"health": health_hook.public(report), "health_parts": parts},
    )
