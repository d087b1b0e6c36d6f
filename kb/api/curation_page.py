"""The German curation page for curators and district editors, after logging in: ``/kuratieren``.

Server-rendered like the search page and complete without JavaScript. The overview lists the documents due for
review and the documents the caller may edit; ``/kuratieren/neu`` uploads a file with its metadata;
``/kuratieren/{id}`` edits a document's metadata (visibility, recommendation, review date, supersession among
them), retires it, purges it after a confirmation step, and shows its audit trail.

Only a login session opens it (anonymous: to the login form; readers: a German refusal), and every POST must
carry the session's CSRF token. Every change goes through the :class:`~kb.curation.service.Curator`, which checks
roles and values; the page only translates forms and errors. An editor asking for another district's document
gets the answer of an unknown id, so the page never reveals that it exists.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from kb.api import curation_forms as forms
from kb.api.deps import get_curator, get_session
from kb.api.page import german_error, render
from kb.api.session import CSRF_FIELD, check_csrf
from kb.curation.db import AuditEntry
from kb.curation.keys import Principal, Role
from kb.curation.service import Curator
from kb.curation.sessions import Session
from kb.errors import ForbiddenError, KBError, NotFoundError
from kb.store import StoredDocument

router = APIRouter(include_in_schema=False)

BASE: Final = "/kuratieren"
#: Documents listed on the overview at most; a title filter narrows the list.
LISTED: Final = 200
READERS_REFUSED: Final = (
    "Die Kuratierung ist für die Redaktionen der Kommunen und die Koordinierungsstelle. Ihr Schlüssel erlaubt "
    "das Suchen und Lesen, nicht das Ändern. Wenden Sie sich an die Koordinierungsstelle, wenn Sie Dokumente "
    "pflegen sollen."
)
FORGED: Final = (
    "Diese Änderung kam ohne gültiges Formular dieser Seite und wurde abgelehnt. Bitte laden Sie die Seite neu "
    "und versuchen Sie es noch einmal."
)
#: The message after a change, by the ``erledigt`` parameter of the page it leads to.
DONE: Final[dict[str, str]] = {
    "hochgeladen": "Das Dokument ist hochgeladen und (wenn veröffentlicht) ab sofort in der Suche zu finden.",
    "gespeichert": "Die Änderungen sind gespeichert.",
    "unveraendert": "Sie haben nichts geändert.",
    "empfohlen": "Das Dokument ist jetzt eine LaKI-Empfehlung.",
    "nicht-empfohlen": "Die LaKI-Empfehlung ist zurückgenommen.",
    "zurueckgezogen": "Das Dokument ist zurückgezogen: Es erscheint nicht mehr in der Suche, bleibt aber da.",
    "geloescht": "Das Dokument ist endgültig gelöscht.",
}
ACTIONS: Final[dict[str, str]] = {
    "create": "Hochgeladen",
    "update": "Geändert",
    "recommend": "Empfohlen",
    "supersede": "Ersetzt",
    "retire": "Zurückgezogen",
    "purge": "Gelöscht",
}


# -- who is asking ----------------------------------------------------------------------------------------------
async def _caller(request: Request) -> Session | Response:
    """The session of an editor or curator; else the login form (anonymous) or a German refusal (readers)."""
    session = await get_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/anmelden?weiter={quote(target, safe='')}", status_code=303)
    if session.principal.role is Role.READER:
        return _refusal(request, READERS_REFUSED, 403)
    return session


async def _poster(request: Request) -> tuple[Session, FormData] | Response:
    """As :func:`_caller`, for a POST: its form, once the session's CSRF token in it is checked."""
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    form = await request.form()
    try:
        check_csrf(request, caller, str(form.get(CSRF_FIELD) or ""))
    except ForbiddenError:
        return _refusal(request, FORGED, 403)
    return caller, form


def _refusal(request: Request, message: str, status: int) -> HTMLResponse:
    return render(request, "kuratieren_fehler.html", {"text": message}, status)


async def _load(
    request: Request, curator: Curator, principal: Principal, doc_id: str
) -> StoredDocument | HTMLResponse:
    """The document the caller may edit, or the page that says it is unknown (or that there is no index)."""
    try:
        return await run_in_threadpool(editable, curator, principal, doc_id)
    except KBError as exc:
        message, status = german_error(exc, 0)
        return _refusal(request, message, status)


def may_edit(principal: Principal, document: StoredDocument) -> bool:
    """Whether ``principal`` may change this document (an editor: one of its own district)."""
    try:
        principal.require_district(document.metadata.district)
    except ForbiddenError:
        return False
    return principal.viewer.may_see(document)


def editable(curator: Curator, principal: Principal, doc_id: str) -> StoredDocument:
    """The document, if ``principal`` may edit it; otherwise it is unknown (404), whether or not it exists."""
    document = curator.document(doc_id, principal)
    if not may_edit(principal, document):
        raise NotFoundError(f"There is no document with id {doc_id!r} that this key may edit.")
    return document


