"""Render the multi-page PDF part of the bundled demo corpus.

Each source file ``tools/corpus_pdfs/sources/<district-slug>__<doc-slug>.md`` holds YAML front
matter (the corpus metadata keys plus ``layout: one_column | two_column``) and a body in simple
Markdown: ``#``/``##``/``###`` headings, paragraphs, ``- `` bullet lists, ``1. `` numbered lists,
``> `` note boxes and inline ``**bold**`` / ``*italic*``.

For every source the script writes

* ``corpus/<district-slug>/<doc-slug>.pdf`` -- an A4 PDF that looks like a municipal publication:
  title page (Konzeptpapier) or title block (all other types) naming the Kommunales
  Integrationszentrum, a running header on every page after the first, a footer with
  "Seite n von N", justified body text with German hyphenation (pyphen, ``de_DE``) and
* ``corpus/<district-slug>/<doc-slug>.pdf.meta.yaml`` -- the metadata sidecar (corpus metadata
  keys only, no ``layout``).

The output is reproducible: reportlab runs in invariant mode, so the same sources give
byte-identical PDFs.

Requirements: reportlab, pyyaml, pyphen (pyphen is needed for the hyphenation; the script stops
if it is missing).

Run from the repository root::

    python tools/corpus_pdfs/build.py                 # build all sources
    python tools/corpus_pdfs/build.py --only kreis-soest__sprachfoerderung-fachunterricht
    python tools/corpus_pdfs/build.py --out /tmp/corpus-test

Then check the result with ``python tools/corpus_pdfs/verify.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from reportlab.lib import colors
from reportlab.lib.enums import TA_JUSTIFY, TA_LEFT
from reportlab.lib.fonts import addMapping
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

try:
    import pyphen
except ImportError:  # pragma: no cover - exercised only on a broken environment
    sys.exit("build.py needs pyphen for German hyphenation: pip install pyphen")

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_SOURCES = HERE / "sources"
DEFAULT_OUT = REPO_ROOT / "corpus"

# ---------------------------------------------------------------------------------------------
# Metadata vocabulary (docs: corpus specification)
# ---------------------------------------------------------------------------------------------

META_KEYS: tuple[str, ...] = (
    "title",
    "district",
    "doc_type",
    "topics",
    "audience",
    "year",
    "language",
    "licence",
    "source",
)
#: The later metadata fields (kb/fields.py), copied to the sidecar as written, before ``licence``.
FIELD_KEYS: tuple[str, ...] = (
    "languages", "bildungsbereich", "schulform", "jahrgang", "fach", "programm", "handlungsfeld", "contact",
    "valid_until",
)  # fmt: skip
OPTIONAL_META_KEYS: tuple[str, ...] = ("easy_language", *FIELD_KEYS)
DOC_TYPES = frozenset({"Konzeptpapier", "Schulungsmaterial", "Praxisbericht", "Handreichung"})
TOPICS = frozenset(
    {
        "Durchgängige Sprachbildung",
        "Deutsch als Zweitsprache",
        "Herkunftssprachlicher Unterricht",
        "Eltern und Familien",
        "Interkulturelle Schulentwicklung",
        "Seiteneinstieg und Neuzuwanderung",
        "Flucht",
        "Ehrenamt",
        "Interkulturelle Öffnung der Verwaltung",
        "Kultursensible Pflege und Gesundheit",
        "Sport",
        "Kultur",
        "Übergang Schule–Beruf",
        "Antidiskriminierung",
    }
)
AUDIENCES = frozenset(
    {
        "Lehrkräfte",
        "Schulleitungen",
        "Kita-Fachkräfte",
        "Eltern",
        "KI-Fachkräfte",
        "Ehrenamtliche",
        "Verwaltung",
        "Pflege- und Gesundheitsfachkräfte",
        "Vereine",
        "Jugendliche",
    }
)
LANGUAGES = frozenset({"de", "tr", "ar", "uk"})
LAYOUTS = frozenset({"one_column", "two_column"})


@dataclass(frozen=True)
class DocMeta:
    """Metadata of one source document (corpus keys plus the layout choice)."""

    title: str
    district: str
    doc_type: str
    topics: tuple[str, ...]
    audience: tuple[str, ...]
    year: int
    language: str
    licence: str
    source: str
    layout: str
    easy_language: bool | None = None
    fields: tuple[tuple[str, Any], ...] = ()

    @property
    def ki_name(self) -> str:
        return f"Kommunales Integrationszentrum {self.district}"

    def sidecar_dict(self) -> dict[str, Any]:
        """The metadata as written to the ``.meta.yaml`` sidecar (no layout)."""
        data: dict[str, Any] = {
            "title": self.title,
            "district": self.district,
            "doc_type": self.doc_type,
            "topics": list(self.topics),
            "audience": list(self.audience),
            "year": self.year,
            "language": self.language,
            **dict(self.fields),
            "licence": self.licence,
            "source": self.source,
        }
        if self.easy_language is not None:
            data["easy_language"] = self.easy_language
        return data


class SourceError(ValueError):
    """A source file violates the corpus specification."""


def slugify(text: str) -> str:
    """Lower-case ASCII kebab-case with German umlauts transliterated ("Kreis Düren" -> "kreis-dueren")."""
    table = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"}
    text = "".join(table.get(ch, ch) for ch in text).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _string_list(raw: Any, key: str, vocabulary: frozenset[str], path: Path) -> tuple[str, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= 3:
        raise SourceError(f"{path.name}: {key} must be a list of 1-3 entries")
    for item in raw:
        if item not in vocabulary:
            raise SourceError(f"{path.name}: {key} entry {item!r} is not in the vocabulary")
    if len(set(raw)) != len(raw):
        raise SourceError(f"{path.name}: duplicate entries in {key}")
    return tuple(raw)


def parse_meta(raw: dict[str, Any], path: Path) -> DocMeta:
    """Validate the front matter of ``path`` against the corpus vocabulary."""
    allowed = set(META_KEYS) | set(OPTIONAL_META_KEYS) | {"layout"}
    missing = [key for key in (*META_KEYS, "layout") if key not in raw]
    unknown = sorted(set(raw) - allowed)
    if missing or unknown:
        raise SourceError(f"{path.name}: missing keys {missing}, unknown keys {unknown}")
    if raw["doc_type"] not in DOC_TYPES:
        raise SourceError(f"{path.name}: doc_type {raw['doc_type']!r} is not allowed")
    year = raw["year"]
    if not isinstance(year, int) or not 2015 <= year <= 2026:
        raise SourceError(f"{path.name}: year must be an integer 2015-2026")
    if raw["language"] not in LANGUAGES:
        raise SourceError(f"{path.name}: language {raw['language']!r} is not allowed")
    if raw["layout"] not in LAYOUTS:
        raise SourceError(f"{path.name}: layout must be one of {sorted(LAYOUTS)}")
    for key in ("title", "district", "licence", "source"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise SourceError(f"{path.name}: {key} must be a non-empty string")
    district_slug = path.stem.split("__", 1)[0]
    if slugify(raw["district"]) != district_slug:
        raise SourceError(f"{path.name}: file prefix does not match district {raw['district']!r}")
    easy = raw.get("easy_language")
    if easy is not None and not isinstance(easy, bool):
        raise SourceError(f"{path.name}: easy_language must be true or false")
    return DocMeta(
        title=raw["title"].strip(),
        district=raw["district"].strip(),
        doc_type=raw["doc_type"],
        topics=_string_list(raw["topics"], "topics", TOPICS, path),
        audience=_string_list(raw["audience"], "audience", AUDIENCES, path),
        year=year,
        language=raw["language"],
        licence=raw["licence"].strip(),
        source=raw["source"].strip(),
        layout=raw["layout"],
        easy_language=easy,
        fields=tuple((key, raw[key]) for key in FIELD_KEYS if key in raw),
    )


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    """Return (front matter, body) of a Markdown source."""
    match = re.match(r"\A---\n(.*?)\n---\n(.*)\Z", text, flags=re.DOTALL)
    if not match:
        raise SourceError(f"{path.name}: no YAML front matter between '---' lines")
    data = yaml.safe_load(match.group(1))
    if not isinstance(data, dict):
        raise SourceError(f"{path.name}: front matter is not a mapping")
    return data, match.group(2)


# ---------------------------------------------------------------------------------------------
# Markdown subset
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class ListBlock:
    items: tuple[str, ...]
    numbered: bool
    start: int = 1


@dataclass(frozen=True)
class Note:
    paragraphs: tuple[str, ...]


Block = Heading | Para | ListBlock | Note

_HEADING_RE = re.compile(r"^(#{1,3})\s+(.*\S)\s*$")
_BULLET_RE = re.compile(r"^[-*]\s+(.*)$")
_NUMBER_RE = re.compile(r"^(\d+)\.\s+(.*)$")


def parse_markdown(body: str) -> list[Block]:
    """Parse the Markdown subset used by the sources into blocks."""
    blocks: list[Block] = []
    para: list[str] = []
    items: list[str] = []
    numbered = False
    start = 1
    note: list[list[str]] = []

    def flush_para() -> None:
        if para:
            blocks.append(Para(" ".join(para)))
            para.clear()

    def flush_list() -> None:
        if items:
            blocks.append(ListBlock(tuple(items), numbered, start))
            items.clear()

    def flush_note() -> None:
        paragraphs = tuple(" ".join(lines) for lines in note if lines)
        if paragraphs:
            blocks.append(Note(paragraphs))
        note.clear()

    for raw_line in body.splitlines():
        line = raw_line.rstrip()
        stripped = line.strip()
        if stripped.startswith(">"):
            flush_para()
            flush_list()
            content = stripped[1:].strip()
            if not note:
                note.append([])
            if content:
                note[-1].append(content)
            elif note[-1]:
                note.append([])
            continue
        if note:
            flush_note()
        if not stripped:
            flush_para()
            flush_list()
            continue
        if m := _HEADING_RE.match(stripped):
            flush_para()
            flush_list()
            blocks.append(Heading(len(m.group(1)), m.group(2)))
        elif m := _BULLET_RE.match(stripped):
            flush_para()
            if items and numbered:
                flush_list()
            if not items:
                numbered, start = False, 1
            items.append(m.group(1))
        elif (m := _NUMBER_RE.match(stripped)) and (items or not para):
            flush_para()
            if items and not numbered:
                flush_list()
            if not items:
                numbered, start = True, int(m.group(1))
            items.append(m.group(2))
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + stripped  # continuation line of a list item
        else:
            flush_list()
            para.append(stripped)
    flush_para()
    flush_list()
    if note:
        flush_note()
    return blocks


def inline_markup(text: str) -> str:
    """Escape XML and turn **bold** / *italic* into reportlab paragraph markup."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", text)
    return text


