"""Small real files for tests, built in code: PDFs (with reportlab), Word files, and broken files."""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def write_pdf(path: Path, pages: list[list[str]], header: str = "", footer: bool = True, title: str = "") -> Path:
    """A text PDF: one list of lines per page, with a running header and "Seite N von M" footers."""
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    if title:
        pdf.setTitle(title)
    for number, lines in enumerate(pages, 1):
        pdf.setFont("Helvetica", 9)
        if header:
            pdf.drawString(60, 800, header)
        if footer:
            pdf.drawString(270, 40, f"Seite {number} von {len(pages)}")
        pdf.setFont("Helvetica", 11)
        y = 760
        for line in lines:
            pdf.drawString(60, y, line)
            y -= 15
        pdf.showPage()
    pdf.save()
    return path


def write_image_only_pdf(path: Path) -> Path:
    """A "scan": pages with shapes but no text layer."""
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for _ in range(2):
        pdf.rect(60, 400, 400, 300, fill=1)
        pdf.showPage()
    pdf.save()
    return path


def write_encrypted_pdf(path: Path, source: Path, password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(source)))
    writer.encrypt(user_password=password, owner_password="owner-secret", algorithm="AES-128")
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def write_docx(path: Path, title: str, paragraphs: list[tuple[str, str]]) -> Path:
    """A Word file; each item is (style, text), style "Heading 1" etc. or "" for body text."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for style, text in paragraphs:
        if style.startswith("Heading"):
            document.add_heading(text, level=int(style.split()[-1]))
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path


def markdown(title: str, district: str, body: str, **meta: object) -> str:
    lines = ["---", f'title: "{title}"', f'district: "{district}"']
    lines += [f"{key}: {value}" for key, value in meta.items()]
    return "\n".join([*lines, "---", f"# {title}", "", body, ""])
