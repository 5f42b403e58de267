"""Two workers on two "hosts" whose clocks disagree by 30 s: every import still happens exactly once.

One worker runs with ``DSIMPORT_CLOCK_OFFSET_S=30``: its own clock runs 30 s ahead of the other's (and of the
database's and the emulator's). The lease is short (6 s), POSTs are slow (the emulator holds each for 1 s before it
acts, as a slow upstream does) and the first few lose their answer after the task was created. On its own clock,
the skewed worker would

- see every submit of the other worker as abandoned at once, "recover" it while its POST is still on its way, find
  no remote task yet and send the request again;
- stamp its own submits 30 s late, so that recovery, looking for the task of an interrupted submit from that
  moment on, misses the task the lost answer had created, and sends the request again.

Either way: two remote imports for one job. On the database's clock neither happens.
"""

from __future__ import annotations

import time

import pytest

from api_client import DatasetsClient
from emulator.testing import EmulatorServer
from store.models import ImportKind, JobStatus
from tests.fixtures.emulators import explorer_events
from tests.integration.service import Requester, ServiceProcesses, wait_for_jobs

from .harness import FAST_RECOVERY_ENV, all_jobs, count, shared_redis_url

pytestmark = pytest.mark.integration

SKEW_S = 30
LEASE_S = 6
POST_LATENCY_MS = 1000
JOBS = 16
DATASETS = 4
REQUEST_GAP_S = 0.4
LOST_ANSWERS = 6


@pytest.fixture
def broker_redis_url() -> str:
    return shared_redis_url(13)


@pytest.fixture
def service_overrides(service_overrides: dict[str, str]) -> dict[str, str]:
    return {
        **service_overrides,
        **FAST_RECOVERY_ENV,
        # The API call's time bound stays inside the lease (timeout x attempts < lease).
        "DSIMPORT_LEASE_S": str(LEASE_S),
        "DSIMPORT_API_TIMEOUT_S": "2.8",
        "DSIMPORT_API_MAX_ATTEMPTS": "2",
        "DSIMPORT_RECOVERY_INTERVAL_S": "0.5",
    }


def _handled(log_text: str, marker: str) -> int:
    return sum(1 for line in log_text.splitlines() if marker in line)


@pytest.mark.timeout(150)
def test_a_worker_with_a_skewed_clock_starts_no_import_twice(
    emulator: EmulatorServer, api: DatasetsClient, processes: ServiceProcesses, requester: Requester
) -> None:
    emulator.configure(
        task_duration_s=[0.5, 1.5],
        latency_phase="before",
        route_latency_ms={"import_from_explorer": POST_LATENCY_MS},
        # The first POSTs lose their answer after the task was created: recovery must find and adopt those tasks,
        # looking for them from the moment the submit began.
        faults={"import_from_explorer": {"kind": "reset", "next": LOST_ANSWERS, "phase": "after"}},
    )
    event_ids = [f"evt-{n}" for n in range(JOBS)]
    emulator.seed(explorer_events(event_ids))
    datasets = [api.create_dataset(f"target {n}", "d").id for n in range(DATASETS)]

    processes.start_worker("normal")
    processes.env["DSIMPORT_CLOCK_OFFSET_S"] = str(SKEW_S)
    processes.start_worker("skewed")
    del processes.env["DSIMPORT_CLOCK_OFFSET_S"]
    processes.start_beat()

    job_ids = []
    for n, event in enumerate(event_ids):
        job_ids.append(
            requester.request(ImportKind.EXPLORER, datasets[n % DATASETS], {"completion_event_ids": [event]})
        )
        # A steady trickle, not a burst: workers keep free slots, so recovery sweeps run while submits are in flight.
        time.sleep(REQUEST_GAP_S)
    jobs = wait_for_jobs(requester.sessions, job_ids, timeout_s=100, on_timeout=processes.logs)

    result = count(all_jobs(requester.sessions), emulator.stats(), requested=JOBS)
    print(result.line())
    assert (result.lost, result.doubled, result.jobs) == (0, 0, JOBS), result.line() + "\n" + processes.logs()
    assert {job.status for job in jobs.values()} == {JobStatus.COMPLETED}
    # Evidence that the skewed worker took part: it submitted imports and ran recovery sweeps.
    skewed_log = (processes.log_dir / "skewed.log").read_text(errors="replace")
    assert _handled(skewed_log, "accepted as remote task") >= 1, processes.logs()
    assert _handled(skewed_log, "dsimport.recover") >= 1, processes.logs()
