"""Render the office, web and scanned part of the bundled demo corpus.

Each source ``tools/corpus_office/sources/<district-slug>__<doc-slug>.md`` holds YAML front matter (the corpus
metadata keys plus ``format``) and a body in simple Markdown: ``#``/``##``/``###`` headings, paragraphs, ``- ``
bullet lists and ``|`` tables. ``format`` is one of

* ``docx`` -- a Word file (python-docx): headings as Heading styles, lists, real tables;
* ``odt`` -- an OpenDocument text (written as ODF XML): headings, lists, tables;
* ``pptx`` -- a slide deck (written as PresentationML): every ``##`` starts a slide, its title in the title
  placeholder, the rest in the body; a ``|`` table becomes a slide table;
* ``scan`` -- a PDF whose pages are only images of text: each page (``<!-- page -->`` separates them) is drawn
  with Pillow and a DejaVu font at 150 dpi, tilted a little, with grey paper, speckles and blur, as a copier
  scans a printed page; no text layer, so reading it needs OCR;
* ``mixed`` -- a PDF with text pages and scanned pages: a page that starts with ``<!-- scan -->`` is an image,
  the others carry a text layer (reportlab).

For every source the script writes ``corpus/<district-slug>/<doc-slug>.<ext>`` and the metadata sidecar
``<file>.meta.yaml`` (the corpus metadata keys, without ``format``). Random noise has a fixed seed per file and
reportlab runs in invariant mode, so the same sources give the same pages.

Run from the repository root::

    python tools/corpus_office/build.py                # build all sources
    python tools/corpus_office/build.py --only kreis-olpe__beschlussvorlage-kim
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).resolve().parent / "sources"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
BUILD_KEYS = ("format",)
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


@dataclass
class Block:
    kind: str  # "h1", "h2", "h3", "p", "li", "table", "page", "scan"
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)


def parse(body: str) -> list[Block]:
    """The body as blocks; paragraphs are joined lines, tables rows of cells (the ``|---|`` line dropped)."""
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("p", " ".join(para)))
            para.clear()

    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line == "<!-- page -->":
            flush()
            blocks.append(Block("page"))
        elif line == "<!-- scan -->":
            flush()
            blocks.append(Block("scan"))
        elif m := re.match(r"(#{1,3}) (.+)", line):
            flush()
            blocks.append(Block(f"h{len(m.group(1))}", m.group(2)))
        elif line.startswith("- "):
            flush()
            blocks.append(Block("li", line[2:]))
        elif line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue
            if blocks and blocks[-1].kind == "table":
                blocks[-1].rows.append(cells)
            else:
                blocks.append(Block("table", rows=[cells]))
        else:
            para.append(line)
    flush()
    return blocks


def plain(text: str) -> str:
    return re.sub(r"\*\*?([^*]+)\*\*?", r"\1", text)


# --- DOCX -------------------------------------------------------------------------------------------------------


def build_docx(meta: dict[str, object], blocks: list[Block]) -> bytes:
    import datetime as dt

    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.title = str(meta["title"])
    props.author = str(meta.get("source", ""))
    stamp = dt.datetime(int(str(meta.get("year", 2024))), 1, 1)
    props.created = props.modified = stamp
    props.last_modified_by = "KI"
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            doc.add_heading(plain(b.text), level=int(b.kind[1]))
        elif b.kind == "p":
            doc.add_paragraph(plain(b.text))
        elif b.kind == "li":
            doc.add_paragraph(plain(b.text), style="List Bullet")
        elif b.kind == "table":
            table = doc.add_table(rows=len(b.rows), cols=len(b.rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(b.rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = plain(cell)
    buffer = io.BytesIO()
    doc.save(buffer)
    return _stable_zip(buffer.getvalue())


def _stable_zip(data: bytes) -> bytes:
    """The same archive with fixed member dates, so a rebuild gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, ZIP_DATE)
            member.compress_type = zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            dst.writestr(member, src.read(info.filename))
    return out.getvalue()


# --- ODT --------------------------------------------------------------------------------------------------------

_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
)
ODT_MIMETYPE = "application/vnd.oasis.opendocument.text"


