"""Measure the emulator's fetch_task throughput.

Starts ``python -m emulator`` (uvicorn, uvloop/httptools when installed) in a subprocess, creates a
dataset and N long-running import tasks, then polls fetch_task round-robin over them at a fixed
concurrency for a fixed time and prints requests/second and latency percentiles.

Three load generators run one after the other:
- ``httpx``: one ``httpx.AsyncClient`` whose pool holds all the connections. httpcore's pool
  scans every connection and queued request on each request, so with a large pool the client,
  not the server, sets the figure.
- ``httpx-sharded``: the same concurrency spread over several AsyncClients of 4 connections each.
- ``raw``: minimal keep-alive HTTP/1.1 connections on asyncio streams; the server's own capacity.

    .venv/bin/python bench/emulator_rps.py --tasks 1000 --concurrency 64 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
EVENT_ID = "bench-event-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), EMULATOR_API_KEY=API_KEY)
    command = [sys.executable, "-m", "emulator", "--port", str(port), "--task-duration", "3600"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def wait_healthy(client: httpx.AsyncClient, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (await client.get("/_emulator/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("emulator did not become healthy")
        await asyncio.sleep(0.05)


async def prepare(client: httpx.AsyncClient, tasks: int) -> tuple[str, list[str]]:
    seeded = await client.post("/_emulator/seed", json={"events": [{"event_id": EVENT_ID}]})
    seeded.raise_for_status()
    created = await client.post("/v1/observability/datasets", json={"name": "bench", "description": ""})
    created.raise_for_status()
    dataset_id = created.json()["id"]
    path = f"/v1/observability/datasets/{dataset_id}/imports/from-explorer"
    semaphore = asyncio.Semaphore(32)

    async def one() -> str:
        async with semaphore:
            response = await client.post(path, json={"completion_event_ids": [EVENT_ID]})
            response.raise_for_status()
            task_id: str = response.json()["id"]
            return task_id

    return dataset_id, list(await asyncio.gather(*(one() for _ in range(tasks))))


async def hammer_httpx(
    clients: list[httpx.AsyncClient], dataset_id: str, task_ids: list[str], concurrency: int, duration_s: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def worker(offset: int) -> None:
        nonlocal errors
        client = clients[offset % len(clients)]
        index = offset
        while time.perf_counter() < deadline:
            task_id = task_ids[index % len(task_ids)]
            index += concurrency
            started = time.perf_counter()
            response = await client.get(f"/v1/observability/datasets/{dataset_id}/tasks/{task_id}")
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors


async def hammer_raw(
    port: int, dataset_id: str, task_ids: list[str], concurrency: int, duration_s: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    prefix = f"GET /v1/observability/datasets/{dataset_id}/tasks/"
    suffix = f" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n\r\n"

    async def worker(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        try:
            while time.perf_counter() < deadline:
                task_id = task_ids[index % len(task_ids)]
                index += concurrency
                started = time.perf_counter()
                writer.write((prefix + task_id + suffix).encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors


def report(name: str, latencies: list[float], errors: int, elapsed: float, counted: int) -> None:
    latencies.sort()
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(
        f"{name:13} {len(latencies) / elapsed:9,.0f} rps  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
        f"mean {statistics.fmean(latencies) * 1000:6.2f} ms  requests {len(latencies)} "
        f"(server counted {counted})  errors {errors}"
    )


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def make_client(port: int, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {API_KEY}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=30.0,
    )


async def measure(
    name: str,
    admin: httpx.AsyncClient,
    port: int,
    dataset_id: str,
    task_ids: list[str],
    args: argparse.Namespace,
) -> tuple[list[float], int, float]:
    concurrency = args.concurrency
    if name == "raw":
        await hammer_raw(port, dataset_id, task_ids, concurrency, args.warmup)
        await admin.post("/_emulator/stats/reset")
        started = time.perf_counter()
        latencies, errors = await hammer_raw(port, dataset_id, task_ids, concurrency, args.duration)
        return latencies, errors, time.perf_counter() - started
    per_client = concurrency if name == "httpx" else 4
    clients = [make_client(port, per_client) for _ in range(max(1, concurrency // per_client))]
    try:
        await hammer_httpx(clients, dataset_id, task_ids, concurrency, args.warmup)
        await admin.post("/_emulator/stats/reset")
        started = time.perf_counter()
        latencies, errors = await hammer_httpx(clients, dataset_id, task_ids, concurrency, args.duration)
        return latencies, errors, time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    process = start_emulator(port)
    try:
        async with make_client(port, 32) as admin:
            await wait_healthy(admin)
            dataset_id, task_ids = await prepare(admin, args.tasks)
            print(f"{len(task_ids)} tasks in flight, concurrency {args.concurrency}, {args.duration:g} s per client")
            for name in args.clients:
                latencies, errors, elapsed = await measure(name, admin, port, dataset_id, task_ids, args)
                stats = (await admin.get("/_emulator/stats", params={"tasks": "false"})).json()
                report(name, latencies, errors, elapsed, stats["requests"].get("fetch_task", 0))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=["httpx", "httpx-sharded", "raw"],
        default=["httpx", "httpx-sharded", "raw"],
        help="load generators to run",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
