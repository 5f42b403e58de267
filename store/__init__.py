"""The job ledger: import jobs, their history, and the rules for moving them along.

SQLAlchemy 2.0 models and Alembic migrations; no Celery and no HTTP. Every write function takes the caller's
Session and an explicit ``now`` and leaves committing to the caller.
"""

from store.db import (
    alembic_config,
    check_migrated,
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    mask_url,
    upgrade,
)
from store.errors import (
    DatabaseNotMigratedError,
    DatabaseUnavailableError,
    InvalidTransition,
    JobAlreadyFinishedError,
    JobNotFoundError,
    StoreError,
)
from store.jobs import (
    cancel_job,
    count_jobs_by_status,
    create_job,
    get_job,
    get_job_by_key,
    get_job_by_remote_task_id,
    job_events,
    list_jobs,
    overdue_jobs,
    remote_task_ids_for_dataset,
    require_job,
    stale_jobs,
    stuck_jobs,
)
from store.leases import acquire_lease, begin_submit, claim_due_jobs, release_lease
from store.models import (
    ACTIVE_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    Base,
    ImportJob,
    ImportKind,
    JobEvent,
    JobStatus,
)
from store.scheduling import PollPolicy, next_poll
from store.state_machine import (
    ALLOWED_TRANSITIONS,
    apply_transition,
    check_transition,
    record_progress,
    remote_to_job_status,
)
from store.tracking import (
    ImportCounts,
    PollRecord,
    record_poll,
    record_submit_accepted,
    record_submit_failed,
)

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "ALLOWED_TRANSITIONS",
    "TERMINAL_JOB_STATUSES",
    "Base",
    "DatabaseNotMigratedError",
    "DatabaseUnavailableError",
    "ImportCounts",
    "ImportJob",
    "ImportKind",
    "InvalidTransition",
    "JobAlreadyFinishedError",
    "JobEvent",
    "JobNotFoundError",
    "JobStatus",
    "PollPolicy",
    "PollRecord",
    "StoreError",
    "acquire_lease",
    "alembic_config",
    "apply_transition",
    "begin_submit",
    "cancel_job",
    "check_migrated",
    "check_transition",
    "claim_due_jobs",
    "count_jobs_by_status",
    "create_job",
    "current_revision",
    "get_job",
    "get_job_by_key",
    "get_job_by_remote_task_id",
    "head_revision",
    "job_events",
    "list_jobs",
    "make_engine",
    "make_session_factory",
    "mask_url",
    "next_poll",
    "overdue_jobs",
    "record_poll",
    "record_progress",
    "record_submit_accepted",
    "record_submit_failed",
    "release_lease",
    "remote_task_ids_for_dataset",
    "remote_to_job_status",
    "require_job",
    "stale_jobs",
    "stuck_jobs",
    "upgrade",
]
