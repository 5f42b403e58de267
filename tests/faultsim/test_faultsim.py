"""The CI set of the fault campaign: a few fixed seeds, each a full run judged by the checker.

A failing seed's message holds its plan, every violation, and the one-line command that replays it. The seeds were
chosen so that between them every fault kind is drawn at least once (lost answers with 502, 503 and 504 among
them), on both ledgers, with every kind of schedule, both ways of defining one, both faults of the schedules' reads
and two beats at once (``test_checker.py`` checks that they still do); the soak (``make soak``) runs hundreds more.
Seed 15 replaced seed 1 when schedules joined the runs: with seed 12 it found the recovery sweep starved behind a
backlog. Seed 12 itself stays out of the set: its window and copy schedules write to one dataset, where the documented
adoption limit (two interrupted chunks paired with each other's tasks by time) fails it about one run in eight.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .campaign import run_seed
from .plan import draw_plan, parse_seeds
from .report import outcome_lines

CI_SEEDS = (8, 11, 15, 17)
# FAULTSIM_SEEDS=42 (or 40-45) runs those seeds instead, to replay one found by the soak under pytest.
SEEDS = parse_seeds(os.environ["FAULTSIM_SEEDS"]) if os.environ.get("FAULTSIM_SEEDS") else list(CI_SEEDS)

pytestmark = [pytest.mark.faultsim, pytest.mark.integration]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed_{seed}") for seed in SEEDS])
def test_fault_campaign_seed(seed: int, tmp_path: Path) -> None:
    outcome = run_seed(draw_plan(seed), tmp_path / f"seed-{seed}", keep="always")
    lines = outcome_lines(outcome, with_plan=True)
    print("\n".join(lines))
    assert outcome.verdict.ok, "\n".join(lines)
