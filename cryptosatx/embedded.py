"""The all-in-one runner behind `make run`: web server, Celery worker and beat in one process.

The broker is Celery's in-memory transport, which only reaches consumers inside this process, so
the worker and beat run here as threads. The distributed topology (`make up`) runs the same tasks
in separate processes on Redis.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType

from celery import Celery
from celery.beat import EmbeddedService
from celery.worker import WorkController
from django.conf import settings
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

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


def serve(app: Celery, *, host: str, port: int, on_ready=None) -> None:
    """Run web server, worker and beat until SIGINT or SIGTERM; then stop all three cleanly."""
    celery_threads = EmbeddedCelery(app, threads=settings.EMBEDDED_WORKER_THREADS)
    httpd = ThreadedWSGIServer((host, port), _QuietRequestHandler, ipv6=":" in host)
    httpd.set_app(get_wsgi_application())
    httpd.daemon_threads = True

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        # shutdown() waits for serve_forever to return, so it must run off the main thread.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    from cryptosatx.services import health_prober

    try:
        celery_threads.start()
        # /api/health's background probe, started now so its first answer is ready.
        health_prober().start()
        if on_ready is not None:
            on_ready()
        httpd.serve_forever(poll_interval=0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        httpd.server_close()
        health_prober().stop()
        celery_threads.stop()


class _QuietRequestHandler(WSGIRequestHandler):
    """Django's request handler, logging only errors: the console is for the product's events."""

    def log_message(self, format: str, *args) -> None:
        if args and str(args[1]).startswith(("4", "5")) and str(args[1]) != "404":
            super().log_message(format, *args)
