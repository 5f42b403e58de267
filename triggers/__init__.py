"""What starts imports: queue messages (:mod:`triggers.messages`) and schedules (:mod:`triggers.schedules`).

A trigger turns its input into :func:`jobs.request_import.request_import` calls; a new trigger is a new room here."""
