"""Settings: every variable validated once, with a one-line reason for a bad value."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from admin.settings import SettingsError, load_settings

URL = "postgresql://shop:secret@db.internal:5432/shop"
KEY = "k" * 32


def settings_error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("POOL_MAX_SIZE", "abc", "POOL_MAX_SIZE must be a whole number, got 'abc'"),
        ("POOL_MIN_SIZE", "-1", "POOL_MIN_SIZE must be at least 0, got -1"),
        ("POOL_ACQUIRE_TIMEOUT", "soon", "POOL_ACQUIRE_TIMEOUT must be a number, got 'soon'"),
        ("POOL_ACQUIRE_TIMEOUT", "0", "POOL_ACQUIRE_TIMEOUT must be greater than 0"),
        ("MAX_UPLOAD_MB", "1.5", "MAX_UPLOAD_MB must be a whole number, got '1.5'"),
        ("PORT", "70000", "PORT must be at most 65535, got 70000"),
        ("LOCK_TIMEOUT_MS", "-5", "LOCK_TIMEOUT_MS must be at least 0, got -5"),
        ("SECURE_COOKIES", "maybe", "SECURE_COOKIES must be true or false, got 'maybe'"),
    ],
)
async def test_bad_number_or_flag_names_the_variable(name: str, value: str, expected: str):
    message = settings_error({"DATABASE_URL": URL, "SECRET_KEY": KEY, name: value})
    assert expected in message


async def test_pool_min_above_max_is_refused():
    message = settings_error(
        {"DATABASE_URL": URL, "SECRET_KEY": KEY, "POOL_MIN_SIZE": "8", "POOL_MAX_SIZE": "4"}
    )
    assert message == "POOL_MIN_SIZE (8) exceeds POOL_MAX_SIZE (4)"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://shop@localhost/shop", "DATABASE_URL must be a postgresql:// URL"),
        ("localhost:5432/shop", "DATABASE_URL must be a postgresql:// URL"),
        ("postgresql://shop@localhost:port/shop", "DATABASE_URL has a malformed port"),
        ("postgresql://", "DATABASE_URL names neither a host nor a database"),
    ],
)
async def test_malformed_database_url(url: str, expected: str):
    assert expected in settings_error({"DATABASE_URL": url, "SECRET_KEY": KEY})


async def test_malformed_listen_url_is_reported_under_its_own_name():
    message = settings_error(
        {"DATABASE_URL": URL, "SECRET_KEY": KEY, "LISTEN_DATABASE_URL": "redis://x"}
    )
    assert message.startswith("LISTEN_DATABASE_URL must be a postgresql:// URL")


async def test_database_url_without_secret_key_refuses_and_says_why(tmp_path: Path):
    message = settings_error({"DATABASE_URL": URL, "ADMIN_DATA_DIR": str(tmp_path)})
    assert message.startswith("SECRET_KEY is required when DATABASE_URL is set")
    assert not (tmp_path / "secret_key").exists()


async def test_short_secret_key_is_refused():
    assert "SECRET_KEY is too short" in settings_error({"DATABASE_URL": URL, "SECRET_KEY": "x"})


async def test_valid_environment_is_read_once_into_settings(tmp_path: Path):
    settings = load_settings(
        {
            "DATABASE_URL": URL,
            "SECRET_KEY": KEY,
            "POOL_MIN_SIZE": "1",
            "POOL_MAX_SIZE": "3",
            "POOL_ACQUIRE_TIMEOUT": "0.5",
            "PORT": "9000",
            "LOCK_TIMEOUT_MS": "250",
            "ADMIN_DATA_DIR": str(tmp_path),
        }
    )
    assert settings.lock_timeout_ms == 250
    assert settings.database_url == URL
    assert settings.listen_database_url == URL
    assert (settings.pool_min_size, settings.pool_max_size) == (1, 3)
    assert settings.pool_acquire_timeout == 0.5
    assert settings.port == 9000
    assert not settings.embedded


async def test_embedded_mode_generates_secret_key_once_and_reuses_it(tmp_path: Path):
    data_dir = tmp_path / "data"
    first = load_settings({"ADMIN_DATA_DIR": str(data_dir)})
    assert first.embedded
    assert first.data_dir == data_dir.resolve()
    key_file = data_dir / "secret_key"
    assert key_file.read_text().strip() == first.secret_key
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    second = load_settings({"ADMIN_DATA_DIR": str(data_dir)})
    assert second.secret_key == first.secret_key

    other = load_settings({"ADMIN_DATA_DIR": str(tmp_path / "other")})
    assert other.secret_key != first.secret_key


async def test_explicit_secret_key_wins_in_embedded_mode(tmp_path: Path):
    settings = load_settings({"ADMIN_DATA_DIR": str(tmp_path), "SECRET_KEY": KEY})
    assert settings.secret_key == KEY
    assert not (tmp_path / "secret_key").exists()


def test_topology_settings_default_to_a_single_database():
    settings = load_settings({"DATABASE_URL": URL, "SECRET_KEY": KEY}, is_terminal=True)
    assert settings.database_pooler is False
    assert settings.replica_database_url is None
    assert settings.metrics_token is None
    assert settings.metrics_address is None
    assert settings.log_json is False


def test_a_separate_listen_url_means_a_pooler_unless_told_otherwise():
    env = {
        "DATABASE_URL": "postgresql://shop@bouncer:6432/shop",
        "LISTEN_DATABASE_URL": URL,
        "SECRET_KEY": KEY,
    }
    assert load_settings(env).database_pooler is True
    assert load_settings({**env, "DATABASE_POOLER": "none"}).database_pooler is False
    alone = {"DATABASE_URL": URL, "SECRET_KEY": KEY, "DATABASE_POOLER": "transaction"}
    assert load_settings(alone).database_pooler is True


def test_logs_are_json_off_a_terminal_and_text_on_one():
    env = {"DATABASE_URL": URL, "SECRET_KEY": KEY}
    assert load_settings(env, is_terminal=False).log_json is True
    assert load_settings(env, is_terminal=True).log_json is False
    assert load_settings({**env, "LOG_FORMAT": "json"}, is_terminal=True).log_json is True


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DATABASE_POOLER", "session", "DATABASE_POOLER must be auto, transaction or none"),
        ("DATABASE_REPLICA_URL", "mysql://x/y", "DATABASE_REPLICA_URL must be a postgresql://"),
        ("REPLICA_MAX_LAG_S", "-1", "REPLICA_MAX_LAG_S must be greater than 0"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN is too short"),
        ("METRICS_ADDRESS", "9100", "METRICS_ADDRESS must be host:port"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be auto, json or text"),
    ],
)
def test_bad_topology_settings_name_the_variable(name: str, value: str, expected: str):
    assert expected in settings_error({"DATABASE_URL": URL, "SECRET_KEY": KEY, name: value})


def test_metrics_address_is_host_and_port():
    env = {"DATABASE_URL": URL, "SECRET_KEY": KEY, "METRICS_ADDRESS": "10.0.0.5:9100"}
    assert load_settings(env).metrics_address == ("10.0.0.5", 9100)


def test_shop_time_zone_is_a_tz_database_name_or_unset():
    env = {"DATABASE_URL": URL, "SECRET_KEY": KEY}
    assert load_settings(env).shop_time_zone is None
    assert load_settings({**env, "SHOP_TIME_ZONE": " Asia/Kolkata "}).shop_time_zone == (
        "Asia/Kolkata"
    )
    expected = "SHOP_TIME_ZONE must be a tz database zone such as Europe/Berlin, got 'Mars/Base'"
    assert expected in settings_error({**env, "SHOP_TIME_ZONE": "Mars/Base"})
