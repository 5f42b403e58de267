"""Switches that turn off one exactly-once mechanism, for proving that its tests can fail.

A guarantee whose tests still pass with its mechanism removed has no test. CI runs each guarantee's tests once
more with ``DSIMPORT_TEST_DISABLE_GUARANTEES=<name>`` and requires them to fail (see ``tests/guarantees.toml`` and
``.ci/guarantees.py``). The variable is read here, directly from the environment and not through the settings,
because it must reach every process a test starts (workers, beat, consumers) and must never be something an
operator sets: an unknown name is refused at once so a typo cannot make a mutation run pass vacuously.

The names, and the mechanism each one removes:

- ``adoption``: recovery looks for the remote task an interrupted submit may have started before sending again;
- ``ambiguous-5xx``: a 500/502/504 answer to a POST is treated as "may have arrived" (goes through adoption);
- ``lease-check``: every write after a network call is conditional on the job's status, lease owner and version;
- ``unique-run``: a schedule fire inserts a run row unique on (schedule, fire time) before it imports anything (a
  backfill's chunk, one unique on (backfill, chunk start));
- ``message-key``: a queue message's ``id`` is the job's idempotency key;
- ``ack-after-commit``: a stream entry is acknowledged only after its job row is committed.
- ``database-clock``: leases are granted and compared at the database's time, and tasks stamp due times with it
  (``store.clock``), not at each host's own.
- ``skip-existing-lock``: a ``--skip-existing`` job checks its planned items again, under the dataset's index lock,
  before it claims them (``jobs.skip_existing``), so two jobs of one dataset never both take an item.
"""

from __future__ import annotations

import os

ENV_VAR = "DSIMPORT_TEST_DISABLE_GUARANTEES"

KNOWN = frozenset(
    {
        "adoption",
        "ambiguous-5xx",
        "lease-check",
        "unique-run",
        "message-key",
        "ack-after-commit",
        "database-clock",
        "skip-existing-lock",
    }
)


def _disabled() -> frozenset[str]:
    raw = os.environ.get(ENV_VAR, "")
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    unknown = names - KNOWN
    if unknown:
        raise RuntimeError(f"{ENV_VAR}: unknown guarantee(s) {sorted(unknown)}; known: {sorted(KNOWN)}")
    return names


def enabled(name: str) -> bool:
    """True unless a test build switched the mechanism ``name`` off (always True in a real deployment)."""
    if name not in KNOWN:
        raise ValueError(f"unknown guarantee {name!r}")
    # Read each time: tests set the variable per test, and the lookup is a dictionary read.
    return name not in _disabled()
