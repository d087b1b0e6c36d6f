"""The ``kb`` command line. Every KB error becomes one line on stderr and a documented exit code.

Exit codes: 0 success; 1 unexpected error; 2 invalid input or setting; 3 model cannot be prepared or loaded;
4 index missing, damaged or built with another model; 5 another ingestion is running; 6 ingestion partial
(some files failed, the rest was ingested); 7 unknown document (or API key); 8 `kb doctor` found a problem;
9 the file is already stored; 10 not allowed (role or district); 11 a backup that cannot be taken or
restored (damaged, unfinished, or a target that is not empty).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from kb.errors import KBError
from kb.fields import filter_field, filtered
from kb.filters import Filters
from kb.settings import Settings

if TYPE_CHECKING:
    from kb.constraints import Constraint
    from kb.documents import DocumentText
    from kb.search import Hit
    from kb.storage import StoredDocument

_FILTER_KEYS = ", ".join(f.key for f in filtered())
P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="KI-Wissensbasis: semantic search over the materials of the Kommunale Integrationszentren in NRW.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KBError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@app.callback()
def configure(
    ctx: typer.Context,
    corpus_dir: Annotated[Path | None, typer.Option(help="Corpus folder [KB_CORPUS_DIR].")] = None,
    index_dir: Annotated[Path | None, typer.Option(help="Index folder [KB_INDEX_DIR].")] = None,
    model: Annotated[str | None, typer.Option(help="Model name or folder [KB_MODEL].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Curation data folder [KB_DATA_DIR].")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
) -> None:
    """Options given here override the KB_* environment variables."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    overrides: dict[str, Any] = {"corpus_dir": corpus_dir, "index_dir": index_dir, "model": model}
    overrides["data_dir"] = data_dir
    ctx.obj = Settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command("prepare-model")
@handle_errors
def prepare_model(ctx: typer.Context) -> None:
    """Prepare the embedding model (converts the bundled one once) and print its folder."""
    from kb.embedder import Embedder, resolve_model_path

    settings = _settings(ctx)
    path = resolve_model_path(settings)
    dimension = Embedder(settings).dimension
    typer.echo(f"model {settings.model} ready in {path} (dimension {dimension})")


@app.command()
@handle_errors
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the corpus and the uploaded files).")
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Build a new index from scratch (after a model change).")] = False,
) -> None:
    """Add, update and remove documents; writes a new index version atomically."""
    from kb.curation.store import prepare_ingestion
    from kb.ingest import Ingestor, discover
    from kb.loaders.scans import page_list  # the pages named as ingestion logs them

    settings = _settings(ctx)
    curation = prepare_ingestion(settings)  # curated metadata, purges and shared uploads apply to every run
    ingestor = Ingestor(settings, curation=curation)
    roots = paths or ingestor.default_roots()
    on_file = None
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=sum(1 for _ in discover([p for p in roots if p.exists()])), unit="file", file=sys.stderr)

        def on_file(key: str) -> None:
            bar.set_postfix_str(key[-40:], refresh=False)
            bar.update(1)

    try:
        report = ingestor.run(roots, rebuild=rebuild, on_file=on_file)
    finally:
        if bar is not None:
            bar.close()
        if curation is not None:
            curation.close()
    excluded = f", excluded (purged) {len(report.excluded)}" if report.excluded else ""
    typer.echo(
        f"added {len(report.added)}, updated {len(report.updated)}, removed {len(report.removed)}, "
        f"unchanged {len(report.unchanged)}, failed {len(report.failed)}{excluded} "
        f"in {report.seconds:.1f} s; index version {report.version}: "
        f"{report.documents} documents, {report.chunks} chunks"
    )
    for note in report.ocr:
        if note.read or note.unread:
            typer.echo(f"{note.path}: {note.read} of {note.pages} pages read by OCR")
        if note.blank:
            typer.echo(f"{note.path}: {page_list(note.blank)} without text (blank, or only a header or page no.)")
        if note.unread:
            typer.echo(f"needs OCR: {note.path}: {page_list(note.unread)} not read: {note.problem}", err=True)
    for failure in report.failed:
        typer.echo(f"failed: {failure.path}: {failure.reason}", err=True)
    raise typer.Exit(report.exit_code)


