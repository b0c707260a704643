"""A Celery worker (thread pool) and, optionally, beat, running as threads of this process.

Used where one process holds everything: the all-in-one runner (`make run`) and the `scan` and
`replay` commands when EMBEDDED is on, whose in-memory broker only reaches consumers in-process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery import Celery
from celery.beat import EmbeddedService
from celery.worker import WorkController
from django.conf import settings

from celeryconfig import QUEUES

logger = logging.getLogger(__name__)

WORKER_START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class _ReadyWorker(WorkController):
    """A WorkController that tells when its consumer is ready to take tasks."""

    def __init__(self, *args, **kwargs) -> None:
        self.consumer_ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer) -> None:
        super().on_consumer_ready(consumer)
        self.consumer_ready.set()


@dataclass
class EmbeddedCelery:
    """A Celery worker (thread pool) and, optionally, beat, as threads of this process."""

    app: Celery
    threads: int = 4
    with_beat: bool = True
    worker: _ReadyWorker | None = field(default=None, init=False)
    beat: threading.Thread | None = field(default=None, init=False)
    _worker_thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the worker and wait until it consumes; then start beat. Raises on a stuck start."""
        # The worker must see the same finalized app (and task registry) as the code that sends.
        self.app.finalize()
        self.app.set_current()
        self.app.set_default()
        self.worker = _ReadyWorker(
            app=self.app,
            hostname="embedded@cryptosatx",
            pool="threads",
            concurrency=self.threads,
            queues=list(QUEUES),
            loglevel=settings.LOG_LEVEL,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._worker_thread = threading.Thread(
            target=self.worker.start, name="celery-worker", daemon=True
        )
        self._worker_thread.start()
        if not self.worker.consumer_ready.wait(WORKER_START_TIMEOUT):
            raise RuntimeError(
                f"the embedded Celery worker did not start in {WORKER_START_TIMEOUT} s"
            )
        logger.info("embedded Celery worker ready: %d threads, queues %s", self.threads, QUEUES)
        if self.with_beat:
            self.beat = EmbeddedService(
                self.app,
                thread=True,
                max_interval=1.0,
                schedule_filename=self.app.conf.beat_schedule_filename,
                # The DatabaseScheduler when django-celery-beat is installed (celeryconfig).
                scheduler_cls=self.app.conf.beat_scheduler,
            )
            self.beat.start()
            logger.info("embedded Celery beat started: %s", ", ".join(self.app.conf.beat_schedule))

    def stop(self) -> None:
        """Stop beat first (no new work), then the worker; wait for both threads."""
        if self.beat is not None:
            self.beat.stop()
            self.beat.join(STOP_TIMEOUT)
        if self.worker is not None:
            self.worker.stop(in_sighandler=False)
        if self._worker_thread is not None:
            self._worker_thread.join(STOP_TIMEOUT)


@contextmanager
def worker_if_embedded() -> Iterator[EmbeddedCelery | None]:
    """A worker (no beat) in this process while the block runs, when the broker is the in-memory
    one (EMBEDDED), whose messages reach no other process; nothing with a real broker, whose
    workers do the work. For commands that send tasks and wait for them (`scan`, `replay`)."""
    if not settings.EMBEDDED:
        yield None
        return
    from celery import current_app

    worker = EmbeddedCelery(
        current_app._get_current_object(),
        threads=settings.EMBEDDED_WORKER_THREADS,
        with_beat=False,
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