def build_odt(meta: dict[str, object], blocks: list[Block]) -> bytes:
    parts: list[str] = []
    items: list[str] = []

    def flush_list() -> None:
        if items:
            parts.append("<text:list>" + "".join(items) + "</text:list>")
            items.clear()

    for b in blocks:
        if b.kind != "li":
            flush_list()
        if b.kind in ("h1", "h2", "h3"):
            level = b.kind[1]
            parts.append(
                f'<text:h text:style-name="Heading_20_{level}" text:outline-level="{level}">'
                f"{escape(plain(b.text))}</text:h>"
            )
        elif b.kind == "p":
            parts.append(f'<text:p text:style-name="Text_20_body">{escape(plain(b.text))}</text:p>')
        elif b.kind == "li":
            items.append(f"<text:list-item><text:p>{escape(plain(b.text))}</text:p></text:list-item>")
        elif b.kind == "table":
            cols = len(b.rows[0])
            rows = "".join(
                "<table:table-row>"
                + "".join(
                    f'<table:table-cell office:value-type="string"><text:p>{escape(plain(c))}</text:p>'
                    "</table:table-cell>"
                    for c in row
                )
                + "</table:table-row>"
                for row in b.rows
            )
            parts.append(
                f'<table:table table:name="Tabelle{len(parts)}"><table:table-column '
                f'table:number-columns-repeated="{cols}"/>{rows}</table:table>'
            )
    flush_list()
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS} office:version="1.3">'
        "<office:body><office:text>" + "".join(parts) + "</office:text></office:body></office:document-content>"
    )
    meta_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {_ODF_NS} office:version="1.3">'
        f"<office:meta><meta:generator>LibreOffice/7.6</meta:generator><dc:title>{escape(str(meta['title']))}"
        "</dc:title></office:meta></office:document-meta>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODT_MIMETYPE}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    return _zip(
        {"mimetype": ODT_MIMETYPE, "META-INF/manifest.xml": manifest, "content.xml": content, "meta.xml": meta_xml}
    )


def _zip(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


# --- PPTX -------------------------------------------------------------------------------------------------------

_P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
_A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"


def _a_paragraphs(texts: list[str]) -> str:
    return "".join(f'<a:p><a:r><a:rPr lang="de-DE"/><a:t>{escape(plain(t))}</a:t></a:r></a:p>' for t in texts)


def _shape(texts: list[str], placeholder: str | None, shape_id: int) -> str:
    ph = "" if placeholder is None else f'<p:ph type="{placeholder}"/>'
    return (
        f'<p:sp><p:nvSpPr><p:cNvPr id="{shape_id}" name="Shape {shape_id}"/><p:cNvSpPr/><p:nvPr>{ph}</p:nvPr>'
        f"</p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/>{_a_paragraphs(texts)}</p:txBody></p:sp>"
    )


def _table(rows: list[list[str]], shape_id: int) -> str:
    columns = '<a:gridCol w="2500000"/>' * len(rows[0])
    cells = "".join(
        "<a:tr>"
        + "".join(f"<a:tc><a:txBody><a:bodyPr/>{_a_paragraphs([c])}</a:txBody></a:tc>" for c in row)
        + "</a:tr>"
        for row in rows
    )
    return (
        f'<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="{shape_id}" name="Tabelle"/><p:cNvGraphicFramePr/>'
        '<p:nvPr/></p:nvGraphicFramePr><p:xfrm/><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/'
        f'drawingml/2006/table"><a:tbl><a:tblGrid>{columns}</a:tblGrid>{cells}</a:tbl></a:graphicData></a:graphic>'
        "</p:graphicFrame>"
    )


def _slide_xml(shapes: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:sld xmlns:a="{_A_NS}" xmlns:r="{_R_NS}" '
        f'xmlns:p="{_P_NS}"><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/>'
        f"</p:nvGrpSpPr><p:grpSpPr/>{shapes}</p:spTree></p:cSld></p:sld>"
    )


def _rels(items: list[tuple[str, str, str]]) -> str:
    body = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{target}"/>' for i, t, target in items)
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    return f'{head}<Relationships xmlns="{_REL_NS}">{body}</Relationships>'


def build_pptx(meta: dict[str, object], blocks: list[Block]) -> bytes:
    slides: list[str] = []
    title: list[str] = []
    body: list[str] = []
    extra: list[str] = []

    def flush() -> None:
        if title or body or extra:
            placeholder = "ctrTitle" if not slides else "title"
            shapes = _shape(title, placeholder, 2) + (_shape(body, "body", 3) if body else "") + "".join(extra)
            slides.append(shapes)
        title.clear()
        body.clear()
        extra.clear()

    for b in blocks:
        if b.kind in ("h1", "h2"):
            flush()
            title.append(b.text)
        elif b.kind in ("p", "li", "h3"):
            body.append(b.text)
        elif b.kind == "table":
            extra.append(_table(b.rows, 10 + len(extra)))
    flush()
    n = len(slides)
    overrides = "".join(
        f'<Override PartName="/ppt/slides/slide{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.presentationml.slide+xml"/>'
        for i in range(1, n + 1)
    )
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/ppt/presentation.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/>'
        f"{overrides}</Types>",
        "_rels/.rels": _rels(
            [
                ("rId1", f"{_R_NS}/officeDocument", "ppt/presentation.xml"),
                (
                    "rId2",
                    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties",
                    "docProps/core.xml",
                ),
            ]
        ),
        "ppt/presentation.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation '
        f'xmlns:a="{_A_NS}" xmlns:r="{_R_NS}" xmlns:p="{_P_NS}"><p:sldIdLst>'
        + "".join(f'<p:sldId id="{255 + i}" r:id="rId{i + 10}"/>' for i in range(1, n + 1))
        + '</p:sldIdLst><p:sldSz cx="12192000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/>'
        "</p:presentation>",
        "ppt/_rels/presentation.xml.rels": _rels(
            [(f"rId{i + 10}", f"{_R_NS}/slide", f"slides/slide{i}.xml") for i in range(1, n + 1)]
        ),
        "docProps/core.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties '
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{escape(str(meta["title"]))}</dc:title>'
        f"<dc:creator>{escape(str(meta.get('source', '')))}</dc:creator></cp:coreProperties>",
    }
    for i, shapes in enumerate(slides, start=1):
        parts[f"ppt/slides/slide{i}.xml"] = _slide_xml(shapes)
    return _zip(parts)