@app.command()
@handle_errors
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A question or words, in any language.")],
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON like the API.")] = False,
    chunks: Annotated[bool, typer.Option("--chunks", help="Raw passages instead of one per document.")] = False,
    mode: Annotated[str | None, typer.Option(help="hybrid (default), dense or lexical.")] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help=f"KEY=VALUE, repeatable: {_FILTER_KEYS} (year: 2020 or 2019..2023)."),
    ] = None,
    facets: Annotated[
        bool, typer.Option("--facets", help="Also count metadata values of the matching documents.")
    ] = False,
    ignore_constraints: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-constraint", help="Do not prefer what the query names for this field (e.g. jahrgang)."
        ),
    ] = None,
) -> None:
    """Search the index and print the best documents (their best passage each). A grade, language, district,
    year or document type the query names is preferred, not filtered."""
    from kb.search import Searcher

    result = Searcher(_settings(ctx)).search(
        query,
        k,
        mode=mode,
        group=not chunks,
        filters=parse_filters(filters or []),
        facets=facets,
        ignore_constraints=ignore_constraints or (),
    )
    if as_json:
        payload = {
            "query": result.query,
            "k": k,
            "mode": result.mode,
            "took_ms": round(result.took_ms, 2),
            "confidence": round(result.confidence, 3),
            "nothing_fits": result.nothing_fits,
            "results": [hit_fields(hit) for hit in result.hits],
            "constraints": [constraint_fields(c) for c in result.constraints],
        }
        if facets:
            payload["facets"] = result.facets
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if result.constraints:
        typer.echo("Preferred: " + ", ".join(c.label for c in result.constraints))
    if result.nothing_fits:
        typer.echo("No document fits this query well; the closest ones follow. Try fewer words or fewer filters.")
    _print_hits(result.hits)
    for name, counts in result.facets.items():
        if counts:
            typer.echo(f"{name}: " + ", ".join(f"{value} {count}" for value, count in counts.items()))


def hit_fields(hit: Hit) -> dict[str, Any]:
    """A hit as ``--json`` prints it: the fields of a result of the API's ``/search``."""
    doc, chunk, meta = hit.document, hit.chunk, hit.document.metadata
    url = f"/documents/{doc.id}/file" + (f"#page={chunk.page}" if doc.file_type == "pdf" and chunk.page else "")
    return {
        "score": round(hit.score, 5),
        "chunk_id": hit.chunk_id,
        "document_id": doc.id,
        "title": meta.title,
        "district": meta.district,
        "doc_type": meta.doc_type,
        "topics": list(meta.topics),
        "year": meta.year,
        "language": meta.language,
        "page": chunk.page,
        "page_end": hit.page_end,
        "heading": chunk.heading,
        "snippet": hit.snippet,
        "highlights": [list(span) for span in hit.highlights],
        "text": chunk.text,
        "more_chunks": hit.more_chunks,
        "file_url": url,
        "recommended": meta.recommended,
        "status": meta.status,
        "also_from": [
            {"id": d.id, "title": d.metadata.title, "district": d.metadata.district, "year": d.metadata.year}
            for d in hit.also_from
        ],
    }


def constraint_fields(c: Constraint) -> dict[str, str]:
    """A constraint as ``--json`` prints it: the fields of the API's ``constraints``."""
    return {"field": c.field, "value": c.value, "label": c.label, "text": c.text}


