"""The watchlists pages (/watchlists/, /watchlists/<id>/): the user's own lists only; create,
edit, delete and scan now through the browser, validated as the API validates; their alerts,
latest results and performance; another user's watchlist not reachable; who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.test import APIClient

from scanners.models import ScanRun, Watchlist
from tests.factories import (
    CheckedOutcomeFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalAlertFactory,
    SignalFactory,
)
from tests.watchlist_fixtures import coins_of
from tests.web_roles import LOGIN, answered, client_as, role_cases

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("markets")]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def owner_client(user) -> Client:
    return client_as("owner", user)


# --- who may --------------------------------------------------------------------------------------

WL = "/watchlists/{watchlist}"
NEW = {"name": "new", "coins": "ETH"}
EDIT = {"name": "renamed", "coins": "ETH"}

# fmt: off
MATRIX = [
    #  method   path                 body   anon   user  owner  staff
    ("GET",    "/watchlists/",       None,  LOGIN, 200,  200,   200),
    ("POST",   "/watchlists/",       NEW,   LOGIN, 302,  302,   302),
    ("PUT",    "/watchlists/",       None,  LOGIN, 405,  405,   405),
    ("GET",    WL + "/",             None,  LOGIN, 404,  200,   404),
    ("POST",   WL + "/",             None,  LOGIN, 405,  405,   405),
    ("POST",   WL + "/edit",         EDIT,  LOGIN, 404,  302,   404),
    ("GET",    WL + "/edit",         None,  LOGIN, 405,  405,   405),
    ("POST",   WL + "/delete",       None,  LOGIN, 404,  302,   404),
    ("GET",    WL + "/delete",       None,  LOGIN, 405,  405,   405),
    ("POST",   WL + "/scan",         None,  LOGIN, 404,  302,   404),
    ("GET",    WL + "/scan",         None,  LOGIN, 405,  405,   405),
]
# fmt: on


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), role_cases(MATRIX))
def test_who_may_use_the_watchlists_pages(user, majors, method, path, body, role, expected) -> None:
    client = client_as(role, user)
    response = getattr(client, method.lower())(path.format(watchlist=majors.pk), body or {})
    assert answered(response, expected), (response.status_code, response.get("Location"))


def test_the_list_shows_only_the_users_own_watchlists(owner_client, majors, theirs) -> None:
    response = owner_client.get("/watchlists/")
    assert list(response.context["watchlists"]) == [majors]
    assert theirs.name not in response.content.decode()


def test_another_users_watchlist_cannot_be_changed_or_scanned(owner_client, theirs) -> None:
    for action in ("edit", "delete", "scan"):
        response = owner_client.post(f"/watchlists/{theirs.pk}/{action}", EDIT)
        assert response.status_code == 404
    assert coins_of(Watchlist.objects.get(pk=theirs.pk)) == ["DOGE/USDT"]
    assert not ScanRun.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(user, majors) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/watchlists/{majors.pk}/delete").status_code == 403
    assert Watchlist.objects.filter(pk=majors.pk).exists()


# --- create, edit, delete -----------------------------------------------------------------------


def test_creating_a_watchlist_stores_its_coins_as_spot_symbols(owner_client, user) -> None:
    response = owner_client.post("/watchlists/", {"name": " alts ", "coins": "sol, ethusdt\nBTC"})
    created = Watchlist.objects.get(owner=user, name="alts")
    assert response["Location"] == f"/watchlists/{created.pk}/"
    assert coins_of(created) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def test_creating_with_unknown_coins_lists_them_all_and_creates_nothing(owner_client) -> None:
    response = owner_client.post("/watchlists/", {"name": "alts", "coins": "SOL XYZ, QQQ"})
    assert response.status_code == 400
    assert "unknown symbol(s): XYZ/USDT, QQQ/USDT" in response.context["form"].errors["coins"][0]
    assert not Watchlist.objects.filter(name="alts").exists()


def test_creating_a_second_watchlist_of_the_same_name_is_refused(owner_client, majors) -> None:
    response = owner_client.post("/watchlists/", {"name": "majors", "coins": "SOL"})
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == [
        "you already have a watchlist named 'majors'"
    ]


def test_a_watchlist_needs_a_name(owner_client) -> None:
    response = owner_client.post("/watchlists/", {"name": "  ", "coins": "SOL"})
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == ["This field is required."]


def test_an_empty_create_form_says_the_name_is_required(owner_client) -> None:
    response = owner_client.post("/watchlists/", {})
    assert response.status_code == 400
    assert response.context["form"].errors == {"name": ["This field is required."]}


def test_editing_renames_the_watchlist_and_replaces_its_coins(owner_client, majors) -> None:
    response = owner_client.post(
        f"/watchlists/{majors.pk}/edit", {"name": "big", "coins": "SOL DOGE"}
    )
    assert response.status_code == 302
    majors.refresh_from_db()
    assert (majors.name, coins_of(majors)) == ("big", ["DOGE/USDT", "SOL/USDT"])


def test_an_edit_with_an_unknown_coin_changes_neither_name_nor_coins(owner_client, majors) -> None:
    response = owner_client.post(
        f"/watchlists/{majors.pk}/edit", {"name": "big", "coins": "SOL NOPE"}
    )
    assert response.status_code == 400
    assert "NOPE/USDT" in response.context["edit_form"].errors["coins"][0]
    majors.refresh_from_db()
    assert (majors.name, coins_of(majors)) == ("majors", ["BTC/USDT", "ETH/USDT"])


def test_an_htmx_edit_with_errors_answers_200_so_the_form_is_swapped_in(
    owner_client, majors
) -> None:
    response = owner_client.post(
        f"/watchlists/{majors.pk}/edit", {"name": "big", "coins": "NOPE"}, **HTMX
    )
    assert response.status_code == 200
    assert "unknown symbol(s): NOPE/USDT" in response.content.decode()


def test_deleting_a_watchlist_removes_it_and_returns_to_the_list(owner_client, majors) -> None:
    response = owner_client.post(f"/watchlists/{majors.pk}/delete")
    assert response["Location"] == "/watchlists/"
    assert not Watchlist.objects.filter(pk=majors.pk).exists()


# --- scan now -----------------------------------------------------------------------------------


def test_scan_now_starts_a_run_of_the_watchlists_coins_for_the_user(
    owner_client, user, majors
) -> None:
    response = owner_client.post(f"/watchlists/{majors.pk}/scan", {"scanner": "rsi"})
    run = ScanRun.objects.get()
    assert response["Location"] == f"/watchlists/{majors.pk}/"
    assert (run.scanner, run.watchlist, run.requested_by) == ("rsi", majors, user)
    assert run.symbols == ["BTC/USDT", "ETH/USDT"]
    assert list(owner_client.get(response["Location"]).context["runs"]) == [run]


def test_a_second_scan_while_one_runs_is_refused_with_the_reason(owner_client, majors) -> None:
    owner_client.post(f"/watchlists/{majors.pk}/scan", {"scanner": "rsi"})
    response = owner_client.post(f"/watchlists/{majors.pk}/scan", {"scanner": "rsi"})
    assert response.status_code == 409
    assert "a rsi scan is already queued" in response.context["scan_error"]
    assert ScanRun.objects.count() == 1


def test_scanning_an_empty_watchlist_is_refused_with_the_reason(owner_client, user) -> None:
    empty = Watchlist.objects.create(owner=user, name="empty")
    response = owner_client.post(f"/watchlists/{empty.pk}/scan", {"scanner": "all"})
    assert response.status_code == 409
    assert response.context["scan_error"] == "watchlist 'empty' has no coins to scan"


def test_scan_now_without_a_scanner_runs_all_four_as_the_api_does(owner_client, majors) -> None:
    owner_client.post(f"/watchlists/{majors.pk}/scan")
    assert ScanRun.objects.get().scanner == "all"


@pytest.fixture
def fresh_throttles():
    def clear() -> None:
        cache = caches["throttle"]
        if isinstance(cache, LocMemCache):  # never clear a Redis: that would flush its database
            cache.clear()

    clear()
    yield
    clear()


@pytest.mark.usefixtures("fresh_throttles")
def test_scan_now_shares_the_apis_scan_rate_per_user(settings, user, owner_client, majors) -> None:
    settings.API_THROTTLE_SCANS = "1/hour"
    api = APIClient()
    api.force_authenticate(user)
    assert api.post(f"/api/watchlists/{majors.pk}/scan", {"scanner": "rsi"}).status_code == 202
    response = owner_client.post(f"/watchlists/{majors.pk}/scan", {"scanner": "mss"})
    assert response.status_code == 429
    assert response.context["scan_error"].startswith("Too many scans started: try again in ")
    assert ScanRun.objects.count() == 1


def test_an_unknown_scanner_is_a_400(owner_client, majors) -> None:
    response = owner_client.post(f"/watchlists/{majors.pk}/scan", {"scanner": "astrology"})
    assert response.status_code == 400
    assert not ScanRun.objects.exists()


# --- what the page shows ------------------------------------------------------------------------


def test_the_page_shows_the_alerts_on_its_coins_only(owner_client, majors) -> None:
    on_btc = SignalAlertFactory(signal=SignalFactory(symbol="BTC/USDT"))
    SignalAlertFactory(signal=SignalFactory(symbol="DOGE/USDT"))
    response = owner_client.get(f"/watchlists/{majors.pk}/")
    assert response.context["alerts"] == [on_btc]


def test_the_page_shows_each_scanners_latest_result_per_coin(owner_client, majors) -> None:
    old = ScanRunFactory(as_of=timezone.now() - timedelta(days=2))
    new = ScanRunFactory(as_of=timezone.now() - timedelta(days=1))
    ScanResultFactory(run=old, symbol="BTC/USDT")
    latest = ScanResultFactory(run=new, symbol="BTC/USDT")
    response = owner_client.get(f"/watchlists/{majors.pk}/")
    assert list(response.context["results"]) == [latest]


def test_the_performance_summary_is_the_apis_for_that_watchlist(user, owner_client, majors) -> None:
    yesterday = timezone.now() - timedelta(days=1)
    for symbol, return_pct in (("BTC/USDT", 6.0), ("ETH/USDT", -4.0), ("SOL/USDT", 9.0)):
        CheckedOutcomeFactory(
            signal=SignalFactory(symbol=symbol, as_of=yesterday), return_pct=return_pct
        )
    api = APIClient()
    api.force_authenticate(user)
    expected = api.get(f"/api/performance/stats?watchlist={majors.pk}").json()["data"]
    shown = owner_client.get(f"/watchlists/{majors.pk}/").context["performance"]
    keys = ("total_signals", "outcomes_checked", "n", "wins", "losses", "win_rate", "judgement")
    assert {key: shown[key] for key in keys} == {key: expected[key] for key in keys}
    assert (shown["total_signals"], shown["wins"], shown["losses"]) == (2, 1, 1)


def test_the_page_links_to_that_watchlists_performance_page(owner_client, majors) -> None:
    response = owner_client.get(f"/watchlists/{majors.pk}/")
    assert response.context["performance_url"] == f"/performance/?watchlist={majors.pk}"
    assert f'href="/performance/?watchlist={majors.pk}"' in response.content.decode()


def test_each_of_its_alerts_links_to_the_signal_page(owner_client, majors) -> None:
    alert = SignalAlertFactory(signal=SignalFactory(symbol="ETH/USDT"))
    response = owner_client.get(f"/watchlists/{majors.pk}/")
    assert f'href="/signals/{alert.signal_id}/"' in response.content.decode()


# --- in the browser -------------------------------------------------------------------------


def test_a_watchlist_is_created_through_the_browser(signed_in_page, user) -> None:
    page = signed_in_page(user)
    page.goto("/watchlists/")
    expect(page.get_by_test_id("no-watchlists")).to_be_visible()
    page.get_by_role("textbox", name="Name", exact=True).fill("alts")
    page.get_by_role("textbox", name="Coins", exact=True).fill("sol, eth")
    page.get_by_role("button", name="Create").click()
    created = Watchlist.objects.get(owner=user, name="alts")
    page.wait_for_url(f"**/watchlists/{created.pk}/")
    expect(page.get_by_test_id("coins")).to_have_text("ETH/USDT, SOL/USDT")
    expect(page.locator("#notices")).to_contain_text("Watchlist 'alts' created.")


def test_coins_are_edited_in_place_with_htmx_and_errors_shown(signed_in_page, user, majors) -> None:
    page = signed_in_page(user)
    page.goto(f"/watchlists/{majors.pk}/")
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    page.get_by_role("textbox", name="Coins", exact=True).fill("BTC NOPE")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-card .field-error")).to_contain_text("NOPE/USDT")
    page.get_by_role("textbox", name="Coins", exact=True).fill("BTC, SOL, DOGE")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("coins")).to_have_text("BTC/USDT, DOGE/USDT, SOL/USDT")
    expect(page.locator("#notices")).to_contain_text("saved")
    assert page.evaluate("window.sameDocument") is True
    assert coins_of(majors) == ["BTC/USDT", "DOGE/USDT", "SOL/USDT"]


def test_scan_now_in_the_browser_shows_the_run_it_started(signed_in_page, user, majors) -> None:
    page = signed_in_page(user, width=390)
    page.goto(f"/watchlists/{majors.pk}/")
    page.get_by_role("combobox", name="Scanner").select_option("mss")
    page.get_by_role("button", name="Scan now").click()
    expect(page.get_by_test_id("watchlist-runs").locator("tbody tr")).to_have_count(1)
    run = ScanRun.objects.get()
    expect(page.locator("#notices")).to_contain_text(f"Scan #{run.pk} (mss, 2 coins) started.")
    page.get_by_role("link", name=f"#{run.pk}").click()
    page.wait_for_url(f"**/scans/{run.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_watchlist_is_deleted_through_the_browser_with_the_keyboard(
    signed_in_page, user, majors
) -> None:
    page = signed_in_page(user)
    page.goto(f"/watchlists/{majors.pk}/")
    page.get_by_text("Delete this watchlist…").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Delete majors").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/watchlists/")
    expect(page.locator("#notices")).to_contain_text("Watchlist 'majors' deleted.")
    expect(page.get_by_test_id("no-watchlists")).to_be_visible()


def test_another_users_watchlist_is_a_404_in_the_browser(
    signed_in_page, page_problems, user, theirs
) -> None:
    page_problems.allow(rf"HTTP 404: .*/watchlists/{theirs.pk}/$")
    page_problems.allow(r"console error: Failed to load resource.*404")
    page = signed_in_page(user)
    response = page.goto(f"/watchlists/{theirs.pk}/")
    assert response.status == 404
    assert theirs.name not in page.content()
