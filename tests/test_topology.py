"""`make up` from requirements.txt alone: the distributed topology a user starts.

A virtualenv of `requirements.txt` only (no test or lint tools, no system site-packages; built by
the Makefile's own recipe, kept under var/ per hash of requirements.txt so later runs reuse it)
runs `make up` against a PostgreSQL database and a `redis-server` of this test's own: `prepare`
(migrate, schedules, static files, the bundled sample, the admin user), then the Procfile under
honcho — gunicorn, the three workers, beat and Flower. The test suite's own venv has `packaging`
(pytest needs it), so only a venv like this one shows what a user's install lacks: kombu's Redis
transport imports `packaging`, and with `kombu` instead of `kombu[redis]` every worker, beat and
Flower died on it at start.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
import yaml

from tests.processes import (
    ROOT,
    free_port,
    http_get,
    kill_marked,
    process,
    procfile_worker_nodes,
    redis_server,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.topology]

REQUIREMENTS = ROOT / "requirements.txt"
PROCFILE = ROOT / "Procfile"
VENVS = ROOT / "var" / "topology-venvs"
# A cold run builds the venv first (pip install -r requirements.txt: one to two minutes), then
# imports the bundled sample into an empty database.
START_TIMEOUT = 600
SCAN_TIMEOUT = 120
MARKER = "CRYPTOSATX_TOPOLOGY_TEST"
# The healthchecks of docker-compose.yml's app services (no Docker engine here: they run against
# the same commands started by `make up`).
HEALTHCHECKS = {
    name: service["healthcheck"]["test"]
    for name, service in yaml.safe_load((ROOT / "docker-compose.yml").read_text())[
        "services"
    ].items()
    if "build" in service and "healthcheck" in service
}
# What the product's processes must not inherit from the test run: its database and broker, its
# Django settings module, and any virtualenv or import path that could hand them a package
# requirements.txt does not declare.
NOT_INHERITED = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "RATE_BUDGET_REDIS_URL",
    "SECRET_KEY",
    "MARKET_SOURCE",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
}


def topology_venv() -> Path:
    """Where the venv of this requirements.txt lives; venvs of older requirements are removed."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    if VENVS.exists():
        for stale in VENVS.iterdir():
            if stale.name != digest:
                shutil.rmtree(stale, ignore_errors=True)
    return VENVS / digest


