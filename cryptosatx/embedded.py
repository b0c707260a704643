"""The all-in-one runner behind `make run`: web server, Celery worker and beat in one process.

The broker is Celery's in-memory transport, which only reaches consumers inside this process, so
the worker and beat run here as threads. The distributed topology (`make up`) runs the same tasks
in separate processes on Redis.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from celery import Celery
from django.conf import settings
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

from core.embedded_celery import EmbeddedCelery

logger = logging.getLogger(__name__)


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