# -- overview ---------------------------------------------------------------------------------------------------
@router.get(BASE, response_class=HTMLResponse)
async def overview(request: Request, titel: str = "", erledigt: str = "") -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    principal = caller.principal
    curator = await run_in_threadpool(get_curator, request)
    try:
        due, documents, more = await run_in_threadpool(_overview, curator, principal, titel[:200])
    except KBError as exc:
        message, status = german_error(exc, 0)
        return _refusal(request, message, status)
    context = {
        "due": due,
        "documents": documents,
        "more": more,
        "titel": titel[:200],
        "done": DONE.get(erledigt, ""),
        "choice_labels": forms.CHOICE_LABELS,
    }
    return render(request, "kuratieren.html", context)


def _overview(
    curator: Curator, principal: Principal, title: str
) -> tuple[list[StoredDocument], list[StoredDocument], int]:
    due = [d for d in curator.due_for_review() if may_edit(principal, d)]
    index = curator.searcher.reader(principal.viewer)
    folded = title.casefold().strip()
    mine = sorted(
        (
            d
            for d in index.documents.values()
            if may_edit(principal, d) and (not folded or folded in d.metadata.title.casefold())
        ),
        key=lambda d: (d.metadata.title.casefold(), d.id),
    )
    return due, mine[:LISTED], max(len(mine) - LISTED, 0)


