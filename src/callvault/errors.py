"""The one exception tree of callvault.

Every error a user can meet is a :class:`CallvaultError`. Each subclass carries
the HTTP status and a stable machine-readable ``code`` so the API and CLI can
translate it without knowing where it came from. Third-party exceptions
(boto3, SQLAlchemy, PyAV, cryptography) are translated into these at the
boundary of the module that calls the library.

Sans-IO wire-format parsers (``sip/``, ``rtp/``, ``media/``) raise plain
``ValueError`` with a precise message, as aiortc does; the layer above wraps
them into :class:`InvalidInput` where they come from a user.
"""

from __future__ import annotations


class CallvaultError(Exception):
    """Base of every error callvault raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.message}


class ConfigError(CallvaultError):
    """A setting has a value callvault cannot use."""

    code = "config_error"
    exit_code = 2


class InvalidInput(CallvaultError):
    """The request or file is malformed or violates a documented limit."""

    status_code = 400
    code = "invalid_input"
    exit_code = 2


class UnsupportedMedia(InvalidInput):
    """Audio or body in a format callvault does not accept."""

    status_code = 415
    code = "unsupported_media"


class PayloadTooLarge(InvalidInput):
    status_code = 413
    code = "payload_too_large"


class AuthenticationFailed(CallvaultError):
    status_code = 401
    code = "authentication_failed"
    exit_code = 3


class PermissionDenied(CallvaultError):
    """Authenticated, but the role may not do this (never used to hide existence)."""

    status_code = 403
    code = "permission_denied"
    exit_code = 3


class NotFound(CallvaultError):
    """Does not exist, or exists outside the caller's scope (indistinguishable on purpose)."""

    status_code = 404
    code = "not_found"
    exit_code = 4


class Conflict(CallvaultError):
    status_code = 409
    code = "conflict"


class RangeNotSatisfiable(InvalidInput):
    status_code = 416
    code = "range_not_satisfiable"


class StorageError(CallvaultError):
    """The blob store failed (disk full, S3 unreachable, object missing)."""

    status_code = 503
    code = "storage_error"


class IntegrityError(CallvaultError):
    """Stored data does not match its hash, tag or signature."""

    status_code = 500
    code = "integrity_error"
    exit_code = 5


class KeyUnavailable(CallvaultError):
    """A data key is destroyed (crypto-shredded) or its key-encryption key is missing."""

    status_code = 410
    code = "key_unavailable"


class Overloaded(CallvaultError):
    status_code = 503
    code = "overloaded"


class PasswordChangeRequired(PermissionDenied):
    """The account still has its one-time password: only changing it is allowed."""

    code = "password_change_required"


class TooManyAttempts(CallvaultError):
    """Login throttled: too many failures for this username or client address."""

    status_code = 429
    code = "too_many_attempts"
    exit_code = 3

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CatalogUnavailable(CallvaultError):
    """The catalog database is locked, full or unreachable; the request may be retried."""

    status_code = 503
    code = "catalog_unavailable"


class StorageFull(StorageError):
    """No space left on a device callvault writes to (ENOSPC, EDQUOT, SQLite 'disk is full').

    Retrying later can succeed once space is freed, hence 503 like every storage error;
    its own code lets the API, the logs and monitoring tell a full disk from a broken one.
    """

    code = "storage_full"


class UnprocessableMedia(InvalidInput):
    """An audio file the decoder could not get through safely (crashed, ran out of time)."""

    status_code = 422
    code = "unprocessable_media"