def plain_text(text: str) -> str:
    """Inline Markdown removed (for word counts and PDF metadata)."""
    return re.sub(r"\*{1,2}(.+?)\*{1,2}", r"\1", text)


def body_word_count(blocks: Sequence[Block]) -> int:
    """Words of the body text, Markdown markers excluded."""
    texts: list[str] = []
    for block in blocks:
        if isinstance(block, (Heading, Para)):
            texts.append(block.text)
        elif isinstance(block, ListBlock):
            texts.extend(block.items)
        else:
            texts.extend(block.paragraphs)
    return sum(len(plain_text(t).split()) for t in texts)


# ---------------------------------------------------------------------------------------------
# Hyphenation
# ---------------------------------------------------------------------------------------------


# Words the LibreOffice patterns split wrongly ("Facht-exte", "gest-artet"); break points as in Duden.
HYPHENATION_EXCEPTIONS: dict[str, str] = {
    form.replace("-", ""): form
    for form in (
        "fach-tex-te",
        "fach-tex-ten",
        "sach-tex-te",
        "sach-tex-tes",
        "ge-star-tet",
        "wahl-mo-dul",
        "al-ler-gi-en",
        "ano-ny-mi-siert",
        "ano-ny-mi-sier-te",
        "ano-ny-mi-sier-ten",
        "ano-ny-mi-sier-ter",
        "ini-tia-ti-ve",
        "ini-tia-ti-ven",
        "hier-ar-chie",
    )
}
_VOWELS = frozenset("aeiouäöüy")


