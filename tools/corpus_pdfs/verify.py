"""Check the PDFs rendered by ``build.py`` the way the ingestion will see them (pypdf).

For every source in ``tools/corpus_pdfs/sources/`` the script opens
``corpus/<district-slug>/<doc-slug>.pdf`` and checks that

* the PDF has 2-8 pages, "Seite n von N" in every footer and the running header on pages 2..N,
* ``PdfReader(p).pages[i].extract_text()`` returns umlauts and ß intact (no U+FFFD, no combining
  diaeresis, no control characters) and every word of the source, compounds with hyphens
  included, is found in the text once layout hyphenation is undone,
* the extraction contains line ends hyphenated by the layout ("Sprach-" / "förderung"),
* the sidecar ``<doc-slug>.pdf.meta.yaml`` equals the source front matter without ``layout``.

Run from the repository root::

    python tools/corpus_pdfs/verify.py
    python tools/corpus_pdfs/verify.py --sample corpus/kreis-soest/sprachfoerderung-im-fachunterricht.pdf 2

``--sample PDF PAGE`` prints the first 40 extracted lines of one page (1-based).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import (
    DEFAULT_OUT,
    DEFAULT_SOURCES,
    Heading,
    ListBlock,
    Note,
    Para,
    SourceDoc,
    load_source,
    plain_text,
    running_title,
)

UMLAUT_WORD = re.compile(r"[ÄÖÜäöüß]")
# a word, including compounds with hyphens ("DaZ-Kurs", "KOMM-AN-Projekt")
WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
# a line ending in "<letter>-" followed by a line that starts with a lower-case letter
SOFT_BREAK = re.compile(r"[A-Za-zÄÖÜäöüß]-\n(?!(?:und|oder|bzw\.|sowie) )[a-zäöüß]")
# genuine hyphen at a line end: next line starts with a capital or with und/oder/bzw.
HARD_BREAK = re.compile(r"[A-Za-zÄÖÜäöüß]-\n(?:[A-ZÄÖÜ]|und |oder |bzw\. |sowie )")
BAD_CHARS = re.compile(r"[\ufffd\u0308\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Report:
    path: Path
    pages: int
    soft_breaks: int
    hard_breaks: int
    problems: list[str]


def source_text(src: SourceDoc) -> str:
    parts: list[str] = []
    for block in src.blocks:
        if isinstance(block, (Heading, Para)):
            parts.append(block.text)
        elif isinstance(block, ListBlock):
            parts.extend(block.items)
        elif isinstance(block, Note):
            parts.extend(block.paragraphs)
    return plain_text("\n".join(parts))


def strip_page_furniture(text: str, src: SourceDoc) -> str:
    """Drop running header and footer lines so that words hyphenated across pages join up."""
    ki = src.meta.ki_name
    furniture_prefixes = (f"{ki} · ", f"© {src.meta.year} {ki}")
    kept = [
        line
        for line in text.splitlines()
        if not (line.startswith(furniture_prefixes) or re.fullmatch(r"Seite \d+ von \d+", line))
    ]
    return "\n".join(kept)


def words_of(text: str) -> set[str]:
    return set(WORD.findall(text))


def check(src: SourceDoc, out_root: Path) -> Report:
    pdf = out_root / src.district_slug / f"{src.doc_slug}.pdf"
    problems: list[str] = []
    if not pdf.exists():
        return Report(pdf, 0, 0, 0, ["PDF missing"])
    reader = PdfReader(pdf)
    n = len(reader.pages)
    if not 2 <= n <= 8:
        problems.append(f"{n} pages (expected 2-8)")
    texts = [page.extract_text() or "" for page in reader.pages]
    header = running_title(src.meta)[:40]
    for i, text in enumerate(texts, start=1):
        if f"Seite {i} von {n}" not in text:
            problems.append(f"page {i}: footer 'Seite {i} von {n}' not found")
        if i > 1 and header not in text:
            problems.append(f"page {i}: running header not found")
        if bad := sorted(set(BAD_CHARS.findall(text))):
            problems.append(f"page {i}: unexpected characters {bad!r}")
    full = "\n".join(strip_page_furniture(t, src) for t in texts)
    if not re.search(r"[äöüÄÖÜß]", full):
        problems.append("no umlauts or ß in the extracted text")
    # undo layout hyphenation in two ways, then look for every umlaut word of the source
    joined = re.sub(r"([A-Za-zÄÖÜäöüß])-\n([a-zäöüß])", r"\1\2", full)
    kept = re.sub(r"-\n", "-", full)
    found = words_of(joined) | words_of(kept) | words_of(full)
    expected = words_of(source_text(src))
    if missing := sorted(w for w in expected - found if UMLAUT_WORD.search(w)):
        problems.append(f"umlaut words not found in extraction: {missing[:10]}")
    if missing := sorted(expected - found):
        problems.append(f"source words not found in extraction: {missing[:10]}")
    soft = len(SOFT_BREAK.findall(full))
    hard = len(HARD_BREAK.findall(full))
    if soft == 0:
        problems.append("no hyphenated line ends in the extraction")
    sidecar = pdf.with_name(pdf.name + ".meta.yaml")
    if not sidecar.exists():
        problems.append("sidecar missing")
    elif yaml.safe_load(sidecar.read_text(encoding="utf-8")) != src.meta.sidecar_dict():
        problems.append("sidecar differs from the source front matter")
    return Report(pdf, n, soft, hard, problems)


def sample(pdf: Path, page: int, lines: int = 40) -> str:
    text = PdfReader(pdf).pages[page - 1].extract_text() or ""
    return "\n".join(text.splitlines()[:lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify the rendered corpus PDFs with pypdf.")
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--sample", nargs=2, metavar=("PDF", "PAGE"), help="print 40 extracted lines")
    args = parser.parse_args(argv)
    if args.sample:
        print(sample(Path(args.sample[0]), int(args.sample[1])))
        return 0
    failed = 0
    for path in sorted(args.sources.glob("*__*.md")):
        report = check(load_source(path), args.out)
        status = "OK  " if not report.problems else "FAIL"
        print(
            f"{status} {report.path.relative_to(args.out.parent)}  pages={report.pages}"
            f"  hyphenated_line_ends={report.soft_breaks}  hyphen_kept_line_ends={report.hard_breaks}"
        )
        for problem in report.problems:
            print(f"     - {problem}")
        failed += bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
