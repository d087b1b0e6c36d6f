"""Images of text (PNG, JPEG, TIFF) read by OCR: each image is a page, each frame of a multi-page TIFF too.

A photographed letter is turned upright by its EXIF orientation first. An image with more pixels than
``KB_OCR_MAX_MEGAPIXELS`` is refused before it is decoded (the memory limit of the reader would stop it later,
without a useful reason); so is a file that is not an image of the kind its name says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from kb.documents import Document, Section
from kb.errors import LoaderError, OcrError
from kb.loaders.hyphens import join_lines
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.ocr import OcrConfig, OcrResult, recognise, size_problem

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def load(path: Path) -> Document:
    raw = read_sidecar(path)
    config = OcrConfig.from_settings().for_language(str(raw.get("language") or ""))
    results = [_read_page(path, number, frame, config) for number, frame in _frames(path, config)]
    sections = tuple(
        Section(join_lines(lines), page=number, ocr=True, confidence=result.confidence)
        for number, result in enumerate(results, 1)
        for lines in result.paragraphs()
    )
    if not sections:
        raise LoaderError(str(path), f"OCR found no text in the image ({_pages(len(results))})")
    first = next((line for r in results for line in r.lines if 2 <= len(line.split()) <= 12), "")
    metadata = build_metadata(raw, path, fallback_title=first or path.stem)
    return Document(path=path, file_type="image", metadata=metadata, sections=sections, pages=len(results))


def _frames(path: Path, config: OcrConfig) -> Iterator[tuple[int, Image.Image]]:
    """Every frame of the image, upright and gray, after checking its size (decoded one at a time: a long TIFF
    is never in memory at once)."""
    expected = FORMATS.get(path.suffix.lower())
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:  # Pillow's own guard, before our size check can run
        over = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        raise LoaderError(
            str(path),
            f"image too large for OCR (over {over:.0f} megapixels; the limit is {config.max_pixels / 1e6:.0f}, "
            "KB_OCR_MAX_MEGAPIXELS): scale it down to about 300 dpi",
        ) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise LoaderError(str(path), f"not a readable image ({type(exc).__name__}: {exc})") from exc
    with image:
        if expected and image.format != expected:
            raise LoaderError(str(path), f"named like a {expected} image, but its content is {image.format}")
        for number, frame in enumerate(ImageSequence.Iterator(image), 1):
            problem = size_problem(frame.width, frame.height, config)
            if problem:
                raise LoaderError(str(path), f"page {number}: {problem}" if number > 1 else problem)
            try:
                upright = ImageOps.exif_transpose(frame).convert("L")
            except (OSError, ValueError) as exc:
                raise LoaderError(str(path), f"page {number} of the image is damaged ({exc})") from exc
            yield number, upright


def _read_page(path: Path, number: int, image: Image.Image, config: OcrConfig) -> OcrResult:
    try:
        return recognise(image, config)
    except OcrError as exc:  # also OcrUnavailableError: an image has no other text to ingest
        raise LoaderError(
            str(path), f"needs OCR: {exc}" if number == 1 else f"page {number} needs OCR: {exc}"
        ) from exc


def _pages(count: int) -> str:
    return "1 page" if count == 1 else f"{count} pages"
