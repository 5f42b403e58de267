"""The running service: settings (:mod:`worker.settings`), the Celery app (:mod:`worker.celery_app`).

The package itself loads nothing, so that a light module of it (:mod:`worker.settings_error`) stays light.
"""
