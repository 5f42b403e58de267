"""The running service: settings, the Celery app, the command line."""

from worker.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
