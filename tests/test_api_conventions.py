"""What every endpoint of the API has in common: the envelope, errors, auth, pagination, schema."""

from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command
from django.core.signals import got_request_exception
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.api import exception_handler
from tests.factories import MarketFactory, ScanRunFactory, UserFactory, WatchlistFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/"),
    ("get", "/api/markets/"),
    ("get", "/api/scan/unified-ranking"),
    ("get", "/api/scans/"),
    ("post", "/api/scans/"),
    ("get", "/api/scans/1/"),
    ("get", "/api/scans/1/results"),
    ("get", "/api/signals/"),
    ("get", "/api/watchlists/"),
    ("post", "/api/watchlists/"),
    ("get", "/api/watchlists/1/"),
    ("patch", "/api/watchlists/1/"),
    ("delete", "/api/watchlists/1/"),
    ("post", "/api/watchlists/1/coins/add"),
    ("post", "/api/watchlists/1/coins/remove"),
    ("post", "/api/watchlists/1/scan"),
    ("get", "/api/watchlists/1/scan"),
    ("put", "/api/watchlists/1/coins"),
    ("get", "/api/watchlists/1/alerts"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_an_unauthenticated_request_is_a_401_in_the_envelope(method, url):
    response = getattr(APIClient(), method)(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "ok": False,
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "fields": {},
        },
    }


def test_a_wrong_token_is_a_401_in_the_envelope():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.get("/api/scans/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_token_authenticates(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/scans/").status_code == 200


def test_a_session_authenticates(client, user):
    client.force_login(user)
    response = client.get("/api/scans/")
    assert response.status_code == 200
    assert response.json()["ok"] is True


def test_one_object_is_the_data_of_the_envelope(api):
    run = ScanRunFactory()
    body = api.get(f"/api/scans/{run.pk}/").json()
    assert set(body) == {"ok", "data"}
    assert body["ok"] is True
    assert body["data"]["id"] == run.pk


def test_a_list_is_a_page_inside_the_envelope(api):
    ScanRunFactory.create_batch(3)
    body = api.get("/api/scans/", {"limit": 2}).json()
    assert body["ok"] is True
    assert set(body["data"]) == {"count", "next", "previous", "results"}
    assert body["data"]["count"] == 3
    assert len(body["data"]["results"]) == 2
    assert "offset=2" in body["data"]["next"]
    assert body["data"]["previous"] is None


def test_the_next_page_continues_where_the_first_ended(api):
    runs = ScanRunFactory.create_batch(3)
    body = api.get("/api/scans/", {"limit": 2, "offset": 2}).json()["data"]
    assert [run["id"] for run in body["results"]] == [runs[0].pk]
    assert body["next"] is None


def test_an_invalid_parameter_is_a_400_naming_the_field_in_message_and_fields(api):
    response = api.get("/api/scans/", {"status": "sleeping"})
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] == "invalid"
    assert list(body["error"]["fields"]) == ["status"]
    assert "sleeping" in body["error"]["fields"]["status"][0]
    assert body["error"]["message"].startswith("status: ")


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "many", "1.5"])
def test_a_limit_out_of_range_is_a_400_naming_limit(api, limit):
    response = api.get("/api/scans/", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "limit": ["Must be a whole number from 1 to 1000."]
    }


