"""Reading and validating document metadata from front matter and ``<file>.meta.yaml`` sidecars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kb import fields
from kb.documents import Metadata
from kb.errors import LoaderError
from kb.fields import YEAR_MAX, YEAR_MIN, Field, Kind, Value, parse_span


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
    for f in fields.FIELDS:
        if raw.get(f.name) is not None:
            values[f.name] = coerce(f, raw[f.name], path)
    values.setdefault("title", fallback_title.strip() or path.stem)
    return Metadata(**values)


def coerce(f: Field, value: Any, path: Path) -> Value:
    """``value`` (from YAML or JSON) as a value of field ``f``, or a :class:`LoaderError` naming the field."""
    checked = _KINDS[f.kind](f, value, path)
    if isinstance(checked, str):
        return _word(f, checked, path)
    if isinstance(checked, tuple):
        return tuple(dict.fromkeys(_word(f, v, path) for v in checked))
    return checked


def _word(f: Field, text: str, path: Path) -> str:
    """One text value of ``f``: lowercased, canonical, one of its choices, as the field asks."""
    text = text.lower() if f.lowercase else text
    try:
        text = f.normalized(text)
    except ValueError as exc:
        raise LoaderError(str(path), f"metadata field '{f.name}': {exc}") from None
    if f.choices and text not in f.choices and (text or f.empty != ""):
        match = next((c for c in f.choices if c.casefold() == text.casefold()), None)
        if match is None:
            raise LoaderError(
                str(path), f"metadata field '{f.name}' must be one of {', '.join(f.choices)}, got {text!r}"
            )
        text = match
    return text


def _text(f: Field, value: Any, path: Path) -> str:
    if isinstance(value, list | dict):
        raise LoaderError(str(path), f"metadata field '{f.name}' must be a single text, got {value!r}")
    return str(value).strip()


def _words(f: Field, value: Any, path: Path) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str | int) for v in items):
        raise LoaderError(str(path), f"metadata field '{f.name}' must be a list of words, got {value!r}")
    return tuple(str(v).strip() for v in items if str(v).strip())


def _year(f: Field, value: Any, path: Path) -> int:
    year = value.year if isinstance(value, dt.date) else value
    try:
        year = int(str(year).strip())
    except ValueError:
        raise LoaderError(
            str(path), f"metadata field '{f.name}' must be a year like 2023, got {value!r}"
        ) from None
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise LoaderError(
            str(path), f"metadata field '{f.name}' must be between {YEAR_MIN} and {YEAR_MAX}, got {year}"
        )
    return year


def _flag(f: Field, value: Any, path: Path) -> bool:
    if not isinstance(value, bool):
        raise LoaderError(str(path), f"metadata field '{f.name}' must be true or false, got {value!r}")
    return value


def _date(f: Field, value: Any, path: Path) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    if not text:
        return ""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise LoaderError(
            str(path), f"metadata field '{f.name}' must be a date like 2027-06-30, got {value!r}"
        ) from None


def _span(f: Field, value: Any, path: Path) -> str:
    text = str(value).strip() if isinstance(value, str | int) else None
    if not text:
        if text == "":
            return ""
        raise LoaderError(
            str(path), f"metadata field '{f.name}' must be a range like 5-10 or one number, got {value!r}"
        )
    span = parse_span(text)
    if span is None:
        raise LoaderError(
            str(path), f"metadata field '{f.name}' must be a range like 5-10 or one number, got {value!r}"
        )
    low, high = span
    return str(low) if low == high else f"{low}-{high}"


_KINDS: dict[Kind, Callable[[Field, Any, Path], Value]] = {
    "span": _span,
    "text": _text,
    "list": _words,
    "year": _year,
    "bool": _flag,
    "date": _date,
}


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
