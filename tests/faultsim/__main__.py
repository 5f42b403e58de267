"""``python -m tests.faultsim --seed N`` replays one seed; ``--seeds 1-300`` runs a campaign and sums it up.

Exit status 1 when any seed found a violation. ``--plan-only`` prints the plans without running them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from .campaign import Outcome, run_seed
from .plan import draw_plan, parse_seeds
from .report import outcome_lines, summary_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faultsim", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="one seed")
    which.add_argument("--seeds", help="seeds as 1-300 or 1,5,9-12")
    parser.add_argument("--plan-only", action="store_true", help="print the plans, run nothing")
    parser.add_argument("--workdir", type=Path, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--keep", choices=("always", "failed", "never"), default="failed")
    parser.add_argument("--verbose", action="store_true", help="print every plan, not only failing ones")
    parser.add_argument("--budget-min", type=float, help="start no new seed after this many minutes")
    options = parser.parse_args(argv)
    seeds = [options.seed] if options.seed is not None else parse_seeds(options.seeds)
    if options.plan_only:
        for seed in seeds:
            print(draw_plan(seed).describe())
        return 0
    root = options.workdir or Path(tempfile.mkdtemp(prefix="dsimport-faultsim-"))
    outcomes: list[Outcome] = []
    started = time.monotonic()
    # SIGTERM ends the campaign like Ctrl-C: the seed running is cleaned up, the summary covers the seeds done.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for seed in seeds:
            if options.budget_min is not None and time.monotonic() - started > options.budget_min * 60:
                print(f"time budget of {options.budget_min:g} min spent: stopping before seed {seed}")
                break
            outcome = run_seed(draw_plan(seed), root / f"seed-{seed}", keep=options.keep)
            outcomes.append(outcome)
            load = os.getloadavg()[0]
            for line in outcome_lines(outcome, with_plan=options.verbose or options.seed is not None):
                print(line, flush=True)
            print(f"  ({time.strftime('%H:%M:%S')}, load average {load:.2f})", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    if len(outcomes) > 1:
        print("\n".join(summary_lines(outcomes)))
    return 0 if all(outcome.verdict.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
