"""Text recognised in images of pages: Tesseract (Debian's ``tesseract-ocr``) through pytesseract.

pytesseract runs the ``tesseract`` program as a child process for each image instead of binding the library into
the sandboxed reader (as tesserocr would): the child has its own address space (it inherits the reader's
``RLIMIT_AS`` cap, far above what a page needs), a page that hangs is ended by a timeout without taking the
reader with it, and the program and language data are exactly Debian's. Tesseract's OpenMP threads are limited to
one (``OMP_THREAD_LIMIT=1``): each thread reserves address space, so several of them fail to start under a tight
``RLIMIT_AS``, and on a machine whose cores are busy they made a page slower, not faster (docs/performance.md).

Languages are Tesseract's codes joined by ``+`` (``deu+eng``, :attr:`Settings.ocr_languages`); a document whose
sidecar names its language (``language: tr``) is also read in that language.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import OcrError, OcrUnavailableError

if TYPE_CHECKING:
    from PIL import Image

    from kb.settings import Settings

#: ISO 639-1 codes of the metadata field ``language`` → Tesseract's language codes.
LANGUAGE_CODES = {"de": "deu", "en": "eng", "tr": "tur", "ar": "ara", "uk": "ukr", "ru": "rus", "fr": "fra"}
#: Lines whose words have a lower mean confidence (0–100) than this are left out: on real scans they are stamps,
#: signatures and specks read as letters ("warn ran teren'" for a stamp: 14). A single word's confidence says
#: little (a correctly read word on a tilted line: 0), so words are judged by their line (docs/quality.md).
MIN_LINE_CONFIDENCE = 40.0
#: At the start or end of a line, marks of this kind standing alone are specks ("|", "“"), and so are one or two
#: characters read with less than MIN_LINE_CONFIDENCE ("YO" beside a page number); dashes and "§" are kept.
_SPECK = re.compile(r"^[^\w§\-–—]+$")
#: A rendered page lighter than this everywhere (0 black, 255 white) is blank and is not read.
_BLANK_DARKEST = 230
_LETTER_OR_DIGIT = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class OcrConfig:
    """How OCR runs: the ``tesseract`` program, its languages, the resolution pages are rendered at, the largest
    image it reads and the time one image may take."""

    command: str = "tesseract"
    languages: str = "deu+eng"
    dpi: int = 300
    max_pixels: int = 40_000_000
    timeout_s: float = 54.0
    #: Languages of the document itself (Tesseract codes), used where their data is installed.
    extra: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> OcrConfig:
        # Imported here: the reader process starts without pydantic unless a file needs OCR.
        from kb.settings import get_settings

        s = settings or get_settings()
        return cls(
            command=s.tesseract_cmd,
            languages=s.ocr_languages,
            dpi=s.ocr_dpi,
            max_pixels=s.ocr_max_megapixels * 1_000_000,
            # below the reader's own limit, so that a page that hangs is reported as that page, not as the file
            timeout_s=0.9 * s.file_timeout_s,
        )

    def for_language(self, language: str) -> OcrConfig:
        """This configuration, with the languages of a document's ``language`` metadata added (only those whose
        data is installed: a document in Russian is still read in German and English without ``rus``)."""
        codes = self.languages.split("+")
        extra = [LANGUAGE_CODES.get(code, "") for code in re.split(r"[\s,;+/]+", language.lower())]
        return replace(self, extra=tuple(dict.fromkeys(c for c in extra if c and c not in codes)))


@dataclass(frozen=True)
class OcrResult:
    """What Tesseract read in one image: its lines in reading order ("" between paragraphs) and the mean
    confidence of its words (0–100, Tesseract's scale; 0 when it read no word)."""

    lines: tuple[str, ...]
    confidence: float
    words: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def paragraphs(self) -> list[list[str]]:
        """The lines grouped into paragraphs."""
        groups: list[list[str]] = [[]]
        for line in self.lines:
            if line:
                groups[-1].append(line)
            elif groups[-1]:
                groups.append([])
        return [g for g in groups if g]


# -- progress: the sandboxed reader restarts a file's time limit for every page read by OCR ----------------------
_on_page: Callable[[], None] | None = None


def on_each_page(callback: Callable[[], None] | None) -> None:
    """Call ``callback`` before each image is recognised (the reader's time limit then applies per page)."""
    global _on_page
    _on_page = callback


# -- Tesseract and its languages ---------------------------------------------------------------------------------
_installed: dict[str, frozenset[str]] = {}


def check_available(config: OcrConfig) -> str:
    """The languages OCR reads in (``config.languages`` and the installed ``config.extra``); raises
    :class:`OcrUnavailableError` naming what is missing: the program or the data of a configured language."""
    languages = _installed.get(config.command)
    if languages is None:
        import pytesseract

        pytesseract.pytesseract.tesseract_cmd = config.command
        try:
            languages = frozenset(pytesseract.get_languages(config=""))
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise OcrUnavailableError(
                f"Tesseract is not installed (no program {config.command!r}, KB_TESSERACT_CMD): run "
                "`make install` or `apt-get install tesseract-ocr tesseract-ocr-deu`"
            ) from exc
        except pytesseract.TesseractError as exc:
            raise OcrUnavailableError(
                f"Tesseract ({config.command!r}) does not run: {exc.message.strip()[:200]}; reinstall it with "
                "`apt-get install --reinstall tesseract-ocr`"
            ) from exc
        _installed[config.command] = languages
    missing = [code for code in config.languages.split("+") if code not in languages]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code}" for code in missing)
        raise OcrUnavailableError(
            f"Tesseract has no language data for {', '.join(missing)} (KB_OCR_LANGUAGES={config.languages!r}): "
            f"run `make install` or `apt-get install {packages}`"
        )
    return "+".join([config.languages, *(code for code in config.extra if code in languages)])


