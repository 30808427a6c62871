"""Evaluation forms: create, read, and edit by versions (``/api/v1/qa/forms``).

Editing a form that no evaluation uses changes it in place. Once evaluations
use it, an edit adds a new version (same family, version + 1) and marks the
old one not current; the old evaluations keep scoring against theirs. A new
version must keep every question of the one it replaces (named by ``id``): a
question removed from a form in use would silently drop out of the trend of
every scorecard, so that is refused (409); make a new form instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.qa_models import QaEvaluation, QaForm
from callvault.errors import Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso
from callvault.services.qa_form_spec import parse_form, questions
from callvault.services.qa_scope import is_row_id


class FormService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def create(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_FORM_MANAGE)
        name, definition = parse_form(body)
        with self._catalog.write() as session:
            form = QaForm(
                version=1,
                name=name,
                definition=definition,
                current=True,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(form)
            session.flush()
            form.family_id = form.id
            self._log.record_in(session, principal, "qa_form_create", detail=f"form {form.id} {name}")
            return view(form, in_use=False)

    def update(self, principal: Principal, form_id: int, body: Any) -> dict[str, Any]:
        """Edit in place, or as a new version when evaluations use it; returns what now stands."""
        require(principal, Action.QA_FORM_MANAGE)
        with self._catalog.write() as session:
            form = _form(session, form_id, lock=True)
            if not form.current:
                raise Conflict(f"form {form_id} has a newer version; edit the current one")
            name, definition = parse_form(body, previous=form.definition)
            if not _in_use(session, form.id):
                form.name, form.definition = name, definition
                self._log.record_in(session, principal, "qa_form_edit", detail=f"form {form.id} in place")
                return view(form, in_use=False)
            removed = sorted(set(questions(form.definition)) - set(questions(definition)))
            if removed:
                raise Conflict(
                    f"form {form.id} is used by evaluations; question(s) {', '.join(map(str, removed))} "
                    "cannot be removed from it (create a new form instead)"
                )
            form.current = False
            successor = QaForm(
                family_id=form.family_id,
                version=form.version + 1,
                name=name,
                definition=definition,
                current=True,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(successor)
            session.flush()
            self._log.record_in(
                session, principal, "qa_form_version", detail=f"form {form.id} -> {successor.id}"
            )
            return view(successor, in_use=False)

    def list(self, principal: Principal, include_old: bool = False) -> list[dict[str, Any]]:
        _may_read(principal)
        query = select(QaForm).order_by(QaForm.id)
        if not include_old:
            query = query.where(QaForm.current.is_(True))
        with self._catalog.read() as session:
            return [view(f, _in_use(session, f.id)) for f in session.scalars(query)]

    def get(self, principal: Principal, form_id: int) -> dict[str, Any]:
        _may_read(principal)
        with self._catalog.read() as session:
            form = _form(session, form_id)
            return view(form, _in_use(session, form.id))


def load(session: Session, form_id: Any) -> QaForm:
    """The form an evaluation or rule names (400 for a malformed id, 404 for none)."""
    if not is_row_id(form_id):
        raise InvalidInput("form_id must be a form's id (a whole number from 1)")
    return _form(session, form_id)


def view(form: QaForm, in_use: bool) -> dict[str, Any]:
    return {
        "id": form.id,
        "family_id": form.family_id,
        "version": form.version,
        "current": form.current,
        "name": form.name,
        "sections": form.definition["sections"],
        "in_use": in_use,
        "created_at": iso(form.created_at),
        "created_by": form.created_by,
    }


def _may_read(principal: Principal) -> None:
    # Whoever may see evaluations may see the forms they were made with.
    require(principal, Action.QA_VIEW)


def _form(session: Session, form_id: int, lock: bool = False) -> QaForm:
    form = session.get(QaForm, form_id, with_for_update=lock)
    if form is None:
        raise NotFound(f"form {form_id} not found")
    return form


def _in_use(session: Session, form_id: int) -> bool:
    count = session.scalar(
        select(func.count()).select_from(QaEvaluation).where(QaEvaluation.form_id == form_id)
    )
    return bool(count)
