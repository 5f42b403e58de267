"""The life of one import job, without Celery: request, submit, poll, recover, and the transitions each API answer
makes (:mod:`jobs.transitions`). Celery tasks in :mod:`tasks` call these with ids; tests call them directly."""
