"""The Celery application. All of its configuration lives in the top-level celeryconfig.py; this
module loads it, lists the apps whose tasks to find and hooks the start-up checks."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init

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


@worker_init.connect
@beat_init.connect
def _check_broker_timing(sender=None, **_kwargs: object) -> None:
    """A worker or beat with a visibility timeout its tasks outlast does not start."""
    from cryptosatx.broker_checks import refuse_unsafe_broker_timing

    refuse_unsafe_broker_timing(getattr(sender, "app", None) or app)
