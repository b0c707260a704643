"""Watchlists through the API: each user's own, checked against the stored markets."""

from __future__ import annotations

import pytest

from scanners.models import Watchlist
from tests.factories import WatchlistFactory
from tests.watchlist_fixtures import coins_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("markets")]


# --- create and read ---------------------------------------------------------------------------


def test_creating_a_watchlist_stores_its_coins_as_spot_symbols(api, user):
    response = api.post(
        "/api/watchlists/", {"name": "alts", "coins": ["sol", "ETHUSDT", "SOL/USDT"]}, format="json"
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["name"], data["coins"]) == ("alts", ["ETH/USDT", "SOL/USDT"])
    watchlist = Watchlist.objects.get(pk=data["id"])
    assert watchlist.owner == user
    assert coins_of(watchlist) == ["ETH/USDT", "SOL/USDT"]


def test_a_watchlist_can_start_empty(api):
    response = api.post("/api/watchlists/", {"name": "later"}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["coins"] == []


def test_unknown_symbols_are_refused_all_of_them_listed(api):
    response = api.post(
        "/api/watchlists/", {"name": "x", "coins": ["BTC", "FAKE", "NOPE/USDT"]}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["coins"]
    assert "FAKE/USDT, NOPE/USDT" in error["fields"]["coins"][0]
    assert "coins: " in error["message"]
    assert not Watchlist.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": "ok", "coins": "BTC"}, "coins"),
    ],
    ids=["no-name", "empty-name", "blank-name", "long-name", "coins-not-a-list"],
)
def test_a_bad_watchlist_is_a_400_naming_the_field(api, body, field):
    response = api.post("/api/watchlists/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_a_name_is_unique_per_user_but_not_across_users(api, majors, theirs):
    taken = api.post("/api/watchlists/", {"name": "majors"}, format="json")
    assert taken.status_code == 400
    assert "already have a watchlist named 'majors'" in taken.json()["error"]["fields"]["name"][0]
    assert api.post("/api/watchlists/", {"name": "bob's"}, format="json").status_code == 201


def test_you_list_only_your_own_watchlists(api, majors, theirs):
    body = api.get("/api/watchlists/").json()["data"]
    assert body["count"] == 1
    assert body["results"][0]["name"] == "majors"
    assert body["results"][0]["coins"] == ["BTC/USDT", "ETH/USDT"]


def test_watchlists_filter_by_name(api, user, majors):
    WatchlistFactory(owner=user, name="memes")
    body = api.get("/api/watchlists/", {"name": "memes"}).json()["data"]
    assert [watchlist["name"] for watchlist in body["results"]] == ["memes"]


def test_reading_your_watchlist(api, majors):
    data = api.get(f"/api/watchlists/{majors.pk}/").json()["data"]
    assert data["id"] == majors.pk
    assert data["coins"] == ["BTC/USDT", "ETH/USDT"]


# --- change and delete -------------------------------------------------------------------------


def test_renaming_a_watchlist(api, majors):
    response = api.patch(f"/api/watchlists/{majors.pk}/", {"name": "big caps"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "big caps"
    majors.refresh_from_db()
    assert majors.name == "big caps"


def test_renaming_to_a_name_you_use_is_a_400(api, user, majors):
    WatchlistFactory(owner=user, name="memes")
    response = api.patch(f"/api/watchlists/{majors.pk}/", {"name": "memes"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["name"]


def test_a_watchlist_cannot_be_replaced_whole(api, majors):
    response = api.put(f"/api/watchlists/{majors.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 405


def test_adding_coins_keeps_the_ones_already_there_once(api, majors):
    response = api.post(
        f"/api/watchlists/{majors.pk}/coins/add", {"coins": ["btc", "sol"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["data"]["coins"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert coins_of(majors) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def test_adding_unknown_coins_is_a_400_listing_them_and_adds_nothing(api, majors):
    response = api.post(
        f"/api/watchlists/{majors.pk}/coins/add", {"coins": ["SOL", "MOON"]}, format="json"
    )
    assert response.status_code == 400
    assert "MOON/USDT" in response.json()["error"]["fields"]["coins"][0]
    assert coins_of(majors) == ["BTC/USDT", "ETH/USDT"]


def test_removing_coins(api, majors):
    response = api.post(
        f"/api/watchlists/{majors.pk}/coins/remove", {"coins": ["ETH"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["data"]["coins"] == ["BTC/USDT"]
    assert coins_of(majors) == ["BTC/USDT"]


def test_removing_coins_not_in_the_watchlist_is_a_400_listing_them(api, majors):
    response = api.post(
        f"/api/watchlists/{majors.pk}/coins/remove", {"coins": ["ETH", "SOL"]}, format="json"
    )
    assert response.status_code == 400
    assert "SOL/USDT" in response.json()["error"]["fields"]["coins"][0]
    assert coins_of(majors) == ["BTC/USDT", "ETH/USDT"]


@pytest.mark.parametrize("action", ["add", "remove"])
def test_adding_or_removing_no_coins_is_a_400(api, majors, action):
    response = api.post(f"/api/watchlists/{majors.pk}/coins/{action}", {"coins": []}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["coins"]


def test_deleting_a_watchlist(api, majors):
    assert api.delete(f"/api/watchlists/{majors.pk}/").status_code == 204
    assert not Watchlist.objects.filter(pk=majors.pk).exists()
    assert api.get(f"/api/watchlists/{majors.pk}/").status_code == 404


# --- another user's watchlist is a 404 whatever you do with it ---------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "/", None),
        ("patch", "/", {"name": "mine now"}),
        ("delete", "/", None),
        ("post", "/coins/add", {"coins": ["BTC"]}),
        ("post", "/coins/remove", {"coins": ["DOGE"]}),
        ("post", "/scan", {"scanner": "rsi"}),
    ],
)
def test_another_users_watchlist_is_a_404_and_stays_unchanged(api, theirs, method, suffix, body):
    response = getattr(api, method)(f"/api/watchlists/{theirs.pk}{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.name == "bob's"
    assert coins_of(theirs) == ["DOGE/USDT"]
