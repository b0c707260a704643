"""The Celery application. Its configuration lives in the top-level celeryconfig.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")

app = Celery("cryptosatx")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["cryptosatx", "scanners", "scoring", "tracking", "alerts"])
