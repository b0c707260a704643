"""GET /api/health says which part of the product is up, and answers 503 when one is down."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cryptosatx import services
from cryptosatx.models import Heartbeat


@pytest.mark.django_db
def test_database_check_reports_ok_with_the_engine() -> None:
    report = services.check_database()
    assert report["status"] == "ok"
    assert report["engine"] in {"postgresql", "sqlite"}


@pytest.mark.django_db
def test_beat_is_waiting_before_its_first_heartbeat() -> None:
    assert services.check_beat()["status"] == "waiting"


@pytest.mark.django_db
def test_beat_is_ok_with_a_fresh_heartbeat() -> None:
    services.heartbeat_record("beat")
    assert services.check_beat()["status"] == "ok"


@pytest.mark.django_db
def test_beat_is_an_error_when_its_heartbeat_is_stale() -> None:
    Heartbeat.objects.create(
        component="beat", seen_at=timezone.now() - services.BEAT_STALE_AFTER - timedelta(seconds=1)
    )
    assert services.check_beat()["status"] == "error"


@pytest.mark.django_db
def test_health_is_503_and_names_the_worker_when_no_worker_runs(monkeypatch) -> None:
    monkeypatch.setattr(services, "WORKER_PROBE_TIMEOUT", 0.5)
    services.heartbeat_record("beat")
    response = Client().get("/api/health")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "error"
    assert body["worker"]["status"] == "error"
    assert "no worker answered" in body["worker"]["error"]
    assert body["database"]["status"] == "ok"


@pytest.mark.django_db
def test_health_needs_no_login() -> None:
    response = Client().get("/api/health")
    assert response.status_code in {200, 503}
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_an_exchange_ban_shows_in_health_with_its_reason() -> None:
    from scanners.market_data import http

    http.reset_engines()
    bans = next(iter(http.engines().values())).bans
    until = timezone.now().timestamp() + 120
    asyncio.run(bans.ban("binance-spot", until, "HTTP 418 from the exchange"))
    try:
        report = services.check_exchange_bans()
    finally:
        http.reset_engines()
    assert report["status"] == "error"
    assert report["bans"]["binance-spot"]["reason"] == "HTTP 418 from the exchange"


@pytest.mark.django_db
def test_no_exchange_ban_is_ok() -> None:
    from scanners.market_data import http

    http.reset_engines()
    assert services.check_exchange_bans() == {"status": "ok", "bans": {}}
