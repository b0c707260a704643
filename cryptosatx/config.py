"""Every setting CryptoSatX reads from the environment, typed and validated in one place.

`load_config(environ)` is the only reader of the environment. It returns a plain dict of parsed
values, or raises `ConfigError` whose message is one line naming the variable, so a bad value stops
start-up before anything runs. `SETTINGS` is also the source of the settings table in the README
(`python manage.py settings_table`), and `cryptosatx/settings.py` names each of them as a Django
setting of the same name (tests/test_config.py keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from cryptosatx.config_parsers import (
    Parser,
    boolean,
    broker_url,
    choice,
    comma_list,
    database_url,
    http_url,
    number,
    positive_interval,
    rate,
    text,
    time_zone,
    utc_datetime,
    whole_number,
)

MARKET_SOURCES = ("replay", "binance")


class ConfigError(ImproperlyConfigured):
    """A setting has a value CryptoSatX cannot run with. The message is one line."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name (also the Django setting's), the value when unset,
    the parser of a set value (cryptosatx/config_parsers.py), and the README table's group and
    help text."""

    name: str
    default: Any
    parse: Parser
    group: str
    doc: str


SCANNER = "Scanners (docs/SCORING.md)"
SCORING = "Unified score and signals (docs/SCORING.md)"
OUTCOMES = "Outcomes and analytics (docs/SCORING.md)"
CORE = "Core"
REPLAY = "Replay and the embedded default"
LIVE = "Live market data (MARKET_SOURCE=binance)"
ALERTS = "Alerts (Telegram)"
ACCESS = "Access: login lockout and API throttling"
READS = "Cached reads"

SETTINGS: tuple[Setting, ...] = (
    # --- core ---------------------------------------------------------------------------------
    Setting(
        "DEBUG",
        None,
        boolean,
        CORE,
        "Django debug mode. Default: on for the embedded default (no DATABASE_URL), off otherwise.",
    ),
    Setting(
        "SECRET_KEY",
        "",
        text,
        CORE,
        "Django secret key. Required when DEBUG is off; the embedded default generates one "
        "into VAR_DIR/secret_key once.",
    ),
    Setting(
        "ALLOWED_HOSTS",
        ["127.0.0.1", "localhost"],
        comma_list,
        CORE,
        "Comma-separated host names the web server answers to.",
    ),
    Setting(
        "TIME_ZONE",
        "UTC",
        time_zone,
        CORE,
        "Time zone for display and daily schedules; data is always stored in UTC.",
    ),
    Setting(
        "DATABASE_URL",
        "",
        database_url,
        CORE,
        "postgres://user@host:5432/name. Default: SQLite file VAR_DIR/cryptosatx.sqlite3.",
    ),
    Setting(
        "CELERY_BROKER_URL",
        "memory://",
        broker_url,
        CORE,
        "redis://host:6379/0. Default memory:// runs worker and beat inside the `make run` "
        "process.",
    ),
    Setting(
        "CELERY_RESULT_BACKEND",
        "",
        text,
        CORE,
        "Default: the Redis broker's URL, or an in-process cache with the memory broker.",
    ),
    Setting(
        "CELERY_TASK_TIME_LIMIT",
        600,
        whole_number(1),
        CORE,
        "Hard time limit of a task in seconds (the soft limit is 90 % of it).",
    ),
    Setting(
        "CELERY_VISIBILITY_TIMEOUT",
        900,
        whole_number(1),
        CORE,
        "Seconds before Redis redelivers an unacknowledged task (a killed worker's batch). "
        "Checked at start-up: at least the longest task time limit, or an outcome check's eta "
        "lead plus its time limit, plus 60 s (today 660 s).",
    ),
    Setting(
        "MARKET_SOURCE",
        "replay",
        choice(*MARKET_SOURCES),
        CORE,
        "Where market data comes from: `replay` reads the candle store as of the replay clock.",
    ),
    Setting(
        "EXCHANGE",
        "binance",
        text,
        CORE,
        "Exchange id of the markets (ccxt id); also the exchange imported files are filed under.",
    ),
    Setting(
        "VAR_DIR",
        "",
        text,
        CORE,
        "Folder for the SQLite file, secret key, beat schedule and logs. Default: ./var.",
    ),
    Setting(
        "LOG_LEVEL",
        "INFO",
        choice("DEBUG", "INFO", "WARNING", "ERROR"),
        CORE,
        "Log level of web, worker and beat.",
    ),
    # --- live market data -------------------------------------------------------------------
    Setting(
        "BINANCE_SPOT_URL",
        "https://api.binance.com",
        http_url,
        LIVE,
        "Base URL of Binance spot (tests point it at the local fake exchange).",
    ),
    Setting(
        "BINANCE_FUTURES_URL",
        "https://fapi.binance.com",
        http_url,
        LIVE,
        "Base URL of Binance USDT-M futures.",
    ),
    Setting(
        "BINANCE_SPOT_WEIGHT_PER_MINUTE",
        6000,
        whole_number(1),
        LIVE,
        "Spot request-weight budget per minute, shared by every process.",
    ),
    Setting(
        "BINANCE_FUTURES_WEIGHT_PER_MINUTE",
        2400,
        whole_number(1),
        LIVE,
        "Futures request-weight budget per minute, shared by every process.",
    ),
    Setting(
        "BINANCE_FUTURES_DATA_REQUESTS_PER_5MIN",
        1000,
        whole_number(1),
        LIVE,
        "Requests per 5 minutes to each /futures/data endpoint (open interest history, ratios, "
        "taker volume), shared by every process: Binance's IP limit there, beside the weight.",
    ),
    Setting(
        "COINGECKO_API_URL",
        "https://api.coingecko.com/api/v3",
        http_url,
        LIVE,
        "Base URL of CoinGecko.",
    ),
    Setting(
        "COINGECKO_API_KEY",
        "",
        text,
        LIVE,
        "CoinGecko demo key (sent as x-cg-demo-api-key); optional.",
    ),
    Setting(
        "COINGECKO_CALLS_PER_MINUTE",
        30,
        whole_number(1),
        LIVE,
        "CoinGecko calls per minute, shared by every process.",
    ),
    Setting(
        "LUNARCRUSH_API_URL",
        "https://lunarcrush.com/api4",
        http_url,
        LIVE,
        "Base URL of LunarCrush v4.",
    ),
    Setting(
        "LUNARCRUSH_API_KEY",
        "",
        text,
        LIVE,
        "LunarCrush key; without it the social inputs are missing (not zero).",
    ),
    Setting(
        "LUNARCRUSH_CALLS_PER_MINUTE",
        10,
        whole_number(1),
        LIVE,
        "LunarCrush calls per minute, shared by every process.",
    ),
    Setting(
        "PARALLEL_MAX_CONCURRENT",
        50,
        whole_number(1, 1000),
        LIVE,
        "Most requests in flight at once per process and source.",
    ),
    Setting(
        "REQUEST_RETRIES",
        3,
        whole_number(0, 10),
        LIVE,
        "Retries of a timed-out, 5xx or network-failed request (backoff with jitter).",
    ),
    Setting(
        "REQUEST_TIMEOUT_SECONDS", 10.0, positive_interval, LIVE, "Timeout of one HTTP request."
    ),
    Setting(
        "RATE_BUDGET_REDIS_URL",
        "",
        text,
        LIVE,
        "Redis holding the shared request budget. Default: the Redis broker; in-process with "
        "the memory broker.",
    ),
    Setting(
        "TRADE_TALLY_REFRESH_SECONDS",
        600,
        whole_number(0, 1800),
        LIVE,
        "Seconds between reads of the scanned coins' new aggregate trades, so a scan reads only "
        "the minutes since (0: off; a scan then reads its whole hour).",
    ),
    # --- alerts ---------------------------------------------------------------------------------
    Setting(
        "TELEGRAM_BOT_TOKEN",
        "",
        text,
        ALERTS,
        "Bot token; with TELEGRAM_CHAT_ID set, alerts go to Telegram, else to the console log.",
    ),
    Setting("TELEGRAM_CHAT_ID", "", text, ALERTS, "Chat that receives the alerts."),
    Setting(
        "TELEGRAM_API_URL",
        "https://api.telegram.org",
        http_url,
        ALERTS,
        "Base URL of the Telegram Bot API (tests point it at a local fake).",
    ),
    Setting(
        "TELEGRAM_ALLOWED_CHAT_IDS",
        [],
        comma_list,
        ALERTS,
        "Chats whose bot commands are answered; every other chat gets nothing.",
    ),
    Setting("TELEGRAM_TIER_1_ENABLED", True, boolean, ALERTS, "Send TIER 1 alerts one by one."),
    Setting("TELEGRAM_TIER_2_ENABLED", True, boolean, ALERTS, "Send TIER 2 alerts one by one."),
    Setting(
        "TELEGRAM_TIER_3_ENABLED",
        False,
        boolean,
        ALERTS,
        "Send TIER 3 alerts one by one (by default they appear only in the daily summary).",
    ),
    Setting(
        "ALERT_SHORT_SIGNALS",
        True,
        boolean,
        ALERTS,
        "Alert SHORT signals (distribution, overbought RSI); off: only LONG signals alert.",
    ),
    Setting(
        "MAX_ALERTS_PER_HOUR",
        10,
        whole_number(1),
        ALERTS,
        "Alerts sent one by one per hour; the rest fold into a digest.",
    ),
    Setting("TIER_1_MAX_PER_DAY", 20, whole_number(0), ALERTS, "TIER 1 alerts per day."),
    Setting("TIER_2_MAX_PER_DAY", 50, whole_number(0), ALERTS, "TIER 2 alerts per day."),
    Setting(
        "ALERT_UNCONFIRMED_POLICY",
        "hold",
        choice("hold", "resend"),
        ALERTS,
        "An alert whose send was cut off before Telegram's answer was recorded: `hold` for a "
        "person to decide in the admin, or `resend` (may duplicate).",
    ),
    Setting(
        "ALERT_SEND_TIMEOUT_SECONDS",
        120.0,
        positive_interval,
        ALERTS,
        "An alert `sending` this long (since its send started) belongs to a worker that vanished "
        "and becomes `unconfirmed`. Longer than the longest wait inside one send: a rate-limit "
        "window (60 s for groups) plus the HTTP timeouts.",
    ),
    Setting(
        "ALERT_RETRY_BACKOFF_SECONDS",
        2.0,
        positive_interval,
        ALERTS,
        "Wait before resending after a network error or a 5xx: this × 2^(attempts − 1), capped, "
        "with ±20 % jitter.",
    ),
    Setting(
        "ALERT_RETRY_BACKOFF_MAX_SECONDS",
        300.0,
        positive_interval,
        ALERTS,
        "Cap of that wait.",
    ),
    Setting(
        "TELEGRAM_READ_TIMEOUT_SECONDS",
        10.0,
        positive_interval,
        ALERTS,
        "Read timeout of a Bot API call; a send whose answer does not arrive in time is "
        "`unconfirmed` (ALERT_UNCONFIRMED_POLICY).",
    ),
    Setting(
        "ALERT_SWEEP_SECONDS",
        30.0,
        positive_interval,
        ALERTS,
        "How often beat runs the alert outbox sweeper (`alerts.sweep_outbox`): a lost send "
        "message delays an alert by at most this long.",
    ),
    Setting(
        "BOT_POLL_SECONDS",
        3.0,
        positive_interval,
        ALERTS,
        "How often beat polls Telegram for bot commands (`alerts.poll_bot_updates`), while "
        "TELEGRAM_BOT_TOKEN is set.",
    ),
    Setting(
        "DAILY_SUMMARY_HOUR",
        8,
        whole_number(0, 23),
        ALERTS,
        "Hour (in TIME_ZONE) of the daily summary.",
    ),
    Setting(
        "SITE_URL",
        None,
        http_url,
        ALERTS,
        "Public address of the web UI, for links in alerts; unset: "
        "`http://RUN_HOST:RUN_PORT` (0.0.0.0 shown as 127.0.0.1).",
    ),
    # --- replay / embedded ------------------------------------------------------------------------
    Setting("RUN_HOST", "127.0.0.1", text, REPLAY, "Address `make run` serves on."),
    Setting("RUN_PORT", 8000, whole_number(1, 65535), REPLAY, "Port `make run` serves on."),
    Setting(
        "EMBEDDED_WORKER_THREADS",
        4,
        whole_number(1, 64),
        REPLAY,
        "Worker threads of the embedded Celery worker.",
    ),
    Setting(
        "REPLAY_SPEED",
        360.0,
        positive_interval,
        REPLAY,
        "Market seconds per real second (360 = one market hour every 10 seconds).",
    ),
    Setting(
        "REPLAY_TICK_SECONDS",
        10.0,
        positive_interval,
        REPLAY,
        "How often (real seconds) beat advances the replay clock.",
    ),
    Setting(
        "REPLAY_START",
        None,
        utc_datetime,
        REPLAY,
        "Market time the replay clock starts at. Default: first candle + REPLAY_WARMUP_HOURS.",
    ),
    Setting(
        "REPLAY_FILL_DAYS",
        30,
        whole_number(0),
        REPLAY,
        "Days of history the first `make run` replays in the background at full speed before "
        "the live replay clock goes on from there (0: none).",
    ),
    Setting(
        "REPLAY_WARMUP_HOURS",
        720,
        whole_number(0),
        REPLAY,
        "History kept behind the clock at the start, so indicators have data.",
    ),
    Setting(
        "SAMPLE_DATA_DIR",
        "",
        text,
        REPLAY,
        "Bundled market sample imported by the first `make run`. Default: ./data/sample.",
    ),
    # --- scanners -------------------------------------------------------------------------------
    Setting(
        "SCAN_UNIVERSE_SIZE",
        500,
        whole_number(1),
        SCANNER,
        "USDT spot markets scanned, by 24h quote volume.",
    ),
    Setting(
        "SCAN_BATCH_SIZE",
        50,
        whole_number(1, 1000),
        SCANNER,
        "Coins per scan batch (one Celery task each).",
    ),
    Setting(
        "SCAN_STALE_SECONDS",
        660,
        whole_number(1),
        SCANNER,
        "A queued or running scan whose progress has not moved for this long is stalled: it no "
        "longer blocks a new scan of its scanner, and the watchdog takes it over. Checked at "
        "start-up to exceed the batch time limit (600 s), so a slow batch is never taken for a "
        "lost one.",
    ),
    Setting(
        "SCAN_WATCHDOG_SECONDS",
        60,
        whole_number(1),
        SCANNER,
        "How often beat runs the scan watchdog (`scanners.watch_scans`).",
    ),
    Setting(
        "SCAN_WATCHDOG_MAX_RESENDS",
        3,
        whole_number(1),
        SCANNER,
        "Stalls in a row the watchdog rescues (re-sending lost batches or the final step); at "
        "the next one the run is finished as failed, its unscanned coins recorded with the reason.",
    ),
    Setting(
        "RSI_SCREENER_INTERVAL_HOURS", 4.0, positive_interval, SCANNER, "RSI screener interval."
    ),
    Setting(
        "RSI_WINDOW", 500, whole_number(15), SCANNER, "Closed 1h candles RSI(14) is computed over."
    ),
    Setting("RSI_OVERSOLD_THRESHOLD", 25.0, number(0, 100), SCANNER, "RSI below this → LONG."),
    Setting("RSI_OVERBOUGHT_THRESHOLD", 75.0, number(0, 100), SCANNER, "RSI above this → SHORT."),
    Setting("SMART_MONEY_INTERVAL_HOURS", 1.0, positive_interval, SCANNER, "Smart-money interval."),
    Setting(
        "ACCUMULATION_ALERT_THRESHOLD",
        7,
        whole_number(0, 10),
        SCANNER,
        "Accumulation points (0–10) at which smart money says LONG.",
    ),
    Setting(
        "DISTRIBUTION_ALERT_THRESHOLD",
        7,
        whole_number(0, 10),
        SCANNER,
        "Distribution points (0–10) at which smart money says SHORT.",
    ),
    Setting("MSS_DISCOVERY_INTERVAL_HOURS", 6.0, positive_interval, SCANNER, "MSS interval."),
    Setting(
        "MSS_MAX_AGE_HOURS",
        72.0,
        positive_interval,
        SCANNER,
        "Only coins listed less than this long ago are MSS candidates.",
    ),
    Setting("MSS_ALERT_THRESHOLD", 75.0, number(0, 100), SCANNER, "MSS at which it says LONG."),
    Setting(
        "MSS_MIN_COMPLETENESS",
        0.5,
        number(0, 1),
        SCANNER,
        "Below this completeness a coin gets no MSS signal.",
    ),
    Setting("SOCIAL_INTERVAL_HOURS", 2.0, positive_interval, SCANNER, "Social-trending interval."),
    Setting(
        "SOCIAL_ALERT_THRESHOLD",
        75.0,
        number(0, 100),
        SCANNER,
        "Social score at which (with a positive 24h change) it says LONG.",
    ),
    Setting(
        "WHALE_TRADE_USD", 100_000.0, number(0), SCANNER, "A trade this large is a whale trade."
    ),
    # --- scoring / signals ----------------------------------------------------------------------
    Setting("TIER_1_MIN_SCORE", 85.0, number(0, 100), SCORING, "Unified score for TIER_1."),
    Setting("TIER_2_MIN_SCORE", 70.0, number(0, 100), SCORING, "Unified score for TIER_2."),
    Setting("TIER_3_MIN_SCORE", 55.0, number(0, 100), SCORING, "Unified score for TIER_3."),
    Setting(
        "MIN_CONFIRMATIONS_TIER1",
        2,
        whole_number(0),
        SCORING,
        "Confirmations TIER_1 needs; with fewer it is shown as TIER_2.",
    ),
    Setting(
        "TIER_1_MIN_COMPLETENESS",
        0.6,
        number(0, 1),
        SCORING,
        "Completeness TIER_1 needs; with less it is shown as TIER_2.",
    ),
    Setting(
        "TIER_2_MIN_COMPLETENESS",
        0.4,
        number(0, 1),
        SCORING,
        "Completeness TIER_2 needs; with less it is shown as TIER_3.",
    ),
    Setting(
        "SIGNAL_COOLDOWN_HOURS",
        24.0,
        positive_interval,
        SCORING,
        "At most one signal per scanner, symbol and direction within this time.",
    ),
    Setting(
        "MANUAL_PRICE_TOLERANCE_PCT",
        20.0,
        number(0, 1000),
        SCORING,
        "A signal tracked by hand with its own entry price is refused when the price lies "
        "outside that hour's low–high widened by this much.",
    ),
    # --- outcomes / analytics -------------------------------------------------------------------
    Setting(
        "WIN_THRESHOLD_PCT",
        5.0,
        number(0),
        OUTCOMES,
        "Direction-adjusted return at or above which an outcome is a WIN.",
    ),
    Setting(
        "LOSS_THRESHOLD_PCT",
        3.0,
        number(0),
        OUTCOMES,
        "Direction-adjusted loss at or beyond which an outcome is a LOSS.",
    ),
    Setting(
        "ANALYTICS_MIN_SAMPLE",
        30,
        whole_number(1),
        OUTCOMES,
        "Groups with fewer checked outcomes are 'too few to judge'; no recommendation from them.",
    ),
    Setting(
        "OUTCOME_SWEEP_SECONDS",
        60.0,
        positive_interval,
        OUTCOMES,
        "How often beat runs the outcome sweeper (`tracking.sweep_outcome_checks`), which claims "
        "the checks due within the next 5 minutes.",
    ),
    Setting(
        "OUTCOME_CLAIM_STALE_SECONDS",
        900.0,
        positive_interval,
        OUTCOMES,
        "A claimed outcome check still open this long after its claim and its due time was lost "
        "(worker killed, Redis restarted empty): the sweeper claims it again. Longer than the 5 "
        "minutes a claim is made ahead plus a busy queue.",
    ),
    # --- access: lockout and throttling (README, "Throttling and lockout") ----------------------
    Setting(
        "LOGIN_FAILURE_LIMIT",
        5,
        whole_number(1),
        ACCESS,
        "Failed logins (admin, session) after which the client is locked out (django-axes).",
    ),
    Setting(
        "LOGIN_COOLOFF_MINUTES",
        30.0,
        number(0.1),
        ACCESS,
        "How long a lockout lasts; an admin can lift it earlier (Axes → Access attempts, or "
        "`python manage.py axes_reset`).",
    ),
    Setting(
        "LOGIN_LOCKOUT_BY",
        "ip",
        choice("ip", "username", "username_and_ip"),
        ACCESS,
        "What the failures are counted by: the client's IP address, the username tried, or the "
        "pair.",
    ),
    Setting(
        "API_THROTTLE_ANON",
        "60/min",
        rate,
        ACCESS,
        "Requests per client IP without login to the open API endpoints (schema, docs).",
    ),
    Setting(
        "API_THROTTLE_USER",
        "600/min",
        rate,
        ACCESS,
        "API requests per user, all endpoints together.",
    ),
    Setting(
        "API_THROTTLE_SCANS",
        "30/hour",
        rate,
        ACCESS,
        "Scans a user may start (POST /api/scans/, /api/watchlists/{id}/scan).",
    ),
    Setting(
        "API_THROTTLE_TRACK_SIGNAL",
        "120/hour",
        rate,
        ACCESS,
        "Signals a user may track by hand (POST /api/performance/track-signal).",
    ),
    Setting(
        "THROTTLE_REDIS_URL",
        "",
        text,
        ACCESS,
        "Redis holding the API throttles' counts, shared by every web process. Default: the "
        "Redis broker; in-process with the memory broker.",
    ),
    # --- cached reads (core/read_cache.py) -------------------------------------------------------
    Setting(
        "READ_CACHE_SECONDS",
        60.0,
        number(0),
        READS,
        "The performance answers and the unified ranking are computed once and served from a "
        "cache, dropped at once by the writes that change them (outcome checks, signals, a "
        "scan's ranking); this is the longest any answer is kept, so a window ending now lags "
        "the clock by at most this much. 0: nothing is cached.",
    ),
    Setting(
        "READ_CACHE_REDIS_URL",
        "",
        text,
        READS,
        "Redis holding the cached reads, shared by every web process and worker. Default: the "
        "Redis broker; with the memory broker, files under VAR_DIR/read-cache (the processes "
        "of one machine).",
    ),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def load_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse every setting from `environ`; an empty value counts as unset.

    Raises ConfigError (one line, naming the variable) on the first bad value, and on values
    that are fine alone but contradict each other (oversold above overbought, tiers out of order).
    """
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name, "").strip()
        if not raw:
            config[setting.name] = setting.default
            continue
        try:
            config[setting.name] = setting.parse(raw)
        except ValueError as error:
            raise ConfigError(f"{setting.name}={raw!r} is invalid: {error}") from None
    _check_consistency(config)
    return config


