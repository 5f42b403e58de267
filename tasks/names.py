"""The registered names of the service's Celery tasks, for senders (the CLI, the stream consumer, beat) that must
not load the task layer to send one."""

SUBMIT = "dsimport.submit"
SUBMIT_BATCH = "dsimport.submit_batch"
POLL_DUE = "dsimport.poll_due"
FINALIZE = "dsimport.finalize"
FINALIZE_BATCH = "dsimport.finalize_batch"
RECOVER = "dsimport.recover"
REQUEST_IMPORT = "dsimport.request_import"
FIRE_SCHEDULE = "dsimport.fire_schedule"
PRUNE = "dsimport.prune"
DELIVER_WEBHOOKS = "dsimport.deliver_webhooks"
TAKE_SNAPSHOTS = "dsimport.take_snapshots"
