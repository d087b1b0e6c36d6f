"""A PDF's pages as lines with their place and font, read by PDFium (pypdfium2).

PDFium places characters by their positions, so it spaces words right where pypdf letter-spaces them
("D r. Ma tthias R ößler"), and it marks a hyphen that ends a line as U+FFFE, which tells a syllable break from
a dash ("Erster Senat -"). Each character keeps its box; a line keeps its bounding box (points from the page's
top left), its type size (the median loose glyph height) and whether its font is bold, which is what the page
furniture and the heading rules in :mod:`kb.loaders.pdf` need.

Repairs done here, where the glyphs are known: characters without a Unicode mapping (control codes such as a
LaTeX font's "ft" ligature) are named from the font's encoding (``/f_t``) through pypdf; symbol-font bullets
(Wingdings, Symbol in the private-use area) become "•"; other private-use and control characters are dropped;
small raised digits (footnote markers, "Netzwerke¹") are taken out of the words.
"""

from __future__ import annotations

import ctypes
import re
import statistics
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from kb.errors import LoaderError

_PDFIUM = threading.Lock()
#: What PDFium puts at the end of a line whose last character is a hyphen it takes for a syllable break.
LINE_END_HYPHEN = "\ufffe"
_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.I)
_SYMBOL_FONT = re.compile(r"wingding|symbol|webding|dingbat", re.I)
_SUBSET_PREFIX = re.compile(r"^[A-Z]{6}\+")
#: Glyph names of ligatures and symbols that the Adobe glyph list spells differently or not at all.
_GLYPHS = {"ff": "ff", "fi": "fi", "fl": "fl", "ffi": "ffi", "ffl": "ffl", "germandbls": "ß", "section": "§"}
#: Superscript digits after a word are footnote markers ("Netzwerke¹"); after a unit ("m²") they are kept.
_SUPERSCRIPT_MARK = re.compile(r"([^\W\d_]{3,})[¹²³⁴⁵⁶⁷⁸⁹⁰]+")
_UNI_NAME = re.compile(r"^(?:uni([0-9A-F]{4})|u([0-9A-F]{4,6}))$")


@dataclass(frozen=True)
class Line:
    """One line of a page (or one stretch of it, where a wide gap splits a line into columns or cells)."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    size: float  # the type size in effect: median loose glyph height, in points
    bold: bool = False

    @property
    def visible(self) -> int:
        """The number of characters that are not white space."""
        return sum(not ch.isspace() for ch in self.text)


@dataclass(frozen=True)
class Page:
    """The lines of one page in PDFium's reading order; ``number`` counts from 1."""

    number: int
    width: float
    height: float
    lines: tuple[Line, ...]

    @property
    def visible(self) -> int:
        return sum(line.visible for line in self.lines)


@dataclass(frozen=True)
class OutlineEntry:
    """A bookmark of the PDF's outline: its depth (0 outermost), its title and the page it points to."""

    level: int
    title: str
    page: int | None


@dataclass(frozen=True)
class PdfSource:
    """What the PDF itself holds: pages of lines, the title of its document information and its outline."""

    pages: tuple[Page, ...]
    info_title: str = ""
    outline: tuple[OutlineEntry, ...] = field(default_factory=tuple)


@dataclass
class _Char:
    ch: str
    left: float  # the box in points from the page's top left corner
    top: float
    right: float
    bottom: float
    loose_bottom: float
    height: float  # loose box height: the font's size on the page
    index: int = -1  # the character's index on PDFium's text page


def read_pdf(path: Path) -> PdfSource:
    """Open ``path`` with PDFium and read every page's lines, the document title and the outline."""
    with _PDFIUM:  # PDFium is not thread-safe; a file read outside the sandbox may be read in a server thread
        document = _open(path)
        try:
            glyphs = _GlyphNames(path)
            pages = tuple(_read_page(document, index, glyphs, path) for index in range(len(document)))
            title = _info_title(document)
            outline = _outline(document)
        finally:
            document.close()
    return PdfSource(pages=pages, info_title=title, outline=outline)


def _open(path: Path) -> pdfium.PdfDocument:
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if exc.err_code == _PASSWORD_ERROR:
            raise LoaderError(
                str(path), "encrypted PDF (password protected): remove the password and ingest again"
            ) from exc
        raise LoaderError(str(path), f"corrupt or truncated PDF ({exc})") from exc
    if len(document) == 0:
        document.close()
        raise LoaderError(str(path), "corrupt or truncated PDF (no page can be read)")
    return document


