"""Schedules: fire times (cron and periods), the schedule kinds and what one fire does, chunk retries, backfills
of a window schedule's past range, and the schedule file a beat syncs from. A new schedule kind goes in
:mod:`triggers.schedules.kinds` and :mod:`triggers.schedules.specs`."""
