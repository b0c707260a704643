"""The alerts page (/alerts/): the outbox's history with each alert's state, filtered by state,
tier, kind and watchlist; resend for staff only (the API's rule and service); who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import Alert
from tests.factories import (
    START,
    AlertFactory,
    SignalAlertFactory,
    SignalFactory,
    UserFactory,
    WatchlistFactory,
)
from tests.web_roles import LOGIN, answered, client_as, role_cases, user_as

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch) -> list[tuple]:
    """The resend's nudge to the sender task, kept instead of sent (the row is the truth)."""
    from cryptosatx.celery import app

    sent: list[tuple] = []
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: sent.append(args))
    return sent


def shown(response) -> list[int]:
    return [alert.pk for alert in response.context["page"].object_list]


def written(hours: int) -> dict:
    return {"created_at": START + timedelta(hours=hours)}


# --- who may --------------------------------------------------------------------------------------

# fmt: off
MATRIX = [
    #  method  path                        anon   user  owner  staff
    ("GET",  "/alerts/",                   LOGIN, 200,  200,   200),
    ("POST", "/alerts/",                   LOGIN, 405,  405,   405),
    ("POST", "/alerts/{failed}/resend",    LOGIN, 403,  403,   302),
    ("GET",  "/alerts/{failed}/resend",    LOGIN, 405,  405,   405),
    ("POST", "/alerts/{sent}/resend",      LOGIN, 403,  403,   409),
    ("POST", "/alerts/999999/resend",      LOGIN, 403,  403,   404),
]
# fmt: on


@pytest.mark.parametrize(("method", "path", "role", "expected"), role_cases(MATRIX))
def test_who_may_use_the_alerts_page(user, method, path, role, expected) -> None:
    world = {
        "failed": SignalAlertFactory(state="failed").pk,
        "sent": SignalAlertFactory(state="sent").pk,
    }
    response = getattr(client_as(role, user), method.lower())(path.format(**world))
    assert answered(response, expected), (response.status_code, response.get("Location"))


def test_a_user_granted_the_resend_permission_may_resend_without_being_staff() -> None:
    carol = UserFactory(username="carol")
    carol.user_permissions.add(
        Permission.objects.get(content_type__app_label="alerts", codename="resend_alert")
    )
    failed = SignalAlertFactory(state="failed")
    client = Client()
    client.force_login(carol)
    assert client.post(f"/alerts/{failed.pk}/resend").status_code == 302
    assert Alert.objects.get(pk=failed.pk).state == "pending"


def test_a_users_resend_is_refused_and_changes_nothing(user, no_broker) -> None:
    failed = SignalAlertFactory(state="failed")
    response = client_as("user", user).post(f"/alerts/{failed.pk}/resend")
    assert response.status_code == 403
    assert Alert.objects.get(pk=failed.pk).state == "failed"
    assert no_broker == []


def test_only_staff_see_the_resend_buttons(user) -> None:
    SignalAlertFactory(state="failed")
    assert b"Resend</button>" not in client_as("user", user).get("/alerts/").content
    assert b"Resend</button>" in client_as("staff", user).get("/alerts/").content


# --- the history and its filters -----------------------------------------------------------------


def test_the_history_is_newest_first_with_each_alerts_state(user) -> None:
    older = SignalAlertFactory(state="sent", **written(1))
    newer = AlertFactory(state="unconfirmed", **written(2))
    response = client_as("user", user).get("/alerts/")
    assert shown(response) == [newer.pk, older.pk]
    page = response.content.decode()
    assert 'class="alert-state state-unconfirmed">Unconfirmed<' in page
    assert 'class="alert-state state-sent">Sent<' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=failed", ["failed-1"]),
        ("tier=2", ["sent-2", "digested-2"]),
        ("state=digested&tier=2", ["digested-2"]),
        ("kind=digest", ["digest-1"]),
    ],
)
def test_the_history_filters_by_state_tier_and_kind(user, query, expected) -> None:
    alerts = {
        "failed-1": SignalAlertFactory(state="failed", tier=1, **written(1)),
        "sent-2": SignalAlertFactory(state="sent", tier=2, **written(2)),
        "digested-2": SignalAlertFactory(state="digested", tier=2, **written(3)),
        "digest-1": AlertFactory(state="sent", tier=1, **written(4)),
    }
    response = client_as("user", user).get(f"/alerts/?{query}")
    assert sorted(shown(response)) == sorted(alerts[name].pk for name in expected)


