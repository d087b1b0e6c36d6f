"""Page furniture of a PDF: what is printed around the text on every page, found by place and repetition.

Rules, each on lines with their boxes (:mod:`kb.loaders.pdf_lines`):
- lines in the outermost strip of the page (section tabs, printer's marks, a page number in the corner);
- page numbers in any form ("- 2 -", "Seite 3 von 12", "3/14", "24334") in the top or bottom band;
- margin letters "(A)"–"(H)" in the side margins (the line markers of parliamentary minutes);
- running lines: a line in the top or bottom band that recurs, its digits aside, on enough pages; counted over
  all pages and over odd and even pages apart, because headers alternate between left and right pages;
- a short line next to a running line (the speaker's name under the header of minutes);
- a line anywhere that recurs word for word at the same height on many pages (watermarks, tabs).
Pages without text do not vote. Paragraph numbers in the margin and chart labels stay: they differ from page to
page, and they are not in the bands.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from kb.loaders.pdf_lines import Line, Page

#: The strip at the top and bottom of a page (a fraction of its height) where nothing is running text.
EDGE_STRIP = 0.045
#: The band at the top and bottom where running headers, footers and page numbers stand.
BAND = 0.095
#: The share of pages with text (of one parity, or of all) on which a line must recur to be furniture.
RECUR_SHARE = 0.4
PAGE_NUMBER = re.compile(
    r"^(?:(?:seite|s\.|page|blatt)\s*)?[-–—]?\s*\d{1,5}\s*[-–—]?(?:\s*(?:von|/|of|aus)\s*\d{1,5})?$", re.I
)
_MARGIN_LETTER = re.compile(r"^\([A-H]\)$")
_SECTION_NUMBER = re.compile(r"^\d{1,2}(?:\.\d{1,2})*\.?\s")
_SENTENCE_END = re.compile(r"[.,;:!?\-\ufffe]$")


def strip_furniture(pages: Sequence[Page], min_chars: int) -> list[list[Line]]:
    """The lines of each page without its furniture (see the module's rules); ``min_chars``: pages with fewer
    visible characters have no text and do not vote."""
    voters = [page for page in pages if page.visible >= min_chars]
    band_keys = [_keys(page, banded=True) for page in voters]
    running = _recurring(voters, band_keys)
    fixed = _recurring(voters, [_keys(page, banded=False) for page in voters])
    out = []
    for page in pages:
        keep: list[Line] = []
        removed: list[Line] = []
        for i, line in enumerate(page.lines):
            if _is_furniture(line, page, running, fixed) or _ocr_page_number(line, i, len(page.lines)):
                removed.append(line)
            else:
                keep.append(line)
        out.append([line for line in keep if not _beside(line, removed, page)])
    return out


def _in_band(line: Line, page: Page, share: float) -> bool:
    return line.bottom <= share * page.height or line.top >= (1 - share) * page.height


def _band_key(line: Line) -> str:
    return re.sub(r"\d+", "#", " ".join(line.text.lower().split()))


def _fixed_key(line: Line, page: Page) -> str:
    return f"{' '.join(line.text.lower().split())}@{round(line.top / page.height * 50)}"


def _keys(page: Page, banded: bool) -> set[str]:
    if banded:
        return {_band_key(line) for line in page.lines if line.size and _in_band(line, page, BAND)}
    return {_fixed_key(line, page) for line in page.lines if line.size and len(line.text) <= 80}


def _recurring(voters: Sequence[Page], keys: list[set[str]]) -> set[str]:
    """Keys found on at least :data:`RECUR_SHARE` of the pages, of all pages or of the odd or even ones."""
    found: set[str] = set()
    for parity in (None, 0, 1):
        chosen = [k for page, k in zip(voters, keys, strict=True) if parity is None or page.number % 2 == parity]
        if len(chosen) < 2:
            continue
        need = max(2 if parity is not None or len(chosen) < 5 else 3, math.ceil(RECUR_SHARE * len(chosen)))
        counts = Counter(key for k in chosen for key in k)
        found |= {key for key, count in counts.items() if count >= need}
    return found


def _is_furniture(line: Line, page: Page, running: set[str], fixed: set[str]) -> bool:
    if page.height <= 0 or not line.size:  # no geometry: nothing can be told by place
        return False
    if _in_band(line, page, EDGE_STRIP):
        return True
    side_margin = line.right < 0.12 * page.width or line.left > 0.88 * page.width
    if side_margin and _MARGIN_LETTER.match(line.text):
        return True
    if _in_band(line, page, BAND) and (PAGE_NUMBER.match(line.text) or _band_key(line) in running):
        return True
    return _fixed_key(line, page) in fixed and not PAGE_NUMBER.match(line.text)


def _ocr_page_number(line: Line, index: int, count: int) -> bool:
    """A page number among the first or last two lines of a page read by OCR (its lines have no place)."""
    return not line.size and (index < 2 or index >= count - 2) and bool(PAGE_NUMBER.match(line.text))


def _beside(line: Line, removed: list[Line], page: Page) -> bool:
    """A short line, not a sentence, right under or over a removed running line in the top or bottom band (a
    speaker's name under the header of minutes)."""
    if len(line.text.split()) > 5 or _SENTENCE_END.search(line.text) or not line.size:
        return False
    if not _in_band(line, page, 2 * BAND):
        return False
    if _SECTION_NUMBER.match(line.text):
        return False  # the first heading of the page
    return any(
        min(abs(line.top - other.bottom), abs(other.top - line.bottom)) < 1.2 * line.size
        and not PAGE_NUMBER.match(other.text)
        and not _MARGIN_LETTER.match(other.text)
        for other in removed
    )
