"""A poll round stamps each answer with when it arrived (jobs.poll_round.Observed), before any write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_client import ServerError
from jobs.poll_round import Observed
from jobs.transitions import Observation

ARRIVED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_each_observation_is_stamped_when_it_arrives_and_handed_on_stamped() -> None:
    ticks = iter([ARRIVED, ARRIVED + timedelta(seconds=1)])
    handed: list[tuple[str, Observation]] = []
    observed = Observed(
        sink=lambda job_id, observation: handed.append((job_id, observation)), clock=lambda: next(ticks)
    )
    observed.add("a", Observation(error=ServerError("boom", status_code=503)))
    observed.add("b", Observation(error=ServerError("boom", status_code=503)))
    assert [observed.by_job[job].at for job in ("a", "b")] == [ARRIVED, ARRIVED + timedelta(seconds=1)]
    assert [(job, o.at) for job, o in handed] == [("a", ARRIVED), ("b", ARRIVED + timedelta(seconds=1))]


def test_without_a_clock_nothing_is_stamped_and_a_stamp_is_never_replaced() -> None:
    assert Observed().by_job == {}
    unstamped = Observed()
    unstamped.add("a", Observation(error=ServerError("boom", status_code=503)))
    assert unstamped.by_job["a"].at is None
    stamped = Observed(clock=lambda: ARRIVED + timedelta(seconds=9))
    stamped.add("a", Observation(error=ServerError("boom", status_code=503), at=ARRIVED))
    assert stamped.by_job["a"].at == ARRIVED
