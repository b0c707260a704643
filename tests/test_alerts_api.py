"""GET /api/alerts/: the outbox's history in the envelope, with filters; resending a failed
alert; the alert settings, read-only, in GET /api/health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from alerts.models import Alert
from cryptosatx import services
from tests.factories import SignalAlertFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="alice"))
    return client


@pytest.fixture
def staff_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def alerts() -> list[Alert]:
    """Oldest first: a sent TIER 1 to chat 42, a failed TIER 2 to chat 42, a suppressed TIER 3 on
    the console, and a digest to chat 7."""
    return [
        SignalAlertFactory(tier=1, state="sent", channel="telegram", chat_id="42", created_at=T0),
        SignalAlertFactory(
            tier=2, state="failed", channel="telegram", chat_id="42", created_at=T0 + HOUR
        ),
        SignalAlertFactory(tier=3, state="suppressed", created_at=T0 + 2 * HOUR),
        Alert.objects.create(
            channel="telegram",
            chat_id="7",
            tier=1,
            kind="digest",
            text="digest",
            state="pending",
            created_at=T0 + 3 * HOUR,
        ),
    ]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True
    return [row["id"] for row in body["data"]["results"]]


def test_alerts_are_listed_newest_first_in_the_envelope(api, alerts) -> None:
    response = api.get("/api/alerts/")
    assert ids(response) == [a.pk for a in reversed(alerts)]
    data = response.json()["data"]
    assert data["count"] == 4
    first_signal = data["results"][-1]
    assert first_signal["symbol"] == alerts[0].signal.symbol
    assert first_signal["tier"] == 1
    assert first_signal["state"] == "sent"
    assert first_signal["kind"] == "signal"
    assert data["results"][0]["symbol"] is None  # the digest


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tier=1", [3, 0]),
        ("tier=3", [2]),
        ("state=failed", [1]),
        ("chat=42", [1, 0]),
        ("chat=7", [3]),
        ("kind=digest", [3]),
        ("kind=signal&tier=2", [1]),
        ("since=2025-03-01T13:00:00Z", [3, 2, 1]),
        ("until=2025-03-01T13:00:00Z", [1, 0]),
        ("since=2025-03-01T13:00:00Z&until=2025-03-01T14:00:00Z", [2, 1]),
    ],
)
def test_filters(api, alerts, query, expected) -> None:
    assert ids(api.get(f"/api/alerts/?{query}")) == [alerts[i].pk for i in expected]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tier=4", "tier"),
        ("state=lost", "state"),
        ("kind=memo", "kind"),
        ("since=yesterday", "since"),
        ("since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z", "until"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(api, alerts, query, field) -> None:
    response = api.get(f"/api/alerts/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert field in body["error"]["fields"]


def test_alerts_need_a_login(alerts) -> None:
    response = APIClient().get("/api/alerts/")
    assert response.status_code == 401
    assert response.json()["ok"] is False


def test_one_alert(api, alerts) -> None:
    response = api.get(f"/api/alerts/{alerts[0].pk}/")
    assert response.status_code == 200
    assert response.json()["data"]["text"] == alerts[0].text


def test_a_failed_alert_can_be_resent_by_staff(staff_api, alerts, monkeypatch) -> None:
    from cryptosatx.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **k: None)
    response = staff_api.post(f"/api/alerts/{alerts[1].pk}/resend")
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["state"] == "pending"


def test_a_sent_alert_is_not_resent(staff_api, alerts) -> None:
    response = staff_api.post(f"/api/alerts/{alerts[0].pk}/resend")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    alerts[0].refresh_from_db()
    assert alerts[0].state == "sent"


def test_health_shows_the_alert_settings_without_secrets(settings) -> None:
    settings.TELEGRAM_BOT_TOKEN = "123456:SECRET-TOKEN"
    settings.TELEGRAM_CHAT_ID = "-100987654"
    settings.MAX_ALERTS_PER_HOUR = 7
    report = services.check_alert_settings()
    assert report["status"] == "ok"
    assert report["channel"] == "telegram"
    assert report["telegram_bot_token_set"] is True
    assert report["telegram_chat_id_set"] is True
    assert report["max_alerts_per_hour"] == 7
    assert report["tier_3_enabled"] is False
    shown = repr(report)
    assert "SECRET" not in shown
    assert "987654" not in shown


def test_health_report_includes_the_alert_settings(settings, monkeypatch) -> None:
    settings.TELEGRAM_BOT_TOKEN = ""
    monkeypatch.setattr(services, "check_worker", lambda: {"status": "ok"})
    monkeypatch.setattr(services, "check_broker", lambda: {"status": "ok"})
    report = services.health_report()
    assert report["alert_settings"]["channel"] == "console"
    assert report["alert_settings"]["telegram_bot_token_set"] is False


@pytest.fixture
def admin_client_logged_in(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "query", ["", "?tier__exact=1", "?state__exact=failed", "?chat=42", "?chat=-", "?q=A"]
)
def test_the_admin_history_lists_and_filters(admin_client_logged_in, alerts, query) -> None:
    from alerts.services import chat_lock

    chat_lock("telegram", "42")
    chat_lock("console", "")
    response = admin_client_logged_in.get(f"/admin/alerts/alert/{query}")
    assert response.status_code == 200


def test_the_admin_resends_failed_alerts_only(admin_client_logged_in, alerts, monkeypatch) -> None:
    from cryptosatx.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **k: None)
    response = admin_client_logged_in.post(
        "/admin/alerts/alert/",
        {"action": "resend", "_selected_action": [alerts[0].pk, alerts[1].pk]},
        follow=True,
    )
    assert response.status_code == 200
    states = {a.pk: a.state for a in Alert.objects.filter(pk__in=[alerts[0].pk, alerts[1].pk])}
    assert states == {alerts[0].pk: "sent", alerts[1].pk: "pending"}
    page = response.content.decode()
    assert "1 alert(s) queued to be sent again." in page
    assert "1 alert(s) skipped" in page


def test_the_admin_shows_one_alert_read_only(admin_client_logged_in, alerts) -> None:
    response = admin_client_logged_in.get(f"/admin/alerts/alert/{alerts[0].pk}/change/")
    assert response.status_code == 200
