"""Markdown with optional YAML front matter: headings become section context, markup is removed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kb.documents import Document, Heading, Section
from kb.loaders.headings import HeadingTrail
from kb.loaders.hyphens import repair_hyphens
from kb.loaders.metadata import build_metadata, parse_yaml, read_sidecar
from kb.loaders.text import decode_text

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: keep alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: keep text
    (re.compile(r"<[^>\n]+>"), ""),  # inline html tags
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])"), r"\1"),
    (re.compile(r"`([^`]*)`"), r"\1"),
]
_BLOCK_PREFIX = re.compile(r"^\s*(?:>\s?)*(?:[-*+]\s+|\d+[.)]\s+)?(?:\[[ xX]\]\s+)?")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def split_front_matter(source: str, path: Path) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(source)
    if not match:
        return {}, source
    return parse_yaml(match.group(1), path), source[match.end() :]


def load(path: Path) -> Document:
    source = decode_text(path.read_bytes(), path)
    front, body = split_front_matter(source, path)
    raw = {**read_sidecar(path), **front}
    sections, trail = parse_body(body)
    metadata = build_metadata(raw, path, fallback_title=trail.first or path.stem)
    headings = tuple(Heading(text) for text in trail.seen)
    return Document(path, "markdown", metadata, tuple(sections), headings=headings)


def parse_body(body: str) -> tuple[list[Section], HeadingTrail]:
    """Split Markdown into sections (one per paragraph, with the heading path); return the headings read too."""
    sections: list[Section] = []
    trail = HeadingTrail()
    paragraph: list[str] = []
    in_fence = False

    def flush() -> None:
        text = repair_hyphens("\n".join(paragraph))
        paragraph.clear()
        if text:
            sections.append(Section(text=text, heading=trail.context))

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            flush()
            trail.enter(len(heading.group(1)), clean_inline(heading.group(2)))
        elif not line.strip() or _TABLE_RULE.match(line):
            flush()
        elif re.match(r"^\s*([-*+]|\d+[.)])\s+", line) or line.lstrip().startswith("|"):
            flush()  # list items and table rows stand alone, so they end a sentence
            paragraph.append(clean_inline(_BLOCK_PREFIX.sub("", line).replace("|", " ; ").strip(" ;")))
            flush()
        else:
            paragraph.append(clean_inline(_BLOCK_PREFIX.sub("", line)))
    flush()
    return sections, trail


def clean_inline(text: str) -> str:
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return re.sub(r"\s+", " ", text).strip()