def size_problem(width: int, height: int, config: OcrConfig) -> str | None:
    """Why an image of this size is not read (too many pixels for the memory limit), or None."""
    if width * height <= config.max_pixels:
        return None
    return (
        f"image too large for OCR ({width} × {height} pixels = {width * height / 1e6:.0f} megapixels; the limit "
        f"is {config.max_pixels / 1e6:.0f}, KB_OCR_MAX_MEGAPIXELS): scale it down to about 300 dpi"
    )


def is_blank(image: Image.Image) -> bool:
    """Whether the image has no dark pixel at all (a blank page: nothing to read)."""
    darkest, _ = image.convert("L").getextrema()
    return bool(darkest >= _BLANK_DARKEST)  # type: ignore[operator]


def recognise(image: Image.Image, config: OcrConfig) -> OcrResult:
    """The text Tesseract reads in ``image`` in ``config.languages``.

    Raises :class:`OcrUnavailableError` when Tesseract or a language is missing and :class:`OcrError` when this
    image cannot be read (too large, a timeout, Tesseract failing on it).
    """
    problem = size_problem(image.width, image.height, config)
    if problem:
        raise OcrError(problem)
    languages = check_available(config)
    import pytesseract

    if _on_page is not None:
        _on_page()
    gray = image if image.mode == "L" else image.convert("L")
    pytesseract.pytesseract.tesseract_cmd = config.command
    os.environ["OMP_THREAD_LIMIT"] = "1"  # see the module docstring
    try:
        data = pytesseract.image_to_data(
            gray, lang=languages, timeout=config.timeout_s, output_type=pytesseract.Output.DICT
        )
    except RuntimeError as exc:  # pytesseract's timeout
        raise OcrError(f"OCR took longer than {config.timeout_s:g} s for one page (KB_FILE_TIMEOUT_S)") from exc
    except pytesseract.TesseractError as exc:
        raise OcrError(f"Tesseract failed on the image: {str(exc.message).strip()[:200]}") from exc
    return _result(data)