def _print_hits(hits: list[Hit]) -> None:
    if not hits:
        typer.echo("no results")
    for rank, hit in enumerate(hits, 1):
        meta = hit.document.metadata
        where = " · ".join(str(x) for x in (meta.district, meta.doc_type, meta.year) if x)
        page = f" · S. {hit.chunk.page}" if hit.chunk.page else ""
        if hit.more_chunks:
            page += f" · +{hit.more_chunks} more passages"
        typer.echo(f"{rank:2}. [{hit.score:.3f}] {meta.title}\n    {where}{page} · id {hit.document.id}")
        typer.echo(f"    {hit.snippet}\n")


def parse_filters(items: list[str]) -> Filters:
    """``["district=Dortmund", "year=2019..2023"]`` → :class:`kb.filters.Filters` (any filter of the registry)."""
    from kb.errors import QueryError

    values: dict[str, list[str]] = {}
    bounds: dict[str, int | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not sep or not value:
            raise QueryError(f"Filter {item!r} must look like KEY=VALUE, e.g. district=Dortmund.")
        f = filter_field(key)
        if f is None:
            raise QueryError(f"Unknown filter {key!r}; use {_or(f.key for f in filtered())}.")
        if f.ranged:
            low, dots, high = value.partition("..")
            try:
                bounds[f"{key}_from"] = int(low) if low else None
                bounds[f"{key}_to"] = int(high) if high else (None if dots else int(low))
            except ValueError:
                raise QueryError(f"Filter {item!r}: the {key} must look like 2021 or 2019..2023.") from None
        else:
            if f.choices and value not in f.choices:
                raise QueryError(f"Filter {item!r}: the {key} is {_or(f.choices)}.")
            values.setdefault(key, []).append(value)
    return Filters(**values, **bounds)


def _or(words: Iterable[str]) -> str:
    *most, last = words
    return f"{', '.join(most)} or {last}" if most else last


@app.command()
@handle_errors
def similar(
    ctx: typer.Context,
    doc_id: Annotated[str, typer.Argument(help="The id of a document (from `kb search`).")],
    k: Annotated[int, typer.Option("-k", help="How many documents.")] = 5,
    other_districts: Annotated[
        bool, typer.Option("--other-districts/--all-districts", help="Only documents from other districts.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON like the API.")] = False,
) -> None:
    """Documents most like this one: similar approaches, by default from other districts."""
    from kb.search import Searcher

    hits = Searcher(_settings(ctx)).similar(doc_id, k, other_districts=other_districts)
    if as_json:
        typer.echo(json.dumps([hit_fields(h) for h in hits], ensure_ascii=False, indent=2))
        return
    _print_hits(hits)


@app.command()
@handle_errors
def show(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="PATH|ID",
            help="A file as ingested (relative to the corpus, or absolute; upload/NAME or the stored file for an "
            "upload), or a document id.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON like GET /documents/{id}/text.")] = False,
) -> None:
    """What the index holds of one document as it was read: its text page by page (and whether OCR read it),
    and its detected headings with their pages. A file without pages is shown as one page."""
    from kb.errors import NotFoundError
    from kb.storage import open_storage

    settings = _settings(ctx)
    reader = open_storage(settings).open_reader()
    document = find_document(reader.documents, target, settings)
    text = reader.document_text(document.id)
    if text is None:  # not reached: the document was found in this same version
        raise NotFoundError(f"The index holds no text of {target!r}.")
    if as_json:
        typer.echo(json.dumps(text_fields(document, text), ensure_ascii=False, indent=2))
        return
    pages = f"{document.pages} pages" if document.pages is not None else "no pages (shown as page 1)"
    typer.echo(f"{document.metadata.title}\nid {document.id} · {document.key} · {document.file_type}, {pages}")
    typer.echo("headings:" if text.headings else "headings: none detected")
    for heading in text.headings:
        typer.echo(f"  p. {heading.page:<3} {heading.text}")
    for page in text.pages:
        confidence = f", confidence {page.confidence:.0f}" if page.confidence is not None else ""
        typer.echo(f"\n--- page {page.page}{f' (OCR{confidence})' if page.ocr else ''} ---")
        typer.echo(page.text or "(no text)")


