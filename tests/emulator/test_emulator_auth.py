"""Bearer auth: any token by default, only EMULATOR_API_KEY's token when one is configured."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulator.testing import EmulatorServer

DATASETS = "/v1/observability/datasets"


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": {"message": "Missing or invalid API key", "error_code": "AUTH_UNAUTHORIZED"}}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}],
)
def test_request_without_a_bearer_token_is_401(emu: EmulatorServer, headers: dict[str, str]) -> None:
    assert_401(httpx.get(emu.url + DATASETS, headers=headers))


@pytest.mark.parametrize(
    "path",
    ["/v1/files", "/v1/conversations", "/v1/observability/campaigns", f"{DATASETS}/x/tasks/y"],
)
def test_every_api_family_requires_auth(emu: EmulatorServer, path: str) -> None:
    assert_401(httpx.get(emu.url + path))


def test_any_token_is_accepted_without_a_configured_key(emu: EmulatorServer) -> None:
    for token in ("abc", "bearer-case", "x" * 200):
        assert httpx.get(emu.url + DATASETS, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(emu.url + DATASETS, headers={"Authorization": "bearer lower"}).status_code == 200


def test_admin_routes_need_no_token(emu: EmulatorServer) -> None:
    assert httpx.get(emu.url + "/_emulator/health").json()["status"] == "ok"


@pytest.fixture(scope="module")
def keyed() -> Iterator[EmulatorServer]:
    with EmulatorServer(api_key="s3cret-key") as server:
        yield server


def test_configured_key_is_the_only_token_accepted(keyed: EmulatorServer) -> None:
    assert keyed.api_key == "s3cret-key"
    assert_401(httpx.get(keyed.url + DATASETS, headers={"Authorization": "Bearer other"}))
    assert_401(httpx.get(keyed.url + DATASETS))
    ok = httpx.get(keyed.url + DATASETS, headers={"Authorization": "Bearer s3cret-key"})
    assert ok.status_code == 200


def test_key_is_not_in_reprs(keyed: EmulatorServer) -> None:
    assert "s3cret" not in repr(keyed) and "s3cret" not in repr(keyed.settings)
