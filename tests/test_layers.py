"""The package's layers import one way: a module may import from its own layer and the layers below it, never
from a layer above. The graph is read from the source (every import, including those inside functions and
``TYPE_CHECKING`` blocks), so a new module must be placed in :data:`LAYERS` before this test passes."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kb"

#: Lowest first. An entry names a module, or a package with all its modules (``kb.api.*``); a module belongs to
#: the layer of the longest entry that names it. The package itself (``kb``, the public API) is on top.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Settings, the error tree, the document types and small helpers every other module may use.
    ("foundation", ("kb.settings", "kb.errors", "kb.documents", "kb.fields", "kb.files", "kb.lru", "kb.logs",
                    "kb.visibility", "kb.preparation", "kb.districts", "kb.nrw_map")),
    # Reading files and turning text into vectors: no index, no database.
    ("content", ("kb.loaders.*", "kb.ocr", "kb.sandbox", "kb.chunking", "kb.duplicates", "kb.bundled_model",
                 "kb.onnx_encoder", "kb.embedder")),
    # The index on disk: SQLite store, vectors, BM25, the versioned folder.
    ("storage", ("kb.store", "kb.vectors", "kb.lexical", "kb.spelling", "kb.index", "kb.storage.*")),
    # What is done with an index: building it and searching it.
    (
        "pipeline",
        (
            "kb.ingest",
            "kb.ingest_workers",
            "kb.search",
            "kb.fusion",
            "kb.confidence",
            "kb.translations",
            "kb.filters",
            "kb.constraints",
            "kb.evaluation",
        ),
    ),
    # Write access: keys, roles, the curation database, the audit log; it drives ingestion.
    ("curation", ("kb.curation.*",)),
    # Where requests and commands come in and results go out.
    ("edge", ("kb", "kb.api.*", "kb.cli", "kb.__main__", "kb.doctor", "kb.metrics", "kb.backup",
              "kb.db_commands",
              "kb.backup_postgres", "kb.doctor_postgres")),
)  # fmt: skip

#: Imports that the layers allow but the design does not: ``(importer prefix, imported prefix)``.
FORBIDDEN = (
    ("kb.cli", "kb.api.schemas"),  # the CLI renders its own output, not through the HTTP response models
    ("kb.ingest", "kb.curation"),  # ingestion gets curated metadata through its CuratedOverrides protocol
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _names(entry: str, module: str) -> bool:
    package = entry.removesuffix(".*")
    return module == package or (entry.endswith(".*") and module.startswith(package + "."))


def _layer(module: str) -> int | None:
    """The rank of ``module``'s layer (0 lowest), by the longest entry that names it; None if unplaced."""
    best: tuple[int, int] | None = None
    for rank, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if _names(entry, module) and (best is None or len(entry) > best[0]):
                best = (len(entry), rank)
    return None if best is None else best[1]


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """``(line, imported kb module)`` for every import in the file, wherever it stands."""
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if submodule in known else base))
    return [(line, name) for line, name in found if _covers("kb", name)]


def test_every_module_is_placed_in_a_layer() -> None:
    unplaced = sorted(module for module in _modules() if _layer(module) is None)
    assert not unplaced, (
        f"Place these modules in a layer in tests/test_layers.py (LAYERS): {', '.join(unplaced)}. "
        "A module belongs to the lowest layer whose modules are all it needs."
    )


def test_no_module_imports_from_a_higher_layer() -> None:
    modules = _modules()
    violations = []
    for module, path in modules.items():
        own = _layer(module)
        if own is None:
            continue  # reported by test_every_module_is_placed_in_a_layer
        for line, imported in _imports(module, path, set(modules)):
            theirs = _layer(imported)
            if theirs is not None and theirs > own:
                violations.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({LAYERS[own][0]}) imports "
                    f"{imported} ({LAYERS[theirs][0]})"
                )
    assert not violations, "Imports from a higher layer:\n" + "\n".join(violations)


def test_no_forbidden_imports() -> None:
    modules = _modules()
    violations = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module} imports {imported}"
        for module, path in modules.items()
        for line, imported in _imports(module, path, set(modules))
        for importer, target in FORBIDDEN
        if _covers(importer, module) and _covers(target, imported)
    ]
    assert not violations, "Imports the design rules out:\n" + "\n".join(violations)


def test_the_check_sees_lazy_imports_and_higher_layers(tmp_path: Path) -> None:
    """The reader itself: an import inside a function counts, and ranks compare as the layers are listed."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from kb.curation.db import CurationDB\n    import kb.search\n")
    assert _imports("kb.ingest", source, {"kb.curation.db", "kb.search"}) == [
        (2, "kb.curation.db"),
        (3, "kb.search"),
    ]
    layer_of = {name: rank for rank, (name, _) in enumerate(LAYERS)}
    assert _layer("kb.curation.db") == layer_of["curation"] > _layer("kb.ingest") == layer_of["pipeline"]
    assert _layer("kb.api.routes") == layer_of["edge"] and _layer("kb.loaders.pdf") == layer_of["content"]
    assert _layer("kbx") is None and _layer("kb.unplaced") is None and _layer("kb") == layer_of["edge"]
