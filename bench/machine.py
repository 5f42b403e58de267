"""The machine a benchmark ran on, recorded beside its results."""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import redis

PACKAGES = ("celery", "kombu", "redis", "httpx", "httpcore", "sqlalchemy", "uvicorn", "mistralai", "pydantic")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def cores() -> int:
    return os.cpu_count() or 1


def is_busy(load: list[float], core_count: int) -> bool:
    """True when the 1-minute load is above the core count: the machine had more runnable work than cores, so
    whatever was measured then also measured somebody else's work."""
    return bool(load) and load[0] > core_count


def settle(*, max_wait_s: float, interval_s: float = 5.0, report: Any = print) -> float:
    """Wait, at most ``max_wait_s``, for the 1-minute load to come down to the core count; returns the seconds waited.

    A benchmark's own previous step (thousands of runnable threads in the baselines) keeps the 1-minute load up
    for a minute or two after it ends; without a pause the next step would start on a machine its predecessor made
    busy, and go unjudged.
    """
    started = time.monotonic()
    core_count = cores()
    announced = False
    while is_busy(load_average(), core_count) and time.monotonic() - started < max_wait_s:
        if not announced:
            report(f"   waiting up to {max_wait_s:g} s for the load ({load_average()[0]:g}) to fall to {core_count}")
            announced = True
        time.sleep(interval_s)
    return round(time.monotonic() - started, 1)


def test_runs() -> list[int]:
    """Process ids of test runs (pytest) on the machine: the issue asks that benchmarks never run beside them."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue
        if any(word.endswith(b"pytest") or word == b"pytest" for word in words[:3]):
            found.append(int(entry.name))
    return sorted(found)


def busy_warning(load: list[float], core_count: int) -> str | None:
    """A loud warning when the machine is busy (None when it is not)."""
    if not is_busy(load, core_count):
        return None
    return (
        f"WARNING: the machine is busy: load average {load[0]:g} on {core_count} cores. Numbers taken now measure "
        f"other work too; targets of the steps that start like this are not judged. Run on a quiet machine."
    )


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        info: Any = client.info("server")
        return str(info.get("redis_version", "unknown"))
    except redis.RedisError:
        return "unreachable"
    finally:
        client.close()


def postgres_version(url: str) -> str:
    """The PostgreSQL server's version, for results with PostgreSQL rows."""
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from store.db import make_engine

    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # an unreachable server is recorded, not fatal: the run itself will say more
        return f"unreachable ({type(exc).__name__})"
    finally:
        engine.dispose()


def describe(redis_url: str) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["redis-server"] = redis_version(redis_url)
    versions["sqlite"] = __import__("sqlite3").sqlite_version
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
        "load_average_at_start": load_average(),
    }


def one_line(machine: dict[str, Any]) -> str:
    v = machine["versions"]
    return (
        f"{machine['date']} · {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB · "
        f"Python {machine['python']} · celery {v['celery']}, kombu {v['kombu']}, redis-py {v['redis']} "
        f"(server {v['redis-server']}), httpx {v['httpx']}, SQLAlchemy {v['sqlalchemy']} "
        f"(SQLite {v['sqlite']}{', PostgreSQL ' + v['postgresql'] if v.get('postgresql') else ''}) · "
        f"load average at start {machine['load_average_at_start']}"
    )
