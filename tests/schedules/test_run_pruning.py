"""Each schedule keeps its own last runs, pruned on its own fires, whatever other schedules do. Both ledgers."""

from __future__ import annotations

import pytest

from store.models import RunStatus
from triggers.schedules import firing as schedule_firing
from triggers.schedules.firing import FireOutcome, fire

from .conftest import CAMPAIGN, Harness, at
from .test_firing import runs


@pytest.mark.timeout(60)
def test_two_schedules_each_keep_their_own_last_runs(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule_firing, "RUNS_KEPT", 3)
    harness.add("a", "campaign", every="1s", campaign=CAMPAIGN)
    harness.add("b", "campaign", every="1s", campaign=CAMPAIGN)
    # Interleaved fires: run ids alternate between the schedules, so any rule keyed on the global run id (say,
    # "every hundredth run") serves one schedule and never the other.
    for second in range(1, 56):
        for name in ("a", "b"):
            assert fire(harness.context, name, at(second)).outcome == FireOutcome.SUBMITTED
        for name in ("a", "b"):
            kept = runs(harness, name)
            # The run just fired plus the ones before it, never more than kept.
            assert len(kept) == min(second, 3)
    for name in ("a", "b"):
        kept = runs(harness, name)
        assert [run.fire_time for run in kept] == [at(53), at(54), at(55)]
        assert {run.status for run in kept} == {RunStatus.SUBMITTED}