def _read_page(document: pdfium.PdfDocument, index: int, glyphs: _GlyphNames, path: Path) -> Page:
    try:
        page = document[index]
        width, height = page.get_size()
        textpage = page.get_textpage()
        count = textpage.count_chars()
        text = textpage.get_text_range(0, count) if count > 0 else ""
        chars = _chars(textpage, text, height, glyphs, index)
    except pdfium.PdfiumError as exc:
        raise LoaderError(str(path), f"text of page {index + 1} cannot be extracted ({exc})") from exc

    def bold(i: int) -> bool:
        return pdfium_c.FPDFText_GetFontWeight(textpage.raw, i) >= 600 or bool(
            _BOLD_NAME.search(glyphs.font_name(textpage, i))
        )

    lines = [line for run in _runs(chars) for line in _split_gaps(run, bold)]
    return Page(number=index + 1, width=width, height=height, lines=tuple(_merge_rows(lines)))


def _chars(textpage: Any, text: str, height: float, glyphs: _GlyphNames, index: int) -> list[_Char | None]:
    """Every character of the page with its box (``None`` for a line break PDFium inserted)."""
    out: list[_Char | None] = []
    if len(text) != textpage.count_chars():  # characters outside the BMP: positions cannot be matched
        return [_Char(ch, 0, 0, 0, 0, 0, 0) if ch not in "\r\n" else None for ch in text]
    rect = pdfium_c.FS_RECTF()
    for i, ch in enumerate(text):
        if ch in "\r\n":
            out.append(None)
            continue
        if ch.isspace():
            out.append(_Char(" ", 0, 0, 0, 0, 0, 0))
            continue
        # the loose box spans the font's ascent and descent: its height is the type size, its bottom the line's
        pdfium_c.FPDFText_GetLooseCharBox(textpage.raw, i, rect)
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or 0xE000 <= code <= 0xF8FF or code == 0xFFFD:
            ch = glyphs.repair(textpage, i, ch, index)
        top, bottom = height - rect.top, height - rect.bottom
        out.append(_Char(ch, rect.left, top, rect.right, bottom, bottom, rect.top - rect.bottom, index=i))
        if ch == LINE_END_HYPHEN:
            out.append(None)  # PDFium joins the line after a broken word; it is a line of its own
    return out


def _runs(chars: list[_Char | None]) -> list[list[_Char]]:
    runs: list[list[_Char]] = [[]]
    for char in chars:
        if char is None:
            runs.append([])
        elif char.ch:
            runs[-1].append(char)
    return [run for run in runs if any(not c.ch.isspace() for c in run)]


def _split_gaps(run: list[_Char], bold: Callable[[int], bool]) -> list[Line]:
    """A run of characters as lines, split where a gap wider than a few type sizes separates two columns
    (margin letters "(A) (C)", a header's left and right halves, table cells)."""
    parts: list[list[_Char]] = [[]]
    previous: _Char | None = None
    for char in run:
        if char.ch.isspace():
            parts[-1].append(char)
            continue
        if previous is not None and previous.height > 0:
            gap = char.left - previous.right
            if gap > 3 * max(previous.height, char.height) or char.left < previous.left - 2 * previous.height:
                parts.append([])
        parts[-1].append(char)
        previous = char
    return [line for part in parts if (line := _line(part, bold)) is not None]


