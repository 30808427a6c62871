"""Prometheus metrics of the HTTP interface (capture metrics live beside the recorder)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram

from callvault.jobs.port import JobQueue

HTTP_REQUESTS = Counter(
    "callvault_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("callvault_http_request_seconds", "HTTP request latency", ["route"])
RECORDINGS_IMPORTED = Counter("callvault_recordings_imported_total", "Recordings imported by upload or CLI")
AUDIO_BYTES_SERVED = Counter("callvault_audio_bytes_served_total", "Decrypted audio bytes served")

# Background jobs, read from the catalog's jobs table at each scrape (one place for every worker).
JOBS = Gauge(
    "callvault_jobs", "Background jobs per state (failed: waiting for a retry; dead: gave up)", ["state"]
)
JOBS_OLDEST_QUEUED_AGE = Gauge(
    "callvault_jobs_oldest_queued_age_seconds", "Age of the oldest job waiting to run now (0: none waiting)"
)


def refresh_job_metrics(jobs: JobQueue) -> None:
    """Update the job gauges; a catalog that cannot answer leaves the last values (logged)."""
    try:
        counts = jobs.counts()
        oldest = jobs.oldest_queued_age_s()
    except Exception:
        logging.getLogger(__name__).warning("metrics: job counts unavailable", exc_info=True)
        return
    for state, count in counts.items():
        JOBS.labels(state).set(count)
    JOBS_OLDEST_QUEUED_AGE.set(oldest or 0.0)
