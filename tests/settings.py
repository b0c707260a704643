"""Settings for the test suite: the product's settings with test-only defaults."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-suite-only-not-a-secret")
# The API throttles far above what any test sends; tests of throttling set their own rates.
os.environ.setdefault("API_THROTTLE_ANON", "100000/min")
os.environ.setdefault("API_THROTTLE_USER", "100000/min")
os.environ.setdefault("API_THROTTLE_SCANS", "100000/min")
os.environ.setdefault("API_THROTTLE_TRACK_SIGNAL", "100000/min")
os.environ.setdefault("VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

from cryptosatx.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
