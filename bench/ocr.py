"""PDF speed: pages per second of the PDF loader on text pages (PDFium's text layer) and on pages without a text
layer (render at ``KB_OCR_DPI``, then Tesseract): the corpus's text PDFs and, when the shared set is there, its
text PDFs; a synthetic A4 scan and the real scanned judgment. ``make bench`` (:mod:`bench.performance`) writes
the ``pdf-pages`` block of docs/performance.md from :func:`measure_pdf`; alone:

    python -m bench.ocr [--pages 4] [--out docs/performance.md] [SCANNED.pdf ...]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bench import generated, machine
from bench.paths import REPO, SHARED
from kb.loaders import pdf
from kb.loaders.pdf_lines import read_pdf

REAL_SCAN = SHARED / "real-pdfs" / "files" / "urteil_vg_berlin_23a182-01_scan.pdf"
#: Text PDFs of the shared set: two columns, running heads, long decisions (the scanned judgments and the
#: InDesign report, some of whose pages are images read by OCR, are left out).
REAL_TEXT = [
    SHARED / "real-pdfs" / "files" / name
    for name in (
        "bundestag_plenarprotokoll_18-238_2017-06-02.pdf",
        "urteil_ovg_bb_12b3-13.pdf",
        "urteil_bverfg_1bvr1978-13.pdf",
        "okfde_hackathon_leitfaden.pdf",
    )
]
BLOCK = "pdf-pages"
_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_SENTENCES = (
    "Die Kommunalen Integrationszentren beraten Schulen, Kitas und Familien in allen Fragen der Integration.",
    "Neu zugewanderte Kinder und Jugendliche erhalten eine Erstberatung und einen Platz in einer Schule.",
    "Die Sprachförderung im Fachunterricht wird durch Fortbildungen für Lehrkräfte unterstützt.",
    "Eltern mit Zuwanderungsgeschichte werden durch Elternbegleiterinnen und Elterncafés einbezogen.",
)


def synthetic_scan(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` A4 images at 300 dpi, each with 40 lines of German text (a dense letter or decision
    page), specks of noise and a tilt of half a degree."""
    font = ImageFont.truetype(str(_FONT), 38) if _FONT.exists() else ImageFont.load_default(size=38)
    rng = random.Random(0)
    images = []
    for _ in range(pages):
        image = Image.new("L", (2480, 3508), 255)
        draw = ImageDraw.Draw(image)
        for row in range(40):
            draw.text((200, 250 + row * 75), rng.choice(_SENTENCES)[:95], font=font, fill=0)
        pixels = image.load()
        assert pixels is not None
        for _ in range(20_000):
            pixels[rng.randrange(2480), rng.randrange(3508)] = rng.choice((0, 96, 160))
        images.append(image.rotate(0.5, resample=Image.Resampling.BICUBIC, fillcolor=255))
    images[0].save(path, "PDF", resolution=300, save_all=True, append_images=images[1:])
    return path


