"""Tasks sent through Celery are executed by real workers: the embedded one and one on Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.result import allow_join_result
from celery.signals import task_postrun

from core.embedded_celery import EmbeddedCelery
from cryptosatx.models import Heartbeat
from tests.services import TEST_REDIS_URL


def _app(broker: str, backend: str) -> Celery:
    app = Celery("cryptosatx-test")
    app.config_from_object("celeryconfig")
    app.conf.update(broker_url=broker, result_backend=backend)
    app.autodiscover_tasks(["cryptosatx"], force=True)
    return app


@contextmanager
def task_finished(task_name: str) -> Iterator[threading.Event]:
    """An event set when a worker has finished running `task_name` (for result-less tasks)."""
    done = threading.Event()

    def on_postrun(sender=None, **kwargs) -> None:
        if sender is not None and sender.name == task_name:
            done.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        yield done
    finally:
        task_postrun.disconnect(on_postrun)


@pytest.mark.django_db(transaction=True)
def test_embedded_worker_executes_a_task_sent_through_the_memory_broker() -> None:
    app = _app("memory://", "cache+memory://")
    embedded = EmbeddedCelery(app, threads=2, with_beat=False)
    embedded.start()
    try:
        with task_finished("cryptosatx.heartbeat") as done:
            app.send_task("cryptosatx.heartbeat")
            assert done.wait(20)
    finally:
        embedded.stop()
    assert Heartbeat.objects.filter(component="beat").exists()


@pytest.mark.django_db(transaction=True)
def test_embedded_worker_answers_the_ping_probe() -> None:
    app = _app("memory://", "cache+memory://")
    embedded = EmbeddedCelery(app, threads=1, with_beat=False)
    embedded.start()
    try:
        with allow_join_result():
            answer = app.send_task("cryptosatx.ping").get(timeout=20)
    finally:
        embedded.stop()
    assert answer == "pong"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_executes_a_task_routed_to_its_queue() -> None:
    app = _app(TEST_REDIS_URL, TEST_REDIS_URL)
    with (
        start_worker(app, pool="solo", perform_ping_check=False, queues=["default"]),
        task_finished("cryptosatx.heartbeat") as done,
    ):
        app.send_task("cryptosatx.heartbeat")
        assert done.wait(20)
    assert Heartbeat.objects.filter(component="beat").exists()


def test_service_tasks_are_routed_to_the_default_queue() -> None:
    app = _app("memory://", "cache+memory://")
    route = app.amqp.router.route({}, "cryptosatx.heartbeat")
    assert route["queue"].name == "default"
    assert app.amqp.router.route({}, "scanners.advance_replay_clock")["queue"].name == "scans"
