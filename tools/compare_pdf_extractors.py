"""Compare PDF text extractors on a real-PDF set (``../shared/eval/real-pdfs``) with the checker's own checks.

Each extractor's page texts (lines joined, words broken at a line end joined by ``kb.loaders.hyphens``, nothing
else repaired) are checked for the set's expected phrases and forbidden patterns; the last row is ``kb``'s PDF
loader with all its repairs. Prints a Markdown table: failed checks per category, forbidden matches in total,
and seconds per page.

    PYTHONPATH=. python tools/compare_pdf_extractors.py [../shared/eval/real-pdfs]
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from kb.errors import LoaderError
from kb.loaders.hyphens import join_lines

Extractor = Callable[[Path], list[str]]


def _pypdf(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]


def _pdfium(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        texts = []
        for page in document:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range().replace("\ufffe", "-\n"))
        return texts
    finally:
        document.close()


def _pdfminer(path: Path) -> list[str]:
    from pdfminer.high_level import extract_text

    return extract_text(str(path)).split("\f")


def _kb_loader(path: Path) -> list[str]:
    from kb.loaders.pdf import load

    return [page.text for page in load(path).text_by_page().pages]


EXTRACTORS: dict[str, Extractor] = {
    "pypdf 7.1.0": _pypdf,
    "pypdfium2 5.15.2": _pdfium,
    "pdfminer.six 20260107": _pdfminer,
    "kb loader (pypdfium2 + repairs)": _kb_loader,
}


def _checker(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_pdfs_check", folder / "check.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no check.py in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(folder: Path) -> None:
    check = _checker(folder)
    spec = check.load_spec(folder / "spec.json")
    print("| extractor | expect failed | forbid failed | forbidden matches | s/page |")
    print("|---|---:|---:|---:|---:|")
    for name, extract in EXTRACTORS.items():
        failed = {"expect": 0, "forbid": 0}
        matches = pages = 0
        started = time.perf_counter()
        for file, entry in spec["files"].items():
            try:
                texts = [join_lines(text.splitlines()) for text in extract(folder / "files" / file)]
            except LoaderError:
                texts = []
            pages += int(entry.get("pages", len(texts)))
            doc = check.Doc(pages={i: (text, False) for i, text in enumerate(texts, 1)})
            for result in check.check_file(file, entry, doc, spec.get("defaults", {}), only_text=True):
                failed[result.category] += not result.ok
            for item in entry.get("forbid", []):
                rx, _ = check.pattern(item)
                matches += len(rx.findall(doc.text))
        seconds = (time.perf_counter() - started) / max(pages, 1)
        print(f"| {name} | {failed['expect']} | {failed['forbid']} | {matches} | {seconds:.3f} |")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "eval" / "real-pdfs"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