class GermanHyphenator:
    """pyphen ``de_DE`` wrapped as a reportlab hyphenator (callable: word -> (head, tail) pairs).

    Corrections on top of the LibreOffice patterns behind pyphen:

    * neighbouring break points ("Herkunfts-s-prachlicher", "Mit-a-r-beiter") are dropped, one of
      each such pair is always wrong;
    * "ck" before a consonant stays with the head ("Rück-meldung", not "Rü-ckmeldung");
    * a short exception list (``HYPHENATION_EXCEPTIONS``) fixes compounds the patterns get wrong.

    Words that already contain a hyphen are only split after that hyphen ("DaZ-" / "Kurs") when
    ``split_at_hyphens`` is true, never inside a part. reportlab 5.1 loses such hyphens when it
    re-wraps a paragraph with mixed fonts (``<b>``/``<i>``), so those paragraphs use an instance
    with ``split_at_hyphens=False`` (see ``Styles.for_markup``).
    """

    def __init__(self, lang: str = "de_DE", left: int = 2, right: int = 3, split_at_hyphens: bool = True) -> None:
        self._dic = pyphen.Pyphen(lang=lang, left=left, right=right)
        self.split_at_hyphens = split_at_hyphens

    def positions(self, word: str) -> list[int]:
        if "-" in word:
            if not self.split_at_hyphens:
                return []
            return [i + 1 for i, ch in enumerate(word[:-1]) if ch == "-" and i > 0]
        lower = word.lower()
        if lower in HYPHENATION_EXCEPTIONS:
            parts = HYPHENATION_EXCEPTIONS[lower].split("-")
            cuts = [sum(len(part) for part in parts[: i + 1]) for i in range(len(parts) - 1)]
            return [c for c in cuts if c >= 2 and len(word) - c >= 3]
        found = [int(p) for p in self._dic.positions(word)]
        pos_set = set(found)
        return [
            p
            for p in found
            if p - 1 not in pos_set
            and p + 1 not in pos_set
            and not (lower[p : p + 2] == "ck" and p + 2 < len(lower) and lower[p + 2] not in _VOWELS)
        ]

    def __call__(self, word: str) -> Iterator[tuple[str, str]]:
        for pos in sorted(self.positions(word), reverse=True):
            yield word[:pos], word[pos:]


