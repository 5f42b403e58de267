"""Lines printed for a run and for a campaign of runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .campaign import Outcome


def outcome_lines(outcome: Outcome, *, with_plan: bool) -> list[str]:
    verdict, plan = outcome.verdict, outcome.plan
    state = "ok" if verdict.ok else f"FAILED ({', '.join(sorted(verdict.kinds()))})"
    figures = " ".join(f"{key}={value}" for key, value in verdict.figures.items())
    lines = [f"seed {plan.seed}: {state} in {outcome.seconds:.0f}s  {figures}"]
    if with_plan or not verdict.ok:
        lines.append(plan.describe())
        injected = " ".join(f"{kind}={n}" for kind, n in sorted(outcome.injected.items()))
        lines.append(f"  injected: {injected}")
    for note in outcome.notes:
        lines.append(f"  note: {note}")
    for kind, line in verdict.violations:
        lines.append(f"  VIOLATION {kind}: {line}")
    if not verdict.ok:
        if outcome.workdir is not None:
            lines.append(f"  logs and ledger kept in {outcome.workdir}")
        lines.append(f"  reproduce: {outcome.repro()}")
    return lines


def summary_lines(outcomes: Iterable[Outcome]) -> list[str]:
    done = list(outcomes)
    injected: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    failing: dict[str, list[int]] = {}
    for outcome in done:
        injected.update(outcome.injected)
        for kind, n in outcome.verdict.kinds().items():
            violations[kind] += n
            failing.setdefault(kind, []).append(outcome.plan.seed)
    seeds = [outcome.plan.seed for outcome in done]
    lines = [
        f"seeds run: {len(done)} ({min(seeds, default=0)}..{max(seeds, default=0)}), "
        f"failed: {sum(1 for o in done if not o.verdict.ok)}",
        "faults injected: " + " ".join(f"{kind}={n}" for kind, n in sorted(injected.items())),
        "violations: " + (" ".join(f"{kind}={n}" for kind, n in sorted(violations.items())) or "none"),
    ]
    for kind, seeds_failing in sorted(failing.items()):
        lines.append(f"  {kind}: seeds {' '.join(str(s) for s in seeds_failing)}")
    return lines
