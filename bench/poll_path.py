"""Poller throughput without Celery: how many job polls per second one process's poll rounds sustain.

N RUNNING jobs on long remote tasks (they never end during the run), all due, spread over D datasets; the rounds of
:func:`jobs.poll_loop.run_poll_rounds` are called back to back in this process for a few seconds, every job being
made due again after each call. Prints job polls per second, API calls per job poll and CPU seconds per 1,000 job
polls, optionally with a cProfile of the calls. This is the ceiling of the in-flight benchmark: a worker process
cannot visit N jobs more often than every N / (polls per second) seconds.

    python -m bench.poll_path --jobs 5000 --datasets 100 --seconds 10 [--profile out.pstats]
"""

from __future__ import annotations

import argparse
import cProfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from jobs.poll_loop import close_poll_loop, run_poll_rounds
from store.models import ImportJob
from worker.runtime_builder import build_runtime
from worker.settings import Settings

from .harness import API_KEY, Emulator, workspace
from .inflight import Case, _insert_running, _remote_tasks


def measure(*, jobs: int, datasets: int, seconds: float, profile: str | None = None, **settings: Any) -> dict[str, Any]:
    with workspace("poll-path") as ws:
        emu = Emulator(task_duration="3600", log_dir=ws.logs)
        try:
            pairs = _remote_tasks(emu, Case(n=jobs, datasets=datasets))
            emu.unfreeze()
            _insert_running(ws.database_url, pairs)
            config = Settings(
                home=ws.path / "home",
                database_url=ws.database_url,
                api_base_url=emu.url,
                api_key=API_KEY,
                **settings,
            )
            runtime = build_runtime(config)

            def all_due() -> None:
                with runtime.session_factory() as session:
                    past = datetime.now(UTC) - timedelta(seconds=1)
                    session.execute(update(ImportJob).values(next_poll_at=past), {})
                    session.commit()

            all_due()
            emu.reset_stats()
            profiler = cProfile.Profile() if profile else None
            polls = calls = 0
            cpu0, started = time.process_time(), time.perf_counter()
            while time.perf_counter() - started < seconds:
                if profiler is not None:
                    profiler.enable()
                report = run_poll_rounds(runtime, owner="bench", now=lambda: datetime.now(UTC))
                if profiler is not None:
                    profiler.disable()
                polls += report.claimed
                calls += report.api_calls
                if report.claimed < runtime.tuning.poll_batch_size:
                    all_due()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
            close_poll_loop()
            if profiler is not None and profile:
                profiler.dump_stats(profile)
            served = emu.stats(tasks=False)["requests"]
            return {
                "jobs": jobs,
                "datasets": datasets,
                "job_polls": polls,
                "job_polls_per_s": round(polls / elapsed),
                "api_calls_per_job_poll": round(calls / max(1, polls), 3),
                "cpu_s_per_1000_polls": round(cpu / max(1, polls) * 1000, 3),
                "cpu_share": round(cpu / elapsed, 2),
                "served": served,
                "settings": settings,
            }
        finally:
            emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", default=None, help="write a cProfile of the poll calls here")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="settings, e.g. poll_concurrency=64")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    result = measure(jobs=args.jobs, datasets=args.datasets, seconds=args.seconds, profile=args.profile, **settings)
    for key, value in result.items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