# ---------------------------------------------------------------------------------------------
# Page design
# ---------------------------------------------------------------------------------------------

PAGE_W, PAGE_H = A4
MARGIN_L = 2.2 * cm
MARGIN_R = 2.0 * cm
MARGIN_TOP = 2.3 * cm
MARGIN_BOTTOM = 2.2 * cm
GUTTER = 0.7 * cm
TEXT_W = PAGE_W - MARGIN_L - MARGIN_R

PALETTE: tuple[colors.Color, ...] = (
    colors.HexColor("#00587C"),  # petrol
    colors.HexColor("#7A1F3D"),  # bordeaux
    colors.HexColor("#2E6B30"),  # green
    colors.HexColor("#8A4B08"),  # ochre
    colors.HexColor("#3B3F8C"),  # indigo
    colors.HexColor("#005F5A"),  # teal
    colors.HexColor("#5B2C6F"),  # purple
    colors.HexColor("#A23B1E"),  # rust
)
GREY = colors.HexColor("#555555")
LIGHT_GREY = colors.HexColor("#B0B0B0")


def accent_for(district: str) -> colors.Color:
    """A stable accent colour per district (independent of Python's hash seed)."""
    digest = hashlib.sha256(district.encode("utf-8")).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def tint(color: colors.Color, amount: float) -> colors.Color:
    """Mix ``color`` with white; ``amount`` = share of white."""
    return colors.Color(
        color.red + (1 - color.red) * amount,
        color.green + (1 - color.green) * amount,
        color.blue + (1 - color.blue) * amount,
    )


@dataclass(frozen=True)
class Styles:
    body: ParagraphStyle
    bullet: ParagraphStyle
    note: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    h3: ParagraphStyle
    title: ParagraphStyle
    cover_title: ParagraphStyle
    rich_variants: dict[str, ParagraphStyle]

    def for_markup(self, style: ParagraphStyle, markup: str) -> ParagraphStyle:
        """The variant of ``style`` to use for ``markup``.

        Paragraphs with inline tags get a hyphenator that never breaks at an existing hyphen
        (reportlab bug: such hyphens vanish when a mixed-font paragraph is wrapped twice).
        """
        if "<" in markup and style.name in self.rich_variants:
            return self.rich_variants[style.name]
        return style