def _check_consistency(config: dict[str, Any]) -> None:
    if config["RSI_OVERSOLD_THRESHOLD"] >= config["RSI_OVERBOUGHT_THRESHOLD"]:
        raise ConfigError(
            "RSI_OVERSOLD_THRESHOLD must be below RSI_OVERBOUGHT_THRESHOLD "
            f"({config['RSI_OVERSOLD_THRESHOLD']} >= {config['RSI_OVERBOUGHT_THRESHOLD']})"
        )
    if not (config["TIER_1_MIN_SCORE"] > config["TIER_2_MIN_SCORE"] > config["TIER_3_MIN_SCORE"]):
        raise ConfigError(
            "TIER_1_MIN_SCORE > TIER_2_MIN_SCORE > TIER_3_MIN_SCORE must hold "
            f"(got {config['TIER_1_MIN_SCORE']}, {config['TIER_2_MIN_SCORE']}, "
            f"{config['TIER_3_MIN_SCORE']})"
        )
    if config["SITE_URL"] is None:
        config["SITE_URL"] = served_url(config["RUN_HOST"], config["RUN_PORT"])
    if config["DEBUG"] is None:
        # The embedded default is a local, single-user product; a deployment with its own
        # database is a server and gets production defaults.
        config["DEBUG"] = not config["DATABASE_URL"]


def served_url(host: str, port: int) -> str:
    """The address `make run` answers on, as a link: a wildcard bind address (0.0.0.0, ::) is
    reached on the loopback address, an IPv6 address goes in brackets."""
    host = host.strip() or "127.0.0.1"
    if host == "0.0.0.0":  # noqa: S104 - reading the bind address, not binding
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def settings_table_markdown() -> str:
    """The README's settings table, generated from SETTINGS so the two never drift apart."""
    lines = []
    group = None
    for setting in SETTINGS:
        if setting.group != group:
            group = setting.group
            lines += ["", f"**{group}**", "", "| variable | default | meaning |", "|---|---|---|"]
        default = setting.default
        if isinstance(default, list):
            default = ",".join(default)
        shown = "—" if default in (None, "") else f"`{default}`"
        lines.append(f"| `{setting.name}` | {shown} | {setting.doc} |")
    return "\n".join(lines).strip() + "\n"