def find_document(documents: Mapping[str, StoredDocument], target: str, settings: Settings) -> StoredDocument:
    """The document ``target`` names: its id, its key (the path relative to the corpus, ``upload/NAME``), or the
    path of its file (relative to the working folder or absolute; a link is followed like ingestion does)."""
    from kb.errors import NotFoundError
    from kb.ingest import path_key

    if target in documents:
        return documents[target]
    names = {target, Path(target).as_posix(), path_key(settings.corpus_dir / target, settings.corpus_dir)}
    path = Path(target).expanduser()
    if path.is_absolute() or path.exists():
        names.add(path_key(path, settings.corpus_dir, settings.uploads_dir))
        names.add(str(path.resolve()))
    for document in documents.values():
        if document.key in names or document.path in names:
            return document
    raise NotFoundError(
        f"No document in the index is {target!r}: give a document id (from `kb search`) or the path of an "
        f"ingested file (relative to the corpus {settings.corpus_dir}, or absolute)."
    )


def text_fields(document: StoredDocument, text: DocumentText) -> dict[str, Any]:
    """A document's text as ``kb show --json`` prints it: the fields of the API's ``/documents/{id}/text``."""
    return {
        "id": document.id,
        "path": document.key,
        "title": document.metadata.title,
        "file_type": document.file_type,
        "pages": [
            {
                "page": p.page,
                "text": p.text,
                "ocr": p.ocr,
                **({} if p.confidence is None else {"confidence": p.confidence}),
            }
            for p in text.pages
        ],
        "headings": [{"text": h.text, "page": h.page} for h in text.headings],
    }


@app.command("eval")
@handle_errors
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")],
    max_queries: Annotated[int | None, typer.Option(help="Only the first N judged queries.")] = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    no_answer_from: Annotated[
        Path | None,
        typer.Option(help="Another set (folder or queries.jsonl) whose queries have no answer in this corpus."),
    ] = None,
) -> None:
    """Measure retrieval quality on a dataset (in a throw-away index; index/ is not touched): overall, per
    language and per query kind, and the "nothing fits" decision on no-answer queries."""
    from kb.errors import QueryError
    from kb.evaluation import run
    from kb.fields import MODES

    chosen = next((m for m in MODES if m == mode), None)
    if chosen is None:
        raise QueryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    metrics = run(
        dataset, _settings(ctx), max_queries=max_queries, modes=(chosen,), no_answer_from=no_answer_from
    )[chosen]
    by_language = {language: m.as_dict() for language, m in sorted(metrics.by_language.items())}
    by_kind = {kind: m.as_dict() for kind, m in sorted(metrics.by_kind.items())}
    decision = metrics.nothing_fits.as_dict() if metrics.nothing_fits else None
    if as_json:
        payload = {**metrics.as_dict(), "by_language": by_language, "by_kind": by_kind}
        typer.echo(json.dumps(payload | ({"nothing_fits": decision} if decision else {})))
        return
    typer.echo(f"{dataset.name}: " + "  ".join(f"{k} {v}" for k, v in metrics.as_dict().items()))
    for language, values in by_language.items():
        typer.echo(f"  {language}: " + "  ".join(f"{k} {v}" for k, v in values.items()))
    for kind, values in by_kind.items():
        typer.echo(f"  {kind}: " + "  ".join(f"{k} {v}" for k, v in values.items()))
    if decision:
        typer.echo("  nothing fits: " + "  ".join(f"{k} {v}" for k, v in decision.items()))


