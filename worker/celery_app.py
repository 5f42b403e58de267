"""The Celery app: created here, configured from settings, tasks discovered. Nothing else.

Run with ``dsimport worker`` (or ``celery -A worker.celery_app worker``). Importing this module builds nothing:
:func:`create_app` takes the settings it is given, and the module's ``app`` (what ``celery -A`` looks up) is built
from the environment on first access, so a command that only needs :func:`create_app` or :func:`configure` never
reads settings it was not asked to. Nor does it load the task layer: :func:`create_app` imports the worker's parts,
which :func:`sender_app`, the command line's app that only sends, has no use for.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from kombu.entity import Queue

from worker.settings import Settings, load_settings

POLL_QUEUE = "dsimport.poll"


def configure(app: Celery, settings: Settings) -> None:
    """Apply the reliability settings; each non-obvious one says why."""
    app.conf.update(
        broker_url=settings.broker_url,
        # Results are not stored: the ledger is the record of every job, and Flower reads a finished task's
        # result from the task-succeeded event. https://docs.celeryq.dev/en/stable/userguide/tasks.html#result-backends
        result_backend=None,
        task_ignore_result=False,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        task_default_queue="dsimport",
        # The poller's tick has a queue of its own: behind thousands of submit and finalize messages on one queue,
        # ticks expired unread and polling stalled (measured p99 detection lag 48 s at 10,000 imports in flight;
        # 7.7 s with this queue). The recovery sweep's tick shares it for the same reason: it expires after one
        # interval too, and behind a backlog longer than that (schedules firing faster than the workers keep up,
        # found by the fault campaign) every tick expired and interrupted submits waited for the whole backlog.
        # Workers consume both queues by default, taking from each in turn.
        # https://docs.celeryq.dev/en/stable/userguide/routing.html
        task_queues=(Queue("dsimport"), Queue(POLL_QUEUE)),
        task_routes={"dsimport.poll_due": {"queue": POLL_QUEUE}, "dsimport.recover": {"queue": POLL_QUEUE}},
        # Submit, finalize and the poller are safe to run twice (the ledger guards each transition), so a message
        # is acknowledged only once its task has run: a worker killed mid-task hands the message back.
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message reserved per process: a long poll round must not sit on submits other processes could run.
        # https://docs.celeryq.dev/en/stable/userguide/optimizing.html#prefetch-limits
        worker_prefetch_multiplier=1,
        # Redis re-delivers an unacknowledged message after the visibility timeout. No task of ours runs or waits
        # (submit retry countdowns included) anywhere near an hour, so nothing is re-delivered while still alive.
        # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
        broker_transport_options={"visibility_timeout": 3600},
        # With acks_late on Redis, a task running when the connection drops is re-delivered; cancel it instead of
        # letting it run twice. https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-cancel-long-running-tasks-on-connection-loss
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Celery's consumer, but one that reconnects even when closing the lost connection fails (see
        # worker.broker_guard). https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-consumer
        worker_consumer="worker.broker_guard:GuardedConsumer",
        broker_connection_retry_on_startup=True,
        # Hard and soft limits so a hung HTTP call or database lock never holds a worker slot forever.
        task_soft_time_limit=max(120.0, settings.api_timeout_s * 4),
        task_time_limit=max(180.0, settings.api_timeout_s * 6),
        # Events feed Flower's live view.
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str(settings.home / "celerybeat-schedule"),
        # Beat fires the entries above plus the schedules table, re-read every schedules_refresh_s, so schedules
        # change without a restart. https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#using-custom-scheduler-classes
        beat_scheduler="worker.beat_scheduler:LedgerScheduler",
    )


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """The service's own periodic tasks. A tick that waited longer than its period is dropped, not queued up."""
    entries: dict[str, Any] = {
        "poll-due-jobs": {
            "task": "dsimport.poll_due",
            "schedule": settings.poll_tick_s,
            "options": {"expires": max(settings.poll_tick_s * 2, 2.0)},
        },
        "recover-jobs": {
            "task": "dsimport.recover",
            "schedule": settings.recovery_interval_s,
            "options": {"expires": settings.recovery_interval_s},
        },
        # Backfills whose task died (or whose message was lost) are sent again; one query when none is running.
        "resume-backfills": {
            "task": "dsimport.resume_backfills",
            "schedule": settings.recovery_interval_s,
            "options": {"expires": settings.recovery_interval_s},
        },
    }
    if settings.webhook_tick_s > 0:
        # The webhook outbox's deliverer; a run that finds nothing due costs one query.
        entries["deliver-webhooks"] = {
            "task": "dsimport.deliver_webhooks",
            "schedule": settings.webhook_tick_s,
            "kwargs": {
                "timeout_s": settings.webhook_timeout_s,
                "max_attempts": settings.webhook_max_attempts,
                "max_age_s": settings.webhook_max_age_s,
                "backoff_s": settings.webhook_backoff_s,
                "jobs_page_url": settings.jobs_page_url,
            },
            "options": {"expires": max(settings.webhook_tick_s * 2, 2.0)},
        }
    if settings.snapshot_tick_s > 0:
        # Schedule snapshots owed by completed imports; a run that finds nothing due costs one query.
        entries["take-snapshots"] = {
            "task": "dsimport.take_snapshots",
            "schedule": settings.snapshot_tick_s,
            "kwargs": {"backoff_s": settings.snapshot_backoff_s, "max_attempts": settings.snapshot_max_attempts},
            "options": {"expires": max(settings.snapshot_tick_s * 2, 2.0)},
        }
    if settings.prune_older_than_s > 0:
        # Retention is off unless asked for (see store.retention for what goes and why a day is the minimum).
        entries["prune-old-rows"] = {
            "task": "dsimport.prune",
            "schedule": settings.prune_interval_s,
            "args": [settings.prune_older_than_s],
            "options": {"expires": settings.prune_interval_s},
        }
    return entries


