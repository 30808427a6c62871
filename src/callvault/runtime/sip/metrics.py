"""Prometheus metrics of the SIPREC signalling server (exposed by the API's ``/metrics``).

Label values are bounded so that no peer can grow the metric set: methods
outside RFC 3261 and its extensions count as ``other``, statuses are the
three-digit codes the server itself sends.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "UPDATE",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
    }
)

SIP_REQUESTS = Counter("callvault_sip_requests_total", "SIP requests received and parsed", ["method"])
SIP_RESPONSES = Counter("callvault_sip_responses_total", "SIP responses sent by the recorder", ["status"])
SIP_CALLS_ACTIVE = Gauge("callvault_sip_calls_active", "Recording sessions in progress")
SIP_CALLS_LOST = Counter(
    "callvault_sip_calls_lost_total",
    "Recording sessions lost to an error while answering their INVITE (answered 500, or 503 when it may pass)",
    ["status"],
)
SIP_MALFORMED = Counter(
    "callvault_sip_malformed_total", "SIP messages that could not be parsed or were semantically broken"
)


def count_request(method: str) -> None:
    SIP_REQUESTS.labels(method=method if method in _METHODS else "other").inc()


def count_response(status: int) -> None:
    SIP_RESPONSES.labels(status=str(status)).inc()


def count_lost_call(status: int) -> None:
    SIP_CALLS_LOST.labels(status=str(status)).inc()


def count_malformed() -> None:
    SIP_MALFORMED.inc()


SIP_REFUSED_SOURCE = Counter(
    "callvault_sip_refused_source_total",
    "SIP requests refused (403) because their source address is not in CALLVAULT_SIP_ALLOWED_SOURCES",
)


def count_refused_source() -> None:
    SIP_REFUSED_SOURCE.inc()
