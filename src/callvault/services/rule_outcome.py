"""What a recording rule decided, as a recording's catalogue columns, and the facts it decided on.

The recorder describes a call the way the rules read it (:class:`CallFacts`)
from its SIPREC session: the agents the channel plan resolved, the queue and
labels the SRC sent (``X-Queue`` / ``X-Recording-Labels`` headers, or
``<queue>`` / ``<label>`` elements of a metadata extension), the direction and
the customer's E.164 number. Sampling hashes the communication session's
SIP Call-ID when the metadata names it (what stays the same when an SRC
retries), else the recording dialog's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from callvault.services.call_record import CallRecord
from callvault.services.phone import normalise_number
from callvault.services.recording_rules import Decision

MAX_LABELS = 32
_QUEUE_XML = re.compile(r"<(?:[\w.-]+:)?queue[^>]*>\s*([^<]{1,120}?)\s*<", re.IGNORECASE)
_LABEL_XML = re.compile(r"<(?:[\w.-]+:)?(?:recording-?)?label[^>]*>\s*([^<]{1,64}?)\s*<", re.IGNORECASE)
_LABEL = re.compile(r"^[\w.:/+-]{1,64}$")


def rule_columns(decision: Decision, incoming_labels: Iterable[str] = ()) -> dict[str, Any]:
    """The recording's columns for ``decision``: a call recorded whole with no rule gets none."""
    labels = sorted({*incoming_labels, *decision.labels})
    columns: dict[str, Any] = {}
    if decision.rule_name is not None or decision.must_record:
        columns["rule_name"] = decision.rule_name
        columns["rule_action"] = decision.action
    if labels:
        columns["labels"] = labels
    if decision.status is not None:
        columns["status"] = decision.status
    return columns


def parse_labels(raw: str | None) -> list[str]:
    """``X-Recording-Labels: mifid2, hr`` → valid labels (others dropped: this is SRC input)."""
    if not raw:
        return []
    labels = [part.strip() for part in raw.split(",")]
    return sorted({label for label in labels if _LABEL.match(label)})[:MAX_LABELS]


def from_extensions(blobs: Iterable[str]) -> tuple[str | None, list[str]]:
    """The queue and labels a metadata extension carries, if any."""
    queue: str | None = None
    labels: set[str] = set()
    for blob in blobs:
        if queue is None and (match := _QUEUE_XML.search(blob)):
            queue = match.group(1)
        labels.update(m for m in _LABEL_XML.findall(blob) if _LABEL.match(m))
    return queue, sorted(labels)[:MAX_LABELS]


def customer_of(call: CallRecord, region: str) -> str | None:
    """The customer's E.164 number: the participant the channel plan called customer, else the
    caller of an inbound call (the callee of an outbound one)."""
    for participant in call.participants:
        if participant.role == "customer" and participant.aor:
            number = normalise_number(participant.aor, region)
            if number:
                return number
    raw = call.calling_number if call.direction != "outbound" else call.called_number
    return normalise_number(raw, region)


def session_key(call: CallRecord) -> str:
    """What sampling hashes: the communication session's Call-ID (metadata), else the dialog's."""
    ids = call.sip_call_ids
    return ids[1] if len(ids) > 1 else (ids[0] if ids else "")