def make_styles(meta: DocMeta, accent: colors.Color, hyphenator: GermanHyphenator) -> Styles:
    """Fonts and sizes per document type and layout (standard PDF fonts cover ä, ö, ü, ß)."""
    two_col = meta.layout == "two_column"
    serif = meta.doc_type == "Konzeptpapier"
    body_font = "Times-Roman" if serif else "Helvetica"
    bold_font = "Times-Bold" if serif else "Helvetica-Bold"
    italic_font = "Times-Italic" if serif else "Helvetica-Oblique"
    size = 9.2 if two_col else (10.8 if serif else 10.0)
    leading = size * 1.32
    common: dict[str, Any] = {
        "hyphenationLang": hyphenator,
        "embeddedHyphenation": 1,
        "hyphenationMinWordLength": 5,
        "splitLongWords": 1,
    }
    body = ParagraphStyle(
        "Body",
        fontName=body_font,
        fontSize=size,
        leading=leading,
        alignment=TA_JUSTIFY,
        spaceAfter=size * 0.55,
        **common,
    )
    # bold/italic mapping for <b>/<i> inside paragraphs
    family = "times" if serif else "helvetica"
    addMapping(family, 0, 0, body_font)
    addMapping(family, 1, 0, bold_font)
    addMapping(family, 0, 1, italic_font)
    addMapping(family, 1, 1, "Times-BoldItalic" if serif else "Helvetica-BoldOblique")
    bullet = ParagraphStyle(
        "Bullet",
        parent=body,
        leftIndent=size * 1.5,
        bulletIndent=size * 0.3,
        bulletFontName=body_font,
        spaceAfter=size * 0.25,
    )
    note = ParagraphStyle(
        "Note",
        parent=body,
        fontSize=size * 0.95,
        leading=leading * 0.95,
        spaceAfter=size * 0.3,
        alignment=TA_LEFT,  # boxes are set ragged right, like most municipal info boxes
    )
    safe = GermanHyphenator(split_at_hyphens=False)
    rich_variants = {
        st.name: ParagraphStyle(f"{st.name}Rich", parent=st, hyphenationLang=safe, embeddedHyphenation=0)
        for st in (body, bullet, note)
    }
    head_font = "Helvetica-Bold"
    h1 = ParagraphStyle(
        "H1",
        fontName=head_font,
        fontSize=size + 4.5,
        leading=(size + 4.5) * 1.2,
        textColor=accent,
        spaceBefore=size * 1.1,
        spaceAfter=size * 0.6,
        keepWithNext=1,
        alignment=TA_LEFT,
    )
    h2 = ParagraphStyle(
        "H2",
        parent=h1,
        fontSize=size + 2,
        leading=(size + 2) * 1.22,
        spaceBefore=size * 0.9,
        spaceAfter=size * 0.45,
    )
    h3 = ParagraphStyle(
        "H3",
        parent=h1,
        fontSize=size + 0.5,
        leading=(size + 0.5) * 1.25,
        textColor=colors.black,
        spaceBefore=size * 0.6,
        spaceAfter=size * 0.3,
    )
    title = ParagraphStyle(
        "Title",
        fontName="Helvetica-Bold",
        fontSize=19,
        leading=23,
        textColor=colors.black,
        alignment=TA_LEFT,
    )
    cover_title = ParagraphStyle(
        "CoverTitle",
        parent=title,
        fontSize=26,
        leading=31,
        textColor=accent,
    )
    return Styles(body, bullet, note, h1, h2, h3, title, cover_title, rich_variants)