# --- scanned PDFs -----------------------------------------------------------------------------------------------

DPI = 150
PAGE_PX = (1240, 1754)  # A4 at 150 dpi
MARGIN_PX = 150


def _font(size: int, bold: bool = False):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT_DIR / ("DejaVuSerif-Bold.ttf" if bold else "DejaVuSerif.ttf")), size)


def _wrap(draw, text: str, font, width: int) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def render_scan(blocks: list[Block], seed: int):  # type: ignore[no-untyped-def]
    """One page of blocks as a noisy greyscale image, as a copier scans a printed page."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    page = Image.new("L", PAGE_PX, 255)
    draw = ImageDraw.Draw(page)
    width = PAGE_PX[0] - 2 * MARGIN_PX
    y = MARGIN_PX
    body = _font(24)
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            font = _font({"h1": 36, "h2": 29, "h3": 26}[b.kind], bold=True)
            y += 14
            for line in _wrap(draw, plain(b.text), font, width):
                draw.text((MARGIN_PX, y), line, font=font, fill=20)
                y += int(font.size * 1.35)
            y += 8
        elif b.kind in ("p", "li"):
            indent = 30 if b.kind == "li" else 0
            lines = _wrap(draw, plain(b.text), body, width - indent)
            for k, line in enumerate(lines):
                if b.kind == "li" and k == 0:
                    draw.text((MARGIN_PX, y), "–", font=body, fill=25)
                draw.text((MARGIN_PX + indent, y), line, font=body, fill=25)
                y += 34
            y += 14
        elif b.kind == "table":
            cols = len(b.rows[0])
            col_w = width // cols
            for row in b.rows:
                cell_lines = [_wrap(draw, plain(c), body, col_w - 16) for c in row]
                height = max(len(c) for c in cell_lines) * 32 + 12
                for c, lines in enumerate(cell_lines):
                    x = MARGIN_PX + c * col_w
                    draw.rectangle((x, y, x + col_w, y + height), outline=60, width=2)
                    for k, line in enumerate(lines):
                        draw.text((x + 8, y + 6 + k * 32), line, font=body, fill=25)
                y += height
            y += 20
    # Copier look: a slight tilt, grey paper, speckles, a soft blur.
    page = page.rotate(rng.uniform(-0.8, 0.8), resample=Image.Resampling.BICUBIC, fillcolor=255)
    pixels = page.load()
    assert pixels is not None
    for _ in range(9000):
        px, py = rng.randrange(PAGE_PX[0]), rng.randrange(PAGE_PX[1])
        pixels[px, py] = rng.randrange(60, 200)
    paper = Image.effect_noise(PAGE_PX, 18).point(lambda v: 235 + (v - 128) // 16)
    page = Image.composite(page, paper, page.point(lambda v: 255 if v < 200 else 0))
    return page.filter(ImageFilter.GaussianBlur(0.6))


def build_pdf(meta: dict[str, object], blocks: list[Block], fmt: str, seed: int) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("DejaVuSerif", str(FONT_DIR / "DejaVuSerif.ttf")))
    pdfmetrics.registerFont(TTFont("DejaVuSerif-Bold", str(FONT_DIR / "DejaVuSerif-Bold.ttf")))
    pages: list[tuple[bool, list[Block]]] = [(fmt == "scan", [])]
    for b in blocks:
        if b.kind in ("page", "scan"):
            pages.append((fmt == "scan" or b.kind == "scan", []))
        else:
            pages[-1][1].append(b)
    pages = [p for p in pages if p[1]]
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
    pdf.setTitle("" if fmt == "scan" else str(meta["title"]))
    pdf.setCreator("Canon iR-ADV C5535 (Scan)" if fmt == "scan" else "KI-Wissensbasis corpus build")
    for number, (scanned, page_blocks) in enumerate(pages, start=1):
        if scanned:
            image = render_scan(page_blocks, seed + number)
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=70)
            out.seek(0)
            pdf.drawImage(ImageReader(out), 0, 0, width=A4[0], height=A4[1])
        else:
            _text_page(pdf, page_blocks, number, len(pages))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _text_page(pdf, blocks: list[Block], number: int, total: int) -> None:  # type: ignore[no-untyped-def]
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit

    left, width = 60.0, A4[0] - 120
    y = A4[1] - 70
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            size = {"h1": 17, "h2": 14, "h3": 12}[b.kind]
            y -= 8
            for line in simpleSplit(plain(b.text), "DejaVuSerif-Bold", size, width):
                pdf.setFont("DejaVuSerif-Bold", size)
                pdf.drawString(left, y, line)
                y -= size * 1.4
        elif b.kind in ("p", "li"):
            indent = 14 if b.kind == "li" else 0
            lines = simpleSplit(plain(b.text), "DejaVuSerif", 10.5, width - indent)
            pdf.setFont("DejaVuSerif", 10.5)
            for k, line in enumerate(lines):
                if b.kind == "li" and k == 0:
                    pdf.drawString(left, y, "–")
                pdf.drawString(left + indent, y, line)
                y -= 14
            y -= 6
        elif b.kind == "table":
            col_w = width / len(b.rows[0])
            pdf.setFont("DejaVuSerif", 9.5)
            for row in b.rows:
                cells = [simpleSplit(plain(c), "DejaVuSerif", 9.5, col_w - 8) for c in row]
                height = max(len(c) for c in cells) * 12 + 6
                for c, lines in enumerate(cells):
                    x = left + c * col_w
                    pdf.rect(x, y - height + 10, col_w, height)
                    for k, line in enumerate(lines):
                        pdf.drawString(x + 4, y - k * 12, line)
                y -= height
            y -= 8
    pdf.setFont("DejaVuSerif", 8.5)
    pdf.drawCentredString(A4[0] / 2, 30, f"Seite {number} von {total}")


# --- driver -----------------------------------------------------------------------------------------------------

BUILDERS = {"docx": "docx", "odt": "odt", "pptx": "pptx", "scan": "pdf", "mixed": "pdf"}


def build(source: Path, out_root: Path) -> Path:
    text = source.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    if not match:
        raise SystemExit(f"{source}: no front matter")
    meta = yaml.safe_load(match.group(1))
    fmt = str(meta.get("format", ""))
    if fmt not in BUILDERS:
        raise SystemExit(f"{source}: format must be one of {', '.join(BUILDERS)}, got {fmt!r}")
    blocks = parse(match.group(2))
    district, name = source.stem.split("__", 1)
    target = out_root / district / f"{name}.{BUILDERS[fmt]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    seed = int(hashlib.sha256(source.stem.encode()).hexdigest()[:8], 16)
    if fmt == "docx":
        data = build_docx(meta, blocks)
    elif fmt == "odt":
        data = build_odt(meta, blocks)
    elif fmt == "pptx":
        data = build_pptx(meta, blocks)
    else:
        data = build_pdf(meta, blocks, fmt, seed)
    target.write_bytes(data)
    sidecar = {k: v for k, v in meta.items() if k not in BUILD_KEYS}
    target.with_name(target.name + ".meta.yaml").write_text(
        yaml.safe_dump(sidecar, allow_unicode=True, sort_keys=False, width=120), encoding="utf-8"
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="one source name (without .md)")
    parser.add_argument("--out", type=Path, default=ROOT / "corpus", help="the corpus folder to write into")
    args = parser.parse_args(argv)
    sources = sorted(SOURCES.glob("*.md"))
    if args.only:
        sources = [s for s in sources if s.stem == args.only]
        if not sources:
            raise SystemExit(f"no source {args.only!r} in {SOURCES}")
    for source in sources:
        target = build(source, args.out)
        print(f"{target.relative_to(args.out.parent) if args.out.parent in target.parents else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
