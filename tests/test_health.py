"""GET /api/health says which part of the product is up, and answers 503 when one is down:
to anyone only the status and the names of the parts that are down, to staff the details, from
state a background prober keeps, never from a round trip per request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery import Celery
from celery.signals import before_task_publish
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.embedded_celery import EmbeddedCelery
from cryptosatx import services
from cryptosatx.celery import app as celery_app
from cryptosatx.models import Heartbeat
from tests.factories import UserFactory

UNREACHABLE = "127.0.0.1:1"


@pytest.fixture(autouse=True)
def prober(monkeypatch) -> Iterator[services.HealthProber]:
    """A prober of the test's own, stopped at its end: no probing thread outlives a test."""
    monkeypatch.setattr(services, "WORKER_PROBE_TIMEOUT", 0.5)
    kept = services.HealthProber()
    monkeypatch.setattr(services, "_prober", kept)
    yield kept
    kept.stop()


class SteppingClock:
    """Epoch seconds that move only when the test says."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(username="operator", is_staff=True))
    return client


@contextmanager
def tasks_published_by_this_thread() -> Iterator[list[str]]:
    """The names of the tasks this thread publishes inside the block."""
    here = threading.get_ident()
    names: list[str] = []

    def on_publish(sender=None, **kwargs) -> None:
        if threading.get_ident() == here:
            names.append(str(sender))

    before_task_publish.connect(on_publish, weak=False)
    try:
        yield names
    finally:
        before_task_publish.disconnect(on_publish)


def _memory_app() -> Celery:
    app = Celery("cryptosatx-health-test")
    app.config_from_object("celeryconfig")
    app.conf.update(broker_url="memory://", result_backend="cache+memory://")
    app.autodiscover_tasks(["cryptosatx"], force=True)
    return app


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
def test_an_exchange_ban_shows_in_health_with_its_reason() -> None:
    from httpengine import registry

    registry.reset_engines()
    bans = next(iter(registry.engines().values())).bans
    until = timezone.now().timestamp() + 120
    asyncio.run(bans.ban("binance-spot", until, "HTTP 418 from the exchange"))
    try:
        report = services.check_exchange_bans()
    finally:
        registry.reset_engines()
    assert report["status"] == "error"
    assert report["bans"]["binance-spot"]["reason"] == "HTTP 418 from the exchange"


@pytest.mark.django_db
def test_no_exchange_ban_is_ok() -> None:
    from httpengine import registry

    registry.reset_engines()
    assert services.check_exchange_bans() == {"status": "ok", "bans": {}}


@pytest.mark.django_db
def test_anyone_gets_only_the_status_and_the_names_of_the_parts_that_are_down() -> None:
    services.heartbeat_record("beat")
    response = Client().get("/api/health")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "error", "down": ["worker"]}


@pytest.mark.django_db
def test_staff_see_every_parts_details_and_the_age_of_the_kept_state(staff_client) -> None:
    services.heartbeat_record("beat")
    response = staff_client.get("/api/health")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "error"
    assert body["worker"]["status"] == "error"
    assert "no worker answered" in body["worker"]["error"]
    assert body["database"]["status"] == "ok"
    assert body["beat"]["status"] == "ok"
    assert body["probed_seconds_ago"] >= 0


@pytest.mark.django_db
def test_staff_with_an_api_token_see_the_details() -> None:
    token = Token.objects.create(user=UserFactory(username="ops", is_staff=True))
    body = Client(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/health").json()
    assert "database" in body
    assert "worker" in body


@pytest.mark.django_db
def test_a_signed_in_user_who_is_not_staff_gets_the_anonymous_answer() -> None:
    client = Client()
    client.force_login(UserFactory(username="alice"))
    assert set(client.get("/api/health").json()) == {"status", "down"}


@pytest.mark.django_db
def test_anyone_sees_no_host_or_port_when_the_database_is_unreachable(
    monkeypatch, staff_client
) -> None:
    from django.db import connections

    real = connections["default"]
    if real.vendor != "postgresql":
        pytest.skip("needs a database server to be unreachable")
    host, port = UNREACHABLE.split(":")
    # The same driver and database, at an address where no server listens.
    unreachable = real.__class__({**real.settings_dict, "HOST": host, "PORT": port}, "default")
    monkeypatch.setattr(services, "connection", unreachable)

    anonymous = Client().get("/api/health")
    staff = staff_client.get("/api/health")

    assert anonymous.status_code == 503
    assert "database" in anonymous.json()["down"]
    assert host not in anonymous.content.decode()
    assert f"port {port}" in staff.json()["database"]["error"]


@pytest.mark.django_db
def test_anyone_sees_no_host_or_port_when_the_broker_is_unreachable(
    monkeypatch, staff_client
) -> None:
    monkeypatch.setitem(celery_app.conf, "broker_write_url", f"redis://{UNREACHABLE}/0")
    services.heartbeat_record("beat")

    anonymous = Client().get("/api/health")
    staff = staff_client.get("/api/health")

    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "error", "down": ["broker", "worker"]}
    assert UNREACHABLE not in anonymous.content.decode()
    assert UNREACHABLE in staff.json()["broker"]["error"]


@pytest.mark.django_db
def test_health_requests_send_no_task_only_the_background_probe_does(prober) -> None:
    with tasks_published_by_this_thread() as published:
        prober.refresh()
        probe = list(published)
        for _ in range(5):
            Client().get("/api/health")

    assert probe == ["cryptosatx.ping"]
    assert published == probe


@pytest.mark.django_db
def test_a_stopped_worker_is_answered_from_the_kept_state_until_it_turns_stale() -> None:
    clock = SteppingClock()
    kept = services.HealthProber(clock=clock)  # not started: the test probes by hand
    embedded = EmbeddedCelery(_memory_app(), threads=1, with_beat=False)
    embedded.start()
    try:
        kept.refresh()
    finally:
        embedded.stop()

    clock.t += 2
    with tasks_published_by_this_thread() as published:
        kept_answer = services.health_report(kept.read())
    clock.t += services.PROBE_STALE_AFTER_SECONDS
    stale = services.health_report(kept.read())
    kept.refresh()
    probed_again = services.health_report(kept.read())

    assert kept_answer["worker"]["status"] == "ok"
    assert kept_answer["probed_seconds_ago"] == 2
    assert published == []
    assert stale["status"] == "error"
    assert stale["worker"]["stale"] is True
    assert "the background probe is stuck or gone" in stale["worker"]["error"]
    assert "worker" in services.public_health(stale)["down"]
    assert "no worker answered" in probed_again["worker"]["error"]


@pytest.mark.django_db
def test_before_the_first_probe_the_probed_parts_are_waiting() -> None:
    report = services.health_report(services.HealthProber().read())
    assert report["worker"]["status"] == "waiting"
    assert "probed_seconds_ago" not in report


@pytest.mark.django_db
def test_health_requests_within_a_second_share_one_report(
    monkeypatch, django_assert_num_queries
) -> None:
    clock = SteppingClock()
    kept = services.HealthProber(clock=clock)
    monkeypatch.setattr(services, "_prober", kept)
    try:
        first = Client().get("/api/health").json()
        clock.t += 0.5
        with django_assert_num_queries(0):
            again = Client().get("/api/health").json()
        clock.t += 0.5
        with CaptureQueriesContext(connection) as a_second_later:
            Client().get("/api/health")
    finally:
        kept.stop()
    assert again == first
    assert len(a_second_later) > 0  # a new report: the database check and beat's row


@pytest.mark.django_db
def test_a_page_gets_a_waiting_report_at_once_while_the_first_probe_is_under_way(
    monkeypatch,
) -> None:
    probing = threading.Event()
    release = threading.Event()

    def slow_probe() -> dict:
        probing.set()
        release.wait(30)
        return {name: {"status": "ok"} for name in services.PROBED_PARTS}

    monkeypatch.setattr(services, "probe_background_parts", slow_probe)
    kept = services.HealthProber()
    try:
        page_report = kept.report(first_wait=0)
        assert probing.wait(10)
        release.set()
        assert kept._first.wait(10)
        later = kept.report(first_wait=0)
    finally:
        release.set()
        kept.stop()
    assert page_report["worker"]["status"] == "waiting"
    assert later["worker"]["status"] == "ok"  # the waiting report was not kept for others