@dataclass
class Topology:
    venv: Path
    env: dict[str, str]
    web_url: str
    flower_url: str
    flower_auth: str
    database_url: str
    log: Path
    token: str = ""

    def output(self, last: int = 20_000) -> str:
        """The tail of everything `make up` printed (the venv build, prepare, every process)."""
        return self.log.read_text(errors="replace")[-last:]

    def lines_of(self, name: str) -> list[str]:
        """What one process printed (honcho prefixes each line with its time and name)."""
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if line.partition("|")[0].split()[1:] == [name]
        ]

    def health(self) -> tuple[int, dict]:
        """/api/health as the admin sees it (anyone else gets the status and what is down)."""
        headers = {"Authorization": f"Token {self.token}"} if self.token else None
        status, body = http_get(f"{self.web_url}/api/health", headers=headers)
        return status, json.loads(body or b"{}")

    def admin_token(self) -> str:
        """The admin's API token, made with the topology's own venv as an operator would."""
        created = subprocess.run(
            [str(self.venv / "bin" / "python"), "manage.py", "drf_create_token", "admin"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return created.stdout.split()[2]  # "Generated token <key> for user admin"

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg2.connect(self.database_url) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        connection.close()
        return rows


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A PostgreSQL database of the topology's own, created empty and dropped afterwards."""
    server = urlsplit(os.environ["DATABASE_URL"])
    name = f"cx_topology_{os.getpid()}"
    admin = psycopg2.connect(server._replace(path="/postgres").geturl())
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield server._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def healthy_with_every_worker(report: dict) -> bool:
    """Status ok, and every worker the Procfile starts named in the report (its worker check)."""
    text = json.dumps(report)
    return report.get("status") == "ok" and all(
        f'"{node}"' in text for node in procfile_worker_nodes(PROCFILE)
    )


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Topology]:
    home = tmp_path_factory.mktemp("topology")
    redis_port, web_port, flower_port = free_port(), free_port(), free_port()
    marker = uuid.uuid4().hex
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in NOT_INHERITED and not name.startswith(("DJANGO_", "PYTEST_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FLOWER_BASIC_AUTH": f"topology:{secrets.token_urlsafe(12)}",
            "RUN_PORT": str(web_port),
            "FLOWER_PORT": str(flower_port),
            "VAR_DIR": str(home / "var"),
            "ADMIN_PASSWORD": secrets.token_urlsafe(12),
            # One market second per real second: beat's scheduled scans (market-time intervals)
            # start at the first tick and not again during the test, so the test's own scan is
            # not refused as overlapping one of them.
            "REPLAY_SPEED": "1",
            "PYTHONUNBUFFERED": "1",
            MARKER: marker,
        }
    )
    running = Topology(
        venv=topology_venv(),
        env=env,
        web_url=f"http://127.0.0.1:{web_port}",
        flower_url=f"http://127.0.0.1:{flower_port}",
        flower_auth=env["FLOWER_BASIC_AUTH"],
        database_url=database_url,
        log=home / "make-up.log",
    )
    command = ["make", "--no-print-directory", "up", f"VENV={running.venv}"]
    try:
        with (
            redis_server(redis_port, home / "redis.log"),
            process(command, running.log, env) as make_up,
        ):
            last: dict = {}

            def up() -> bool:
                nonlocal last
                if make_up.poll() is not None:
                    raise AssertionError(f"make up exited with {make_up.returncode}")
                try:
                    _, last = running.health()
                except (OSError, ValueError):  # not serving yet (the venv may still be building)
                    return False
                if last.get("status") == "ok" and not running.token:
                    # Migrated and serving: the worker names are in staff's answer only.
                    running.token = running.admin_token()
                    _, last = running.health()
                return healthy_with_every_worker(last)

            try:
                wait_until(up, START_TIMEOUT, "make up to report health ok with every worker")
            except AssertionError as failure:
                pytest.fail(
                    f"{failure}\nlast health report: {last}\n"
                    f"--- make up output ---\n{running.output()}"
                )
            yield running
    finally:
        # honcho stops its processes on the TERM that ends `make up`; whatever survived a crash
        # of honcho itself still carries the marker.
        kill_marked(MARKER, marker)


def test_the_topology_venv_holds_requirements_txt_alone(topology: Topology) -> None:
    config = (topology.venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    for dev_tool in ("pytest", "pytest-django", "factory_boy", "ruff"):
        shown = subprocess.run(
            [topology.venv / "bin" / "python", "-m", "pip", "show", "--quiet", dev_tool],
            capture_output=True,
            check=False,
        )
        assert shown.returncode != 0, f"{dev_tool} is in the topology venv"


def test_make_up_reports_health_ok_with_every_procfile_worker(topology: Topology) -> None:
    status, report = topology.health()
    assert status == 200
    assert healthy_with_every_worker(report), f"{report}\n{topology.output()}"
    assert report["broker"]["transport"] == "redis"


def test_a_scan_through_redis_finishes_on_the_procfile_scans_worker(topology: Topology) -> None:
    # Beat's first RSI scan (the first replay tick) must be over, or ours would be refused.
    def beat_rsi_scan_over() -> bool:
        return topology.query(
            "SELECT count(*) FILTER (WHERE status IN ('finished', 'failed')), "
            "count(*) FILTER (WHERE status IN ('queued', 'running')) "
            "FROM scanners_scanrun WHERE scanner = 'rsi'"
        )[0] == (1, 0)

    wait_until(beat_rsi_scan_over, SCAN_TIMEOUT, "beat's first rsi scan to end")
    scan = subprocess.run(
        [
            topology.venv / "bin" / "python",
            "manage.py",
            "scan",
            "rsi",
            "--symbols",
            "BTC,ETH",
            "--json",
            "--timeout",
            str(SCAN_TIMEOUT),
        ],
        cwd=ROOT,
        env=topology.env,
        capture_output=True,
        text=True,
        timeout=SCAN_TIMEOUT + 60,
        check=False,
    )
    assert scan.returncode == 0, f"{scan.stderr}\n{topology.output()}"
    assert {result["symbol"] for result in json.loads(scan.stdout)} == {"BTC/USDT", "ETH/USDT"}
    [(run, status, done)] = topology.query(
        "SELECT id, status, coins_done FROM scanners_scanrun WHERE trigger = 'manual'"
    )
    assert (status, done) == ("finished", 2)
    # Finished by the Procfile's scans worker.
    assert any(f"scan #{run} rsi finished" in line for line in topology.lines_of("scans.1"))


def test_flower_refuses_without_basic_auth_and_answers_with_it(topology: Topology) -> None:
    assert http_get(f"{topology.flower_url}/")[0] == 401
    assert http_get(f"{topology.flower_url}/", basic_auth="topology:wrong")[0] == 401
    status, body = http_get(f"{topology.flower_url}/", basic_auth=topology.flower_auth)
    assert status == 200
    assert b"Flower" in body


def run_compose_healthcheck(
    topology: Topology, service: str, hostname: str
) -> subprocess.CompletedProcess:
    """Run `service`'s healthcheck as Docker would inside its container: Compose has turned $$
    into $, the image's bin/ is on PATH, and HOSTNAME is the container's (here: the machine's,
    which the Procfile's workers take for %h)."""
    kind, *test = (part.replace("$$", "$") for part in HEALTHCHECKS[service])
    command = ["sh", "-c", test[0]] if kind == "CMD-SHELL" else test
    env = {
        **topology.env,
        "PATH": f"{topology.venv / 'bin'}{os.pathsep}{topology.env['PATH']}",
        "HOSTNAME": hostname,
    }
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.mark.parametrize("service", sorted(HEALTHCHECKS))
def test_the_compose_healthcheck_passes_against_the_running_process_of(
    topology: Topology, service: str
) -> None:
    checked = run_compose_healthcheck(topology, service, socket.gethostname())
    assert checked.returncode == 0, f"{checked.stdout}{checked.stderr}"


def test_a_worker_healthcheck_fails_when_its_worker_does_not_answer(topology: Topology) -> None:
    checked = run_compose_healthcheck(topology, "worker-scans", "another-host")
    assert checked.returncode != 0