def sender_app(settings: Settings) -> Celery:
    """An app that only sends the service's tasks (by name, :mod:`tasks.names`), configured as the workers' is.

    The command line sends with it: it loads neither the task layer nor the worker's runtime, which
    :func:`create_app` does and a command that records a job and sends its message has no use for.
    """
    app = Celery("dsimport")
    configure(app, settings)
    return app


def create_app(settings: Settings | None = None) -> Celery:
    # The worker's parts are imported here, not with the module, so that sender_app stays light.
    from jobs import runtime as task_runtime
    from tasks.message_tasks import MAX_BYTES_CONF_KEY
    from worker import celery_hooks
    from worker.beat_scheduler import SETTINGS_CONF_KEY as SCHEDULER_SETTINGS_KEY
    from worker.runtime_builder import build_runtime
    from worker.stream_bootstep import make_stream_step

    settings = settings or load_settings()
    app = Celery(
        "dsimport",
        include=[
            "tasks.job_tasks",
            "tasks.message_tasks",
            "tasks.schedule_tasks",
            "tasks.retention_tasks",
            "tasks.webhook_tasks",
            "tasks.snapshot_tasks",
        ],
    )
    configure(app, settings)
    # Celery builds the beat scheduler from the app alone; it finds its database and schedules file here.
    app.conf[SCHEDULER_SETTINGS_KEY] = settings
    # The queue-message intake: the request task's size limit, and the stream consumer in each worker.
    app.conf[MAX_BYTES_CONF_KEY] = settings.message_max_bytes
    app.steps["worker"].add(make_stream_step(settings))
    task_runtime.install(lambda: build_runtime(settings))
    # Structured, redacted log lines and the metrics the jobs page exports (see worker.celery_hooks).
    celery_hooks.install(settings)
    return app


@signals.worker_process_init.connect
def _fresh_runtime_after_fork(**_: Any) -> None:
    # A forked pool process must not share the parent's database connections or HTTP pools.
    from jobs import runtime as task_runtime

    task_runtime.reset()


_default_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    # PEP 562: ``worker.celery_app.app`` is built on first use, from the environment's settings.
    global _default_app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _default_app is None:
        _default_app = create_app()
    return _default_app
