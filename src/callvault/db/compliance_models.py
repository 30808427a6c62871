"""Catalog tables of the compliance lifecycle: retention policies, legal holds, erasure requests.

Kept apart from :mod:`callvault.db.models` (same declarative base) because they
describe rules *about* recordings rather than recordings. Created by migration
``retention_0003``; the tombstone columns live on ``recordings`` itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class RetentionPolicy(Base):
    """Keep recordings matching ``match`` for ``keep_days``; the longest matching policy wins."""

    __tablename__ = "retention_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    keep_days: Mapped[int] = mapped_column(Integer)
    match: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    legal_obligation: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class LegalHold(Base):
    """A case that freezes every recording matching its criteria, now and sealed later.

    ``criteria`` is what the user gave (numbers in E.164); ``resolved`` the same with
    agent and team names turned into ids, which is what matching uses. Release takes
    two people: ``release_requested_by`` and a different ``released_by``.
    """

    __tablename__ = "legal_holds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(Text)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)
    resolved: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))
    release_requested_by: Mapped[str | None] = mapped_column(String(120))
    release_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(120))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ErasureRequest(Base):
    """A data subject's erasure request (GDPR Art. 17) and, once executed, its signed certificate.

    ``subject_value`` is the subject's own identifier, needed until execution and
    cleared then: afterwards only ``subject_hash`` (keyed) identifies the person.
    """

    __tablename__ = "erasure_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_value: Mapped[str | None] = mapped_column(String(255))
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    preview: Mapped[list[str]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    certificate: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    executed_by: Mapped[str | None] = mapped_column(String(120))


__all__ = ["ErasureRequest", "LegalHold", "RetentionPolicy"]