# -- upload -----------------------------------------------------------------------------------------------------
@router.get(BASE + "/neu", response_class=HTMLResponse)
async def upload_form(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return _upload_page(request, forms.build(caller.principal, {}, upload=True))


def _upload_page(request: Request, form: forms.Form, status: int = 200) -> HTMLResponse:
    max_mb = request.app.state.searcher.settings.max_upload_mb
    return render(request, "kuratieren_neu.html", {"form": form, "max_mb": max_mb}, status)


@router.post(BASE + "/neu", response_class=HTMLResponse)
async def upload_submit(request: Request) -> Response:
    posted = await _poster(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    principal = session.principal
    values, changed = forms.changes(principal, form, form.getlist)
    supersedes = str(form.get(forms.SUPERSEDES) or "").strip()
    values[forms.SUPERSEDES] = supersedes
    upload = form.get(forms.FILE)

    def again(errors: dict[str, str], general: str = "", status: int = 422) -> HTMLResponse:
        return _upload_page(request, forms.build(principal, values, errors, upload=True, general=general), status)

    if not isinstance(upload, UploadFile) or not upload.filename:
        return again({forms.FILE: "Bitte eine Datei auswählen."})
    try:
        metadata = forms.checked(changed)
    except ValidationError as exc:
        return again(forms.validation_errors(exc, values))
    if supersedes:
        metadata["supersedes"] = supersedes
    data = await upload.read()
    curator = await run_in_threadpool(get_curator, request)
    try:
        result = await run_in_threadpool(curator.upload, principal, upload.filename, data, metadata)
    except KBError as exc:
        errors, general = forms.service_errors(exc, values, curator.settings.max_upload_mb, upload=True)
        return again(errors, general, exc.status_code if exc.status_code >= 400 else 422)
    return RedirectResponse(f"{BASE}/{result.document.id}?erledigt=hochgeladen", status_code=303)


def _trail_row(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as the page shows it: when, who, what (German), and each field before → after."""
    before, after = entry.before or {}, entry.after or {}
    changes = [(forms.label(k), _text(before.get(k)), _text(v)) for k, v in after.items()]
    when = entry.at[:16].replace("T", " ")
    return {
        "at": when,
        "actor": entry.actor,
        "action": ACTIONS.get(entry.action, entry.action),
        "changes": changes,
        "note": entry.note,
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return forms.CHOICE_LABELS.get(str(value), "" if value is None else str(value)).split(" – ")[0]


# -- one document -----------------------------------------------------------------------------------------------
@router.get(BASE + "/{doc_id}", response_class=HTMLResponse)
async def document_form(request: Request, doc_id: str, erledigt: str = "") -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    principal = caller.principal
    curator = await run_in_threadpool(get_curator, request)
    document = await _load(request, curator, principal, doc_id)
    if isinstance(document, Response):
        return document
    values = {f.name: forms.shown(f, getattr(document.metadata, f.name)) for f in forms.editable_fields(principal)}
    form = forms.build(principal, values)
    return await _document_page(request, curator, principal, document, form, DONE.get(erledigt, ""))


async def _document_page(
    request: Request,
    curator: Curator,
    principal: Principal,
    document: StoredDocument,
    form: forms.Form,
    done: str = "",
    status: int = 200,
) -> HTMLResponse:
    curating = principal.role is Role.CURATOR
    entries = await run_in_threadpool(curator.audit, document.id, 50) if curating else []
    context: dict[str, Any] = {
        "document": document,
        "form": form,
        "done": done,
        "curating": curating,
        "trail": [_trail_row(e) for e in entries],
        "choice_labels": forms.CHOICE_LABELS,
    }
    return render(request, "kuratieren_dokument.html", context, status)


@router.post(BASE + "/{doc_id}", response_class=HTMLResponse)
async def document_submit(request: Request, doc_id: str) -> Response:
    posted = await _poster(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    principal = session.principal
    curator = await run_in_threadpool(get_curator, request)
    document = await _load(request, curator, principal, doc_id)
    if isinstance(document, Response):
        return document
    values, changed = forms.changes(principal, form, form.getlist, document)

    async def again(errors: dict[str, str], general: str = "", status: int = 422) -> HTMLResponse:
        built = forms.build(principal, values, errors, general=general)
        return await _document_page(request, curator, principal, document, built, status=status)

    if not changed:
        return RedirectResponse(f"{BASE}/{doc_id}?erledigt=unveraendert", status_code=303)
    if changed.get("superseded_by") == doc_id:
        return await again({"superseded_by": "Ein Dokument kann sich nicht selbst ersetzen."})
    try:
        patch = forms.checked(changed)
    except ValidationError as exc:
        return await again(forms.validation_errors(exc, values))
    try:
        await run_in_threadpool(curator.update, principal, doc_id, patch)
    except KBError as exc:
        errors, general = forms.service_errors(exc, values, curator.settings.max_upload_mb, upload=False)
        return await again(errors, general, exc.status_code)
    return RedirectResponse(f"{BASE}/{doc_id}?erledigt=gespeichert", status_code=303)


@router.post(BASE + "/{doc_id}/empfehlen", response_class=HTMLResponse)
async def recommend(request: Request, doc_id: str) -> Response:
    """Recommend a document, or take the recommendation back (``empfehlen=nein``); curators only."""
    posted = await _poster(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    on = str(form.get("empfehlen") or "ja") != "nein"
    return await _act(
        request,
        session.principal,
        doc_id,
        "empfohlen" if on else "nicht-empfohlen",
        lambda curator, principal: curator.update(principal, doc_id, {"recommended": on}),
    )


@router.post(BASE + "/{doc_id}/zurueckziehen", response_class=HTMLResponse)
async def retire(request: Request, doc_id: str) -> Response:
    posted = await _poster(request)
    if isinstance(posted, Response):
        return posted
    return await _act(
        request,
        posted[0].principal,
        doc_id,
        "zurueckgezogen",
        lambda curator, principal: curator.retire(principal, doc_id),
    )


async def _act(request: Request, principal: Principal, doc_id: str, done: str, change: Any) -> Response:
    """One button's change to a document the caller may edit, then back to its page with a message."""
    curator = await run_in_threadpool(get_curator, request)
    document = await _load(request, curator, principal, doc_id)
    if isinstance(document, Response):
        return document
    try:
        await run_in_threadpool(change, curator, principal)
    except KBError as exc:
        _, general = forms.service_errors(exc, {}, curator.settings.max_upload_mb, upload=False)
        values = {
            f.name: forms.shown(f, getattr(document.metadata, f.name)) for f in forms.editable_fields(principal)
        }
        built = forms.build(principal, values, general=general)
        return await _document_page(request, curator, principal, document, built, status=exc.status_code)
    return RedirectResponse(f"{BASE}/{doc_id}?erledigt={done}", status_code=303)


@router.get(BASE + "/{doc_id}/loeschen", response_class=HTMLResponse)
async def purge_form(request: Request, doc_id: str) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return await _purge(request, caller.principal, doc_id, confirmed=False)


@router.post(BASE + "/{doc_id}/loeschen", response_class=HTMLResponse)
async def purge_submit(request: Request, doc_id: str) -> Response:
    """Purge a document for good (curators only), but only with the confirmation field ``bestaetigt=ja``;
    without it, the confirmation page."""
    posted = await _poster(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    return await _purge(request, session.principal, doc_id, confirmed=form.get("bestaetigt") == "ja")


async def _purge(request: Request, principal: Principal, doc_id: str, *, confirmed: bool) -> Response:
    curator = await run_in_threadpool(get_curator, request)
    document = await _load(request, curator, principal, doc_id)
    if isinstance(document, Response):
        return document
    if principal.role is not Role.CURATOR:
        return _refusal(request, forms.NOT_ALLOWED, 403)
    if not confirmed:
        return render(request, "kuratieren_loeschen.html", {"document": document})
    try:
        await run_in_threadpool(curator.purge, principal, doc_id)
    except KBError as exc:
        _, general = forms.service_errors(exc, {}, curator.settings.max_upload_mb, upload=False)
        return _refusal(request, general, exc.status_code)
    return RedirectResponse(f"{BASE}?erledigt=geloescht", status_code=303)