def _line(chars: list[_Char], bold: Callable[[int], bool]) -> Line | None:
    ink = [c for c in chars if not c.ch.isspace()]
    if not ink:
        return None
    size = statistics.median(c.height for c in ink) if ink[0].height else 0.0
    if size:
        base = statistics.median(c.loose_bottom for c in ink)
        # small raised digits and stars are footnote markers: "Netzwerke¹" is "Netzwerke"
        marker = {
            id(c)
            for c in ink
            if (c.ch.isdigit() or c.ch in "*†") and c.height < 0.8 * size and c.loose_bottom < base - 0.2 * size
        }
        if marker and len(marker) < len(ink):
            chars = [c for c in chars if id(c) not in marker]
            ink = [c for c in ink if id(c) not in marker]
    text = " ".join(
        unicodedata.normalize("NFKC", _SUPERSCRIPT_MARK.sub(r"\1", "".join(c.ch for c in chars))).split()
    )
    if not text:
        return None
    sample = [c.index for c in (ink[0], ink[len(ink) // 2], ink[-1]) if c.index >= 0]
    return Line(
        text=text,
        left=min(c.left for c in ink),
        top=min(c.top for c in ink),
        right=max(c.right for c in ink),
        bottom=max(c.bottom for c in ink),
        size=size,
        bold=bool(sample) and all(map(bold, sample)),
    )


def _merge_rows(lines: list[Line]) -> list[Line]:
    """Lines PDFium broke on one row (after a raised footnote marker, before a full stop) joined again."""
    out: list[Line] = []
    for line in lines:
        before = out[-1] if out else None
        if (
            before is not None
            and before.size
            and abs(line.bottom - before.bottom) < 0.35 * before.size
            and 0 <= line.left - before.right < 1.0 * before.size
            and not before.text.endswith(LINE_END_HYPHEN)
        ):
            glue = "" if line.text[:1] in ".,;:!?)]" or line.left - before.right < 0.1 * before.size else " "
            out[-1] = Line(
                text=before.text + glue + line.text,
                left=before.left,
                top=min(before.top, line.top),
                right=line.right,
                bottom=max(before.bottom, line.bottom),
                size=before.size,
                bold=before.bold,
            )
        else:
            out.append(line)
    return out


class _GlyphNames:
    """Characters without a Unicode mapping, named from their font's encoding (``/Differences``), read with
    pypdf only when such a character occurs."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._reader: Any = None  # a pypdf reader, opened once on the first page that needs it
        self._fonts: dict[int, dict[str, dict[int, str]]] = {}
        self._buffer = ctypes.create_string_buffer(256)
        self._flags = ctypes.c_int()

    def font_name(self, textpage: Any, i: int) -> str:
        pdfium_c.FPDFText_GetFontInfo(textpage.raw, i, self._buffer, len(self._buffer), ctypes.byref(self._flags))
        return _SUBSET_PREFIX.sub("", self._buffer.value.decode("latin-1", "replace"))

    def repair(self, textpage: Any, i: int, ch: str, page: int) -> str:
        code = ord(ch)
        font = self.font_name(textpage, i)
        if 0xE000 <= code <= 0xF8FF:
            if _SYMBOL_FONT.search(font) or (code & 0xFF00) == 0xF000:
                return "•"  # a symbol font's bullet, tick or arrow at the start of a list item
            return ""
        name = self._differences(page).get(font, {}).get(code & 0xFF) if code < 0x100 else None
        return _glyph_text(name) if name else ""

    def _differences(self, page: int) -> dict[str, dict[int, str]]:
        if page not in self._fonts:
            if self._reader is None:
                from pypdf import PdfReader

                try:
                    self._reader = PdfReader(str(self._path), strict=False)
                except Exception:  # a file pypdf cannot parse only costs the repair of a few glyphs
                    self._reader = False
            self._fonts[page] = _font_differences(self._reader, page) if self._reader else {}
        return self._fonts[page]


def _font_differences(reader: Any, page: int) -> dict[str, dict[int, str]]:
    """``{font name: {code: glyph name}}`` of the fonts on a page (of a pypdf reader) whose encoding names its
    glyphs."""
    from pypdf.generic import ArrayObject, DictionaryObject

    found: dict[str, dict[int, str]] = {}
    try:
        resources = reader.pages[page].get("/Resources")
        resources = resources.get_object() if resources is not None else None
        fonts = resources.get("/Font") if isinstance(resources, DictionaryObject) else None
        fonts = fonts.get_object() if fonts is not None else None
        for ref in fonts.values() if isinstance(fonts, DictionaryObject) else ():
            font = ref.get_object()
            encoding = font.get("/Encoding")
            encoding = encoding.get_object() if encoding is not None else None
            differences = encoding.get("/Differences") if isinstance(encoding, DictionaryObject) else None
            if not isinstance(differences, ArrayObject):
                continue
            codes: dict[int, str] = {}
            code = 0
            for item in differences:
                if isinstance(item, int):
                    code = item
                else:
                    codes[code] = str(item).lstrip("/")
                    code += 1
            found[_SUBSET_PREFIX.sub("", str(font.get("/BaseFont", "")).lstrip("/"))] = codes
    except Exception:  # a damaged font dictionary only costs the repair of a few glyphs
        return found
    return found


def _glyph_text(name: str) -> str:
    """The text of a glyph name: "f_t" → "ft", "uni00DF" → "ß", "germandbls" → "ß"; unknown names → ""."""
    parts = name.split(".")[0].split("_")
    out = []
    for part in parts:
        uni = _UNI_NAME.match(part)
        if uni:
            out.append(chr(int(uni.group(1) or uni.group(2), 16)))
        elif part in _GLYPHS:
            out.append(_GLYPHS[part])
        elif len(part) == 1 and part.isalpha():
            out.append(part)
        else:
            try:
                out.append(unicodedata.lookup(part))
            except KeyError:
                return ""
    return "".join(out)


def _info_title(document: pdfium.PdfDocument) -> str:
    try:
        title = document.get_metadata_value("Title")
    except (pdfium.PdfiumError, KeyError, UnicodeDecodeError):
        return ""
    return " ".join(str(title or "").split())


def _outline(document: pdfium.PdfDocument) -> tuple[OutlineEntry, ...]:
    entries = []
    try:
        for bookmark in document.get_toc(max_depth=4):
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            title = " ".join(bookmark.get_title().split())
            if title:
                entries.append(OutlineEntry(bookmark.level, title, index + 1 if index is not None else None))
    except (pdfium.PdfiumError, ValueError, UnicodeDecodeError):
        return tuple(entries)
    return tuple(entries)
