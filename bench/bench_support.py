"""What the bench scripts share: the local PostgreSQL they create their databases in, the
processes they start (and stop, whatever way the script ends), free loopback ports and waiting
for a server to listen on one, Celery workers, and the percentile they report. Imported by name:
a bench script runs as `python bench/NAME.py`, so this folder is first on its path.

Cleaning up: a script registers what it starts (`spawn`, `adopt`) and the databases it creates
(`create_database`), calls `sigterm_as_interrupt()` so that SIGTERM takes Ctrl-C's path, and
calls `cleanup()` in a `finally`. The processes are also stopped when the interpreter exits (an
`atexit` hook), so a script that dies of an unexpected exception leaves no server behind."""

from __future__ import annotations

import atexit
import contextlib
import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}

# Every process started by `spawn` (or registered by `adopt`) and not stopped or forgotten yet,
# oldest first; `stop_all` stops them newest first (a worker before the Redis it talks to).
PROCESSES: list[subprocess.Popen] = []
# Every database `create_database` made and `drop_database` has not dropped yet.
DATABASES: list[str] = []


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_admin(sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's `postgres` database."""
    import psycopg2

    connection = psycopg2.connect(dbname="postgres", **PG)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def create_database(name: str) -> None:
    """A new empty database `name` (one left by an earlier run is dropped first), registered so
    that `cleanup` drops it."""
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    DATABASES.append(name)
    pg_admin(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    """Drop `name` (its connections are terminated) and forget it; a failure is printed, not
    raised, so that cleaning up goes on."""
    try:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as error:  # cleanup goes on
        print(f"could not drop {name}: {error}", file=sys.stderr)
    if name in DATABASES:
        DATABASES.remove(name)


# --- processes -------------------------------------------------------------------------------


def spawn(
    command: list[str], env: dict[str, str], log: Path | None = None, **popen
) -> subprocess.Popen:
    """Start `command` in the repository's root with `env`, in a session of its own, and register
    it so that `stop_all` (and `cleanup`, and the interpreter's exit) stops it.

    Its own session makes it the leader of a process group: `stop_process` signals the group, so
    the servers' own children (gunicorn's workers, Celery's pool) stop with it, and a Ctrl-C at
    the terminal reaches only the bench script, which then stops it. With `log`, its stdout and
    stderr go to that file; otherwise `popen` (e.g. `stdout=subprocess.PIPE, text=True`) says
    where, and anything it does not set is inherited."""
    if log is not None:
        with log.open("wb") as out:  # the child holds its own copy of the descriptor
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
    else:
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, **popen)
    return adopt(process)


def adopt(process: subprocess.Popen) -> subprocess.Popen:
    """Register a process started some other way, so that `stop_all` stops it; returns it."""
    PROCESSES.append(process)
    return process


def forget(process: subprocess.Popen) -> None:
    """Unregister `process` (one that has exited, or is stopped some other way)."""
    if process in PROCESSES:
        PROCESSES.remove(process)


def _signal(process: subprocess.Popen, signum: int) -> None:
    """`signum` to the process group `process` leads; to `process` alone when it leads none (it
    was not started by `spawn`): never to a group of which it is only a member, which may be
    this script's."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """Stop `process` and unregister it: SIGTERM to its process group (to it alone if it leads
    none: `adopt`ed), then SIGKILL likewise if it has not exited within `grace` seconds. Returns
    once it has exited (at most `grace` + 10 seconds); one that has exited already is only
    unregistered."""
    forget(process)
    if process.poll() is not None:
        return
    _signal(process, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait(10)


def stop_all(grace: float = 10) -> None:
    """`stop_process` every registered process, newest first (each given `grace` seconds)."""
    for process in reversed(list(PROCESSES)):
        stop_process(process, grace)


# Whatever way the script ends (an exception it does not catch included), what it started stops.
atexit.register(stop_all)


def cleanup(grace: float = 10) -> None:
    """Stop every registered process (`stop_all(grace)`), close this process's Django connections
    (when Django is loaded) and drop every registered database. Safe to call more than once."""
    stop_all(grace)
    if "django.db" in sys.modules:
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()
    for name in list(DATABASES):
        drop_database(name)


def _interrupt(signum: int, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def sigterm_as_interrupt() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does: a script
    stopped either way runs its `finally` (and its `cleanup`)."""
    signal.signal(signal.SIGTERM, _interrupt)


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Return once 127.0.0.1:`port` accepts a connection. SystemExit, with the end of `log`, if
    `process` exits first or `timeout` seconds pass."""
    name = Path(str(process.args[0] if isinstance(process.args, list) else process.args)).name
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{name} not listening after {timeout:g} s:\n"
                f"{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.2)  # another process's port: nothing to await


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    """GET `path` from 127.0.0.1:`port` on a new connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` in a subprocess with `env` (its DATABASE_URL names the database)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def hammer(
    port: int,
    path: str,
    headers: list[dict[str, str]],
    seconds: float,
    *,
    pause: float = 0.0,
    stop: threading.Event | None = None,
    timeout: float = 60,
    on_started: Callable[[], None] | None = None,
) -> dict:
    """Load from this process: one thread per entry of `headers` (that client's request headers)
    GETs `path` from 127.0.0.1:`port`, a new connection per request (`http_get`, `timeout`),
    `pause` seconds apart (0: back to back), until `seconds` have passed or `stop` is set. A
    request that cannot connect counts as status 0. `on_started` is called once every thread
    runs. Returns {"requests", "seconds" (the whole phase), "statuses" (requests per status, the
    status as a string), "p50_ms", "p95_ms" (nearest rank; None if no request finished)}."""
    stop = stop or threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    def client(client_headers: dict[str, str]) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status, _ = http_get(port, path, client_headers, timeout=timeout)
            except OSError:
                status = 0
            took = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(took)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            if pause:
                stop.wait(pause)

    threads = [threading.Thread(target=client, args=(each,), daemon=True) for each in headers]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    if on_started:
        on_started()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout + 10)  # a request in flight ends within its timeout
    return {
        "requests": len(latencies),
        "seconds": time.perf_counter() - began,
        "statuses": statuses,
        "p50_ms": percentile(latencies, 0.5) if latencies else None,
        "p95_ms": percentile(latencies, 0.95) if latencies else None,
    }


def start_celery_workers(
    count: int,
    *,
    queues: str,
    name: str,
    pool: str,
    concurrency: int,
    env: dict[str, str],
    logs: Path,
    timeout: float = 120,
) -> list[subprocess.Popen]:
    """`count` processes of `celery -A cryptosatx worker -Q queues --pool pool --concurrency
    concurrency` (named `{name}{i}-{pid}@%h`, no mingle or gossip, INFO logs to
    logs/worker{i}.log), spawned; returns once every one has logged "ready.". SystemExit if one
    exits first or `timeout` seconds pass."""
    celery = str(Path(sys.executable).parent / "celery")
    workers = []
    for index in range(count):
        log = logs / f"worker{index + 1}.log"
        workers.append(
            spawn(
                [
                    celery, "-A", "cryptosatx", "worker", "-Q", queues,
                    "-n", f"{name}{index + 1}-{os.getpid()}@%h",
                    "--pool", pool, "--concurrency", str(concurrency),
                    "--without-mingle", "--without-gossip", "--loglevel", "INFO",
                ],
                env,
                log=log,
            )
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    for index, worker in enumerate(workers):
        log = logs / f"worker{index + 1}.log"
        while "ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {index + 1} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)  # another process's log: nothing to await
    return workers


# --- figures ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `share` (0 < share <= 1) of
    the values at or below it, i.e. the ceil(share * n)-th smallest. `values` must not be
    empty."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
