"""The Celery tasks: thin wrappers that take ids and plain values and call the Celery-free core (:mod:`jobs`,
:mod:`triggers`). Their names are in :mod:`tasks.names`, which loads no Celery, so that senders need not import
the task layer."""
