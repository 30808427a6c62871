"""Prometheus metrics of the HTTP interface (capture metrics live beside the recorder)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "callvault_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("callvault_http_request_seconds", "HTTP request latency", ["route"])
RECORDINGS_IMPORTED = Counter("callvault_recordings_imported_total", "Recordings imported by upload or CLI")
AUDIO_BYTES_SERVED = Counter("callvault_audio_bytes_served_total", "Decrypted audio bytes served")
