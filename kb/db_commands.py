"""``kb db``: the PostgreSQL engine's schema and moving an installation between the local files and PostgreSQL.

::

    kb db migrate                 bring the schema of KB_DATABASE_URL to this release's (versioned, kb_schema)
    kb db import-local INDEX_DIR [--data-dir DATA]   the live version of a local index into the database (no
                                  encoding); with --data-dir also the curation data and uploaded files
    kb db export-local DIR [--data-dir DATA]         the database's live version into a local index folder (no
                                  encoding); with --data-dir also the curation data and uploaded files
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kb.errors import ConfigError
from kb.settings import Settings

db_app = typer.Typer(
    help="The PostgreSQL engine (KB_DATABASE_URL): schema, import and export.", no_args_is_help=True
)


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def _database(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigError(
            "KB_DATABASE_URL is not set; set it to the PostgreSQL database, e.g. "
            "KB_DATABASE_URL=postgresql://kb@db.example/kb."
        )
    return settings.database_url


@db_app.command("migrate")
def migrate_command(ctx: typer.Context) -> None:
    """Create or update the schema of the database KB_DATABASE_URL names."""
    from kb.storage.postgres import PostgresStorage

    before, after = PostgresStorage(_database(_settings(ctx))).migrate()
    typer.echo(f"schema version {after}" + (f" (was {before})" if before != after else " (up to date)"))


_DATA_DIR_HELP = (
    "Also move the curation data (API keys, sessions, curated metadata, exclusions, audit log) and the uploaded "
    "files of this KB_DATA_DIR (the folder holding curation.sqlite and files/); the target's are replaced."
)


@db_app.command("import-local")
def import_local(
    ctx: typer.Context,
    index_dir: Annotated[Path, typer.Argument(help="A local index folder (KB_INDEX_DIR of the installation).")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help=_DATA_DIR_HELP)] = None,
) -> None:
    """Copy the live version of a local index into the database, vectors included (nothing is encoded)."""
    from kb.index import open_current
    from kb.storage.postgres import PostgresStorage
    from kb.storage.transfer import copy_version

    source = open_current(index_dir)
    target = PostgresStorage(_database(_settings(ctx)))
    with target.lock():
        manifest = copy_version(source, target)
    typer.echo(f"imported {manifest.documents} documents, {manifest.chunks} chunks as version {manifest.version}")
    if data_dir is not None:
        from kb.curation import transfer
        from kb.curation.pg_db import PgCurationDB

        curation = PgCurationDB(target.url)
        try:
            typer.echo("imported " + transfer.import_local(data_dir, curation).line())
        finally:
            curation.close()


@db_app.command("export-local")
def export_local(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The local index folder to write (a new version in it).")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help=_DATA_DIR_HELP)] = None,
) -> None:
    """Copy the database's live version into a local index folder, vectors included (nothing is encoded)."""
    from kb.storage.local import LocalStorage
    from kb.storage.postgres import PostgresStorage
    from kb.storage.transfer import copy_version

    settings = _settings(ctx)
    source = PostgresStorage(_database(settings), settings.database_read_url or None)
    target = LocalStorage(folder, ann_threshold=settings.ann_threshold)
    try:
        with target.lock():
            manifest = copy_version(source.open_reader(), target)
    finally:
        source.close()
    typer.echo(f"exported {manifest.documents} documents, {manifest.chunks} chunks to {folder}")
    if data_dir is not None:
        from kb.curation import transfer
        from kb.curation.pg_db import PgCurationDB

        curation = PgCurationDB(_database(settings))
        try:
            typer.echo(f"exported {transfer.export_local(curation, data_dir).line()} to {data_dir}")
        finally:
            curation.close()


def register(app: typer.Typer, handle_errors: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add ``kb db`` to the CLI, with its error handling."""
    for command in db_app.registered_commands:
        if command.callback is not None:
            command.callback = handle_errors(command.callback)
    app.add_typer(db_app, name="db")
