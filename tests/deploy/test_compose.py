"""docker-compose.yml, checked without a Docker engine: what it runs exists, what it needs is documented.

Parsed with PyYAML (anchors and merge keys resolved as compose resolves them). Every ``dsimport …`` command and
health check must name a command of our CLI; every ``${VAR}`` must be documented in .env.example; the shape the
deployment relies on (one beat, scalable workers, the emulator behind a profile, functional health checks, AOF
Redis, a one-shot migration gating the services) is asserted.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from cli.main import cli
from worker.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# ${NAME}, ${NAME:-default}, ${NAME:?error}; "$$" is an escaped dollar (the container's shell expands it).
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:]?[-?+][^}]*)?\}")
SERVICES = {"redis", "postgres", "migrate", "worker", "beat", "flower", "dashboard", "emulator"}
DSIMPORT_SERVICES = {"migrate", "worker", "beat", "flower", "dashboard", "emulator"}
LONG_RUNNING = SERVICES - {"migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def documented_variables() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"\s*#?\s*([A-Z_][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def resolve(argv: list[str]) -> click.Command:
    """The click command ``argv`` (starting with ``dsimport``) names; fails the test if there is none."""
    assert argv[0] == "dsimport", argv
    command: click.Command = cli
    for word in argv[1:]:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        sub = command.commands.get(word)
        assert sub is not None, f"`{' '.join(argv)}`: no command {word!r} in `{command.name}`"
        command = sub
    assert not isinstance(command, click.Group), f"`{' '.join(argv)}` names a group, not a command"
    return command


def options_of(command: click.Command) -> set[str]:
    return {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


@pytest.mark.parametrize("name", sorted(DSIMPORT_SERVICES))
def test_dsimport_commands_exist(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    argv = [str(part) for part in service["command"]]
    command = resolve(argv)
    if command.name not in ("worker", "beat"):  # those pass Celery's own options through
        for word in argv:
            if word.startswith("--"):
                assert word.split("=")[0] in options_of(command), f"{name}: `{word}` is not an option of {argv[:3]}"
    assert service["image"] == "dsimport:latest" and service["build"] == "."


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_health_checks_prove_function(services: dict[str, dict[str, Any]], name: str) -> None:
    test = services[name]["healthcheck"]["test"]
    text = " ".join(str(part) for part in test)
    if test[0] == "CMD" and test[1] == "dsimport":
        resolve([str(part) for part in test[1:]])
        assert test[2] == "check"
    else:
        # A PING answered, a query run: never "is the PID there".
        assert "redis-cli ping" in text or "SELECT 1" in text, text
    assert "pgrep" not in text and "pidof" not in text and "/proc/" not in text


def test_every_variable_is_documented() -> None:
    used = set(_VARIABLE.findall(COMPOSE.read_text()))
    assert used, "no ${VAR} found: the pattern is wrong"
    missing = used - documented_variables()
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_secrets_come_from_the_env_file_and_are_required(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DSIMPORT_UI_PASSWORD"):
        assert f"${{{secret}:?" in text, f"{secret} must fail loudly when .env does not set it"
    example = ENV_EXAMPLE.read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DSIMPORT_UI_PASSWORD"):
        assert re.search(rf"^{secret}=(change-me)?$", example, re.M), f"{secret} must be a placeholder"
    assert re.search(r"^MISTRAL_API_KEY=$", example, re.M)
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert "x-dsimport-env" in compose


def test_service_settings_are_real_settings(services: dict[str, dict[str, Any]]) -> None:
    """A misspelt DSIMPORT_ variable would be silently ignored by the service."""
    fields = set(Settings.model_fields)
    for name in DSIMPORT_SERVICES - {"emulator"}:
        for key in services[name]["environment"]:
            if key.startswith("DSIMPORT_"):
                assert key.removeprefix("DSIMPORT_").lower() in fields, f"{name}: {key} is no setting"
            else:
                assert key == "MISTRAL_API_KEY", key


def test_depends_on_existing_services_and_migration_gates(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert dependency != name
            assert dependency != "emulator", "a profile-only service cannot be a dependency"
            assert condition["condition"] in ("service_healthy", "service_completed_successfully")
    for name in ("worker", "beat", "dashboard"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"


def test_the_emulator_is_behind_a_profile(services: dict[str, dict[str, Any]]) -> None:
    assert services["emulator"]["profiles"] == ["emulator"]
    assert all("profiles" not in s for n, s in services.items() if n != "emulator")


def test_exactly_one_beat_and_scalable_workers(services: dict[str, dict[str, Any]]) -> None:
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in beat
    worker = services["worker"]
    for key in ("container_name", "ports", "scale"):
        assert key not in worker, f"worker has {key}: --scale worker=N would clash"
    assert "%h" in " ".join(worker["command"])  # a distinct node name per container, the one `check worker` pings


def test_redis_keeps_queued_requests(services: dict[str, dict[str, Any]]) -> None:
    command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in command
    assert any(str(v).endswith(":/data") for v in services["redis"]["volumes"])
    assert "--requirepass" not in command  # the password stays off the command line


def test_web_ports_are_published_on_loopback_by_default(services: dict[str, dict[str, Any]]) -> None:
    for name in ("flower", "dashboard"):
        (port,) = services[name]["ports"]
        assert port.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:")


def test_dockerfile_builds_the_project_and_runs_unprivileged() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    # Every package the project ships (pyproject's package list) is copied into the image.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    assert "jobs" in packages and "cli" in packages
    for package in packages:
        assert f"COPY {package} ./{package}" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored
