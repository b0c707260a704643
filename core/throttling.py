"""The API's throttles: DRF's, with their rates read from the settings table and their counts
kept in the `THROTTLE_CACHE` cache (Redis when there is one, so every web process shares them).

- `AnonThrottle` (API_THROTTLE_ANON): requests without login, per client IP (the open endpoints:
  health, schema, docs; every other endpoint answers 401 before any throttle counts).
- `UserThrottle` (API_THROTTLE_USER): requests per user, all endpoints together.
- `ScanStartThrottle` (API_THROTTLE_SCANS) and `TrackSignalThrottle` (API_THROTTLE_TRACK_SIGNAL):
  the two actions that make work for the workers, per user, on top of the user rate.

Past a rate the answer is 429 in the error envelope (code `throttled`) with Retry-After.
Rates are read when a throttle is made (each request), so a changed setting applies at once.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import BaseCache, caches
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class SettingRateMixin:
    """The rate from the setting `rate_setting`; the counts in the throttle cache."""

    rate_setting = ""

    @property
    def cache(self) -> BaseCache:
        return caches[settings.THROTTLE_CACHE]

    def get_rate(self) -> str:
        # Read by computed name: every throttle's `rate_setting` is in the settings table
        # (tests/test_config.py checks it).
        return getattr(settings, self.rate_setting)


class AnonThrottle(SettingRateMixin, AnonRateThrottle):
    rate_setting = "API_THROTTLE_ANON"


class UserThrottle(SettingRateMixin, UserRateThrottle):
    rate_setting = "API_THROTTLE_USER"


class UserActionThrottle(SettingRateMixin, SimpleRateThrottle):
    """One action's rate per user (`scope` names the action in the cache key)."""

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # such a request is refused (401) before it gets here
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class ScanStartThrottle(UserActionThrottle):
    scope = "scan_start"
    rate_setting = "API_THROTTLE_SCANS"


class TrackSignalThrottle(UserActionThrottle):
    scope = "track_signal"
    rate_setting = "API_THROTTLE_TRACK_SIGNAL"
