"""A worker process killed with SIGKILL in the middle of a scan loses nothing and doubles nothing.

Real processes: `celery -A cryptosatx worker` on Redis (db 13) and the PostgreSQL test database.
Batches are acks_late with reject_on_worker_lost, so the killed worker's batch stays unacknowledged
in Redis and is redelivered after the visibility timeout (made short here through the
CELERY_VISIBILITY_TIMEOUT setting); a second worker runs it, and the ScanBatch key makes sure it is
written and counted once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from scanners import scanning
from scanners.models import RunStatus, ScanBatch, ScanResult, ScanRun
from tests.processes import ROOT, celery_worker, flushed_redis_db, kill, sending_app, wait_until
from tests.test_scan_pipeline import AS_OF, make_coins

BROKER = os.environ.get("PIPELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
VISIBILITY_TIMEOUT = 6
BATCH_DELAY = 2.0

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WORKER_SETTINGS = f"""
from tests.settings import *  # noqa: F403

SCAN_BATCH_SIZE = 2
SCAN_BATCH_TEST_DELAY_SECONDS = {BATCH_DELAY}
CELERY_VISIBILITY_TIMEOUT = {VISIBILITY_TIMEOUT}
"""


@pytest.fixture
def broker() -> Iterator[str]:
    with flushed_redis_db(BROKER) as url:
        yield url


@pytest.fixture
def app(broker: str) -> Iterator[Celery]:
    with sending_app(broker, "cryptosatx-kill-test") as celery_app:
        yield celery_app


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_scan_still_completes_the_run_with_no_duplicate_results(
    tmp_path: Path, settings, broker: str, app: Celery
) -> None:
    settings.SCAN_BATCH_SIZE = 2
    symbols = make_coins("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")  # three batches
    (tmp_path / "pipeline_worker_settings.py").write_text(WORKER_SETTINGS)
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipeline_worker_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
    }

    with celery_worker(
        queues="scans", name="doomed", env=env, log=tmp_path / "doomed.log"
    ) as doomed:
        run = scanning.scan_start("rsi", symbols=symbols, as_of=AS_OF)
        # The first batch marks the run running, then sits in its delay: kill it right there.
        wait_until(
            lambda: ScanRun.objects.get(pk=run.pk).status == RunStatus.RUNNING,
            60,
            "the first batch to start",
        )
        kill(doomed)
    run.refresh_from_db()
    assert run.batches_done == 0, "the batch finished before its worker was killed"
    assert not ScanResult.objects.filter(run=run).exists()

    with celery_worker(queues="scans", name="rescuer", env=env, log=tmp_path / "rescuer.log"):
        wait_until(
            lambda: ScanRun.objects.get(pk=run.pk).status == RunStatus.FINISHED,
            120,
            f"the run to finish (logs in {tmp_path})",
        )

    run.refresh_from_db()
    assert (run.coins_total, run.coins_done, run.coins_failed) == (6, 6, 0)
    assert (run.batches_total, run.batches_done) == (3, 3)
    results = list(ScanResult.objects.filter(run=run).values_list("scanner", "symbol"))
    assert sorted(results) == [("rsi", symbol) for symbol in symbols]
    assert ScanBatch.objects.filter(run=run).count() == 3
    assert "SIGKILL" not in (tmp_path / "rescuer.log").read_text()
