"""The signals list (/signals/): who sees which signals, the API's filters plus a watchlist,
pages, and each signal's outcome so far as per-horizon badges."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission

from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    OutcomeCheckFactory,
    SignalFactory,
    UserFactory,
    WatchlistFactory,
)
from web.views import signals as signals_view
from web.views.signals import PAGE_SIZE

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/signals/"


def listed(response) -> list[int]:
    assert response.status_code == 200, response.content.decode()[:2000]
    return [row["signal"].pk for row in response.context["rows"]]


@pytest.fixture
def three():
    """An rsi BTC long (TIER_1), a smart_money ETH short (TIER_2) and an mss SOL long, a day
    apart, newest last."""
    return [
        SignalFactory(
            scanner="rsi", symbol="BTC/USDT", direction="LONG", tier="TIER_1", as_of=START
        ),
        SignalFactory(
            scanner="smart_money",
            symbol="ETH/USDT",
            direction="SHORT",
            tier="TIER_2",
            as_of=START + timedelta(days=1),
        ),
        SignalFactory(
            scanner="mss", symbol="SOL/USDT", direction="LONG", as_of=START + timedelta(days=2)
        ),
    ]


# --- who sees what ------------------------------------------------------------------------------


def test_anonymous_visitor_of_the_signals_list_is_sent_to_sign_in(client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/signals/")


def test_user_sees_every_scanners_signals_newest_first(client, three) -> None:
    client.force_login(UserFactory())
    assert listed(client.get(URL)) == [s.pk for s in reversed(three)]


def test_user_sees_their_own_manual_signal_but_not_another_users(client) -> None:
    me, other = UserFactory(), UserFactory()
    mine = SignalFactory(scanner="manual", owner=me)
    SignalFactory(scanner="manual", owner=other)
    client.force_login(me)
    assert listed(client.get(URL)) == [mine.pk]


def test_staff_holding_view_signal_see_everyones_manual_signals(client) -> None:
    first = SignalFactory(scanner="manual", owner=UserFactory())
    second = SignalFactory(scanner="manual", owner=UserFactory())
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="tracking", codename="view_signal")
    )
    client.force_login(staff)
    assert sorted(listed(client.get(URL))) == sorted([first.pk, second.pk])


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"scanner": "smart_money"}, [1]),
        ({"tier": "TIER_1"}, [0]),
        ({"direction": "LONG"}, [2, 0]),
        ({"symbol": "sol"}, [2]),
        ({"since": "2024-01-02T00:00", "until": "2024-01-02T12:00"}, [1]),
    ],
)
def test_each_filter_keeps_only_the_matching_signals(client, three, query, expected) -> None:
    client.force_login(UserFactory())
    assert listed(client.get(URL, query)) == [three[i].pk for i in expected]


def test_a_watchlist_of_ones_own_keeps_its_coins_signals(client, three) -> None:
    user = UserFactory()
    mine = WatchlistFactory(owner=user)
    mine.coins.create(symbol="ETH/USDT")
    mine.coins.create(symbol="SOL/USDT")
    client.force_login(user)
    assert listed(client.get(URL, {"watchlist": mine.pk})) == [three[2].pk, three[1].pk]


def test_another_users_watchlist_is_refused(client, three) -> None:
    theirs = WatchlistFactory(owner=UserFactory())
    theirs.coins.create(symbol="ETH/USDT")
    client.force_login(UserFactory())
    response = client.get(URL, {"watchlist": theirs.pk})
    assert response.status_code == 400
    assert "watchlist: no watchlist of yours" in response.content.decode()
    assert "rows" not in response.context


def test_an_unknown_scanner_is_a_400_naming_the_filter(client) -> None:
    client.force_login(UserFactory())
    response = client.get(URL, {"scanner": "astrology"})
    assert response.status_code == 400
    assert "scanner: Select a valid choice." in response.content.decode()


def test_until_before_since_is_a_400(client) -> None:
    client.force_login(UserFactory())
    response = client.get(URL, {"since": "2024-01-02T00:00", "until": "2024-01-01T00:00"})
    assert response.status_code == 400
    assert "until: must not be before since" in response.content.decode()


def chosen(html: str) -> dict[str, str]:
    """The filter form's state: each select's selected option and each input's value, by name."""
    state = {}
    for name, options in re.findall(r'<select id="f-\w+" name="(\w+)">(.*?)</select>', html, re.S):
        picked = re.findall(r'<option value="([^"]*)" selected>', options)
        if picked:
            state[name] = picked[0]
    state.update(re.findall(r'<input id="f-\w+" name="(\w+)"[^>]* value="([^"]*)"', html))
    return state