def test_a_negative_offset_is_a_400_naming_offset(api):
    response = api.get("/api/signals/", {"offset": "-5"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["offset"]


def test_an_invalid_body_names_every_field_at_fault(api):
    response = api.post("/api/scans/", {"scanner": "astrology", "coins": 0}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["fields"]) == {"scanner", "coins"}
    assert "scanner: " in error["message"]
    assert "coins: " in error["message"]


def test_a_missing_object_is_a_404_in_the_envelope(api):
    response = api.get("/api/scans/999999/")
    assert response.status_code == 404
    assert response.json() == {
        "ok": False,
        "error": {
            "code": "not_found",
            "message": "No ScanRun matches the given query.",
            "fields": {},
        },
    }


def test_a_wrong_method_is_a_405_in_the_envelope(api):
    response = api.delete("/api/scans/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_malformed_json_body_is_a_400_in_the_envelope(api):
    response = api.generic("POST", "/api/scans/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_another_users_watchlist_is_a_404_as_if_it_did_not_exist(api):
    theirs = WatchlistFactory(owner=UserFactory(username="bob"))
    response = api.get(f"/api/watchlists/{theirs.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_api_root_lists_every_resource(api):
    body = api.get("/api/").json()
    assert body["ok"] is True
    listed = body["data"]
    assert {
        "markets",
        "candles",
        "replay-clock",
        "scans",
        "watchlists",
        "signals",
        "alerts",
        "scan/unified-ranking",
        "performance/stats",
        "performance/report",
        "performance/by-scanner",
        "performance/by-tier",
        "performance/by-interval",
        "performance/by-signal-type",
        "performance/by-symbol",
        "performance/top-performers",
        "performance/recommendations",
        "performance/tracker-stats",
        "performance/tracker/start",
        "performance/tracker/stop",
        "performance/track-signal",
        "health",
        "schema",
        "docs",
    } <= set(listed)
    assert listed["alerts"].endswith("/api/alerts/")
    assert listed["performance/stats"].endswith("/api/performance/stats")
    assert listed["health"].endswith("/api/health")


def test_a_deleted_object_answers_204_without_a_body(api, user):
    watchlist = WatchlistFactory(owner=user)
    response = api.delete(f"/api/watchlists/{watchlist.pk}/")
    assert response.status_code == 204
    assert response.content == b""


def test_the_browsable_api_still_renders_for_a_browser(client, user):
    client.force_login(user)
    MarketFactory(base="BTC")
    response = client.get("/api/markets/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"&quot;ok&quot;: true" in response.content


# --- the schema documents the envelope -------------------------------------------------------


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> dict:
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_schema_documents_every_endpoint(schema):
    assert {
        "/api/scan/unified-ranking",
        "/api/scans/",
        "/api/scans/{id}/",
        "/api/scans/{id}/results",
        "/api/signals/",
        "/api/watchlists/",
        "/api/watchlists/{id}/",
        "/api/watchlists/{id}/coins/add",
        "/api/watchlists/{id}/coins/remove",
        "/api/watchlists/{id}/scan",
        "/api/watchlists/{id}/coins",
        "/api/watchlists/{id}/alerts",
    } <= set(schema["paths"])


def test_the_schema_wraps_every_success_in_the_envelope(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if not code.startswith("2") or "content" not in response:
                    continue
                body = response["content"]["application/json"]["schema"]
                assert body["required"] == ["ok", "data"], f"{method} {path} {code}"
                assert body["properties"]["ok"] == {"type": "boolean", "enum": [True]}


def test_the_schema_documents_the_error_envelope(schema):
    error = schema["components"]["schemas"]["ErrorEnvelope"]
    assert set(error["properties"]) == {"ok", "error"}
    ranking = schema["paths"]["/api/scan/unified-ranking"]["get"]["responses"]
    assert {"200", "400", "401", "403"} <= set(ranking)
    assert ranking["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    start = schema["paths"]["/api/scans/"]["post"]["responses"]
    assert {"202", "400", "401", "403", "409"} <= set(start)
    assert "404" in schema["paths"]["/api/watchlists/{id}/"]["get"]["responses"]


def test_the_schema_documents_the_paginated_list_and_its_limits(schema):
    operation = schema["paths"]["/api/signals/"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    data = operation["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][data["properties"]["data"]["$ref"].split("/")[-1]]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])


# --- the exception handler on its own ----------------------------------------------------------


def test_a_nested_field_error_is_named_by_its_path(api):
    response = api.post("/api/watchlists/", {"name": "x", "coins": ["BTC", ""]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"coins.1": ["This field may not be blank."]}


def test_a_services_django_validation_error_is_a_400_naming_its_field():
    response = exception_handler(DjangoValidationError({"name": ["taken"]}), {})
    assert response.status_code == 400
    assert response.data == {
        "ok": False,
        "error": {"code": "invalid", "message": "name: taken", "fields": {"name": ["taken"]}},
    }


def test_an_unexpected_error_is_a_500_in_the_envelope_and_is_reported():
    reported = []

    def receiver(**kwargs):
        reported.append(kwargs)

    got_request_exception.connect(receiver)
    try:
        response = exception_handler(RuntimeError("boom"), {})
    finally:
        got_request_exception.disconnect(receiver)
    assert response.status_code == 500
    assert response.data == {
        "ok": False,
        "error": {"code": "server_error", "message": "A server error occurred.", "fields": {}},
    }
    assert len(reported) == 1


def test_the_schema_and_its_docs_are_served_outside_the_envelope(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert schema.content.startswith(b"openapi: 3")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


# --- Django's own errors are the API's too ---------------------------------------------------


def test_more_than_a_thousand_form_fields_is_a_400_in_the_envelope(api, user):
    fields = {f"field{i}": "x" for i in range(1001)}
    response = api.post("/api/watchlists/", fields)  # multipart, like an HTML form
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "too_many_fields"
    assert "1000" in response.json()["error"]["message"]
    assert not user.watchlists.exists()


def test_more_than_a_thousand_urlencoded_fields_is_a_400_in_the_envelope(api):
    body = "&".join(f"field{i}=x" for i in range(1001))
    response = api.generic(
        "POST", "/api/watchlists/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_fields"


def test_more_than_a_thousand_query_parameters_is_a_400_in_the_envelope(api):
    response = api.get("/api/scans/", {f"p{i}": "x" for i in range(1001)})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_fields"


@pytest.mark.parametrize("url", ["/api/no-such-thing/", "/api/scans/1/no-such-action", "/api/x"])
def test_an_unknown_api_path_is_a_404_json_envelope(api, url):
    response = api.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] == "not_found"
    assert url in body["error"]["message"]


@pytest.mark.parametrize(
    "url", ["/api/scans/abc/", "/api/scans/1.5/", "/api/watchlists/x/scan", "/api/signals/-1/"]
)
def test_an_id_that_is_not_a_whole_number_is_a_404_json_envelope(api, url):
    response = api.get(url) if not url.endswith("scan") else api.post(url, {}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_path_outside_the_api_keeps_djangos_html_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unknown_body_field_is_a_400_naming_it_and_creates_nothing(api, user):
    MarketFactory(base="BTC")
    response = api.post("/api/watchlists/", {"name": "x", "symbols": ["BTC"]}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["fields"] == {"symbols": ["Unknown field."]}
    assert error["message"] == "symbols: Unknown field."
    assert not user.watchlists.exists()


def test_unknown_fields_are_named_with_the_declared_fields_errors(api):
    response = api.post(
        "/api/scans/", {"scanner": "astrology", "coin": 5, "symbol": "BTC"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "coin": ["Unknown field."],
        "symbol": ["Unknown field."],
        "scanner": ['"astrology" is not a valid choice.'],
    }


@pytest.mark.parametrize(
    ("method", "url", "body", "unknown"),
    [
        ("patch", "/api/watchlists/{id}/", {"name": "y", "coins": ["BTC"]}, "coins"),
        ("post", "/api/watchlists/{id}/coins/add", {"coins": ["BTC"], "name": "y"}, "name"),
        ("post", "/api/watchlists/{id}/coins/remove", {"coins": ["BTC"], "all": True}, "all"),
        ("post", "/api/watchlists/{id}/scan", {"scanner": "rsi", "coins": 3}, "coins"),
        ("put", "/api/watchlists/{id}/coins", {"coins": ["BTC"], "symbols": ["ETH"]}, "symbols"),
        (
            "post",
            "/api/performance/track-signal",
            {"symbol": "BTC", "direction": "LONG", "price": 1, "entry": 1},
            "entry",
        ),
    ],
)
def test_every_writing_endpoint_refuses_an_unknown_body_field(
    api, user, method, url, body, unknown
):
    MarketFactory(base="BTC")
    watchlist = WatchlistFactory(owner=user, name="x")
    response = getattr(api, method)(url.format(id=watchlist.pk), body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {unknown: ["Unknown field."]}
    watchlist.refresh_from_db()
    assert watchlist.name == "x"


@pytest.mark.urls("tests.urls_raising")
def test_a_server_error_outside_drf_under_the_api_is_a_500_json_envelope(user):
    client = Client(raise_request_exception=False)
    response = client.get("/api/test-only/raises")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "ok": False,
        "error": {"code": "server_error", "message": "A server error occurred.", "fields": {}},
    }


def test_a_time_offset_postgres_cannot_store_is_read_in_utc(api):
    # ISO 8601 allows offsets up to ±23:59, PostgreSQL's timestamptz only ±15:59 (found by
    # schemathesis: a 500 before).
    response = api.get("/api/signals/", {"until": "2026-06-14T13:39:49-23:27"})
    assert response.status_code == 200
    assert response.json()["data"]["count"] == 0


def test_the_schema_documents_throttling_and_malformed_requests_on_every_operation(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "429"} <= set(operation["responses"]), f"{method} {path}"


def test_the_schema_documents_401_and_403_on_every_authenticated_operation(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def test_a_post_without_csrf_token_to_a_plain_view_under_the_api_is_a_403_json_envelope():
    response = Client(enforce_csrf_checks=True).post("/api/health")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "csrf_failed"


def test_the_browsable_apis_csrf_form_field_is_not_an_unknown_field(api, user):
    response = api.post("/api/watchlists/", {"name": "x", "csrfmiddlewaretoken": "t"})
    assert response.status_code == 201
    assert user.watchlists.get().name == "x"
