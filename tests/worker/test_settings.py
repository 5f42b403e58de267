from __future__ import annotations

from pathlib import Path

import pytest

from jobs.poll_backoff import PollPolicy
from worker.runtime_builder import poll_policy
from worker.settings import Settings, SettingsError, load_settings, mask_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MISTRAL_API_KEY", "DSIMPORT_API_KEY", "DSIMPORT_API_KEY_FILE", "DSIMPORT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_put_the_ledger_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DSIMPORT_HOME", str(tmp_path / "h"))
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'ledger.db'}"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"


def test_the_key_comes_from_mistral_api_key_and_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-secret-marker")
    settings = load_settings()
    assert settings.require_api_key().get_secret_value() == "sk-secret-marker"
    assert "sk-secret-marker" not in repr(settings)
    assert "sk-secret-marker" not in str(settings.public_summary())


def test_the_key_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file\n")
    monkeypatch.setenv("DSIMPORT_API_KEY_FILE", str(key_file))
    assert load_settings().require_api_key().get_secret_value() == "sk-from-file"


def test_an_unreadable_key_file_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DSIMPORT_API_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="cannot read the API key file"):
        load_settings().require_api_key()


def test_a_bad_number_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSIMPORT_POLL_MAX_INTERVAL_S", "soon")
    with pytest.raises(SettingsError, match="poll_max_interval_s"):
        load_settings()


def test_mask_url_hides_passwords() -> None:
    assert mask_url("redis://:hunter2@redis:6379/0") == "redis://:***@redis:6379/0"
    assert mask_url("postgresql+psycopg://app:pw@db/x") == "postgresql+psycopg://app:***@db/x"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_settings_are_a_plain_object() -> None:
    assert isinstance(Settings(), Settings)


def test_the_poll_policy_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # bench/ and the poll simulation (tests/jobs/test_poll_simulation.py) take PollPolicy() for the shipped policy.
    for name in ("INITIAL_INTERVAL_S", "MAX_INTERVAL_S", "MULTIPLIER", "JITTER_RATIO", "FORECAST_FRACTION"):
        monkeypatch.delenv(f"DSIMPORT_POLL_{name}", raising=False)
    assert poll_policy(load_settings()) == PollPolicy()


def test_the_forecast_fraction_reaches_the_policy_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSIMPORT_POLL_FORECAST_FRACTION", "0")
    policy = poll_policy(load_settings())
    assert (policy.forecast_fraction, policy.forecasts) == (0.0, False)
    monkeypatch.setenv("DSIMPORT_POLL_FORECAST_FRACTION", "1.5")
    with pytest.raises(SettingsError, match="poll_forecast_fraction"):
        load_settings()
