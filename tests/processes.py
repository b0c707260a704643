"""Real processes for the tests that kill and restart things: Celery workers and beat, each in its
own process group (so SIGKILL reaches the prefork children too), and the Celery app that sends to
them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")
APPS = ("cryptosatx", "scanners", "scoring", "tracking", "alerts")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` (another process's doing: there is no in-process event to wait on)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def process(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run `command` from the repository root, output appended to `log`; stopped (TERM, then
    KILL) on exit if still running."""
    with log.open("ab") as out:
        started = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield started
        finally:
            if started.poll() is None:
                os.killpg(started.pid, signal.SIGTERM)
                try:
                    started.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(started.pid, signal.SIGKILL)
                    started.wait(10)


def kill(started: subprocess.Popen) -> None:
    """SIGKILL the whole process group, as a crash or an OOM kill would."""
    os.killpg(started.pid, signal.SIGKILL)
    started.wait(10)


def celery_worker(*, queues: str, name: str, env: dict[str, str], log: Path, concurrency: int = 1):
    """`celery -A cryptosatx worker` (prefork) on `queues`, as a context manager."""
    return process(
        [
            CELERY,
            "-A",
            "cryptosatx",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{name}@%h",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        log,
        env,
    )


@contextmanager
def flushed_redis_db(url: str) -> Iterator[str]:
    """A Redis database emptied before and after the test (each test module uses its own db)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()


@contextmanager
def sending_app(broker: str, name: str) -> Iterator[Celery]:
    """A Celery app with the product's configuration on `broker`, current while the test sends."""
    from cryptosatx.celery import app as product_app

    app = Celery(name)
    app.config_from_object("celeryconfig")
    app.conf.update(broker_url=broker, result_backend=broker)
    app.autodiscover_tasks(list(APPS), force=True)
    app.set_current()
    app.set_default()
    try:
        yield app
    finally:
        product_app.set_current()
        product_app.set_default()