def fit_text(text: str, font: str, size: float, width: float) -> str:
    """Shorten ``text`` with an ellipsis so that it fits into ``width``."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + " …", font, size) > width:
        text = text[:-1]
    return text.rstrip(" ,;:·–") + " …"


def running_title(meta: DocMeta) -> str:
    """Header text, e.g. 'Kommunales Integrationszentrum Kreis Soest · Handreichung: Sprachförderung ...'."""
    short = re.split(r"\s*[:–]\s+|\s+-\s+", meta.title, maxsplit=1)[0]
    return f"{meta.ki_name} · {meta.doc_type}: {short}"


class PageDecorator:
    """Draws title block / cover, running header and footer onto the canvas."""

    def __init__(
        self,
        meta: DocMeta,
        styles: Styles,
        accent: colors.Color,
        total_pages: int | None,
    ) -> None:
        self.meta = meta
        self.styles = styles
        self.accent = accent
        self.total_pages = total_pages

    # -- shared parts -------------------------------------------------------------------------

    def _footer(self, canv: Canvas, page: int) -> None:
        total = self.total_pages if self.total_pages is not None else 99
        y = MARGIN_BOTTOM - 0.95 * cm
        canv.setStrokeColor(LIGHT_GREY)
        canv.setLineWidth(0.5)
        canv.line(MARGIN_L, y + 0.42 * cm, PAGE_W - MARGIN_R, y + 0.42 * cm)
        canv.setFillColor(GREY)
        canv.setFont("Helvetica", 7.5)
        left = f"© {self.meta.year} {self.meta.ki_name} · {self.meta.licence} · fiktives Demo-Dokument"
        canv.drawString(MARGIN_L, y, fit_text(left, "Helvetica", 7.5, TEXT_W - 3 * cm))
        canv.setFont("Helvetica-Bold", 7.5)
        canv.drawRightString(PAGE_W - MARGIN_R, y, f"Seite {page} von {total}")

    def _header(self, canv: Canvas) -> None:
        y = PAGE_H - MARGIN_TOP + 0.75 * cm
        canv.setFillColor(self.accent)
        canv.rect(MARGIN_L, y - 0.05 * cm, 0.18 * cm, 0.38 * cm, stroke=0, fill=1)
        canv.setFillColor(GREY)
        canv.setFont("Helvetica", 7.8)
        text = fit_text(running_title(self.meta), "Helvetica", 7.8, TEXT_W - 0.5 * cm)
        canv.drawString(MARGIN_L + 0.35 * cm, y, text)
        canv.setStrokeColor(LIGHT_GREY)
        canv.setLineWidth(0.5)
        canv.line(MARGIN_L, y - 0.25 * cm, PAGE_W - MARGIN_R, y - 0.25 * cm)

    def _band(self, canv: Canvas, height: float) -> None:
        """Coloured band with the name of the KI at the top of page 1."""
        canv.setFillColor(self.accent)
        canv.rect(0, PAGE_H - height, PAGE_W, height, stroke=0, fill=1)
        canv.setFillColor(colors.white)
        canv.setFont("Helvetica-Bold", 12)
        canv.drawString(MARGIN_L, PAGE_H - height + 0.95 * cm, "Kommunales Integrationszentrum")
        canv.setFont("Helvetica", 12)
        canv.drawString(MARGIN_L, PAGE_H - height + 0.4 * cm, self.meta.district)
        canv.setFont("Helvetica", 8)
        canv.drawRightString(PAGE_W - MARGIN_R, PAGE_H - height + 0.4 * cm, "Integration gemeinsam gestalten")

    # -- page callbacks -----------------------------------------------------------------------

    def first_page(self, canv: Canvas, doc: BaseDocTemplate) -> None:
        canv.saveState()
        band_h = 2.2 * cm
        self._band(canv, band_h)
        top = PAGE_H - band_h - 0.8 * cm
        canv.setFillColor(self.accent)
        canv.setFont("Helvetica-Bold", 9)
        canv.drawString(MARGIN_L, top, self.meta.doc_type.upper())
        title = Paragraph(inline_markup(self.meta.title), self.styles.title)
        _, th = title.wrap(TEXT_W, PAGE_H)
        title.drawOn(canv, MARGIN_L, top - 0.35 * cm - th)
        y = top - 0.35 * cm - th - 0.55 * cm
        canv.setFillColor(GREY)
        canv.setFont("Helvetica", 8.5)
        info = f"{self.meta.year} · Zielgruppe: {', '.join(self.meta.audience)}"
        canv.drawString(MARGIN_L, y, fit_text(info, "Helvetica", 8.5, TEXT_W))
        canv.setStrokeColor(self.accent)
        canv.setLineWidth(1.2)
        canv.line(MARGIN_L, y - 0.3 * cm, PAGE_W - MARGIN_R, y - 0.3 * cm)
        canv.restoreState()

    def cover_page(self, canv: Canvas, doc: BaseDocTemplate) -> None:
        canv.saveState()
        band_h = 4.2 * cm
        self._band(canv, band_h)
        canv.setFillColor(tint(self.accent, 0.85))
        canv.rect(0, 0, 1.1 * cm, PAGE_H - band_h, stroke=0, fill=1)
        top = PAGE_H - band_h - 4.0 * cm
        canv.setFillColor(GREY)
        canv.setFont("Helvetica-Bold", 11)
        canv.drawString(MARGIN_L, top, self.meta.doc_type)
        title = Paragraph(inline_markup(self.meta.title), self.styles.cover_title)
        _, th = title.wrap(TEXT_W - 1 * cm, PAGE_H)
        title.drawOn(canv, MARGIN_L, top - 0.6 * cm - th)
        y = top - 0.6 * cm - th - 1.4 * cm
        canv.setStrokeColor(self.accent)
        canv.setLineWidth(2)
        canv.line(MARGIN_L, y, MARGIN_L + 5 * cm, y)
        canv.setFillColor(colors.black)
        canv.setFont("Helvetica", 10.5)
        lines = [
            f"Stand: {self.meta.year}",
            f"Themen: {', '.join(self.meta.topics)}",
            f"Zielgruppe: {', '.join(self.meta.audience)}",
        ]
        for i, line in enumerate(lines):
            canv.drawString(MARGIN_L, y - 0.8 * cm - i * 0.6 * cm, fit_text(line, "Helvetica", 10.5, TEXT_W))
        canv.setFont("Helvetica-Bold", 9)
        canv.drawString(MARGIN_L, MARGIN_BOTTOM + 2.2 * cm, "Herausgeber")
        canv.setFont("Helvetica", 9)
        canv.drawString(MARGIN_L, MARGIN_BOTTOM + 1.7 * cm, self.meta.ki_name)
        canv.drawString(MARGIN_L, MARGIN_BOTTOM + 1.25 * cm, "E-Mail: ki@beispiel-kommune.de")
        canv.restoreState()

    def later_page(self, canv: Canvas, doc: BaseDocTemplate) -> None:
        canv.saveState()
        self._header(canv)
        canv.restoreState()

    def page_end(self, canv: Canvas, doc: BaseDocTemplate) -> None:
        """Footer, drawn after the frames so that it also comes last in the content stream
        (and in text extraction), as in PDFs exported from office software."""
        canv.saveState()
        self._footer(canv, doc.page)
        canv.restoreState()


def title_block_height(meta: DocMeta, styles: Styles) -> float:
    """Vertical space the title block takes on page 1 (measured from the top edge)."""
    title = Paragraph(inline_markup(meta.title), styles.title)
    _, th = title.wrap(TEXT_W, PAGE_H)
    return float(2.2 * cm + 0.8 * cm + 0.35 * cm + th + 0.55 * cm + 0.3 * cm + 0.6 * cm)


def column_frames(prefix: str, top: float, two_col: bool) -> list[Frame]:
    """Body frames from ``top`` (y coordinate) down to the bottom margin."""
    height = top - MARGIN_BOTTOM
    if not two_col:
        return [Frame(MARGIN_L, MARGIN_BOTTOM, TEXT_W, height, id=f"{prefix}-body", showBoundary=0)]
    col_w = (TEXT_W - GUTTER) / 2
    return [
        Frame(MARGIN_L, MARGIN_BOTTOM, col_w, height, id=f"{prefix}-left", showBoundary=0),
        Frame(MARGIN_L + col_w + GUTTER, MARGIN_BOTTOM, col_w, height, id=f"{prefix}-right", showBoundary=0),
    ]


def column_width(meta: DocMeta) -> float:
    return float((TEXT_W - GUTTER) / 2 if meta.layout == "two_column" else TEXT_W)


# ---------------------------------------------------------------------------------------------
# Flowables
# ---------------------------------------------------------------------------------------------


def note_box(paragraphs: Sequence[str], styles: Styles, accent: colors.Color, width: float) -> Table:
    """A tinted box with a coloured left rule, used for '> ' blocks (Hinweis, Tipp, Kontakt)."""
    cells = []
    for text in paragraphs:
        markup = inline_markup(text)
        cells.append([Paragraph(markup, styles.for_markup(styles.note, markup))])
    table = Table(cells, colWidths=[width])
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), tint(accent, 0.88)),
                ("LINEBEFORE", (0, 0), (0, -1), 2.2, accent),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
                ("RIGHTPADDING", (0, 0), (-1, -1), 7),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, 0), 6),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 5),
            ]
        )
    )
    return table


def build_flowables(
    meta: DocMeta, blocks: Sequence[Block], styles: Styles, accent: colors.Color
) -> list[Flowable]:
    """Turn Markdown blocks into reportlab flowables."""
    width = column_width(meta)
    story: list[Flowable] = []
    skipped_title = False
    previous: Block | None = None
    for block in blocks:
        if isinstance(block, Heading):
            if block.level == 1 and not skipped_title and plain_text(block.text) == meta.title:
                skipped_title = True  # the title is printed in the title block / on the cover
                continue
            style = {1: styles.h1, 2: styles.h2, 3: styles.h3}[block.level]
            if not isinstance(previous, Heading):
                # start a new column/page rather than leave a heading with 1-2 lines at the bottom;
                # consecutive headings stay together through keepWithNext
                story.append(CondPageBreak(style.fontSize * 7))
            story.append(Paragraph(inline_markup(block.text), style))
        elif isinstance(block, Para):
            markup = inline_markup(block.text)
            story.append(Paragraph(markup, styles.for_markup(styles.body, markup)))
        elif isinstance(block, ListBlock):
            for i, item in enumerate(block.items):
                # en dash rather than "•": reportlab encodes the bullet as 0x7F in WinAnsi,
                # which text extractors return as a control character
                marker = f"{block.start + i}." if block.numbered else "–"
                markup = inline_markup(item)
                story.append(Paragraph(markup, styles.for_markup(styles.bullet, markup), bulletText=marker))
            story.append(Spacer(1, styles.body.fontSize * 0.4))
        else:
            story.append(Spacer(1, styles.body.fontSize * 0.3))
            story.append(KeepTogether([note_box(block.paragraphs, styles, accent, width)]))
            story.append(Spacer(1, styles.body.fontSize * 0.8))
        previous = block
    return story


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    pdf: bytes
    pages: int


def render_pdf(meta: DocMeta, blocks: Sequence[Block], total_pages: int | None) -> RenderResult:
    """Render one document; ``total_pages`` is None in the first (counting) pass."""
    accent = accent_for(meta.district)
    hyphenator = GermanHyphenator()
    styles = make_styles(meta, accent, hyphenator)
    two_col = meta.layout == "two_column"
    block_h = title_block_height(meta, styles)
    deco = PageDecorator(meta, styles, accent, total_pages)
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN_L,
        rightMargin=MARGIN_R,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=meta.title,
        author=meta.ki_name,
        subject=f"{meta.doc_type} – {', '.join(meta.topics)}",
        keywords=", ".join(meta.topics),
        creator="KI-Wissensbasis tools/corpus_pdfs/build.py",
        producer="ReportLab",
        lang="de-DE",
        invariant=1,
    )
    later = PageTemplate(
        id="later",
        frames=column_frames("later", PAGE_H - MARGIN_TOP, two_col),
        onPage=deco.later_page,
        onPageEnd=deco.page_end,
    )
    story: list[Flowable] = []
    if meta.doc_type == "Konzeptpapier":
        cover = PageTemplate(
            id="cover",
            frames=[Frame(MARGIN_L, MARGIN_BOTTOM, TEXT_W, PAGE_H - MARGIN_TOP - MARGIN_BOTTOM, id="cover")],
            onPage=deco.cover_page,
            onPageEnd=deco.page_end,
        )
        doc.addPageTemplates([cover, later])
        story += [NextPageTemplate("later"), PageBreak()]
    else:
        first = PageTemplate(
            id="first",
            frames=column_frames("first", PAGE_H - block_h, two_col),
            onPage=deco.first_page,
            onPageEnd=deco.page_end,
            autoNextPageTemplate="later",
        )
        doc.addPageTemplates([first, later])
    story += build_flowables(meta, blocks, styles, accent)
    doc.build(story)
    return RenderResult(buffer.getvalue(), doc.page)


def render_two_pass(meta: DocMeta, blocks: Sequence[Block]) -> RenderResult:
    """Count the pages first, then render again with "Seite n von N" in the footer."""
    first = render_pdf(meta, blocks, None)
    final = render_pdf(meta, blocks, first.pages)
    if final.pages != first.pages:
        raise RuntimeError(f"page count changed between passes for {meta.title!r}")
    return final


def sidecar_yaml(meta: DocMeta) -> str:
    """Sidecar in the style of the corpus spec (quoted strings, flow lists)."""

    def q(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    data = meta.sidecar_dict()
    lines = []
    for key, value in data.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int):
            rendered = str(value)
        elif isinstance(value, list):
            rendered = "[" + ", ".join(q(v) for v in value) + "]"
        elif key in ("doc_type", "language") or not isinstance(value, str):
            rendered = str(value)  # a date (valid_until) unquoted, so that it reads back as a date
        else:
            rendered = q(value)
        lines.append(f"{key}: {rendered}")
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != data:  # the hand-written YAML must round-trip
        raise RuntimeError(f"sidecar for {meta.title!r} does not round-trip")
    return text


@dataclass(frozen=True)
class SourceDoc:
    path: Path
    district_slug: str
    doc_slug: str
    meta: DocMeta
    blocks: tuple[Block, ...]

    @property
    def words(self) -> int:
        return body_word_count(self.blocks)


def load_source(path: Path) -> SourceDoc:
    """Read and validate one source file."""
    if "__" not in path.stem:
        raise SourceError(f"{path.name}: expected <district-slug>__<doc-slug>.md")
    district_slug, doc_slug = path.stem.split("__", 1)
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", doc_slug):
        raise SourceError(f"{path.name}: doc-slug must be lower-case ASCII kebab-case")
    text = path.read_text(encoding="utf-8")
    check_encodable(text, path)
    raw, body = split_front_matter(text, path)
    meta = parse_meta(raw, path)
    return SourceDoc(path, district_slug, doc_slug, meta, tuple(parse_markdown(body)))


def check_encodable(text: str, path: Path) -> None:
    """The standard PDF fonts use WinAnsiEncoding (cp1252); other characters would print as boxes."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise SourceError(f"{path.name}:{line}: character {text[exc.start]!r} is not in WinAnsiEncoding") from exc


