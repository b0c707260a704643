"""Django settings. Everything variable comes from the environment through cryptosatx.config.

`load_config` parses and checks every variable of its table (cryptosatx/config.py); the first part
of this module names each one as the Django setting of the same name, one line each and grouped as
the table groups them, so `git grep "RSI_WINDOW ="` finds it. Code reads `settings.RSI_WINDOW`,
never the environment. The second part builds Django's own settings from those names. A test
(tests/test_config.py) fails when this module and the table name different variables.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from cryptosatx.config import ConfigError, load_config

BASE_DIR = Path(__file__).resolve().parent.parent


def _folder(configured: str, default: Path) -> Path:
    """The configured folder, else `default`; absolute either way."""
    return Path(configured or default).resolve()


def _secret_key(configured: str, *, debug: bool, var_dir: Path) -> str:
    """The configured key; with none, DEBUG (the embedded default) keeps a generated one in
    VAR_DIR/secret_key, and anything else refuses to start."""
    if configured:
        return configured
    if not debug:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off")
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Lower case, so Django does not take it for a setting: code reads the named settings below.
_config = load_config(os.environ)

# --- Core -----------------------------------------------------------------------------------------
DEBUG = _config["DEBUG"]
# Before SECRET_KEY, which the embedded default keeps in it.
VAR_DIR = _folder(_config["VAR_DIR"], BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)
SECRET_KEY = _secret_key(_config["SECRET_KEY"], debug=DEBUG, var_dir=VAR_DIR)
ALLOWED_HOSTS = _config["ALLOWED_HOSTS"]
TIME_ZONE = _config["TIME_ZONE"]
# Empty: the embedded default's SQLite file (DATABASES below).
DATABASE_URL = _config["DATABASE_URL"]
# The four CELERY_* values are read by celeryconfig.py, which holds all of Celery's configuration.
CELERY_BROKER_URL = _config["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = _config["CELERY_RESULT_BACKEND"]
CELERY_TASK_TIME_LIMIT = _config["CELERY_TASK_TIME_LIMIT"]
CELERY_VISIBILITY_TIMEOUT = _config["CELERY_VISIBILITY_TIMEOUT"]
MARKET_SOURCE = _config["MARKET_SOURCE"]
EXCHANGE = _config["EXCHANGE"]
LOG_LEVEL = _config["LOG_LEVEL"]

# --- Live market data (MARKET_SOURCE=binance) -----------------------------------------------------
BINANCE_SPOT_URL = _config["BINANCE_SPOT_URL"]
BINANCE_FUTURES_URL = _config["BINANCE_FUTURES_URL"]
BINANCE_SPOT_WEIGHT_PER_MINUTE = _config["BINANCE_SPOT_WEIGHT_PER_MINUTE"]
BINANCE_FUTURES_WEIGHT_PER_MINUTE = _config["BINANCE_FUTURES_WEIGHT_PER_MINUTE"]
BINANCE_FUTURES_DATA_REQUESTS_PER_5MIN = _config["BINANCE_FUTURES_DATA_REQUESTS_PER_5MIN"]
COINGECKO_API_URL = _config["COINGECKO_API_URL"]
COINGECKO_API_KEY = _config["COINGECKO_API_KEY"]
COINGECKO_CALLS_PER_MINUTE = _config["COINGECKO_CALLS_PER_MINUTE"]
LUNARCRUSH_API_URL = _config["LUNARCRUSH_API_URL"]
LUNARCRUSH_API_KEY = _config["LUNARCRUSH_API_KEY"]
LUNARCRUSH_CALLS_PER_MINUTE = _config["LUNARCRUSH_CALLS_PER_MINUTE"]
PARALLEL_MAX_CONCURRENT = _config["PARALLEL_MAX_CONCURRENT"]
REQUEST_RETRIES = _config["REQUEST_RETRIES"]
REQUEST_TIMEOUT_SECONDS = _config["REQUEST_TIMEOUT_SECONDS"]
RATE_BUDGET_REDIS_URL = _config["RATE_BUDGET_REDIS_URL"]
TRADE_TALLY_REFRESH_SECONDS = _config["TRADE_TALLY_REFRESH_SECONDS"]

# --- Alerts (Telegram) ----------------------------------------------------------------------------
TELEGRAM_BOT_TOKEN = _config["TELEGRAM_BOT_TOKEN"]
TELEGRAM_CHAT_ID = _config["TELEGRAM_CHAT_ID"]
TELEGRAM_API_URL = _config["TELEGRAM_API_URL"]
TELEGRAM_ALLOWED_CHAT_IDS = _config["TELEGRAM_ALLOWED_CHAT_IDS"]
TELEGRAM_TIER_1_ENABLED = _config["TELEGRAM_TIER_1_ENABLED"]
TELEGRAM_TIER_2_ENABLED = _config["TELEGRAM_TIER_2_ENABLED"]
TELEGRAM_TIER_3_ENABLED = _config["TELEGRAM_TIER_3_ENABLED"]
ALERT_SHORT_SIGNALS = _config["ALERT_SHORT_SIGNALS"]
MAX_ALERTS_PER_HOUR = _config["MAX_ALERTS_PER_HOUR"]
TIER_1_MAX_PER_DAY = _config["TIER_1_MAX_PER_DAY"]
TIER_2_MAX_PER_DAY = _config["TIER_2_MAX_PER_DAY"]
ALERT_UNCONFIRMED_POLICY = _config["ALERT_UNCONFIRMED_POLICY"]
ALERT_SEND_TIMEOUT_SECONDS = _config["ALERT_SEND_TIMEOUT_SECONDS"]
ALERT_RETRY_BACKOFF_SECONDS = _config["ALERT_RETRY_BACKOFF_SECONDS"]
ALERT_RETRY_BACKOFF_MAX_SECONDS = _config["ALERT_RETRY_BACKOFF_MAX_SECONDS"]
TELEGRAM_READ_TIMEOUT_SECONDS = _config["TELEGRAM_READ_TIMEOUT_SECONDS"]
ALERT_SWEEP_SECONDS = _config["ALERT_SWEEP_SECONDS"]
BOT_POLL_SECONDS = _config["BOT_POLL_SECONDS"]
DAILY_SUMMARY_HOUR = _config["DAILY_SUMMARY_HOUR"]
SITE_URL = _config["SITE_URL"]

# --- Replay and the embedded default --------------------------------------------------------------
RUN_HOST = _config["RUN_HOST"]
RUN_PORT = _config["RUN_PORT"]
EMBEDDED_WORKER_THREADS = _config["EMBEDDED_WORKER_THREADS"]
REPLAY_SPEED = _config["REPLAY_SPEED"]
REPLAY_TICK_SECONDS = _config["REPLAY_TICK_SECONDS"]
REPLAY_START = _config["REPLAY_START"]
REPLAY_FILL_DAYS = _config["REPLAY_FILL_DAYS"]
REPLAY_WARMUP_HOURS = _config["REPLAY_WARMUP_HOURS"]
SAMPLE_DATA_DIR = _folder(_config["SAMPLE_DATA_DIR"], BASE_DIR / "data" / "sample")

# --- Scanners (docs/SCORING.md) -------------------------------------------------------------------
SCAN_UNIVERSE_SIZE = _config["SCAN_UNIVERSE_SIZE"]
SCAN_BATCH_SIZE = _config["SCAN_BATCH_SIZE"]
SCAN_STALE_SECONDS = _config["SCAN_STALE_SECONDS"]
SCAN_WATCHDOG_SECONDS = _config["SCAN_WATCHDOG_SECONDS"]
SCAN_WATCHDOG_MAX_RESENDS = _config["SCAN_WATCHDOG_MAX_RESENDS"]
RSI_SCREENER_INTERVAL_HOURS = _config["RSI_SCREENER_INTERVAL_HOURS"]
RSI_WINDOW = _config["RSI_WINDOW"]
RSI_OVERSOLD_THRESHOLD = _config["RSI_OVERSOLD_THRESHOLD"]
RSI_OVERBOUGHT_THRESHOLD = _config["RSI_OVERBOUGHT_THRESHOLD"]
SMART_MONEY_INTERVAL_HOURS = _config["SMART_MONEY_INTERVAL_HOURS"]
ACCUMULATION_ALERT_THRESHOLD = _config["ACCUMULATION_ALERT_THRESHOLD"]
DISTRIBUTION_ALERT_THRESHOLD = _config["DISTRIBUTION_ALERT_THRESHOLD"]
MSS_DISCOVERY_INTERVAL_HOURS = _config["MSS_DISCOVERY_INTERVAL_HOURS"]
MSS_MAX_AGE_HOURS = _config["MSS_MAX_AGE_HOURS"]
MSS_ALERT_THRESHOLD = _config["MSS_ALERT_THRESHOLD"]
MSS_MIN_COMPLETENESS = _config["MSS_MIN_COMPLETENESS"]
SOCIAL_INTERVAL_HOURS = _config["SOCIAL_INTERVAL_HOURS"]
SOCIAL_ALERT_THRESHOLD = _config["SOCIAL_ALERT_THRESHOLD"]
WHALE_TRADE_USD = _config["WHALE_TRADE_USD"]

# --- Unified score and signals (docs/SCORING.md) --------------------------------------------------
TIER_1_MIN_SCORE = _config["TIER_1_MIN_SCORE"]
TIER_2_MIN_SCORE = _config["TIER_2_MIN_SCORE"]
TIER_3_MIN_SCORE = _config["TIER_3_MIN_SCORE"]
MIN_CONFIRMATIONS_TIER1 = _config["MIN_CONFIRMATIONS_TIER1"]
TIER_1_MIN_COMPLETENESS = _config["TIER_1_MIN_COMPLETENESS"]
TIER_2_MIN_COMPLETENESS = _config["TIER_2_MIN_COMPLETENESS"]
SIGNAL_COOLDOWN_HOURS = _config["SIGNAL_COOLDOWN_HOURS"]
MANUAL_PRICE_TOLERANCE_PCT = _config["MANUAL_PRICE_TOLERANCE_PCT"]

# --- Outcomes and analytics (docs/SCORING.md) -----------------------------------------------------
WIN_THRESHOLD_PCT = _config["WIN_THRESHOLD_PCT"]
LOSS_THRESHOLD_PCT = _config["LOSS_THRESHOLD_PCT"]
ANALYTICS_MIN_SAMPLE = _config["ANALYTICS_MIN_SAMPLE"]
OUTCOME_SWEEP_SECONDS = _config["OUTCOME_SWEEP_SECONDS"]
OUTCOME_CLAIM_STALE_SECONDS = _config["OUTCOME_CLAIM_STALE_SECONDS"]

# --- Access: login lockout and API throttling -----------------------------------------------------
LOGIN_FAILURE_LIMIT = _config["LOGIN_FAILURE_LIMIT"]
LOGIN_COOLOFF_MINUTES = _config["LOGIN_COOLOFF_MINUTES"]
LOGIN_LOCKOUT_BY = _config["LOGIN_LOCKOUT_BY"]
API_THROTTLE_ANON = _config["API_THROTTLE_ANON"]
API_THROTTLE_USER = _config["API_THROTTLE_USER"]
API_THROTTLE_SCANS = _config["API_THROTTLE_SCANS"]
API_THROTTLE_TRACK_SIGNAL = _config["API_THROTTLE_TRACK_SIGNAL"]
THROTTLE_REDIS_URL = _config["THROTTLE_REDIS_URL"]

# --- Cached reads ---------------------------------------------------------------------------------
READ_CACHE_SECONDS = _config["READ_CACHE_SECONDS"]
READ_CACHE_REDIS_URL = _config["READ_CACHE_REDIS_URL"]

# --- derived from the environment's settings ------------------------------------------------------
# Embedded: worker and beat run inside the web process on the in-memory broker (`make run`).
EMBEDDED = CELERY_BROKER_URL == "memory://"

# --- Django and its apps --------------------------------------------------------------------------
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
    "django_htmx",
    "web",
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
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "cryptosatx.urls"
# The dashboard's sign-in page; the admin keeps its own.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:overview"
LOGOUT_REDIRECT_URL = "web:login"
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
                "web.navigation.navigation",
            ],
        },
    },
]

if not DATABASE_URL:
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
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        # One INFO line per scheduled send would bury the product's own progress lines.
        "celery.beat": {"level": "WARNING"},
        # The in-memory transport has no host; kombu warns about that on every connection.
        "kombu.connection": {"level": "ERROR"},
        # httpx logs every request's URL at INFO, and Telegram's URLs carry the bot token
        # (`/bot<token>/getUpdates`, polled every BOT_POLL_SECONDS); python-telegram-bot logs
        # its base URL, token included, at DEBUG. Never into the logs, even at LOG_LEVEL=DEBUG.
        "httpx": {"level": "WARNING"},
        "telegram.Bot": {"level": "INFO"},
    },
}

# --- access: login lockout and API throttling (README, "Throttling and lockout") ------------------
# django-axes counts failed logins (the admin's and any session login) in the database, so a
# lockout holds across every web process; the backend must come first (axes' docs).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes' docs say
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = {
    "ip": ["ip_address"],
    "username": ["username"],
    "username_and_ip": [["username", "ip_address"]],
}[LOGIN_LOCKOUT_BY]
AXES_RESET_ON_SUCCESS = True

# The API throttles' counts (core/throttling.py) live in this cache: Redis when there is
# one, so every gunicorn process counts against one budget; in-process in the embedded default.
# Both Redis caches use core/redis_cache.py: Django's backend with its redis-py clients reused.
THROTTLE_CACHE = "throttle"
_throttle_redis = THROTTLE_REDIS_URL or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
CACHES[THROTTLE_CACHE] = (
    {
        "BACKEND": "core.redis_cache.RedisCache",
        "LOCATION": _throttle_redis,
        "KEY_PREFIX": "cryptosatx-throttle",
    }
    if _throttle_redis
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
)

# The cached reads (core/read_cache.py): Redis when there is one, so every web process and worker
# sees one set of answers and generations; else files under VAR_DIR, which every process of the
# machine shares (the embedded server and a management command beside it), unlike locmem.
READ_CACHE = "reads"
_read_redis = READ_CACHE_REDIS_URL or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
CACHES[READ_CACHE] = (
    {
        "BACKEND": "core.redis_cache.RedisCache",
        "LOCATION": _read_redis,
        "KEY_PREFIX": "cryptosatx-reads",
    }
    if _read_redis
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": VAR_DIR / "read-cache",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    }
)
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "core.throttling.AnonThrottle",
    "core.throttling.UserThrottle",
]
# axes says hello at every start-up; its lockouts (WARNING) and failures (INFO) still show.
LOGGING["loggers"]["axes.apps"] = {"level": "WARNING"}
