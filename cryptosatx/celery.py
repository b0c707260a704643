"""The Celery application. Its configuration lives in the top-level celeryconfig.py."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")

app = Celery("cryptosatx")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["cryptosatx", "scanners", "scoring", "tracking", "alerts"])


@worker_init.connect
@worker_process_init.connect
def _tune_gc(**_kwargs: object) -> None:
    """Worker processes parse market data all day: see cryptosatx.gc_tuning."""
    from cryptosatx.gc_tuning import tune_for_throughput

    tune_for_throughput()
