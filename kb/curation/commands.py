"""CLI commands for curators working on the server: ``kb keys …``, ``kb documents …`` and ``kb audit``.

The CLI acts as a curator named ``cli:<login name>`` in the audit log; whoever can run it on the server can
already read and write ``KB_DATA_DIR``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from kb import fields
from kb.errors import CurationError
from kb.settings import Settings

keys_app = typer.Typer(help="API keys for editors and curators (stored hashed; shown once).", no_args_is_help=True)
documents_app = typer.Typer(help="Add, describe, recommend, retire and purge documents.", no_args_is_help=True)

MetaOption = Annotated[
    list[str] | None,
    typer.Option("--meta", "-m", help="Metadata KEY=VALUE (repeatable); lists comma-separated, e.g. topics=a,b."),
]


def _settings(ctx: typer.Context) -> Settings:
    parent = ctx.find_root()
    settings: Settings = parent.obj
    return settings


def _db(ctx: typer.Context) -> Any:
    from kb.curation.store import open_curation

    return open_curation(_settings(ctx))


def _curator(ctx: typer.Context) -> Any:
    from kb.curation.service import Curator
    from kb.search import Searcher

    settings = _settings(ctx)
    return Curator(Searcher(settings))


def _principal() -> Any:
    from kb.curation.keys import cli_principal

    return cli_principal(getpass.getuser())


def parse_meta(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs into metadata fields (lists comma-separated, flags true or false; the rest is checked
    when the metadata is validated)."""
    kinds = {f.name: f.kind for f in fields.FIELDS}
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CurationError(f"--meta {item!r} is not KEY=VALUE, e.g. --meta district='Kreis Unna'.")
        text = value.strip()
        if kinds.get(key) == "list":
            values[key] = [v.strip() for v in text.split(",") if v.strip()]
        elif kinds.get(key) == "bool":
            if text.lower() not in ("true", "false", "yes", "no", "ja", "nein"):
                raise CurationError(f"--meta {key} must be true or false, got {text!r}.")
            values[key] = text.lower() in ("true", "yes", "ja")
        else:
            values[key] = text
    return values


def _echo_document(document: Any) -> None:
    m = document.metadata
    flags = ", ".join(f for f in (m.status, "recommended" if m.recommended else "") if f)
    typer.echo(f"{document.id}  {m.title}  [{m.district or '-'}, {m.year or '-'}; {flags}]")


# -- keys -------------------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="curator, editor or reader.")],
    label: Annotated[str, typer.Option(help="Whose key this is; shown in the audit log.")],
    district: Annotated[
        str, typer.Option(help="The district an editor may edit, or whose documents a reader may read.")
    ] = "",
) -> None:
    """Create a key and print it once (it is stored only as a hash)."""
    from kb.curation.keys import create_key

    db = _db(ctx)
    key, secret = create_key(db, role, label, district)
    with db.transaction() as tx:
        tx.audit(_principal().actor, "key-create", note=f"{key.id} {key.role} {key.label} {key.district}")
    typer.echo(
        f"created {key.role} key {key.id} for {key.label!r}" + (f" ({key.district})" if key.district else "")
    )
    typer.echo("The key (shown only now; send it as 'Authorization: Bearer <key>'):", err=True)
    typer.echo(secret)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """All keys (ids, roles, labels; never the keys themselves)."""
    from kb.curation.keys import list_keys

    for key in list_keys(_db(ctx)):
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        typer.echo(
            f"{key.id}  {key.role:<8} {key.label}  {key.district or '-'}  created {key.created_at}  {state}"
        )


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="Id from `kb keys list`.")]
) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    from kb.curation.keys import revoke_key

    db = _db(ctx)
    key = revoke_key(db, key_id)
    with db.transaction() as tx:
        tx.audit(_principal().actor, "key-revoke", note=f"{key.id} {key.role} {key.label}")
    typer.echo(f"revoked key {key.id} ({key.label})")


# -- documents --------------------------------------------------------------------------------------------------
@documents_app.command("add")
def documents_add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="PDF, DOCX, Markdown, text or HTML.")],
    meta: MetaOption = None,
    supersedes: Annotated[str, typer.Option(help="Id of the document this one replaces.")] = "",
) -> None:
    """Upload a file into the knowledge base (like POST /documents)."""
    fields = parse_meta(meta)
    if supersedes:
        fields["supersedes"] = supersedes
    result = _curator(ctx).upload(_principal(), file.name, file.read_bytes(), fields)
    _echo_document(result.document)
    typer.echo(f"index version {result.index_version}")
    for other in result.near_duplicates:
        typer.echo(f"near-duplicate of {other.id}  {other.metadata.title} ({other.metadata.district})")


@documents_app.command("update")
def documents_update(ctx: typer.Context, doc_id: str, meta: MetaOption = None) -> None:
    """Change metadata, e.g. -m recommended=true -m review_by=2027-06-30 -m superseded_by=<id>."""
    _echo_document(_curator(ctx).update(_principal(), doc_id, parse_meta(meta)))


@documents_app.command("retire")
def documents_retire(ctx: typer.Context, doc_id: str) -> None:
    """Hide a document from search (status archived); file, metadata and history are kept."""
    _echo_document(_curator(ctx).retire(_principal(), doc_id))


@documents_app.command("purge")
def documents_purge(
    ctx: typer.Context,
    doc_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a document for good (an uploaded file is deleted; a corpus file is excluded from now on)."""
    if not yes:
        typer.confirm(f"Remove document {doc_id} for good?", abort=True)
    version = _curator(ctx).purge(_principal(), doc_id)
    typer.echo(f"purged {doc_id}; index version {version}")


@documents_app.command("due")
def documents_due(
    ctx: typer.Context,
    on: Annotated[str, typer.Option(help="Reference date YYYY-MM-DD (default: today).")] = "",
) -> None:
    """Documents whose review-by date has come."""
    try:
        day = dt.date.fromisoformat(on) if on else None
    except ValueError:
        raise CurationError(f"--on must be a date like 2027-06-30, got {on!r}.") from None
    for document in _curator(ctx).due_for_review(day):
        typer.echo(f"{document.metadata.review_by}  ", nl=False)
        _echo_document(document)


def audit_command(
    ctx: typer.Context,
    document: Annotated[str, typer.Option(help="Only this document's entries.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The audit log, newest first: who, when, what, metadata before and after."""
    for entry in _db(ctx).audit(document or None, limit):
        if as_json:
            typer.echo(json.dumps(entry.__dict__, ensure_ascii=False))
            continue
        change = ""
        if entry.after or entry.before:
            keys = sorted(set(entry.after or {}) | set(entry.before or {}))
            change = "; ".join(
                f"{k}: {(entry.before or {}).get(k)!r} → {(entry.after or {}).get(k)!r}" for k in keys
            )
        typer.echo(
            f"{entry.at}  {entry.actor}  {entry.action}  {entry.doc_id} {entry.title} {entry.note} {change}"
        )
