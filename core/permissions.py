"""Who may do what in the API: the one place the rule is written (README, "Who may do what").

Four kinds of caller:
- anonymous: `GET /api/health`, the OpenAPI schema and its docs; everything else is a 401.
- a user (logged in): reads the market, the ranking, the statistics, the alert history and
  every scanner's signals; scans coins they name or a watchlist of theirs; tracks signals by hand.
- the owner: their watchlists, their watchlists' scans and their manual signals are theirs alone;
  another user gets a 404 for them, as if they did not exist.
- staff: the global actions below, each a Django permission, so an admin can grant one to any
  user (admin → Users → permissions) without making them staff; a superuser holds them all.

| action                                   | permission                 |
|------------------------------------------|----------------------------|
| start / stop the outcome tracker         | tracking.control_tracker   |
| resend an alert (posts to the chat again)| alerts.resend_alert        |
| scan the whole universe or its top N     | scanners.scan_universe     |
| see every user's scans                   | scanners.view_scanrun      |
| see every user's manual signals          | tracking.view_signal       |

Global settings are not changed through the API at all: they are environment variables, and the
beat schedules are edited in the admin (staff, Django's own permissions).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

CONTROL_TRACKER = "tracking.control_tracker"
RESEND_ALERT = "alerts.resend_alert"
SCAN_UNIVERSE = "scanners.scan_universe"
VIEW_ALL_SCANS = "scanners.view_scanrun"
VIEW_ALL_SIGNALS = "tracking.view_signal"


def denied_message(perm: str, doing: str) -> str:
    return f"You may not {doing}: it needs the {perm} permission (staff, or granted by an admin)."


class GlobalActionPermission(IsAuthenticated):
    """A logged-in user holding `perm` (Django's has_perm: granted to them or their group, or a
    superuser). Without login: 401; logged in without it: 403 saying which permission."""

    perm = ""
    doing = ""

    @property
    def message(self) -> str:
        return denied_message(self.perm, self.doing)

    def has_permission(self, request: Request, view: object) -> bool:
        return super().has_permission(request, view) and request.user.has_perm(self.perm)


class CanControlTracker(GlobalActionPermission):
    perm = CONTROL_TRACKER
    doing = "start or stop the outcome tracker"


class CanResendAlert(GlobalActionPermission):
    perm = RESEND_ALERT
    doing = "resend an alert"


def require(request: Request, perm: str, doing: str) -> None:
    """For a rule that depends on the request's content (a scan's scope): 403 without `perm`."""
    if not request.user.has_perm(perm):
        raise PermissionDenied(denied_message(perm, doing))


def sees_everyones(user: AbstractBaseUser | AnonymousUser | None, perm: str) -> bool:
    """Whether `user` sees every user's objects of a kind (VIEW_ALL_SCANS, VIEW_ALL_SIGNALS),
    not only their own and the shared ones."""
    return bool(user and user.is_authenticated and user.has_perm(perm))
