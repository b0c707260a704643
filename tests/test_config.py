"""Settings come from the environment, and a bad value stops start-up with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryptosatx.config import SETTINGS, ConfigError, load_config, settings_table_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_match_scanners_md() -> None:
    config = load_config({})
    assert config["MARKET_SOURCE"] == "replay"
    assert config["RSI_OVERSOLD_THRESHOLD"] == 25
    assert config["RSI_OVERBOUGHT_THRESHOLD"] == 75
    assert config["RSI_WINDOW"] == 500
    assert config["ACCUMULATION_ALERT_THRESHOLD"] == 7
    assert config["MSS_ALERT_THRESHOLD"] == 75
    assert config["MSS_MAX_AGE_HOURS"] == 72
    assert config["SIGNAL_COOLDOWN_HOURS"] == 24
    assert config["WIN_THRESHOLD_PCT"] == 5
    assert config["LOSS_THRESHOLD_PCT"] == 3
    assert config["SCAN_UNIVERSE_SIZE"] == 500
    assert config["WHALE_TRADE_USD"] == 100_000
    assert (config["TIER_1_MIN_SCORE"], config["TIER_2_MIN_SCORE"]) == (85, 70)


def test_values_are_parsed_to_their_types() -> None:
    config = load_config(
        {"RSI_WINDOW": "300", "REPLAY_SPEED": "720", "DEBUG": "no", "ALLOWED_HOSTS": "a.io, b.io"}
    )
    assert config["RSI_WINDOW"] == 300
    assert config["REPLAY_SPEED"] == 720.0
    assert config["DEBUG"] is False
    assert config["ALLOWED_HOSTS"] == ["a.io", "b.io"]


def test_an_empty_value_counts_as_unset() -> None:
    assert load_config({"RSI_WINDOW": "  "})["RSI_WINDOW"] == 500


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("RSI_WINDOW", "abc", "expected a whole number"),
        ("RSI_OVERSOLD_THRESHOLD", "low", "expected a number"),
        ("RSI_OVERSOLD_THRESHOLD", "nan", "finite"),
        ("RSI_OVERBOUGHT_THRESHOLD", "101", "at most 100"),
        ("SMART_MONEY_INTERVAL_HOURS", "-1", "greater than 0"),
        ("RSI_SCREENER_INTERVAL_HOURS", "0", "greater than 0"),
        ("REPLAY_TICK_SECONDS", "-5", "greater than 0"),
        ("MARKET_SOURCE", "kraken", "unknown value"),
        ("DEBUG", "maybe", "true or false"),
        ("TIME_ZONE", "Mars/Olympus", "unknown time zone"),
        ("DATABASE_URL", "mysql://x", "postgres://"),
        ("CELERY_BROKER_URL", "amqp://x", "redis://"),
        ("REPLAY_START", "yesterday", "ISO 8601"),
        ("RUN_PORT", "70000", "at most 65535"),
        ("ACCUMULATION_ALERT_THRESHOLD", "11", "at most 10"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({name: value})
    message = str(raised.value)
    assert message.startswith(f"{name}=")
    assert says in message
    assert "\n" not in message


def test_oversold_above_overbought_is_refused() -> None:
    with pytest.raises(ConfigError, match="RSI_OVERSOLD_THRESHOLD must be below"):
        load_config({"RSI_OVERSOLD_THRESHOLD": "80"})


def test_tiers_out_of_order_are_refused() -> None:
    with pytest.raises(ConfigError, match="TIER_1_MIN_SCORE > TIER_2_MIN_SCORE"):
        load_config({"TIER_2_MIN_SCORE": "90"})


def test_debug_defaults_on_only_for_the_embedded_database() -> None:
    assert load_config({})["DEBUG"] is True
    assert load_config({"DATABASE_URL": "postgres://u@h/db"})["DEBUG"] is False


def test_site_url_follows_run_host_and_run_port_unless_set() -> None:
    assert load_config({})["SITE_URL"] == "http://127.0.0.1:8000"
    assert (
        load_config({"RUN_HOST": "scanner.lan", "RUN_PORT": "9100"})["SITE_URL"]
        == "http://scanner.lan:9100"
    )
    assert load_config({"RUN_HOST": "0.0.0.0", "RUN_PORT": "9100"})["SITE_URL"] == (
        "http://127.0.0.1:9100"
    )
    assert load_config({"RUN_HOST": "::1"})["SITE_URL"] == "http://[::1]:8000"
    assert (
        load_config({"RUN_PORT": "9100", "SITE_URL": "https://scan.example.org/"})["SITE_URL"]
        == "https://scan.example.org"
    )


def test_replay_start_is_read_as_utc() -> None:
    config = load_config({"REPLAY_START": "2024-03-01T12:00Z"})
    assert config["REPLAY_START"] == datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_settings_table_lists_every_setting() -> None:
    table = settings_table_markdown()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in table


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_up_with_a_bad_value_prints_one_line_and_fails(tmp_path: Path) -> None:
    result = _manage("check", VAR_DIR=str(tmp_path), RSI_WINDOW="lots")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cryptosatx: configuration error: RSI_WINDOW='lots' is invalid: expected a whole number"
    ]


def test_secret_key_is_required_when_debug_is_off(tmp_path: Path) -> None:
    result = _manage("check", VAR_DIR=str(tmp_path), DEBUG="false", SECRET_KEY="")
    assert result.returncode == 2
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_embedded_default_generates_the_secret_key_once(tmp_path: Path) -> None:
    env = {"VAR_DIR": str(tmp_path), "SECRET_KEY": "", "DEBUG": ""}
    assert _manage("check", **env).returncode == 0
    first = (tmp_path / "secret_key").read_text()
    assert _manage("check", **env).returncode == 0
    assert (tmp_path / "secret_key").read_text() == first
    assert len(first) >= 50


def test_the_readme_settings_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_table_markdown() in readme, "run `python manage.py settings_table`"
