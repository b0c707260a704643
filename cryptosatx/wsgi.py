"""WSGI entry point (gunicorn cryptosatx.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")

application = get_wsgi_application()
