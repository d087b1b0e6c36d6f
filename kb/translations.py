"""Translation groups: a document and the documents whose ``translation_of`` names it, searched as one.

When search finds one member of a group, the others are the same letter or flyer in another language: they
become results right after it, and the member in the wanted language (the query's own, or one the query names,
:mod:`kb.constraints`) takes the group's place. :func:`follow` does this on a ranked list of document ids;
:func:`in_language` is the test of "written (also) in this language" it uses (``language`` or ``languages``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kb.lru import LRU
from kb.storage import StorageReader, StoredDocument

#: Members of a group placed right after the group's first result (the rest keep the place search gave them).
FOLLOWERS = 2

#: Groups per reader; the entry holds its reader, so the id in the key is never another reader's.
_GROUPS: LRU[int, tuple[StorageReader, dict[str, tuple[str, ...]]]] = LRU(16)


def groups(index: StorageReader) -> dict[str, tuple[str, ...]]:
    """Document id → the ids of its group (itself included; the original first), for documents in a group of
    two or more. A ``translation_of`` may name the original by id or by corpus path; one naming no document of
    this index (or version, or scope) forms no group. Computed once per reader (a version in a scope)."""
    found = _GROUPS.get(id(index))
    if found is not None and found[0] is index:
        return found[1]
    documents = index.documents
    by_key = {doc.key: doc_id for doc_id, doc in documents.items()}
    members: dict[str, list[str]] = {}
    for doc_id, doc in documents.items():
        target = doc.metadata.translation_of.strip()
        if not target:
            continue
        original = target if target in documents else by_key.get(target)
        if original is None or original == doc_id:
            continue
        members.setdefault(original, [original]).append(doc_id)
    result = {member: tuple(group) for group in members.values() for member in group}
    _GROUPS.put(id(index), (index, result))
    return result


def in_language(document: StoredDocument, language: str) -> bool:
    """Written in ``language``, or (a bilingual flyer) also in it."""
    meta = document.metadata
    return meta.language.casefold() == language or language in (code.casefold() for code in meta.languages)


def follow(
    index: StorageReader,
    ranked: list[str],
    language: str | None,
    visible: Callable[[StoredDocument], bool] = lambda _: True,
) -> list[str]:
    """``ranked`` (document ids, best first) with each translation group brought together: where the first member
    of a group stands, the member in ``language`` stands (if the group has one it may see), followed by up to
    :data:`FOLLOWERS` further members it may see (the original first, then in the order search ranked them); the
    others keep their place. Documents in no group keep their order."""
    members = groups(index)
    if not members or not any(doc_id in members for doc_id in ranked):
        return ranked
    position = {doc_id: i for i, doc_id in enumerate(ranked)}
    documents: Mapping[str, StoredDocument] = index.documents
    result: list[str] = []
    placed: set[str] = set()
    for doc_id in ranked:
        if doc_id in placed:
            continue
        group = members.get(doc_id)
        if group is None:
            result.append(doc_id)
            placed.add(doc_id)
            continue
        seen = [m for m in group if m not in placed and m in documents and visible(documents[m])]
        if doc_id not in seen:
            seen.append(doc_id)
        wanted = [m for m in seen if language and in_language(documents[m], language)]
        first = min(wanted, key=lambda m: position.get(m, len(ranked))) if wanted else doc_id
        others = [m for m in seen if m != first]
        original = [others[0]] if others and others[0] == group[0] else []
        rest = sorted(others[len(original) :], key=lambda m: position.get(m, len(ranked)))
        following = (original + rest)[:FOLLOWERS]
        for member in (first, *following):
            result.append(member)
            placed.add(member)
    return result
