"""Background work: one ``JobQueue`` port, an embedded implementation and a Celery one."""
