"""Settings come from the environment, and a bad value stops start-up with one line naming it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryptosatx.config import (
    SETTINGS,
    SETTINGS_BY_NAME,
    ConfigError,
    load_config,
    settings_table_markdown,
)

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


# --- the table and cryptosatx/settings.py name the same variables --------------------------------


def _settings_module_reads() -> tuple[dict[str, str], list[str]]:
    """From the source of cryptosatx/settings.py: ({setting assigned there: the table key its
    value reads}, every read of the environment or of the parsed table besides those)."""
    tree = ast.parse((ROOT / "cryptosatx" / "settings.py").read_text())
    nodes = list(ast.walk(tree))
    keyed = {  # `_config["NAME"]`
        id(node.value): node.slice.value
        for node in nodes
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "_config"
        and isinstance(node.slice, ast.Constant)
    }
    loaded = {  # `load_config(os.environ)`
        id(arg)
        for node in nodes
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "load_config"
        for arg in node.args
    }
    from_table: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Assign):
            for name in (getattr(target, "id", "?") for target in node.targets):
                for key in (keyed[id(sub)] for sub in ast.walk(node.value) if id(sub) in keyed):
                    from_table[name] = key
    other = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in nodes
        if (
            isinstance(node, ast.Name)
            and node.id == "_config"
            and isinstance(node.ctx, ast.Load)
            and id(node) not in keyed
        )
        or (
            isinstance(node, ast.Attribute)
            and node.attr in {"environ", "getenv"}
            and id(node) not in loaded
        )
    ]
    return from_table, other


def test_settings_py_names_every_setting_of_the_table_after_itself() -> None:
    from_table, _ = _settings_module_reads()
    # One line per setting, `NAME = _config["NAME"]` (or a function of it), so `git grep "NAME ="`
    # finds where each comes from; every other Django setting is built from these names.
    assert {name: key for name, key in from_table.items() if name != key} == {}
    assert sorted(set(SETTINGS_BY_NAME) - set(from_table)) == []
    assert sorted(set(from_table) - set(SETTINGS_BY_NAME)) == []


def test_settings_py_reads_the_environment_only_through_the_table() -> None:
    # A variable read any other way would be missing from the table, its checks and the README;
    # the parsed table handed on whole (or read by a computed key) would hide the names again.
    _, other = _settings_module_reads()
    assert other == []


def test_every_table_setting_is_a_django_setting(settings) -> None:
    assert [name for name in SETTINGS_BY_NAME if not hasattr(settings, name)] == []


def test_settings_read_by_a_computed_name_are_in_the_table() -> None:
    from alerts.services import TIER_SWITCHES
    from core.throttling import SettingRateMixin
    from scanners.algorithms.common import ScannerConfig
    from scanners.scanning import INTERVAL_SETTINGS
    from scoring.config import COMPONENT_INTERVAL_SETTINGS

    throttles = [
        cls.rate_setting for cls in _subclasses(SettingRateMixin) if "rate_setting" in vars(cls)
    ]
    computed = {
        *TIER_SWITCHES.values(),
        *throttles,
        *(field.name.upper() for field in fields(ScannerConfig)),
        *INTERVAL_SETTINGS.values(),
        *COMPONENT_INTERVAL_SETTINGS.values(),
    }
    assert len(throttles) == 4
    assert sorted(computed - set(SETTINGS_BY_NAME)) == []


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]
