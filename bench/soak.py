"""The long fault campaign: ``python -m bench.soak --seeds 1-300`` (``make soak``), summed up in a results file.

Runs the seeds of :mod:`tests.faultsim` one after another (each a full run of workers, beats, schedules, emulator and
its own Redis and ledger, tens of seconds), prints a line per seed and, at the end, the seeds run, the faults
injected by kind and the violations by kind with their seeds. The same lines go to
``bench/results/soak-<first>-<last>.txt``. The folders of failing seeds (logs, SQLite ledger) are kept under
``--workdir``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import TextIO

from tests.faultsim.__main__ import main as faultsim_main
from tests.faultsim.plan import parse_seeds

RESULTS = Path(__file__).resolve().parent / "results"


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seeds", default="1-300", help="seeds as 1-300 or 1,5,9-12 (default 1-300)")
    parser.add_argument("--workdir", type=Path, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--budget-min", type=float, help="start no new seed after this many minutes")
    options = parser.parse_args(argv)
    seeds = parse_seeds(options.seeds)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"soak-{min(seeds)}-{max(seeds)}.txt"
    forwarded = ["--seeds", options.seeds] + (["--workdir", str(options.workdir)] if options.workdir else [])
    if options.budget_min is not None:
        forwarded += ["--budget-min", str(options.budget_min)]
    with path.open("w") as out, contextlib.redirect_stdout(_Tee(sys.stdout, out)):
        code = faultsim_main(forwarded)
    print(f"written {path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
