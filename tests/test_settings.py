"""The declared settings table: defaults, TOML file, environment, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from callvault.errors import ConfigError
from callvault.settings import SETTINGS, load_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path)})
    assert settings.http_host == "127.0.0.1" and settings.http_port == 8080
    assert settings.sip_port == 5060 and settings.rtp_ports == (20000, 29999)
    assert settings.default_region == "US"
    assert settings.resolved_database_url.startswith(
        "sqlite:///"
    ) and settings.resolved_storage_url.startswith("file://")
    assert all(s.help for s in SETTINGS)


def test_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text('http_port = 9000\nsip_port = 5070\ndefault_region = "gb"\n')
    settings = load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path), "CALLVAULT_SIP_PORT": "5080"})
    assert settings.http_port == 9000  # file
    assert settings.sip_port == 5080  # environment wins over the file
    assert settings.default_region == "GB"
    assert settings.sources["http_port"].startswith("file")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CALLVAULT_HTTP_PORT", "80800", "CALLVAULT_HTTP_PORT='80800' is invalid"),
        ("CALLVAULT_RTP_PORTS", "30000", "LOW-HIGH"),
        ("CALLVAULT_RTP_PORTS", "3000-2000", "LOW must be"),
        ("CALLVAULT_DEFAULT_REGION", "USA", "two-letter"),
        ("CALLVAULT_STORAGE_URL", "ftp://x", "file:// or s3://"),
        ("CALLVAULT_DATABASE_URL", "mysql://x", "sqlite:/// or postgresql"),
        ("CALLVAULT_LOSS_THRESHOLD", "2", "between 0 and 1"),
        ("CALLVAULT_DTMF_MODE", "all", "presence"),
        ("CALLVAULT_ARCHIVE_SILENCE_GATE", "-5", "dBFS"),
        ("CALLVAULT_MAX_CALLS", "zero", "CALLVAULT_MAX_CALLS"),
    ],
)
def test_bad_values_name_the_setting_and_value(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")) as raised:
        load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path), variable: value})
    assert variable in raised.value.message and value in raised.value.message


def test_bad_config_files(tmp_path: Path) -> None:
    (tmp_path / "callvault.toml").write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'no_such_setting'"):
        load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path)})
    (tmp_path / "callvault.toml").write_text("http_port = \n")
    with pytest.raises(ConfigError, match="callvault.toml"):
        load_settings(env={"CALLVAULT_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"CALLVAULT_CONFIG": str(tmp_path / "missing.toml")})


def test_credentials_in_urls_are_not_echoed(tmp_path: Path) -> None:
    env = {"CALLVAULT_DATA_DIR": str(tmp_path), "CALLVAULT_DATABASE_URL": "mysql://admin:hunter2@db/x"}
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert "hunter2" not in raised.value.message and "admin:***@" in raised.value.message
    env = {"CALLVAULT_DATA_DIR": str(tmp_path), "CALLVAULT_STORAGE_URL": "ftp://b?secret_key=s3cr3t&x=1"}
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert "s3cr3t" not in raised.value.message