def iter_sources(sources: Path, only: Sequence[str]) -> Iterator[Path]:
    paths = sorted(sources.glob("*__*.md"))
    if only:
        wanted = set(only)
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"unknown sources: {', '.join(sorted(missing))}")
    yield from paths


def build_one(src: SourceDoc, out_root: Path, log: Callable[[str], None]) -> RenderResult:
    result = render_two_pass(src.meta, src.blocks)
    target_dir = out_root / src.district_slug
    target_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = target_dir / f"{src.doc_slug}.pdf"
    pdf_path.write_bytes(result.pdf)
    (target_dir / f"{src.doc_slug}.pdf.meta.yaml").write_text(sidecar_yaml(src.meta), encoding="utf-8")
    log(
        f"{pdf_path.relative_to(out_root.parent) if out_root.parent in pdf_path.parents else pdf_path}"
        f"  pages={result.pages}  words={src.words}  layout={src.meta.layout}"
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES, help="directory with *.md sources")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpus root to write into")
    parser.add_argument("--only", nargs="*", default=[], help="source stems to build (default: all)")
    args = parser.parse_args(argv)

    paths = list(iter_sources(args.sources, args.only))
    if not paths:
        print(f"no sources found in {args.sources}", file=sys.stderr)
        return 1
    for path in paths:
        build_one(load_source(path), args.out, print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
