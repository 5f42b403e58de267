"""Our Celery app with the poll tick on a queue of its own: an experiment, not the service's configuration.

With one queue, every finished import's ``finalize`` message sits ahead of the next ``poll_due`` tick; when
thousands of imports end within seconds, the ticks wait behind them, expire, and polling stalls. A worker that
consumes two queues takes from them in turn (kombu's Redis transport rotates its queues after each message), so a
tick on its own queue waits for at most one other message. Run the worker with ``-Q dsimport,dsimport.poll``.

    celery -A bench.routed_app worker -Q dsimport,dsimport.poll ...;  celery -A bench.routed_app beat
"""

from __future__ import annotations

from worker.celery_app import app

POLL_QUEUE = "dsimport.poll"

app.conf.task_routes = {"dsimport.poll_due": {"queue": POLL_QUEUE}}
app.conf.beat_schedule["poll-due-jobs"]["options"]["queue"] = POLL_QUEUE

__all__ = ["POLL_QUEUE", "app"]