@pytest.mark.parametrize("path", [URL, "/performance/"])
def test_the_signal_filters_show_each_chosen_value_on_both_pages(client, path) -> None:
    MarketFactory(symbol="ETH/USDT", base="ETH")  # the performance filters ask for a known coin
    user = UserFactory()
    mine = WatchlistFactory(owner=user, name="mine")
    mine.coins.create(symbol="ETH/USDT")
    client.force_login(user)
    query = {
        "scanner": "rsi",
        "tier": "TIER_2",
        "direction": "SHORT",
        "symbol": "ETH",
        "since": "2024-01-02T00:00",
        "until": "2024-01-03T00:00",
        "watchlist": str(mine.pk),
    }
    response = client.get(path, query)
    html = response.content.decode()
    assert response.status_code == 200, html[html.find('data-testid="errors"') :][:600]
    assert chosen(response.content.decode()).items() >= query.items()


# --- pages --------------------------------------------------------------------------------------


def test_signals_are_shown_a_page_at_a_time(client) -> None:
    signals = [SignalFactory() for _ in range(PAGE_SIZE + 3)]
    newest_first = [s.pk for s in reversed(signals)]
    client.force_login(UserFactory())
    assert listed(client.get(URL)) == newest_first[:PAGE_SIZE]
    assert listed(client.get(URL, {"page": 2})) == newest_first[PAGE_SIZE:]


def test_the_next_page_link_keeps_the_filters(client) -> None:
    for _ in range(PAGE_SIZE + 1):
        SignalFactory(scanner="mss")
    client.force_login(UserFactory())
    html = client.get(URL, {"scanner": "mss"}).content.decode()
    assert 'href="?scanner=mss&amp;page=2"' in html


def test_a_selection_larger_than_the_cap_lists_its_newest_and_says_there_are_more(
    client, monkeypatch
) -> None:
    monkeypatch.setattr(signals_view, "COUNT_CAP", 2 * PAGE_SIZE)
    signals = [SignalFactory() for _ in range(2 * PAGE_SIZE + 1)]
    client.force_login(UserFactory())
    response = client.get(URL, {"page": 2})
    assert listed(response) == [s.pk for s in reversed(signals)][PAGE_SIZE : 2 * PAGE_SIZE]
    assert f"More than {2 * PAGE_SIZE} signals" in response.content.decode()
    assert client.get(URL, {"page": 3}).status_code == 404


def test_a_selection_within_the_cap_says_how_many_it_holds(client, three) -> None:
    client.force_login(UserFactory())
    html = client.get(URL).content.decode()
    assert ">3 signals<" in html
    assert 'data-testid="capped"' not in html


def test_a_page_past_the_last_is_a_404(client, three) -> None:
    client.force_login(UserFactory())
    assert client.get(URL, {"page": 2}).status_code == 404


def test_a_page_that_is_not_a_number_is_a_400(client, three) -> None:
    client.force_login(UserFactory())
    response = client.get(URL, {"page": "last"})
    assert response.status_code == 400
    assert "page: &#x27;last&#x27; is not a page number" in response.content.decode()


# --- badges -------------------------------------------------------------------------------------


def test_each_horizon_has_a_badge_with_its_outcome_so_far(client) -> None:
    signal = SignalFactory(direction="LONG")
    CheckedOutcomeFactory(signal=signal, horizon="1h", return_pct=-4.0)
    CheckedOutcomeFactory(signal=signal, horizon="4h", return_pct=1.0)
    CheckedOutcomeFactory(signal=signal, horizon="24h", return_pct=6.0)
    OutcomeCheckFactory(signal=signal, horizon="7d", status="unavailable")
    OutcomeCheckFactory(signal=signal, horizon="30d")
    client.force_login(UserFactory())
    response = client.get(URL)
    badges = response.context["rows"][0]["badges"]
    assert [(b["horizon"], b["state"]) for b in badges] == [
        ("1h", "loss"),
        ("4h", "neutral"),
        ("24h", "win"),
        ("7d", "unavailable"),
        ("30d", "pending"),
    ]
    assert badges[2]["title"] == "24h: WIN, +6.00 % in its favour"
    assert 'data-horizon="24h" data-state="win">24h win</li>' in response.content.decode()


def test_a_signal_without_checks_shows_none_at_every_horizon(client) -> None:
    SignalFactory()
    client.force_login(UserFactory())
    badges = client.get(URL).context["rows"][0]["badges"]
    assert {b["state"] for b in badges} == {"none"}


# --- in the browser -----------------------------------------------------------------------------


def test_filtering_in_the_browser_changes_the_rows(signed_in_page, three) -> None:
    page = signed_in_page(UserFactory())
    page.goto(URL)
    assert page.locator("table[data-testid=signals] tbody tr").count() == 3
    page.get_by_label("Scanner").select_option("rsi")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**scanner=rsi**")
    rows = page.locator("table[data-testid=signals] tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-signal") == str(three[0].pk)


def test_signals_list_fits_a_phone_screen_with_its_badges(signed_in_page, three) -> None:
    CheckedOutcomeFactory(signal=three[0], horizon="24h", return_pct=6.0)
    page = signed_in_page(UserFactory(), width=390, height=844)
    page.goto(URL)
    assert page.locator("li[data-horizon='24h'][data-state=win]").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
