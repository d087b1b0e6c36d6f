"""OCR speed: pages per second of the PDF loader on pages without a text layer (render at ``KB_OCR_DPI``, then
Tesseract), on synthetic A4 scans and, when the shared set is there, on the real scanned judgment.

    python -m bench.ocr [--pages 4] [SCANNED.pdf ...]
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

from bench.paths import SHARED
from kb.loaders import pdf

REAL_SCAN = SHARED / "real-pdfs" / "files" / "urteil_vg_berlin_23a182-01_scan.pdf"
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
    parser.add_argument("files", type=Path, nargs="*", help=f"Scanned PDFs to measure (default: {REAL_SCAN}).")
    args = parser.parse_args()
    for row in measure(args.pages, args.files or None):
        print(row, flush=True)


if __name__ == "__main__":
    main()
