"""Every answer is in the API's error shape, unknown routes and wrong methods included; and the knob that makes
the two import routes today's API no longer has answer as routes it does not have."""

from __future__ import annotations

import httpx
import pytest

from emulator.fixtures import DEMO_CAMPAIGN_COMPLETED_ID, DEMO_DATASET_ID, DEMO_FILE_ID
from emulator.testing import EmulatorServer

DATASETS = "/v1/observability/datasets"


def assert_route_not_found(response: httpx.Response, method: str, path: str) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    # The Observability shape (the SDK parses it as ObservabilityError); no code names a missing route.
    assert response.json() == {"detail": {"message": f"Not Found: no route {method} {path}", "error_code": None}}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing-here"),
        ("POST", f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-nowhere"),
        ("GET", f"{DATASETS}/{DEMO_DATASET_ID}/records/extra/segments"),
        ("GET", "/v1/files/a/b/c"),
        ("GET", "/_emulator/nothing"),
    ],
)
def test_unknown_route_is_a_404_in_the_api_error_shape(client: httpx.Client, method: str, path: str) -> None:
    assert_route_not_found(client.request(method, path), method, path)


def test_unknown_route_needs_no_key(emu: EmulatorServer) -> None:
    with httpx.Client(base_url=emu.url) as anonymous:
        assert_route_not_found(anonymous.get("/v1/nothing-here"), "GET", "/v1/nothing-here")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", DATASETS, {"GET", "HEAD", "POST"}),
        ("DELETE", f"{DATASETS}/{DEMO_DATASET_ID}/records", {"GET", "HEAD", "POST"}),
        ("GET", f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-file", {"POST"}),
        ("GET", f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-campaign", {"POST"}),
        ("DELETE", f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-explorer", {"POST"}),
        ("GET", "/v1/observability/spans/search", {"POST"}),
        ("POST", "/v1/observability/dataset-records/" + DEMO_DATASET_ID, {"DELETE", "GET", "HEAD"}),
    ],
)
def test_wrong_method_is_a_405_in_the_api_error_shape(
    client: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": {"message": f"Method Not Allowed: {method} {path}", "error_code": None}}
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_removed_import_routes_are_served_by_default(api: object, client: httpx.Client) -> None:
    response = client.post(f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-campaign", json={"campaign_id": "x"})
    assert response.status_code == 422  # the route exists: the body is checked


def test_knob_makes_campaign_and_explorer_imports_unknown_routes(emu: EmulatorServer, client: httpx.Client) -> None:
    assert emu.configure(removed_import_routes="gone")["removed_import_routes"] == "gone"
    emu.reset_stats()
    campaign = f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-campaign"
    explorer = f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-explorer"
    # Even well-formed requests: the route is not there, so nothing is validated and no task starts.
    assert_route_not_found(client.post(campaign, json={"campaign_id": DEMO_CAMPAIGN_COMPLETED_ID}), "POST", campaign)
    assert_route_not_found(client.post(explorer, json={"completion_event_ids": []}), "POST", explorer)
    with httpx.Client(base_url=emu.url) as anonymous:  # as any unknown route: before authentication
        assert_route_not_found(anonymous.post(campaign, json={}), "POST", campaign)
    assert_route_not_found(client.get(explorer), "GET", explorer)  # any method: the path is not there
    stats = emu.stats()
    assert stats["tasks_created"] == {} and "import_from_campaign" not in stats["requests"]
    # The kinds today's API has are untouched.
    assert (
        client.post(f"{DATASETS}/{DEMO_DATASET_ID}/imports/from-file", json={"file_id": DEMO_FILE_ID}).status_code
        == 202
    )
    emu.configure(removed_import_routes="served")
    assert client.post(campaign, json={"campaign_id": DEMO_CAMPAIGN_COMPLETED_ID}).status_code == 202


def test_knob_rejects_other_values(emu: EmulatorServer, client: httpx.Client) -> None:
    response = client.post(f"{emu.url}/_emulator/config", json={"removed_import_routes": "maybe"})
    assert response.status_code == 422
    assert emu.configure()["removed_import_routes"] == "served"


def test_server_option_starts_with_the_routes_gone() -> None:
    with EmulatorServer(seed="demo", removed_import_routes="gone") as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        url = f"{emu.url}{DATASETS}/{DEMO_DATASET_ID}/imports/from-explorer"
        response = httpx.post(url, json={"completion_event_ids": []}, headers=headers)
        assert response.status_code == 404 and response.json()["detail"]["error_code"] is None
        # A reset goes back to the start-up knobs, the option included.
        emu.configure(removed_import_routes="served")
        emu.reset()
        assert httpx.post(url, json={"completion_event_ids": []}, headers=headers).status_code == 404
