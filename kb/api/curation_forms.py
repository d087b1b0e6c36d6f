"""The forms of the curation page: one input per metadata field, derived from the field registry; what a form
sent turned into the changes the :class:`~kb.curation.service.Curator` takes; its errors as German sentences
attached to the field they concern.

Nothing here writes: the page module hands the changes to the Curator, which checks roles and values again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from kb import districts, fields
from kb.api import schemas
from kb.curation.keys import Principal, Role
from kb.errors import (
    ConflictError,
    CurationError,
    ForbiddenError,
    KBError,
    NotFoundError,
    UnsupportedFileError,
    UploadTooLargeError,
)
from kb.fields import YEAR_MAX, YEAR_MIN, Field
from kb.store import StoredDocument

#: The form's name for the file of an upload and for the document an upload replaces.
FILE: Final = "datei"
SUPERSEDES: Final = "supersedes"
#: What an upload may be (kb.curation.uploads.detect_suffix decides by the content).
FORMATS: Final = (
    "PDF, Word (DOCX), OpenDocument-Text (ODT), PowerPoint (PPTX), Markdown, Text, HTML oder ein Bild "
    "(PNG, JPEG, TIFF; der Text wird erkannt)"
)
#: Labels in the forms where a field's own label (a facet heading) does not fit or there is none.
LABELS: Final[dict[str, str]] = {
    "title": "Titel",
    "topics": "Themen",
    "audience": "Zielgruppen",
    "language": "Hauptsprache (Kürzel, z. B. de)",
    "languages": "Alle Sprachen des Dokuments (Kürzel)",
    "translation_of": "Übersetzung von (Kennung oder Pfad)",
    "contact": "Ansprechstelle",
    "valid_until": "Gültig bis",
    "easy_language": "In Leichter Sprache",
    "licence": "Lizenz",
    "source": "Quelle",
    "recommended": "LaKI-Empfehlung",
    "review_by": "Prüfen bis",
    "superseded_by": "Ersetzt durch (Kennung des neueren Dokuments)",
    SUPERSEDES: "Ersetzt das ältere Dokument (Kennung)",
}
#: German names of the registry's choices; a choice without one is shown as it is.
CHOICE_LABELS: Final[dict[str, str]] = {
    "draft": "Entwurf",
    "published": "Veröffentlicht",
    "archived": "Zurückgezogen",
    "oeffentlich": "Öffentlich – alle, auch ohne Anmeldung",
    "netzwerk": "Netzwerk – alle Angemeldeten",
    "kommune": "Kommune – nur die Kommune des Dokuments und die Koordinierungsstelle",
}
#: The choice of a select for "no value".
NONE: Final = ("", "– keine Angabe –")
#: Fields shown under "Freigabe und Prüfung" rather than "Beschreibung"; every other field describes.
RELEASE: Final = ("status", "visibility", "recommended", "review_by", "valid_until", "superseded_by")
#: Fields an upload does not offer: a new document is not yet replaced by another.
NOT_ON_UPLOAD: Final = ("superseded_by",)


def label(name: str) -> str:
    f = next((f for f in fields.FIELDS if f.name == name), None)
    return LABELS.get(name) or (f.label if f is not None and f.label else name)


@dataclass(frozen=True)
class Input:
    """One input of a form: its field, how it is drawn, the value shown (as typed) and its error."""

    name: str
    label: str
    widget: str  # text, number, date, checkbox, select, checkboxes
    value: str = ""
    values: tuple[str, ...] = ()  # a list field with choices: the ones ticked
    choices: tuple[tuple[str, str], ...] = ()  # (value, German label)
    hint: str = ""
    error: str = ""
    required: bool = False
    max_chars: int = 200

    @property
    def id(self) -> str:
        return f"f-{self.name}"


@dataclass(frozen=True)
class Form:
    """The inputs of one form in their groups, the errors for the summary and a message for the whole form."""

    groups: tuple[tuple[str, tuple[Input, ...]], ...]
    errors: tuple[tuple[str, str, str], ...] = ()  # (input id, label, message)
    general: str = ""


def editable_fields(principal: Principal) -> tuple[Field, ...]:
    """The registry's fields this principal may set (curators: all; editors: not the curators' own)."""
    return tuple(f for f in fields.FIELDS if principal.role is Role.CURATOR or not f.curators_only)


def district_choices(principal: Principal) -> tuple[str, ...]:
    """An editor's own district only; a curator's: the controlled list."""
    return (principal.district,) if principal.role is Role.EDITOR else districts.names()


def shown(f: Field, value: Any) -> str | tuple[str, ...]:
    """A stored value as the form shows it (a list with choices: the ticked values; other lists: commas)."""
    if f.kind == "list":
        items = tuple(str(v) for v in value or ())
        return items if f.choices else ", ".join(items)
    if f.kind == "bool":
        return "ja" if value else ""
    return "" if value is None else str(value)


def typed(f: Field, form: Mapping[str, Any], getlist: Any) -> str | tuple[str, ...]:
    """What the form sent for ``f``, in the representation of :func:`shown`."""
    if f.kind == "list" and f.choices:
        return tuple(str(v) for v in getlist(f.name))
    if f.kind == "bool":
        return "ja" if form.get(f.name) else ""
    return str(form.get(f.name) or "").strip()


def _ticks(f: Field) -> bool:
    """Whether ``f`` is drawn as checkboxes (a form leaves unticked ones out)."""
    return f.kind == "bool" or (f.kind == "list" and bool(f.choices))


def parsed(f: Field, value: str | tuple[str, ...]) -> Any:
    """A form value as the Curator takes it (the Curator's own validation names what is wrong)."""
    if f.kind == "list":
        items = value if isinstance(value, tuple) else tuple(value.split(","))
        return [v.strip() for v in items if v.strip()]
    if f.kind == "bool":
        return value == "ja"
    if f.kind == "year" and isinstance(value, str) and value.isdigit():
        return int(value)
    return value or None  # an emptied field is cleared (None: the field's empty value)


def build(
    principal: Principal,
    values: Mapping[str, str | tuple[str, ...]],
    errors: Mapping[str, str] | None = None,
    *,
    upload: bool = False,
    general: str = "",
) -> Form:
    """The form with these values and errors (by field name), its inputs derived from the registry."""
    errors = errors or {}
    describe: list[Input] = []
    release: list[Input] = []
    for f in editable_fields(principal):
        if upload and f.name in NOT_ON_UPLOAD:
            continue
        widget = _input(f, principal, values.get(f.name, shown(f, f.empty)), errors.get(f.name, ""), upload)
        (release if f.name in RELEASE else describe).append(widget)
    groups: list[tuple[str, tuple[Input, ...]]] = []
    if upload:
        file_input = Input(
            FILE,
            "Datei",
            "file",
            hint=f"{FORMATS}.",
            error=errors.get(FILE, ""),
            required=True,
        )
        replaces = Input(
            SUPERSEDES,
            label(SUPERSEDES),
            "text",
            str(values.get(SUPERSEDES, "")),
            hint="Leer lassen, wenn das Dokument neu ist; sonst wird das ältere zurückgezogen.",
            error=errors.get(SUPERSEDES, ""),
            max_chars=64,
        )
        groups.append(("Datei", (file_input, replaces)))
    groups += [("Beschreibung", tuple(describe)), ("Freigabe und Prüfung", tuple(release))]
    order = [i for _, inputs in groups for i in inputs]
    listed = tuple((i.id, i.label, i.error) for i in order if i.error)
    return Form(tuple(groups), listed, general)


def _input(f: Field, principal: Principal, value: str | tuple[str, ...], error: str, upload: bool) -> Input:
    text = value if isinstance(value, str) else ""
    common: dict[str, Any] = {"error": error, "max_chars": f.max_chars}
    if f.name == "district":
        names = district_choices(principal)
        unset: tuple[tuple[str, str], ...] = () if principal.role is Role.EDITOR else (NONE,)
        chosen = text or (names[0] if principal.role is Role.EDITOR else "")
        return Input(
            f.name, label(f.name), "select", chosen, choices=unset + tuple((d, d) for d in names), **common
        )
    if f.kind == "list" and f.choices:
        ticked = value if isinstance(value, tuple) else ()
        return Input(
            f.name,
            label(f.name),
            "checkboxes",
            values=ticked,
            choices=tuple((c, CHOICE_LABELS.get(c, c)) for c in f.choices),
            **common,
        )
    if f.choices:
        blank: tuple[tuple[str, str], ...] = () if f.empty else (NONE,)
        options = blank + tuple((c, CHOICE_LABELS.get(c, c)) for c in f.choices)
        return Input(f.name, label(f.name), "select", text or str(f.empty or ""), choices=options, **common)
    if f.kind == "list":
        return Input(f.name, label(f.name), "text", text, hint="Mehrere Einträge durch Komma trennen.", **common)
    if f.kind == "bool":
        return Input(f.name, label(f.name), "checkbox", text, **common)
    if f.kind == "year":
        return Input(f.name, label(f.name), "number", text, hint=f"Zwischen {YEAR_MIN} und {YEAR_MAX}.", **common)
    if f.kind == "date":
        return Input(f.name, label(f.name), "date", text, **common)
    hint = "Zum Beispiel 5-10 oder 7." if f.kind == "span" else ""
    if f.name == "title" and upload:
        hint = "Leer lassen: die erste Überschrift oder der Dateiname."
    return Input(f.name, label(f.name), "text", text, hint=hint, required=f.required and not upload, **common)


def changes(
    principal: Principal,
    form: Mapping[str, Any],
    getlist: Any,
    document: StoredDocument | None = None,
) -> tuple[dict[str, str | tuple[str, ...]], dict[str, Any]]:
    """The values as typed (to show again) and the changes for the Curator: for an edit, the fields whose value
    differs from the document's; for an upload, the fields filled in."""
    values: dict[str, str | tuple[str, ...]] = {}
    changed: dict[str, Any] = {}
    for f in editable_fields(principal):
        if document is None and f.name in NOT_ON_UPLOAD:
            continue
        before = shown(f, getattr(document.metadata, f.name)) if document is not None else shown(f, f.empty)
        # A field the form did not send stays as it is (but an unticked checkbox is never sent: it is unticked).
        value = typed(f, form, getlist) if f.name in form or _ticks(f) else before
        values[f.name] = value
        if value != before:
            changed[f.name] = parsed(f, value)
    return values, changed


def checked(changed: dict[str, Any]) -> dict[str, Any]:
    """The changes within the API's limits (text length, number of values, types), as the API would take them;
    a :class:`pydantic.ValidationError` names the field that is not."""
    return schemas.MetadataPatch.model_validate(changed).changes()  # rebuilt when the registry is


def validation_errors(exc: ValidationError, values: Mapping[str, Any]) -> dict[str, str]:
    """German sentences per field for the errors of :func:`checked`."""
    out: dict[str, str] = {}
    for error in exc.errors():
        name = str(error.get("loc", ("",))[0])
        if name in values and name not in out:
            f = fields.field(name)
            kind = str(error.get("type", ""))
            if kind == "string_too_long":
                out[name] = f"Höchstens {f.max_chars} Zeichen; bitte kürzen."
            elif kind == "too_long":
                out[name] = f"Höchstens {f.max_values} Einträge; bitte weniger angeben."
            else:
                out[name] = field_message(f, values[name])
    return out


def field_message(f: Field, value: Any) -> str:
    """What to do about an invalid value of ``f``, in German, naming the value typed."""
    typed_value = ", ".join(value) if isinstance(value, tuple) else str(value)
    if f.name == "title":
        return "Bitte einen Titel eintragen."
    if f.name == "district":
        close = districts.suggestions(typed_value)
        hint = f" Meinten Sie: {', '.join(close)}?" if close else ""
        return f"„{typed_value}“ ist keine Kommune aus der Liste.{hint}"
    if f.kind == "year":
        return f"„{typed_value}“ ist kein Jahr zwischen {YEAR_MIN} und {YEAR_MAX}; bitte z. B. 2024 eintragen."
    if f.kind == "date":
        return f"„{typed_value}“ ist kein Datum; bitte im Format JJJJ-MM-TT eintragen, z. B. 2027-06-30."
    if f.kind == "span":
        return f"„{typed_value}“ ist keine Klassenstufe; bitte z. B. 5-10 oder 7 eintragen."
    if f.choices:
        return f"„{typed_value}“ steht nicht zur Auswahl; bitte einen der angebotenen Werte wählen."
    return f"„{typed_value}“ wurde nicht angenommen; bitte prüfen."


_FIELD_IN_MESSAGE = re.compile(r"field '(\w+)'")
_STORED_AS = re.compile(r"already stored as document (\w+)")
BUSY: Final = (
    "Der Suchindex wird gerade von einer anderen Änderung erneuert. Bitte versuchen Sie es in ein paar Minuten "
    "noch einmal."
)
NOT_ALLOWED: Final = "Das darf nur die Koordinierungsstelle (Rolle „Kuratorin/Kurator“)."
UNKNOWN_DOCUMENT: Final = "Es gibt kein Dokument mit dieser Kennung, das Sie bearbeiten dürfen."


def service_errors(
    exc: KBError, values: Mapping[str, Any], max_upload_mb: int, *, upload: bool
) -> tuple[dict[str, str], str]:
    """German sentences for an error of the Curator: per field (by name) and for the whole form."""
    message = str(exc)
    if isinstance(exc, UploadTooLargeError):
        return {FILE: f"Die Datei ist größer als {max_upload_mb} MB; bitte eine kleinere Datei wählen."}, ""
    if isinstance(exc, UnsupportedFileError):
        return {FILE: f"Diese Datei kann die Wissensbasis nicht lesen. Möglich sind: {FORMATS}."}, ""
    if isinstance(exc, ConflictError):
        stored = _STORED_AS.search(message)
        if stored:
            return {FILE: f"Diese Datei ist schon gespeichert (Kennung {stored.group(1)})."}, ""
        return {}, BUSY
    if isinstance(exc, NotFoundError | ForbiddenError) and (values.get(SUPERSEDES) or values.get("superseded_by")):
        return {SUPERSEDES if upload else "superseded_by": UNKNOWN_DOCUMENT}, ""
    if isinstance(exc, ForbiddenError):
        if "district" in values and "may only change documents of" in message:
            return {"district": "Sie dürfen nur Dokumente Ihrer eigenen Kommune bearbeiten."}, ""
        return {}, NOT_ALLOWED
    if isinstance(exc, CurationError):
        named = _FIELD_IN_MESSAGE.search(message)
        if named and named.group(1) in values:
            name = named.group(1)
            return {name: field_message(fields.field(name), values[name])}, ""
        if "title cannot be empty" in message:
            return {"title": "Bitte einen Titel eintragen."}, ""
        if upload:
            return {
                FILE: "Die Datei lässt sich nicht lesen: sie ist leer, beschädigt, verschlüsselt oder hat keine "
                "Textebene (ein eingescannter Text ohne Texterkennung)."
            }, ""
        if "changes nothing" in message:
            return {}, "Sie haben nichts geändert."
    return {}, "Die Änderung konnte nicht gespeichert werden. Bitte prüfen Sie Ihre Angaben."
