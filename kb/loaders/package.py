"""Office files that are zip archives of XML parts (ODT, PPTX): opened with the standard library, safely.

An archive is refused when it is not a zip, when it would unpack to more than :data:`MAX_UNPACKED_BYTES` (a
"zip bomb" disguised as an office file), or when a part declares XML entities (entity expansion is the XML
version of the same bomb; office programs never write them). Every failure is a :class:`LoaderError` that
names the file and the part.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import TracebackType
from xml.etree import ElementTree as ET

from kb.errors import LoaderError
from kb.loaders.hyphens import repair_hyphens

#: An archive that unpacks to more than this is refused (the same limit as for Word files).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024


class Package:
    """An opened office archive; ``kind`` names the format in messages ("OpenDocument text (.odt)")."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
            raise LoaderError(str(path), f"not a readable {kind} file (not a zip archive: {exc})") from None
        unpacked = sum(info.file_size for info in self._zip.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            self._zip.close()
            raise LoaderError(
                str(path), f"archive unpacks to {unpacked // 2**20} MB, refusing to open (zip bomb?)"
            )
        self._names = set(self._zip.namelist())

    def __enter__(self) -> Package:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._zip.close()

    def has(self, name: str) -> bool:
        return name in self._names

    def read(self, name: str) -> bytes:
        """The bytes of part ``name``; a missing or damaged part is a :class:`LoaderError`."""
        if name not in self._names:
            raise LoaderError(str(self.path), f"not a complete {self.kind} file (the archive has no {name})")
        try:
            return self._zip.read(name)  # never more than the size checked above: zipfile stops there
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise LoaderError(str(self.path), f"damaged archive: {name} cannot be unpacked ({exc})") from None

    def xml(self, name: str) -> ET.Element:
        """Part ``name`` parsed; malformed XML or entity declarations are a :class:`LoaderError`."""
        data = self.read(name)
        if b"<!ENTITY" in data:
            raise LoaderError(str(self.path), f"{name} declares XML entities, refusing to read it")
        try:
            return ET.fromstring(data)
        except ET.ParseError as exc:
            raise LoaderError(
                str(self.path), f"damaged {self.kind} file: {name} is not valid XML ({exc})"
            ) from None


def qualified(namespaces: dict[str, str], name: str) -> str:
    """``"text:p"`` as ElementTree spells it: ``"{urn:...:text:1.0}p"``."""
    prefix, local = name.split(":")
    return f"{{{namespaces[prefix]}}}{local}"


def clean(text: str) -> str:
    """One paragraph as running text: whitespace folded to single spaces, soft hyphens removed and words broken
    at a line end joined again, by the rule every loader shares (:func:`kb.loaders.hyphens.repair_hyphens`)."""
    return repair_hyphens(text)
