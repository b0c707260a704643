"""Who may do what (core/permissions.py, README "Who may do what"): every endpoint of the
URLconf and method, called by each kind of caller, answers the status of the table below.

The callers: nobody logged in (anon); alice, who owns the watchlist, its scan and the manual
signal the rows name (owner); bob, another user (other); the admin, a superuser (staff); and carol,
a plain user granted the one permission the row is about, if it has one (granted; without one
she is just another user). Every caller authenticates with a real API token.

An endpoint added to the URLconf without a row here fails `test_every_endpoint_has_a_row`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from market.models import ReplayClock
from scanners.models import WatchlistCoin
from tests.factories import (
    START,
    MarketFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalAlertFactory,
    SignalFactory,
    UserFactory,
    WatchlistFactory,
    hourly_candles,
)
from tracking.models import TrackerState

pytestmark = pytest.mark.django_db

NOW = START + timedelta(days=40)
ROLES = ("anon", "owner", "other", "staff", "granted")
OPEN = {200, 503}  # /api/health: 503 when a part (broker, worker) is down, as in a test


@dataclass(frozen=True)
class Row:
    """One endpoint and method (and, where the rule depends on the body, a variant)."""

    name: str  # the URL name
    method: str
    path: str  # {watchlist}, {run}, {manual}, {signal}, {alert} are the world's objects
    expect: tuple[Any, ...]  # per ROLES: a status, or a set of acceptable ones
    body: dict = field(default_factory=dict)
    perm: str | None = None  # what `granted` holds
    variant: str = ""


def row(method: str, path: str, *expect: Any, **extra: Any) -> Row:
    """A row; its URL name is the one the URLconf resolves the path to."""
    name = resolve(path.split("?")[0].format_map(defaultdict(lambda: "1"))).url_name
    return Row(name, method, path, expect, **extra)


TRACK = {"symbol": "BTC", "direction": "LONG"}
UNIVERSE, VIEW_SCANS = "scanners.scan_universe", "scanners.view_scanrun"
TRACKER, RESEND, VIEW_SIGNALS = (
    "tracking.control_tracker",
    "alerts.resend_alert",
    "tracking.view_signal",
)
WATCHLIST, PERF = "/api/watchlists/{watchlist}", "/api/performance"

# fmt: off
MATRIX = [
    #    method    path                               anon  owner other staff granted
    row("GET",    "/api/health",                      OPEN, OPEN, OPEN, OPEN, OPEN),
    row("GET",    "/api/schema/",                     200,  200,  200,  200,  200),
    row("GET",    "/api/docs/",                       200,  200,  200,  200,  200),
    row("GET",    "/api/",                            401,  200,  200,  200,  200),
    row("GET",    "/api/markets/",                    401,  200,  200,  200,  200),
    row("GET",    "/api/markets/{market}/",           401,  200,  200,  200,  200),
    row("GET",    "/api/candles/?symbol=BTC/USDT",    401,  200,  200,  200,  200),
    row("GET",    "/api/replay-clock/",               401,  200,  200,  200,  200),
    row("GET",    "/api/scans/",                      401,  200,  200,  200,  200),
    row("POST",   "/api/scans/",                      401,  202,  202,  202,  202,
        body={"scanner": "rsi", "symbols": ["BTC"]}, variant="named coins"),
    row("POST",   "/api/scans/",                      401,  403,  403,  202,  202,
        body={"scanner": "rsi"}, perm=UNIVERSE, variant="the universe"),
    row("POST",   "/api/scans/",                      401,  403,  403,  202,  202,
        body={"scanner": "rsi", "coins": 1}, perm=UNIVERSE, variant="top coins"),
    row("GET",    "/api/scans/{run}/",                401,  200,  404,  200,  200,
        perm=VIEW_SCANS, variant="of a watchlist"),
    row("GET",    "/api/scans/{universe_run}/",       401,  200,  200,  200,  200,
        variant="of the universe"),
    row("GET",    "/api/scans/{run}/results",         401,  200,  404,  200,  200,
        perm=VIEW_SCANS),
    row("GET",    "/api/watchlists/",                 401,  200,  200,  200,  200),
    row("POST",   "/api/watchlists/",                 401,  201,  201,  201,  201,
        body={"name": "new", "coins": ["ETH"]}),
    row("GET",    WATCHLIST + "/",                    401,  200,  404,  404,  404),
    row("PATCH",  WATCHLIST + "/",                    401,  200,  404,  404,  404,
        body={"name": "renamed"}),
    row("DELETE", WATCHLIST + "/",                    401,  204,  404,  404,  404),
    row("POST",   WATCHLIST + "/coins/add",           401,  200,  404,  404,  404,
        body={"coins": ["ETH"]}),
    row("POST",   WATCHLIST + "/coins/remove",        401,  200,  404,  404,  404,
        body={"coins": ["BTC"]}),
    row("POST",   WATCHLIST + "/scan",                401,  202,  404,  404,  404),
    row("GET",    WATCHLIST + "/scan",                401,  200,  404,  404,  404),
    row("PUT",    WATCHLIST + "/coins",               401,  200,  404,  404,  404,
        body={"coins": ["ETH"]}),
    row("GET",    WATCHLIST + "/alerts",              401,  200,  404,  404,  404),
    row("GET",    "/api/scan/unified-ranking",        401,  200,  200,  200,  200),
    row("GET",    "/api/signals/",                    401,  200,  200,  200,  200),
    row("GET",    "/api/signals/{signal}/",           401,  200,  200,  200,  200,
        variant="a scanner's"),
    row("GET",    "/api/signals/{manual}/",           401,  200,  404,  200,  200,
        perm=VIEW_SIGNALS, variant="a manual one"),
    row("GET",    "/api/alerts/",                     401,  200,  200,  200,  200),
    row("GET",    "/api/alerts/{alert}/",             401,  200,  200,  200,  200),
    row("POST",   "/api/alerts/{alert}/resend",       401,  403,  403,  200,  200,
        perm=RESEND),
    row("GET",    PERF + "/stats",                    401,  200,  200,  200,  200),
    row("GET",    PERF + "/report",                   401,  200,  200,  200,  200),
    row("GET",    PERF + "/by-scanner",               401,  200,  200,  200,  200),
    row("GET",    PERF + "/by-tier",                  401,  200,  200,  200,  200),
    row("GET",    PERF + "/by-interval",              401,  200,  200,  200,  200),
    row("GET",    PERF + "/by-signal-type",           401,  200,  200,  200,  200),
    row("GET",    PERF + "/by-symbol",                401,  200,  200,  200,  200),
    row("GET",    PERF + "/top-performers",           401,  200,  200,  200,  200),
    row("GET",    PERF + "/recommendations",          401,  200,  200,  200,  200),
    row("GET",    PERF + "/tracker-stats",            401,  200,  200,  200,  200),
    row("POST",   PERF + "/tracker/start",            401,  403,  403,  200,  200,
        perm=TRACKER),
    row("POST",   PERF + "/tracker/stop",             401,  403,  403,  200,  200,
        perm=TRACKER),
    row("POST",   PERF + "/track-signal",             401,  201,  201,  201,  201,
        body=TRACK),
]
# fmt: on

# Views that are not DRF's, with the methods they answer.
PLAIN_VIEWS = {"health": {"GET"}}


def _api_routes() -> set[tuple[str, str]]:
    """(URL name, method) of every endpoint under /api/ in the URLconf."""

    def walk(patterns: list, prefix: str = ""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern

    found = set()
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith("api/"):
            continue
        callback = pattern.callback
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if getattr(callback, "actions", None):
            # HEAD is GET without the body (DRF adds it to `actions` at a view's first GET).
            methods = {method.upper() for method in callback.actions if method != "head"}
        elif view_class is not None:
            methods = {
                method.upper()
                for method in view_class.http_method_names
                if hasattr(view_class, method) and method not in ("options", "head")
            }
        else:
            assert pattern.name in PLAIN_VIEWS, f"{route}: say which methods it answers"
            methods = PLAIN_VIEWS[pattern.name]
        found |= {(pattern.name, method) for method in methods}
    return found


def test_every_endpoint_has_a_row():
    assert _api_routes() == {(row.name, row.method) for row in MATRIX}


# --- the world the rows act on ------------------------------------------------------------------


@pytest.fixture
def world(settings, monkeypatch) -> dict[str, Any]:
    from cryptosatx.celery import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)  # no broker needed
    settings.MARKET_SOURCE = "replay"
    ReplayClock.objects.create(
        pk=1, market_time=NOW, start=START, end=NOW + timedelta(days=10), step=timedelta(hours=1)
    )
    TrackerState.objects.create(pk=1, enabled=True)
    btc = MarketFactory(symbol="BTC/USDT", base="BTC")
    eth = MarketFactory(symbol="ETH/USDT", base="ETH")
    for market, price in ((btc, 100.0), (eth, 10.0)):
        hourly_candles(market, [price] * 30, start=NOW - timedelta(hours=30))
    owner = UserFactory(username="alice")
    watchlist = WatchlistFactory(owner=owner, name="majors")
    WatchlistCoin.objects.create(watchlist=watchlist, symbol="BTC/USDT")
    run = ScanRunFactory(watchlist=watchlist, requested_by=owner, symbols=["BTC/USDT"])
    ScanResultFactory(run=run, symbol="BTC/USDT")
    failed = SignalAlertFactory(state="failed")
    return {
        "owner": owner,
        "market": btc.pk,
        "watchlist": watchlist.pk,
        "run": run.pk,
        "universe_run": ScanRunFactory(symbols=["BTC/USDT", "ETH/USDT"]).pk,
        "signal": SignalFactory(as_of=NOW - timedelta(days=2)).pk,
        "manual": SignalFactory(scanner="manual", owner=owner, as_of=NOW - timedelta(days=1)).pk,
        "alert": failed.pk,
    }


def client_of(role: str, world: dict[str, Any], perm: str | None) -> APIClient:
    client = APIClient()
    if role == "anon":
        return client
    user = {
        "owner": lambda: world["owner"],
        "other": lambda: UserFactory(username="bob"),
        "staff": lambda: UserFactory(username="root", is_staff=True, is_superuser=True),
        "granted": lambda: UserFactory(username="carol"),
    }[role]()
    if role == "granted" and perm is not None:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def case_id(row: Row, role: str) -> str:
    variant = f" ({row.variant})" if row.variant else ""
    return f"{row.method} {row.name}{variant} as {role}"


CASES = [
    pytest.param(row, role, expected, id=case_id(row, role))
    for row in MATRIX
    for role, expected in zip(ROLES, row.expect, strict=True)
]


@pytest.mark.parametrize(("row", "role", "expected"), CASES)
def test_who_may_do_what(world, row, role, expected):
    client = client_of(role, world, row.perm)
    path = row.path.format(**world)
    if row.method == "GET":
        response = client.get(path)
    else:
        response = getattr(client, row.method.lower())(path, row.body, format="json")
    allowed = expected if isinstance(expected, set) else {expected}
    assert response.status_code in allowed, response.content[:300]
