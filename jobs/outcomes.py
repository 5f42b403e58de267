"""What a finished import did: the API's ``result`` counts copied onto the job, and whether it was partial.

The 3.x task model reports three counts for a completed import (``requested_record_count``,
``imported_record_count``, ``skipped_record_count``) and nothing while it runs or when it fails; it reports no
count of failed records, so the ledger keeps none. A job is *partial* when it ended COMPLETED having imported fewer
records than it requested: the API skipped some (unavailable span references, vanished campaign events, records it
held already) and says so only in these counts.
"""

from __future__ import annotations

from api_client import DatasetImportTask
from store.models import ImportJob, JobStatus

__all__ = ["is_partial", "mark_ending", "record_result"]


def is_partial(status: JobStatus, requested: int | None, imported: int | None) -> bool:
    """True for a completed import that imported fewer records than it requested; unknown counts are not partial."""
    if status != JobStatus.COMPLETED or requested is None or imported is None:
        return False
    return imported < requested


def record_result(job: ImportJob, task: DatasetImportTask) -> None:
    """Copy the task's result counts (when it sent any) onto the job."""
    if task.result is None:
        return
    job.requested_count = task.result.requested_record_count
    job.imported_count = task.result.imported_record_count
    job.skipped_count = task.result.skipped_record_count


def mark_ending(job: ImportJob, ending: JobStatus) -> None:
    """Fixes ``partial`` from the counts the job ends with; called just before the move to ``ending``, because the
    move writes the ``job.ended`` webhook event, which carries it."""
    job.partial = is_partial(ending, job.requested_count, job.imported_count)
