"""Django settings. Everything variable comes from the environment through cryptosatx.config."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from cryptosatx.config import ConfigError, load_config

BASE_DIR = Path(__file__).resolve().parent.parent

CONFIG = load_config(os.environ)
# Every validated setting (thresholds, intervals, replay speed, ...) becomes a Django setting of the
# same name, so code reads `settings.RSI_OVERSOLD_THRESHOLD` and never the environment.
globals().update(CONFIG)

VAR_DIR = Path(CONFIG["VAR_DIR"] or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)
SAMPLE_DATA_DIR = Path(CONFIG["SAMPLE_DATA_DIR"] or BASE_DIR / "data" / "sample").resolve()
# Embedded: worker and beat run inside the web process on the in-memory broker (`make run`).
EMBEDDED = CONFIG["CELERY_BROKER_URL"] == "memory://"


def _secret_key() -> str:
    if CONFIG["SECRET_KEY"]:
        return CONFIG["SECRET_KEY"]
    if not CONFIG["DEBUG"]:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "cryptosatx",
    "market",
    "scanners",
    "scoring",
    "tracking",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cryptosatx.urls"
# A CSRF failure under /api/ (a POST to a plain Django view) is JSON in the error envelope.
CSRF_FAILURE_VIEW = "core.api.csrf_failure"
WSGI_APPLICATION = "cryptosatx.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "cryptosatx" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if not CONFIG["DATABASE_URL"]:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "cryptosatx.sqlite3",
            "OPTIONS": {
                # Web threads, worker threads and beat share one SQLite file: WAL lets readers run
                # beside the writer, IMMEDIATE transactions avoid lock-upgrade deadlocks, and the
                # timeout makes a writer wait instead of failing with "database is locked".
                # A 64 MB page cache per connection (the default is 2 MB): candle writes walk the
                # unique index of a table of millions of rows, and a scan writing 500 coins'
                # candles spent 30 % less CPU with it.
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
                ),
            },
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(CONFIG["DATABASE_URL"], conn_max_age=60)}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on a missing folder before collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The API's conventions (envelope, error format, strict pagination) live in core/api.py.
REST_FRAMEWORK = {
    # Token first: an unauthenticated request is then a 401 with WWW-Authenticate, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "core.api.EnvelopeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "core.api.EnvelopeLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.api.EnvelopeAutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CryptoSatX API",
    "DESCRIPTION": "Market data, scans, signals and their measured outcomes.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar package, so the docs work on a machine without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery reads its configuration from celeryconfig.py (see cryptosatx/celery.py).
CELERY_BROKER_URL = CONFIG["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = CONFIG["CELERY_RESULT_BACKEND"] or (
    "cache+memory://" if CELERY_BROKER_URL == "memory://" else CELERY_BROKER_URL
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": CONFIG["LOG_LEVEL"]},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        # One INFO line per scheduled send would bury the product's own progress lines.
        "celery.beat": {"level": "WARNING"},
        # The in-memory transport has no host; kombu warns about that on every connection.
        "kombu.connection": {"level": "ERROR"},
    },
}

# --- access: login lockout and API throttling (README, "Throttling and lockout") ----------------
# django-axes counts failed logins (the admin's and any session login) in the database, so a
# lockout holds across every web process; the backend must come first (axes' docs).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes' docs say
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = CONFIG["LOGIN_FAILURE_LIMIT"]
AXES_COOLOFF_TIME = timedelta(minutes=CONFIG["LOGIN_COOLOFF_MINUTES"])
AXES_LOCKOUT_PARAMETERS = {
    "ip": ["ip_address"],
    "username": ["username"],
    "username_and_ip": [["username", "ip_address"]],
}[CONFIG["LOGIN_LOCKOUT_BY"]]
AXES_RESET_ON_SUCCESS = True

# The API throttles' counts (core/throttling.py) live in this cache: Redis when there is
# one, so every gunicorn process counts against one budget; in-process in the embedded default.
THROTTLE_CACHE = "throttle"
_throttle_redis = CONFIG["THROTTLE_REDIS_URL"] or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
CACHES[THROTTLE_CACHE] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _throttle_redis,
        "KEY_PREFIX": "cryptosatx-throttle",
    }
    if _throttle_redis
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
)
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "core.throttling.AnonThrottle",
    "core.throttling.UserThrottle",
]
# axes says hello at every start-up; its lockouts (WARNING) and failures (INFO) still show.
LOGGING["loggers"]["axes.apps"] = {"level": "WARNING"}