@app.command()
@handle_errors
def stats(ctx: typer.Context) -> None:
    """Counts of documents per facet field of the registry (district, type, topic, audience, language, year)."""
    from kb.fields import faceted
    from kb.storage import open_storage

    index = open_storage(_settings(ctx)).open_reader()
    documents = list(index.documents.values())
    manifest = index.manifest
    typer.echo(
        f"index version {manifest.version} ({manifest.built_at}), model {manifest.model}: "
        f"{manifest.documents} documents, {manifest.chunks} chunks"
    )
    for f in faceted():
        counter = Counter(v for d in documents for v in f.values(d.metadata.get(f.name)) or ("(none)",))
        typer.echo(f"\n{f.key}:")
        for name, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            typer.echo(f"  {count:4}  {name}")


@app.command()
@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address [KB_HOST], loopback by default.")] = None,
    port: Annotated[int | None, typer.Option(help="Port [KB_PORT].")] = None,
) -> None:
    """Serve the API and the web page (loads the model and the index once, in the background)."""
    import uvicorn

    from kb.api.app import create_app
    from kb.embedder import resolve_model_path
    from kb.logs import configure_logging

    settings = _settings(ctx)
    settings = settings.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    resolve_model_path(settings)  # a model that cannot be prepared stops the start with one sentence
    configure_logging(settings.log_format)
    typer.echo(f"KI-Wissensbasis: http://{settings.host}:{settings.port}/ (API docs at /docs)", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check the installation (versions, model, index, settings); each problem comes with its fix."""
    from kb.doctor import run_checks

    checks = run_checks(_settings(ctx))
    for check in checks:
        typer.echo(check.line())
    failed = sum(check.status == "FAIL" for check in checks)
    typer.echo(f"{failed} problem(s) found." if failed else "Everything looks fine.")
    raise typer.Exit(8 if failed else 0)


@app.command("backup")
@handle_errors
def backup_command(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="New or empty folder the backup is written to.")],
    with_corpus: Annotated[
        bool, typer.Option("--with-corpus", help="Copy the corpus folder (KB_CORPUS_DIR) too (not by default).")
    ] = False,
) -> None:
    """Back up the running installation: live index version, curation database, uploaded files."""
    from kb.backup import backup

    report = backup(_settings(ctx), folder, with_corpus=with_corpus)
    typer.echo(
        f"backup in {report.folder}: index version {report.index_version} ({report.documents} documents, "
        f"{report.chunks} chunks), {report.uploads} uploaded file(s), curation database; "
        + (f"corpus {report.corpus_files} file(s)" if report.corpus_files is not None else "corpus not included")
    )
    if report.missing_uploads:
        typer.echo(
            f"note: {len(report.missing_uploads)} upload(s) still being written were left out "
            "(they arrived while the backup ran)",
            err=True,
        )


@app.command("restore")
@handle_errors
def restore_command(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A folder written by `kb backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing installation.")] = False,
) -> None:
    """Restore a backup into KB_INDEX_DIR and KB_DATA_DIR (checksums are checked first)."""
    from kb.backup import restore

    report = restore(_settings(ctx), folder, force=force)
    typer.echo(
        f"restored backup of {report.created_at}: index version {report.index_version} ({report.documents} "
        f"documents, {report.chunks} chunks) in {report.folder}, {report.uploads} uploaded file(s); "
        + (f"corpus {report.corpus_files} file(s)" if report.corpus_files is not None else "no corpus in backup")
    )
    if report.unindexed_uploads:
        typer.echo(
            f"note: {report.unindexed_uploads} uploaded file(s) arrived while the backup ran and are not in its "
            "index yet; run `kb ingest` to add them",
            err=True,
        )


def _register_curation() -> None:
    from kb.curation.commands import audit_command, documents_app, keys_app

    for sub in (keys_app, documents_app):
        sub.registered_callback = None
    app.add_typer(keys_app, name="keys")
    app.add_typer(documents_app, name="documents")
    app.command("audit")(handle_errors(audit_command))
    for group in (keys_app, documents_app):
        for command in group.registered_commands:
            if command.callback is not None:
                command.callback = handle_errors(command.callback)


_register_curation()


def _register_db() -> None:
    from kb.db_commands import register

    register(app, handle_errors)


_register_db()


def main() -> None:
    app()
