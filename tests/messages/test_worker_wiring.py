"""How the worker is wired for messages: settings, the bootstep, the task registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.message_tasks import MAX_BYTES_CONF_KEY, REQUEST_IMPORT
from worker.celery_app import create_app
from worker.settings import Settings, SettingsError, load_settings
from worker.stream_bootstep import make_stream_step
from worker.stream_connection import stream_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DSIMPORT_STREAM_REDIS_URL", "DSIMPORT_STREAM_NAME", "DSIMPORT_MESSAGE_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:6379/0")
    assert settings.stream_name == "dsimport:requests"
    assert settings.dead_letter_stream == "dsimport:dead-letters"
    assert settings.message_max_bytes == 64 * 1024
    assert settings.stream_enabled is True
    assert settings.resolved_stream_redis_url() == "redis://127.0.0.1:6379/0"


def test_the_stream_can_live_on_another_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSIMPORT_STREAM_REDIS_URL", "redis://other:6379/2")
    monkeypatch.setenv("DSIMPORT_STREAM_NAME", "orders:imports")
    settings = load_settings()
    assert settings.resolved_stream_redis_url() == "redis://other:6379/2"
    assert settings.stream_name == "orders:imports"


def test_a_socket_broker_url_is_spelled_for_redis_py() -> None:
    settings = Settings(broker_url="redis+socket:///run/redis.sock")
    assert settings.resolved_stream_redis_url() == "unix:///run/redis.sock"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DSIMPORT_STREAM_REDIS_URL", "amqp://:pw@host", "stream_redis_url"),
        ("DSIMPORT_MESSAGE_MAX_BYTES", "10", "message_max_bytes"),
        ("DSIMPORT_STREAM_BLOCK_S", "0", "stream_block_s"),
    ],
)
def test_bad_values_are_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"invalid setting {expected}") as caught:
        load_settings()
    assert "pw" not in str(caught.value)


def test_the_stream_config_carries_the_settings_in_redis_units() -> None:
    settings = Settings(stream_block_s=1.5, stream_claim_min_idle_s=30, stream_batch_size=7)
    config = stream_config(settings, "w1@host:42")
    assert (config.block_ms, config.claim_min_idle_ms, config.batch_size) == (1500, 30_000, 7)
    assert config.consumer == "w1@host:42"
    assert config.source == "stream:dsimport:requests"


def test_the_bootstep_runs_only_when_enabled() -> None:
    assert make_stream_step(Settings(stream_enabled=True))(None).include_if(None) is True
    assert make_stream_step(Settings(stream_enabled=False))(None).include_if(None) is False


def test_the_app_registers_the_task_the_step_and_the_size_limit() -> None:
    app = create_app(Settings(message_max_bytes=1000))
    try:
        assert REQUEST_IMPORT in app.tasks
        assert app.conf[MAX_BYTES_CONF_KEY] == 1000
        assert "dsimport.StreamConsumer" in {step.name for step in app.steps["worker"]}
    finally:
        app.close()
