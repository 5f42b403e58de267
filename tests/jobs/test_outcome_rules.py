"""jobs.outcomes: when a job counts as partial, and that the API's result counts are copied as sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api_client import DatasetImportTask
from jobs.outcomes import is_partial, mark_ending, record_result
from store.models import ImportJob, JobStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "requested", "imported", "partial"),
    [
        (JobStatus.COMPLETED, 3, 2, True),
        (JobStatus.COMPLETED, 3, 3, False),
        (JobStatus.COMPLETED, 0, 0, False),
        (JobStatus.COMPLETED, None, None, False),  # a 2.5.0 server sends no counts: not known to be partial
        (JobStatus.FAILED, 3, 0, False),  # a failure is a failure, not a partial import
    ],
)
def test_partial_means_completed_with_fewer_imported_than_requested(
    status: JobStatus, requested: int | None, imported: int | None, partial: bool
) -> None:
    assert is_partial(status, requested, imported) is partial


def _task(result: dict[str, int] | None) -> DatasetImportTask:
    return DatasetImportTask.model_validate(
        {
            "id": "t-1", "created_at": NOW, "updated_at": NOW, "deleted_at": None, "creator_id": "u",
            "dataset_id": "d", "workspace_id": "w", "status": "COMPLETED", "progress": 100, "result": result,
        }
    )


def test_the_result_counts_are_copied_and_the_ending_fixes_partial() -> None:
    job = ImportJob(partial=False)
    record_result(job, _task({"requested_record_count": 5, "imported_record_count": 4, "skipped_record_count": 1}))
    assert (job.requested_count, job.imported_count, job.skipped_count) == (5, 4, 1)
    mark_ending(job, JobStatus.COMPLETED)
    assert job.partial is True
    untouched = ImportJob(partial=False)
    record_result(untouched, _task(None))
    assert (untouched.requested_count, untouched.imported_count, untouched.skipped_count) == (None, None, None)
    mark_ending(untouched, JobStatus.COMPLETED)
    assert untouched.partial is False
