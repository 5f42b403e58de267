"""The jobs page: a small read-only web app over the ledger (jobs, history, schedules, dead letters, /metrics).

The page reads the ledger (and the metrics the workers publish) and writes nothing; the HTTP API it mounts under
``/api/v1`` (:mod:`dashboard.api`, bearer tokens) requests imports, cancels jobs and changes schedules.
``dsimport dashboard`` serves both.
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
