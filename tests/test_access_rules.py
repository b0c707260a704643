"""The holes the access rules close (README "Who may do what", "Throttling and lockout"): a user
can no longer stop the tracker or resend an alert, a staff member or a user granted the
permission can; logins lock out after LOGIN_FAILURE_LIMIT failures; the API answers 429 past its
rates, in the error envelope with Retry-After."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from alerts.models import Alert
from scanners.models import ScanRun
from tests.factories import MarketFactory, SignalAlertFactory, UserFactory
from tracking.models import TrackerState

pytestmark = pytest.mark.django_db


def tracker_enabled() -> bool:
    return TrackerState.objects.get(pk=1).enabled


def api_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def sent_tasks(monkeypatch) -> list[tuple]:
    from cryptosatx.celery import app

    sent: list[tuple] = []
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: sent.append(args))
    return sent


def _clear_local_throttles() -> None:
    cache = caches["throttle"]
    if isinstance(cache, LocMemCache):  # never clear a Redis: that would flush its database
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    _clear_local_throttles()
    yield
    _clear_local_throttles()


# --- global actions -------------------------------------------------------------------------------


def test_stopping_the_tracker_as_a_user_is_403_and_the_tracker_still_runs():
    TrackerState.objects.create(pk=1, enabled=True)
    response = api_of(UserFactory()).post("/api/performance/tracker/stop")
    assert response.status_code == 403
    assert "tracking.control_tracker" in response.json()["error"]["message"]
    assert tracker_enabled()


def test_a_user_granted_control_of_the_tracker_can_stop_it():
    TrackerState.objects.create(pk=1, enabled=True)
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="control_tracker"))
    assert api_of(user).post("/api/performance/tracker/stop").status_code == 200
    assert not tracker_enabled()


def test_resending_an_alert_as_a_user_is_403_and_nothing_is_queued(
    django_capture_on_commit_callbacks, sent_tasks
):
    alert = SignalAlertFactory(state="failed")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_of(UserFactory()).post(f"/api/alerts/{alert.pk}/resend")
    assert response.status_code == 403
    assert Alert.objects.get(pk=alert.pk).state == "failed"
    assert sent_tasks == []


def test_resending_an_alert_as_staff_queues_it(django_capture_on_commit_callbacks, sent_tasks):
    alert = SignalAlertFactory(state="failed")
    staff = UserFactory(is_staff=True, is_superuser=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_of(staff).post(f"/api/alerts/{alert.pk}/resend").status_code == 200
    assert Alert.objects.get(pk=alert.pk).state == "pending"
    assert sent_tasks


def test_is_staff_alone_grants_no_global_action():
    TrackerState.objects.create(pk=1, enabled=True)
    response = api_of(UserFactory(is_staff=True)).post("/api/performance/tracker/stop")
    assert response.status_code == 403
    assert tracker_enabled()


def test_a_universe_scan_by_a_user_is_403_and_starts_nothing(settings):
    settings.MARKET_SOURCE = "replay"
    response = api_of(UserFactory()).post("/api/scans/", {"scanner": "rsi"}, format="json")
    assert response.status_code == 403
    assert "scanners.scan_universe" in response.json()["error"]["message"]
    assert not ScanRun.objects.exists()


# --- throttling ---------------------------------------------------------------------------------


def test_the_api_answers_429_in_the_envelope_with_retry_after_past_the_user_rate(settings):
    settings.API_THROTTLE_USER = "3/min"
    api = api_of(UserFactory())
    assert [api.get("/api/markets/").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/api/markets/")
    assert response.status_code == 429
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_each_user_has_their_own_budget(settings):
    settings.API_THROTTLE_USER = "1/min"
    assert api_of(UserFactory()).get("/api/markets/").status_code == 200
    assert api_of(UserFactory()).get("/api/markets/").status_code == 200


def test_anonymous_requests_are_throttled_per_address(settings):
    settings.API_THROTTLE_ANON = "2/hour"
    client = APIClient()
    assert [client.get("/api/schema/").status_code for _ in range(2)] == [200, 200]
    assert client.get("/api/schema/").status_code == 429


def test_starting_scans_has_its_own_rate(settings):
    settings.API_THROTTLE_SCANS = "1/hour"
    MarketFactory(symbol="BTC/USDT", base="BTC")
    MarketFactory(symbol="ETH/USDT", base="ETH")
    api = api_of(UserFactory())
    first = api.post("/api/scans/", {"scanner": "rsi", "symbols": ["BTC"]}, format="json")
    assert first.status_code == 202
    second = api.post("/api/scans/", {"scanner": "mss", "symbols": ["ETH"]}, format="json")
    assert second.status_code == 429
    assert ScanRun.objects.count() == 1
    assert api.get("/api/scans/").status_code == 200  # reading is not starting


def test_tracking_signals_has_its_own_rate(settings):
    settings.API_THROTTLE_TRACK_SIGNAL = "1/hour"
    api = api_of(UserFactory())
    body = {"symbol": "NOPE", "direction": "LONG"}
    assert api.post("/api/performance/track-signal", body, format="json").status_code == 400
    assert api.post("/api/performance/track-signal", body, format="json").status_code == 429


@pytest.mark.redis
def test_the_throttle_counts_are_shared_through_redis(settings):
    """What one web process counted, another sees: the counts are in Redis, not in a process."""
    location = "redis://127.0.0.1:6379/0"
    prefix = f"test-throttle-{uuid.uuid4().hex}"  # the shared Redis: keys of this test only
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
        },
    }
    settings.API_THROTTLE_USER = "2/min"
    user = UserFactory()
    assert [api_of(user).get("/api/markets/").status_code for _ in range(2)] == [200, 200]
    another_process = RedisCache(location, {"KEY_PREFIX": prefix})
    assert len(another_process.get(f"throttle_user_{user.pk}")) == 2
    assert api_of(user).get("/api/markets/").status_code == 429


@pytest.mark.parametrize(
    ("broker", "backend"),
    [("redis://127.0.0.1:6379/0", "RedisCache"), ("memory://", "LocMemCache")],
)
def test_the_throttle_cache_is_redis_with_a_redis_broker_and_local_without(broker, backend):
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.CACHES['throttle']['BACKEND'].rsplit('.', 1)[1])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cryptosatx.settings",
        "CELERY_BROKER_URL": broker,
        "THROTTLE_REDIS_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == backend


# --- login lockout ------------------------------------------------------------------------------


def admin_login(client, username: str, password: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
    )


def test_the_login_after_the_failure_limit_is_locked_out_even_with_the_right_password(settings):
    settings.AXES_FAILURE_LIMIT = 3
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    admin.set_password("right-password")
    admin.save()
    client = APIClient()
    for _ in range(2):
        assert admin_login(client, "root", "wrong").status_code == 200  # the form again
    assert admin_login(client, "root", "wrong").status_code == 429  # the third: locked
    locked = admin_login(client, "root", "right-password")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_login_below_the_limit_succeeds_and_resets_the_count(settings):
    settings.AXES_FAILURE_LIMIT = 3
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    admin.set_password("right-password")
    admin.save()
    client = APIClient()
    admin_login(client, "root", "wrong")
    admin_login(client, "root", "wrong")
    assert admin_login(client, "root", "right-password").status_code == 302
    client.logout()
    admin_login(client, "root", "wrong")
    admin_login(client, "root", "wrong")
    assert admin_login(client, "root", "right-password").status_code == 302
