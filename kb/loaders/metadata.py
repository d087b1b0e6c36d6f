"""Reading and validating document metadata from front matter and ``<file>.meta.yaml`` sidecars."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from kb.documents import LIST_FIELDS, METADATA_FIELDS, STATUSES, Metadata
from kb.errors import LoaderError


def sidecar_path(path: Path) -> Path:
    """Where the metadata of a file without front matter lives: ``name.pdf`` → ``name.pdf.meta.yaml``."""
    return path.with_name(path.name + ".meta.yaml")


def read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's mapping, or an empty one when there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    return parse_yaml(side.read_text(encoding="utf-8"), side)


def parse_yaml(text: str, where: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LoaderError(str(where), f"metadata is not valid YAML ({_first_line(exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LoaderError(str(where), "metadata must be a mapping of keys to values")
    return data


def build_metadata(raw: dict[str, Any], path: Path, fallback_title: str) -> Metadata:
    """Validate ``raw`` into :class:`Metadata`; unknown keys are ignored, wrong types name the field."""
    values: dict[str, Any] = {}
    for key in METADATA_FIELDS:
        if key not in raw or raw[key] is None:
            continue
        values[key] = _coerce(key, raw[key], path)
    values.setdefault("title", fallback_title.strip() or path.stem)
    return Metadata(**values)


def _coerce(key: str, value: Any, path: Path) -> Any:
    if key in LIST_FIELDS:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str | int) for v in items):
            raise LoaderError(str(path), f"metadata field '{key}' must be a list of words, got {value!r}")
        return tuple(str(v).strip() for v in items if str(v).strip())
    if key == "year":
        year = value.year if isinstance(value, dt.date) else value
        try:
            year = int(str(year).strip())
        except ValueError:
            raise LoaderError(
                str(path), f"metadata field 'year' must be a year like 2023, got {value!r}"
            ) from None
        if not 1900 <= year <= 2100:
            raise LoaderError(str(path), f"metadata field 'year' must be between 1900 and 2100, got {year}")
        return year
    if key in ("easy_language", "recommended"):
        if not isinstance(value, bool):
            raise LoaderError(str(path), f"metadata field '{key}' must be true or false, got {value!r}")
        return value
    if key == "status":
        status = str(value).strip().lower()
        if status not in STATUSES:
            raise LoaderError(
                str(path), f"metadata field 'status' must be one of {', '.join(STATUSES)}, got {value!r}"
            )
        return status
    if key == "review_by":
        return _iso_date(value, path)
    if key == "language":
        return str(value).strip().lower()
    if isinstance(value, list | dict):
        raise LoaderError(str(path), f"metadata field '{key}' must be a single text, got {value!r}")
    return str(value).strip()


def _iso_date(value: Any, path: Path) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    if not text:
        return ""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise LoaderError(
            str(path), f"metadata field 'review_by' must be a date like 2027-06-30, got {value!r}"
        ) from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
