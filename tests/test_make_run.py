"""`make run` on a fresh state directory: it imports the sample, serves, and the replay advances."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 240  # a fresh SQLite store imports the whole bundled sample first


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class RunningProduct:
    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.token = ""  # the admin's API token: /api/health shows its details to staff only
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=1):
                    return
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        pytest.fail(f"'{text}' never appeared; output:\n{''.join(self.output)[-4000:]}")

    def health_until(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        report: dict = {}
        while time.monotonic() < deadline:
            auth = {"Authorization": f"Token {self.token}"}
            _, report = get_json(f"{self.base_url}/api/health", auth)
            if predicate(report):
                return report
            time.sleep(0.5)  # polling another process's HTTP endpoint: there is no event to await
        pytest.fail(f"health never satisfied the condition; last report: {report}")


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProduct]:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY"}
        and not k.startswith(("DJANGO_", "PYTEST_"))
    }
    env.update(
        VAR_DIR=str(tmp_path_factory.mktemp("var")),
        RUN_PORT=str(port),
        ADMIN_PASSWORD="e2e-admin-password",
        REPLAY_TICK_SECONDS="1",
        REPLAY_FILL_DAYS="1",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = RunningProduct(process, f"http://127.0.0.1:{port}")
    try:
        running.wait_for_line("Press Ctrl-C to stop.", START_TIMEOUT)
        created = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "drf_create_token", "admin"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        running.token = created.stdout.split()[2]  # "Generated token <key> for user admin"
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.e2e
def test_make_run_reports_every_part_healthy(product: RunningProduct) -> None:
    report = product.health_until(lambda r: r.get("status") == "ok", timeout=60)
    assert report["database"]["status"] == "ok"
    assert report["broker"] == {"status": "ok", "transport": "memory", "embedded": True}
    assert report["worker"]["status"] == "ok"
    assert report["beat"]["status"] == "ok"


@pytest.mark.e2e
def test_make_run_imported_the_bundled_sample(product: RunningProduct) -> None:
    output = "".join(product.output)
    assert "importing the bundled sample" in output
    assert "Created admin user 'admin'" in output


@pytest.mark.e2e
def test_make_run_serves_the_admin_login(product: RunningProduct) -> None:
    with urllib.request.urlopen(f"{product.base_url}/admin/login/", timeout=10) as response:
        assert response.status == 200
        assert "CryptoSatX" in response.read().decode()


@pytest.mark.e2e
def test_make_run_fills_history_first_then_the_clock_goes_on_from_there(
    product: RunningProduct,
) -> None:
    product.wait_for_line("history filled up to", timeout=180)
    report = product.health_until(lambda r: r.get("replay_clock", {}).get("ticks", 0) >= 1, 60)
    clock = report["replay_clock"]
    filled = datetime.fromisoformat(clock["start"]) + timedelta(days=1)
    assert datetime.fromisoformat(clock["market_time"]) > filled
    assert "filling history:" in "".join(product.output)


@pytest.mark.e2e
def test_make_run_replay_clock_advances(product: RunningProduct) -> None:
    first = product.health_until(lambda r: r.get("replay_clock", {}).get("ticks", 0) >= 1, 60)
    ticks = first["replay_clock"]["ticks"]
    later = product.health_until(lambda r: r["replay_clock"]["ticks"] > ticks, timeout=30)
    assert later["replay_clock"]["market_time"] > first["replay_clock"]["market_time"]


@pytest.mark.e2e
def test_make_run_stops_cleanly_on_ctrl_c(product: RunningProduct) -> None:
    # Ctrl-C in a terminal signals the whole foreground process group: make and the product.
    os.killpg(product.process.pid, signal.SIGINT)
    product.wait_for_line("CryptoSatX stopped cleanly.", timeout=60)
    product.process.wait(timeout=30)
    assert "Traceback" not in "".join(product.output)
