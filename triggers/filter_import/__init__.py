"""Importing what a search finds now: ``dsimport import explorer|spans --filter …`` (and ``--dry-run``, which shows
what that would import without importing).

The search is a window schedule's (an explorer filter, a spans search expression) run once, between optional
``since`` and ``until``; the items it finds are taken once each, sampled as a window schedule samples
(:mod:`triggers.schedules.sampling`), and requested in chunks, one job per chunk, through
:func:`jobs.request_import.request_imports`. See :mod:`triggers.filter_import.plan` for the no-double guarantee.
"""

from __future__ import annotations

from .plan import (
    FIRST_IDS,
    DuplicateCheck,
    FilterImportError,
    FilterImportPlan,
    FilterImportPreview,
    FilterImportRequested,
    plan_filter_import,
    request_filter_import,
)
from .query import FilterQuery, search_items

__all__ = [
    "FIRST_IDS",
    "DuplicateCheck",
    "FilterImportError",
    "FilterImportPlan",
    "FilterImportPreview",
    "FilterImportRequested",
    "FilterQuery",
    "plan_filter_import",
    "request_filter_import",
    "search_items",
]
