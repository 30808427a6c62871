"""Choose the job queue implementation from settings (``CALLVAULT_JOB_QUEUE``)."""

from __future__ import annotations

from callvault.db.catalog import Catalog
from callvault.errors import ConfigError
from callvault.jobs.embedded import EmbeddedJobQueue
from callvault.jobs.port import JobQueue
from callvault.jobs.runner import RetryPolicy
from callvault.jobs.store import Clock, JobStore, utc_now
from callvault.settings import Settings


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(settings.job_backoff_seconds, float(settings.job_backoff_max_seconds))


def open_job_queue(settings: Settings, catalog: Catalog, clock: Clock = utc_now) -> JobQueue:
    store = JobStore(catalog, clock)
    if settings.job_queue == "embedded":
        return EmbeddedJobQueue(store)
    if not settings.celery_broker_url:
        raise ConfigError(
            "CALLVAULT_JOB_QUEUE=celery needs CALLVAULT_CELERY_BROKER_URL (redis:// or amqp://)"
        )
    from callvault.jobs.celery_queue import CeleryJobQueue  # Celery is loaded only where it is used

    return CeleryJobQueue(store, settings)
