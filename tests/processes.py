"""Real processes for the tests that kill and restart things: Celery workers and beat, each in its
own process group (so SIGKILL reaches the prefork children too), Redis servers of a test's own,
the Celery app that sends to them, and what the topology test reads (Procfile, plain HTTP)."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
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


@contextmanager
def redis_server(port: int, log: Path) -> Iterator[subprocess.Popen]:
    """A `redis-server` of the test's own on `port`, without persistence, answering when yielded
    (tests that restart Redis, or must not share it, never touch the shared one on 6379)."""
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    with process(command, log) as server:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, 20, f"redis-server on port {port}")
        yield server


def kill_marked(name: str, value: str) -> list[int]:
    """SIGKILL every process whose environment holds `name=value`; the pids killed.

    The last word in tearing down a tree whose members start sessions of their own (honcho starts
    each Procfile process in its own session, so no one process group holds them all): the test
    puts a unique marker in the environment it starts the tree with, and every descendant
    inherits it."""
    needle = f"{name}={value}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in environment:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(int(entry.name))
    return killed


def procfile_entries(path: Path) -> dict[str, str]:
    """The `name: command` lines of a Procfile, in order (comments and blank lines skipped)."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def procfile_worker_nodes(path: Path) -> list[str]:
    """The Celery node names the Procfile's workers take on this machine (`-n name@%h`)."""
    hostname = socket.gethostname()
    return [
        node.replace("%h", hostname)
        for command in procfile_entries(path).values()
        for node in re.findall(r"-n\s+(\S+)", command)
    ]


def http_get(
    url: str,
    basic_auth: str | None = None,
    timeout: float = 10,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """GET `url` (optionally with `user:password` basic auth, or other headers): the status and
    the body, also for an error status."""
    request = urllib.request.Request(url, headers=headers or {})
    if basic_auth is not None:
        token = base64.b64encode(basic_auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