def _result(data: dict[str, list[object]]) -> OcrResult:
    """Words grouped into lines and paragraphs; specks at the ends of lines, lines of nothing but marks and lines
    of little confidence dropped."""
    lines: dict[tuple[int, int, int], list[tuple[str, float]]] = {}
    for block, par, line, word, conf in zip(
        data["block_num"], data["par_num"], data["line_num"], data["text"], data["conf"], strict=True
    ):
        text, confidence = str(word).strip(), float(str(conf))
        if text and confidence >= 0:
            lines.setdefault((int(str(block)), int(str(par)), int(str(line))), []).append((text, confidence))
    out: list[str] = []
    confidences: list[float] = []
    paragraph: tuple[int, int] | None = None
    for (block, par, _), read in lines.items():
        words = _without_specks(read)
        if not any(_LETTER_OR_DIGIT.search(text) for text, _ in words):
            continue
        if sum(conf for _, conf in words) / len(words) < MIN_LINE_CONFIDENCE:
            continue
        if paragraph is not None and paragraph != (block, par):
            out.append("")
        paragraph = (block, par)
        out.append(" ".join(text for text, _ in words))
        confidences.extend(conf for _, conf in words)
    mean = round(sum(confidences) / len(confidences), 1) if confidences else 0.0
    return OcrResult(tuple(out), mean, len(confidences))


def _without_specks(words: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A line's words without specks at its start and end."""

    def speck(word: tuple[str, float]) -> bool:
        text, conf = word
        return bool(_SPECK.match(text)) or (len(text) <= 2 and conf < MIN_LINE_CONFIDENCE)

    start, end = 0, len(words)
    while start < end and speck(words[start]):
        start += 1
    while end > start and speck(words[end - 1]):
        end -= 1
    return words[start:end]


# -- PDF pages ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageReading:
    """OCR of some pages of a PDF: the pages read (number → result), the pages that could not be read and why."""

    read: dict[int, OcrResult]
    unread: tuple[int, ...]
    problem: str = ""


def read_pdf_pages(path: Path, numbers: list[int], config: OcrConfig) -> PageReading:
    """Render the pages ``numbers`` (from 1) of the PDF at ``path`` and read them by OCR; blank pages are left out.

    Never raises for a missing Tesseract or a page that fails: those pages come back as ``unread`` with the reason.
    """
    try:
        check_available(config)
    except OcrUnavailableError as exc:
        return PageReading({}, tuple(numbers), str(exc))
    read: dict[int, OcrResult] = {}
    unread: list[int] = []
    problem = ""
    try:
        for number, image in _rendered(path, numbers, config):
            if is_blank(image):
                continue
            try:
                read[number] = recognise(image, config)
            except OcrError as exc:
                unread.append(number)
                problem = str(exc)
    except OcrError as exc:  # the PDF cannot be rendered: every page not read yet stays unread
        done = set(read) | set(unread)
        unread.extend(n for n in numbers if n not in done)
        problem = str(exc)
    return PageReading(read, tuple(sorted(unread)), problem)


def _rendered(path: Path, numbers: list[int], config: OcrConfig) -> Iterator[tuple[int, Image.Image]]:
    """Each page of ``numbers`` as a grayscale image at ``config.dpi`` (less for a page so large that it would
    exceed ``config.max_pixels``)."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise OcrError(f"the PDF cannot be rendered for OCR ({exc})") from exc
    try:
        for number in numbers:
            page = pdf[number - 1]
            try:
                width, height = page.get_size()  # in points, 72 per inch
                scale = min(config.dpi / 72, (config.max_pixels / max(width * height, 1.0)) ** 0.5)
                bitmap = page.render(scale=scale, grayscale=True)
                image = bitmap.to_pil()
            except pdfium.PdfiumError as exc:
                raise OcrError(f"page {number} cannot be rendered for OCR ({exc})") from exc
            finally:
                page.close()
            yield number, image
    finally:
        pdf.close()
