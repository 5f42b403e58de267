"""A cached virtualenv holding another version of the official SDK (``.cache/sdk-VERSION/``, ignored by git).

The project's environment pins mistralai==2.5.0; today's SDK (3.7.0) cannot live beside it, so the contract suite runs
it in its own environment, created on first use from the package index (``python -m venv`` + ``pip install``).
``make sdk37`` (and so CI) creates it ahead of the tests; ``python -m tests.contract.sdk_venv [VERSION]`` does the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SDK_VERSION", "SdkUnavailable", "ensure_sdk_venv", "index_unreachable", "may_skip"]

SDK_VERSION = "3.7.0"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
# What pip prints when it cannot reach an index (as opposed to a broken install, which must fail loudly).
_NETWORK_SIGNS = (
    "Could not fetch URL",
    "Failed to establish a new connection",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "Read timed out",
    "ConnectTimeoutError",
    "ProxyError",
    "No matching distribution found",
    "Could not find a version that satisfies the requirement",
)


class SdkUnavailable(RuntimeError):
    """The SDK's environment could not be built; ``str()`` is a one-line reason."""


def index_unreachable(reason: str) -> bool:
    """True when pip's failure reads like an unreachable package index rather than a broken install."""
    return any(sign in reason for sign in _NETWORK_SIGNS)


def may_skip(reason: str, *, ci: bool) -> bool:
    """Whether a test needing the SDK may skip rather than fail: only off CI, and only for an unreachable index."""
    return not ci and index_unreachable(reason)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two test runs starting at once build the environment once.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_sdk_venv(version: str = SDK_VERSION, *, timeout_s: float = 900, cache: Path | None = None) -> Path:
    """The interpreter of a virtualenv with ``mistralai==version`` (under ``cache``); built once, then reused."""
    cache = cache or CACHE
    venv = cache / f"sdk-{version}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    with _locked(cache / f"sdk-{version}.lock"):
        if marker.exists() and python.exists():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        try:
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"mistralai=={version}"],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            raise SdkUnavailable(f"pip install mistralai=={version} timed out after {timeout_s:.0f} s") from exc
        if installed.returncode != 0:
            lines = [line.strip() for line in (installed.stderr or installed.stdout).splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
            raise SdkUnavailable(f"pip install mistralai=={version} failed: {errors[-1]}")
        check = subprocess.run(
            [str(python), "-c", "import mistralai.client._version as v; print(v.__version__)"],
            capture_output=True,
            text=True,
        )
        if check.stdout.strip() != version:
            raise SdkUnavailable(f"the environment holds mistralai {check.stdout.strip() or '?'}, not {version}")
        marker.write_text(version + "\n")
        return python


def main(argv: list[str]) -> int:
    version = argv[0] if argv else SDK_VERSION
    try:
        python = ensure_sdk_venv(version)
    except SdkUnavailable as exc:
        print(f"sdk_venv: {exc}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