def test_the_watchlist_filter_keeps_the_alerts_on_its_coins(user) -> None:
    watchlist = WatchlistFactory(owner=user)
    watchlist.coins.create(symbol="BTC/USDT")
    on_btc = SignalAlertFactory(signal=SignalFactory(symbol="BTC/USDT"))
    SignalAlertFactory(signal=SignalFactory(symbol="ETH/USDT"))
    response = client_as("owner", user).get(f"/alerts/?watchlist={watchlist.pk}")
    assert shown(response) == [on_btc.pk]


def test_another_users_watchlist_as_a_filter_is_a_400_like_an_unknown_one(user) -> None:
    theirs = WatchlistFactory(owner=user_as("user", user))
    response = client_as("owner", user).get(f"/alerts/?watchlist={theirs.pk}")
    assert response.status_code == 400
    assert response.context["errors"] == [
        f"watchlist: no watchlist of yours has the id or name '{theirs.pk}'"
    ]


def test_the_filter_forms_empty_fields_filter_nothing(user) -> None:
    failed = SignalAlertFactory(state="failed")
    SignalAlertFactory(state="sent")
    response = client_as("user", user).get("/alerts/?state=failed&tier=&kind=&watchlist=")
    assert shown(response) == [failed.pk]


def test_an_unknown_state_is_a_400_naming_the_parameter(user) -> None:
    response = client_as("user", user).get("/alerts/?state=lost")
    assert response.status_code == 400
    assert "state: Select a valid choice" in response.content.decode()


def test_a_signals_alert_links_to_the_signal_page(user) -> None:
    alert = SignalAlertFactory()
    response = client_as("user", user).get("/alerts/")
    assert f'href="/signals/{alert.signal_id}/"' in response.content.decode()


def reads_of(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_history_reads_as_many_queries_for_a_full_page_as_for_one_alert(user) -> None:
    client = client_as("staff", user)
    SignalAlertFactory(state="failed")
    one = reads_of(client, "/alerts/")
    for _ in range(30):
        SignalAlertFactory(state="failed")
    assert reads_of(client, "/alerts/") == one


# --- resend -------------------------------------------------------------------------------------


def test_staffs_resend_queues_a_failed_alert_again_and_returns_to_the_filtered_list(
    user, no_broker
) -> None:
    failed = SignalAlertFactory(state="failed", attempts=3, last_error="chat not found")
    response = client_as("staff", user).post(
        f"/alerts/{failed.pk}/resend", {"next": "/alerts/?state=failed"}
    )
    assert response["Location"] == "/alerts/?state=failed"
    assert Alert.objects.get(pk=failed.pk).state == "pending"
    assert no_broker == [("alerts.send_pending",)]


def test_resend_never_returns_to_another_site(user) -> None:
    failed = SignalAlertFactory(state="unconfirmed")
    response = client_as("staff", user).post(
        f"/alerts/{failed.pk}/resend", {"next": "https://elsewhere.example/"}
    )
    assert response["Location"] == "/alerts/"


def test_resending_a_sent_alert_is_refused_with_the_reason(user) -> None:
    sent = SignalAlertFactory(state="sent", sent_at=timezone.now())
    response = client_as("staff", user).post(f"/alerts/{sent.pk}/resend")
    assert response.status_code == 409
    assert response.context["problem"] == (
        f"Alert #{sent.pk} is sent: only failed or unconfirmed alerts can be sent again."
    )
    assert Alert.objects.get(pk=sent.pk).state == "sent"


# --- in the browser -------------------------------------------------------------------------


def test_the_alerts_page_renders_and_its_state_filter_changes_the_list(
    signed_in_page, user
) -> None:
    failed = SignalAlertFactory(state="failed", last_error="Forbidden: bot was blocked")
    SignalAlertFactory(state="sent")
    AlertFactory(state="digested")
    page = signed_in_page(user, width=390)
    page.goto("/alerts/")
    rows = page.get_by_test_id("alerts").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(page.get_by_role("combobox", name="Tier")).to_have_value("")
    page.get_by_role("combobox", name="State").select_option("failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("id", f"alert-{failed.pk}")
    expect(rows.first).to_contain_text("bot was blocked")
    page.wait_for_url("**/alerts/?*state=failed*")
    assert page.get_by_role("button", name=f"Resend alert {failed.pk}").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_staff_resend_a_failed_alert_from_the_page(signed_in_page, user) -> None:
    failed = SignalAlertFactory(state="failed")
    staff = user_as("staff", user)
    page = signed_in_page(staff)
    page.goto("/alerts/")
    page.get_by_role("button", name=f"Resend alert {failed.pk}").click()
    expect(page.locator(f"#alert-{failed.pk}")).to_have_attribute("data-state", "pending")
    expect(page.locator("#notices")).to_contain_text(f"Alert #{failed.pk} queued to be sent again.")
    assert page.get_by_role("button", name=f"Resend alert {failed.pk}").count() == 0