def _cpu_seconds() -> float:
    """CPU time of this process and its ended children (Tesseract runs as a child), user and system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pages_per_second(path: Path) -> dict[str, Any]:
    """Load the PDF at ``path`` once and report its pages read by OCR per second of wall time, and the CPU
    seconds per page (what one idle core would take: wall time on a shared machine depends on its load)."""
    started, cpu = time.perf_counter(), _cpu_seconds()
    document = pdf.load(path)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    pages = len(document.ocr_pages)
    return {
        "file": path.name,
        "pages": document.pages,
        "ocr_pages": pages,
        "seconds": round(seconds, 2),
        "ocr_pages_per_s": round(pages / seconds, 3),
        "cpu_s_per_page": round(cpu / max(pages, 1), 2),
        "confidence": round(
            sum(p.confidence or 0.0 for p in document.text_by_page().pages if p.ocr) / max(pages, 1), 1
        ),
    }


def text_pages_per_second(label: str, paths: list[Path]) -> dict[str, Any]:
    """Load the PDFs at ``paths`` (text layers only) and report their pages per second of wall time and the CPU
    seconds per page."""
    started, cpu = time.perf_counter(), _cpu_seconds()
    pages = 0
    for path in paths:
        document = pdf.load(path)
        assert not document.ocr_pages, f"{path.name} has pages without a text layer"
        pages += document.pages or 0
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "file": label,
        "files": len(paths),
        "pages": pages,
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 2),
        "cpu_s_per_page": round(cpu / max(pages, 1), 3),
    }


def corpus_text_pdfs() -> list[Path]:
    """The bundled corpus's PDFs that have a text layer on every page (the scanned ones are OCR's)."""
    return [
        path
        for path in sorted((REPO / "corpus").rglob("*.pdf"))
        if not any(pdf.needs_ocr(page) for page in read_pdf(path).pages)
    ]


def measure_pdf(pages: int) -> dict[str, Any]:
    """Text pages/s on the corpus's text PDFs (and the shared set's, when it is there) and OCR pages/s on the
    synthetic scan of ``pages`` pages (and the real scanned judgment), with the machine and its load before."""
    before = machine.with_load()
    text = [text_pages_per_second("bundled corpus, text PDFs", corpus_text_pdfs())]
    shared = [p for p in REAL_TEXT if p.is_file()]
    if shared:
        text.append(text_pages_per_second("../shared/eval/real-pdfs, text PDFs", shared))
    return {"machine": before, "machine_after": machine.with_load(), "text": text, "ocr": measure(pages)}


def table(result: dict[str, Any]) -> str:
    """The ``pdf-pages`` block: text and OCR pages per second, and the machine they were measured on."""
    lines = [
        f"Measured on {result['machine']}; after: {result['machine_after'].rsplit(': ', 1)[-1]}.",
        "",
        "| read from | files | pages | pages/s (wall) | CPU s per page | mean OCR confidence |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["text"]:
        lines.append(
            f"| text layer: {row['file']} | {row['files']} | {row['pages']} | {row['pages_per_s']:.2f} | "
            f"{row['cpu_s_per_page']:.3f} | - |"
        )
    for row in result["ocr"]:
        name = "synthetic A4 scan, 40 dense lines a page" if row["file"] == "synthetic-scan.pdf" else row["file"]
        lines.append(
            f"| OCR: {name} | 1 | {row['ocr_pages']} | {row['ocr_pages_per_s']:.3f} | "
            f"{row['cpu_s_per_page']:.2f} | {row['confidence']} |"
        )
    return "\n".join(lines)


def measure(pages: int, files: list[Path] | None = None) -> list[dict[str, Any]]:
    """The synthetic scan of ``pages`` pages, then ``files`` (default: the real scanned judgment of the shared
    set, if it is there)."""
    with tempfile.TemporaryDirectory(prefix="kb-bench-ocr-") as tmp:
        rows = [pages_per_second(synthetic_scan(Path(tmp) / "synthetic-scan.pdf", pages))]
    for path in files if files is not None else [p for p in (REAL_SCAN,) if p.is_file()]:
        rows.append(pages_per_second(path))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=4, help="Pages of the synthetic scan.")
    parser.add_argument("--out", type=Path, default=None, help="Write the pdf-pages block of this document.")
    parser.add_argument("files", type=Path, nargs="*", help=f"Scanned PDFs to measure (default: {REAL_SCAN}).")
    args = parser.parse_args()
    if args.out is None:
        for row in measure(args.pages, args.files or None):
            print(row, flush=True)
        return
    generated.check(args.out, [BLOCK])
    result = measure_pdf(args.pages)
    print(result, flush=True)
    generated.update(args.out, {BLOCK: table(result)})
    print(f"wrote the {BLOCK} block of {args.out}")


if __name__ == "__main__":
    main()
