"""The jobs page: a small read-only web app over the ledger (jobs, history, schedules, dead letters, /metrics).

It reads the ledger (and the metrics the workers publish) and writes nothing. ``dsimport dashboard`` serves it.
"""

from .app import PUBLIC_PATHS, build_app
from .auth import BasicAuthMiddleware, check_basic_auth
from .config import DashboardConfig
from .metrics import LedgerNumbers, render

__all__ = [
    "PUBLIC_PATHS",
    "BasicAuthMiddleware",
    "DashboardConfig",
    "LedgerNumbers",
    "build_app",
    "check_basic_auth",
    "render",
]
