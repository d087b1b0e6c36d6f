"""The web pages: a German search page at ``/`` and a page per document at ``/dokument/{id}``.

Rendered on the server and complete without JavaScript: the search is a GET form, filters are links whose URL
holds the whole search (same parameter names as ``GET /search``), and every state (start, results, no results,
no index, error) is a page with a German sentence, never a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.datastructures import QueryParams

from kb import constraints, fields, lexical, nrw_map
from kb.api.deps import PrincipalDep, SearcherDep
from kb.api.schemas import DocumentOut, DocumentRef, SearchHitOut
from kb.chunking import split_sentences
from kb.documents import PageText, document_id
from kb.errors import IndexMissingError, IndexUnavailableError, KBError, NotFoundError, QueryError
from kb.fields import MODES, YEAR_MAX, YEAR_MIN, Mode
from kb.filters import Filters, count_facets
from kb.search import Hit
from kb.storage import StorageReader, StoredDocument
from kb.store import StoredChunk
from kb.visibility import visible_to

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC_DIR: Final = Path(__file__).parent / "static"

PAGE_SIZE, MAX_PAGE_K = 10, 50
#: The broader search offered when nothing fits keeps at most this many of the query's words.
BROADER_WORDS = 3
MAX_VALUES, MAX_VALUE_CHARS = 20, 200
FACET_SHOWN: Final = 6  # values per facet before "alle anzeigen"
MODE_LABELS: Final[dict[str, str]] = {
    "hybrid": "Bedeutung und Wortlaut (empfohlen)",
    "dense": "Nur nach Bedeutung – gut für Fragen in anderen Sprachen",
    "lexical": "Nur nach genau diesen Wörtern",
}
LANGUAGES: Final = fields.LANGUAGE_NAMES
#: A language by its own name, for links to translations ("Auch auf: Türkçe · العربية").
ENDONYMS: Final = {
    "de": "Deutsch",
    "en": "English",
    "tr": "Türkçe",
    "ar": "العربية",
    "uk": "Українська",
    "ru": "Русский",
    "pl": "Polski",
    "fa": "فارسی",
    "fr": "Français",
    "ro": "Română",
    "bg": "Български",
    "ku": "Kurdî",
}
RTL_LANGUAGES: Final = frozenset({"ar", "fa", "he", "ur", "ps"})
FILE_LABELS: Final = {
    "pdf": "PDF",
    "markdown": "Text",
    "text": "Text",
    "docx": "Word-Datei",
    "odt": "ODT-Datei",
    "pptx": "PowerPoint-Datei",
    "html": "HTML-Datei",
    "image": "Bild (Texterkennung)",
}
EXAMPLES: Final = (
    ("Materialien zur Sprachförderung im Fachunterricht", "de"),
    ("Wie beziehe ich Eltern mit Zuwanderungsgeschichte in die Schule ein?", "de"),
    ("Wie bekommt ein neu zugewandertes Kind einen Schulplatz?", "de"),
    ("Göçmen kökenli velileri okula nasıl dahil edebilirim?", "tr"),
)

NO_INDEX = (
    "Es gibt noch keinen Suchindex. Sobald die Dokumente eingelesen sind (Befehl „kb ingest“), "
    "funktioniert die Suche."
)
INDEX_BUSY = (
    "Der Suchindex wird gerade aufgebaut oder erneuert. Bitte versuchen Sie es in ein paar Minuten noch einmal; "
    "hilft das nicht, wenden Sie sich bitte an die technische Betreuung."
)
UNAVAILABLE = "Die Suche ist gerade nicht verfügbar. Bitte versuchen Sie es in ein paar Minuten noch einmal."
SERVER_ERROR = (
    "Auf dem Server ist ein Fehler aufgetreten. Er wurde protokolliert. Bitte versuchen Sie es später noch einmal."
)
#: The passage a result links to is shown with its page; a page (or a file without pages) longer than this is cut
#: to the paragraphs around the marked sentence, so that a document page stays light.
PASSAGE_MAX_CHARS = 12_000
PASSAGE_CONTEXT_PARAGRAPHS = 2
#: The fragment a result's link ends in: the marked sentence (or its page's heading when it is not found).
HIT_ANCHOR = "treffer"
NOT_FOUND = "Dieses Dokument gibt es nicht (mehr) in der Wissensbasis. Vielleicht wurde es entfernt oder ersetzt."


@dataclass(frozen=True)
class PageQuery:
    """What a page's URL asks for; read leniently (invalid values are dropped) and written back as a URL."""

    q: str = ""
    filters: Filters = field(default_factory=Filters)
    mode: Mode | None = None
    k: int = PAGE_SIZE
    ohne: tuple[str, ...] = ()  # fields whose constraint named in the query is not preferred (kb.constraints)

    @classmethod
    def parse(cls, params: QueryParams) -> PageQuery:
        criteria: dict[str, tuple[str, ...] | int | None] = {}
        for f in fields.filtered(readers_only=True):  # the page is for readers: no review status
            for param in f.filter_params():
                criteria[param] = _year(params.get(param)) if f.ranged else _values(params.getlist(param))
        mode = params.get("mode")
        k = params.get("k", "")
        return cls(
            q=params.get("q", ""),
            filters=Filters(**criteria),
            mode=next((m for m in MODES if m == mode), None),
            k=min(int(k), MAX_PAGE_K) if k.isdigit() and int(k) > 0 else PAGE_SIZE,
            ohne=tuple(key for key in constraints.named_keys() if key in params.getlist("ohne")),
        )

    def url(self, path: str = "/") -> str:
        params: list[tuple[str, str]] = [("q", self.q)] if self.q else []
        params += self.filter_params()
        if self.mode:
            params.append(("mode", self.mode))
        if self.k != PAGE_SIZE:
            params.append(("k", str(self.k)))
        params += [("ohne", key) for key in self.ohne]
        return f"{path}?{urlencode(params)}" if params else path

    def filter_params(self, *, ranges: bool = True) -> list[tuple[str, str]]:
        """The filters as URL parameters (without year ranges if asked: the form has fields for those)."""
        return [
            (param, str(value))
            for param, values in self.filters.items()
            if ranges or isinstance(values, tuple)
            for value in (values if isinstance(values, tuple) else (values,))
        ]

    def with_filters(self, **changes: tuple[str, ...] | int | None) -> PageQuery:
        return replace(self, filters=self.filters.replace(**changes), k=PAGE_SIZE)

    def is_active(self, f: fields.Field, value: str) -> bool:
        if f.ranged:
            low, high = f.filter_params()
            return self.filters.bound(low) == self.filters.bound(high) == _year(value)
        return value.casefold() in {v.casefold() for v in self.filters.values(f.key)}

    def toggled(self, f: fields.Field, value: str) -> PageQuery:
        """This query with the filter value added, or removed when it is already active."""
        if f.ranged:
            year = None if self.is_active(f, value) else _year(value)
            return self.with_filters(**dict.fromkeys(f.filter_params(), year))
        current = self.filters.values(f.key)
        kept = tuple(v for v in current if v.casefold() != value.casefold())
        return self.with_filters(**{f.key: kept if len(kept) < len(current) else (*current, value)})

    def year_ranges(self) -> list[YearRange]:
        """The year filters open to readers, for the form's "Erweitert" part."""
        return [
            YearRange(f.label, (low, high), (self.filters.bound(low), self.filters.bound(high)))
            for f in fields.filtered(readers_only=True)
            if f.ranged
            for low, high in [f.filter_params()]
        ]


@dataclass(frozen=True)
class YearRange:
    """A year filter as the form's two number fields show it."""

    label: str
    params: tuple[str, str]
    values: tuple[int | None, int | None]

    @property
    def active(self) -> bool:
        return self.values != (None, None)


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    count: int = 0
    active: bool = False


@dataclass(frozen=True)
class FacetGroup:
    param: str
    label: str
    links: list[Link]


@dataclass(frozen=True)
class Card:
    """One result as the page shows it: the API's hit, its snippet marked up, and how to open the file."""

    hit: SearchHitOut
    snippet: Markup
    section: str
    file_label: str
    url: str

    @classmethod
    def of(cls, hit: Hit, query: PageQuery) -> Card:
        out = SearchHitOut.of(hit)
        path = f"/dokument/{out.document_id}"
        url = query.url(path) if query.q else path
        return cls(
            hit=out,
            snippet=highlight(out.snippet, out.highlights),
            section=out.heading.split(" › ")[-1] if " › " in out.heading else "",
            file_label=FILE_LABELS.get(hit.document.file_type, "Datei"),
            # the document page at the passage: its page shown, the matching sentence marked and scrolled to
            url=f"{url}{'&' if '?' in url else '?'}stelle={hit.chunk_id}#{HIT_ANCHOR}",
        )


@dataclass(frozen=True)
class Translation:
    """A link to the same document in another language."""

    id: str
    language: str

    @property
    def name(self) -> str:
        return ENDONYMS.get(self.language, language_name(self.language))


@dataclass(frozen=True)
class PassagePage:
    """One page of the passage a result links to: its paragraphs (the matching sentence in ``<mark>``)."""

    number: int
    paragraphs: list[Markup]
    anchor: bool = False  # the page's heading is the link's target (the sentence was not found on it)
    cut_before: bool = False
    cut_after: bool = False


@dataclass(frozen=True)
class Passage:
    """The pages of a result's passage and the page the matching sentence is on (its PDF opens there)."""

    pages: list[PassagePage]
    page: int
    paged: bool
    pdf_url: str | None


@dataclass(frozen=True)
class OutlineEntry:
    label: str
    depth: int
    page: str
    url: str | None


def highlight(snippet: str, spans: list[tuple[int, int]]) -> Markup:
    """The snippet, HTML-escaped, with the matched character ranges wrapped in ``<mark>``."""
    parts: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if start < done or end <= start:
            continue
        parts += [escape(snippet[done:start]), Markup("<mark>"), escape(snippet[start:end]), Markup("</mark>")]
        done = end
    parts.append(escape(snippet[done:]))
    return Markup("").join(parts)


def lang_attrs(language: str) -> Markup:
    """``lang`` (and ``dir="rtl"``) for text in a language other than the page's German."""
    code = language.strip().lower()
    if not code or code == "de":
        return Markup("")
    direction = ' dir="rtl"' if code in RTL_LANGUAGES else ""
    return Markup(' lang="{}"{}').format(code, Markup(direction))


def language_name(code: str) -> str:
    return LANGUAGES.get(code.strip().lower(), code)


def seconds(took_ms: float) -> str:
    return f"{max(took_ms, 10) / 1000:.2f}".replace(".", ",")


#: Documents listed at most when filters are chosen without a question (more: narrow the filters or ask).
BROWSE_LIMIT = 100

templates.env.globals.update(
    lang_attrs=lang_attrs,
    mode_labels=MODE_LABELS,
    language_name=language_name,
    facet_shown=FACET_SHOWN,
    year_min=YEAR_MIN,
    year_max=YEAR_MAX,
)


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, searcher: SearcherDep, principal: PrincipalDep) -> HTMLResponse:
    query = PageQuery.parse(request.query_params)
    context: dict[str, Any] = {
        "query": query,
        "active": active_filters(query),
        "clear_url": replace(query, filters=Filters(), k=PAGE_SIZE).url(),
        "examples": EXAMPLES,
        "default_mode": searcher.settings.search_mode,
    }
    k = min(query.k, searcher.settings.max_k)
    try:
        if not query.q.strip():
            context["stats"] = corpus_stats(searcher.reader(principal.viewer))
            context["map"] = district_map(query, visible_counts(searcher.reader(principal.viewer)))
            if query.filters:  # a district chosen on the map, say: its documents, without a question
                context["listed"], context["listed_total"] = browse(searcher.reader(principal.viewer), query)
            return render(request, "search.html", context)
        result = searcher.search(
            query.q,
            k,
            mode=query.mode,
            filters=query.filters or None,
            facets=True,
            viewer=principal.viewer,
            ignore_constraints=query.ohne,
        )
    except Exception as exc:  # every failure becomes a German sentence on the page
        message, status = german_error(exc, searcher.settings.max_query_chars)
        return render(request, "search.html", {**context, "error": message}, status)
    context.update(
        nothing_fits=result.nothing_fits and bool(result.hits),
        broader=broader(query),
        cards=[Card.of(hit, query) for hit in result.hits],
        facets=facet_groups(query, result.facets),
        constraints=constraint_chips(query, result.constraints),
        map=district_map(query, result.facets.get("district", {}), small=True),
        seconds=seconds(result.took_ms),
        mode=result.mode,
        meaning_url=replace(query, mode=None).url(),
        more_url=replace(query, k=query.k + PAGE_SIZE).url()
        if len(result.hits) == k == query.k < MAX_PAGE_K
        else None,
    )
    return render(request, "search.html", context)


@router.get("/dokument/{doc_id}", response_class=HTMLResponse)
def document_page(request: Request, searcher: SearcherDep, principal: PrincipalDep, doc_id: str) -> HTMLResponse:
    query = PageQuery.parse(request.query_params)
    context: dict[str, Any] = {"query": query, "back_url": query.url() if query.q.strip() else None}
    try:
        index = searcher.reader(principal.viewer)  # only what this caller may see; the rest is unknown
        document = index.documents.get(doc_id)
        if document is None or not visible_to(document, principal.may_open):  # a draft: not public yet
            raise NotFoundError(f"document {doc_id} is unknown or a draft")
        chunks = index.chunks_of(doc_id)
        similar = searcher.similar(doc_id, 5, other_districts=True, viewer=principal.viewer)
        q = query.q[: searcher.settings.max_query_chars]
        shown = passage(index, doc_id, request.query_params.get("stelle", ""), q)
    except Exception as exc:
        message, status = german_error(exc, searcher.settings.max_query_chars)
        return render(request, "document.html", {**context, "error": message}, status)
    near = index.near_duplicates_of(doc_id)
    out = DocumentOut.of(document, [d for d in near if visible_to(d)])
    newer = index.documents.get(document.metadata.superseded_by)
    context.update(
        superseded_by=DocumentRef.of(newer) if newer is not None else None,
        doc=out,
        file_label=FILE_LABELS.get(out.file_type, "Datei"),
        outline=outline(chunks, out.file_url if out.file_type == "pdf" else None),
        passage=replace(shown, pdf_url=f"{out.file_url}#page={shown.page}")
        if shown is not None and shown.paged and out.file_type == "pdf"
        else shown,
        similar=[Card.of(hit, query) for hit in similar],
        translations=[Translation(d.id, d.metadata.language) for d in translations(index, document)],
    )
    return render(request, "document.html", context)


def translations(index: StorageReader, document: StoredDocument) -> list[StoredDocument]:
    """The visible published or archived documents that translate this one, that it translates, or that
    translate the same original ("Auch auf: Türkçe · العربية"), one per language other than its own."""

    def original(doc: StoredDocument) -> str:
        """The id ``translation_of`` names: an id, a corpus path, or a path beside the document's own file."""
        ref = doc.metadata.translation_of.strip()
        if not ref or ref in index.documents:
            return ref
        beside = document_id(str(PurePosixPath(doc.key).parent / ref))
        return beside if beside in index.documents else document_id(ref)

    root = original(document) or document.id
    found: dict[str, StoredDocument] = {}
    for doc in index.documents.values():
        if doc.id == document.id or not visible_to(doc, ("published",)):
            continue
        if doc.id == root or original(doc) == root:
            found.setdefault(doc.metadata.language, doc)
    found.pop(document.metadata.language, None)
    return sorted(found.values(), key=lambda d: d.metadata.language)


def broader(query: PageQuery) -> Link | None:
    """A search with fewer words, offered when nothing fits: the query's content words (no stop words), at most
    the :data:`BROADER_WORDS` longest (in German the long words carry the topic), if that is fewer words."""
    tokens = query.q.split()
    content = [t for t in tokens if lexical.words(t) and not set(lexical.words(t)) <= lexical.STOPWORDS]
    if len(content) > BROADER_WORDS:
        longest = set(sorted(range(len(content)), key=lambda i: -len(content[i]))[:BROADER_WORDS])
        content = [t for i, t in enumerate(content) if i in longest]
    if not content or len(content) >= len(tokens):
        return None
    text = " ".join(t.strip("?!.,;:„“\"'()") for t in content)
    return Link(text, replace(query, q=text, k=PAGE_SIZE).url())


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    response = templates.TemplateResponse(
        request, template, {**context, "status": status, "session": session}, status_code=status
    )
    if session is not None:  # what a logged-in caller sees must not be kept by a shared cache
        response.headers["Cache-Control"] = "private, no-store"
    return response


def german_error(exc: Exception, max_chars: int) -> tuple[str, int]:
    """The sentence a teacher reads for this failure, and the HTTP status of the page."""
    if isinstance(exc, NotFoundError):
        return NOT_FOUND, 404
    if isinstance(exc, IndexMissingError):
        return NO_INDEX, 503
    if isinstance(exc, IndexUnavailableError):
        return INDEX_BUSY, 503
    if isinstance(exc, QueryError):
        return f"Die Frage ist zu lang. Bitte fassen Sie sie kürzer (höchstens {max_chars} Zeichen).", 422
    if isinstance(exc, KBError):
        log.warning("search page: %s", exc)
        return UNAVAILABLE, exc.status_code
    log.exception("unexpected error on a web page")
    return SERVER_ERROR, 500


def corpus_stats(index: StorageReader) -> tuple[int, int]:
    """Documents and districts of the live index the caller may see (raises when there is none)."""
    documents = [d for d in index.documents.values() if visible_to(d)]
    return len(documents), len({d.metadata.district for d in documents if d.metadata.district})


@dataclass(frozen=True)
class Listed:
    """A document listed without a question: its title, where it opens, and its district, type and year."""

    title: str
    url: str
    details: str
    language: str  # of the title: a right-to-left title is marked as such


def browse(index: StorageReader, query: PageQuery) -> tuple[list[Listed], int]:
    """The published documents the caller may see that the page's filters select, newest first (at most
    ``BROWSE_LIMIT``), and how many there are in all."""
    chosen = [d for d in index.documents.values() if visible_to(d) and query.filters.matches(d)]
    chosen.sort(key=lambda d: (-(d.metadata.year or 0), d.metadata.title.casefold()))
    listed = [
        Listed(
            d.metadata.title or d.key,
            f"/dokument/{d.id}",
            " · ".join(str(v) for v in (d.metadata.district, d.metadata.doc_type, d.metadata.year) if v),
            d.metadata.language,
        )
        for d in chosen[:BROWSE_LIMIT]
    ]
    return listed, len(chosen)


def visible_counts(index: StorageReader) -> dict[str, int]:
    """Published documents per district among those the caller may see (the reader is the caller's scope)."""
    return count_facets(d for d in index.documents.values() if visible_to(d)).get("district", {})


def district_map(query: PageQuery, counts: dict[str, int], *, small: bool = False) -> nrw_map.MapView:
    """The map of NRW for these counts; a district's link toggles its filter on the current search."""
    district = fields.field("district")
    active = frozenset(query.filters.values(district.key))
    return nrw_map.view(counts, lambda name: query.toggled(district, name).url(), active, small=small)


def facet_groups(query: PageQuery, facets: dict[str, dict[str, int]]) -> list[FacetGroup]:
    groups = []
    for f in fields.faceted():
        counts = facets.get(f.name, {})
        values = sorted(counts, reverse=True) if f.ranged else list(counts)
        links = [
            Link(value_name(f, value), query.toggled(f, value).url(), counts[value], query.is_active(f, value))
            for value in values
        ]
        if links:
            groups.append(FacetGroup(f.key, f.label, links))
    return groups


def active_filters(query: PageQuery) -> list[Link]:
    """Each active filter with the URL of the same search without it."""
    links = []
    for f in fields.filtered(readers_only=True):
        if not f.ranged:
            links += [
                Link(f"{f.label}: {value_name(f, v)}", query.toggled(f, v).url())
                for v in query.filters.values(f.key)
            ]
            continue
        low, high = (query.filters.bound(p) for p in f.filter_params())
        if low is None and high is None:
            continue
        cleared = query.with_filters(**dict.fromkeys(f.filter_params())).url()
        links.append(Link(f"{f.label}: {fields.range_label(low, high)}", cleared))
    return links


def constraint_chips(query: PageQuery, named: tuple[constraints.Constraint, ...]) -> list[Link]:
    """One chip per field the query names ("Klasse 5", "Sprache: Ukrainisch oder Russisch"), with the URL of the
    same search without preferring it."""
    chips = []
    for key, group in constraints.by_field(named).items():
        label = " oder ".join([group[0].label, *(c.label.partition(": ")[2] or c.label for c in group[1:])])
        chips.append(Link(label, replace(query, ohne=(*query.ohne, key), k=PAGE_SIZE).url()))
    return chips


def value_name(f: fields.Field, value: str) -> str:
    """How the page shows a value of the field (a language by its German name)."""
    return language_name(value) if f.name in ("language", "languages") else value


def passage(index: StorageReader, doc_id: str, chunk_param: str, query: str) -> Passage | None:
    """The pages of the chunk ``chunk_param`` (a result's ``stelle``) of this document, its sentence that matches
    ``query`` best marked; None when the parameter names no chunk of this document."""
    if not chunk_param.isdigit():
        return None
    chunk = index.chunks([int(chunk_param)]).get(int(chunk_param))
    text = index.document_text(doc_id)
    if chunk is None or chunk.doc_id != doc_id or text is None or not text.pages:
        return None
    first = chunk.page or 1
    last = max(first, chunk.page_end or first)
    pages = [p for p in text.pages if first <= p.page <= last] or [text.pages[0]]
    sentence = best_sentence(chunk.text, index.lexical.query_terms(query), index.lexical.analyzer)
    found = find_sentence(pages, sentence)
    shown = [page_view(p, found[1:] if found and found[0] == p.page else None) for p in pages]
    if found is None:
        shown[0] = replace(shown[0], anchor=True)
    return Passage(shown, found[0] if found else pages[0].page, chunk.page is not None, None)


def best_sentence(text: str, terms: Mapping[str, float], analyzer: lexical.Analyzer) -> str:
    """The sentence of ``text`` holding the most query weight in distinct terms (the first on a tie), as the
    result's snippet chooses it."""
    sentences = split_sentences(text) or [text]

    def weight(sentence: str) -> float:
        held = {t for word in sentence.split() for t in analyzer.token_terms(word) if t in terms}
        return sum(terms[t] for t in held)

    return max(sentences, key=weight)


def find_sentence(pages: list[PageText], sentence: str, min_words: int = 4) -> tuple[int, int, int] | None:
    """Where ``sentence`` stands: (page, start, end) in its page's text, whitespace compared loosely. A sentence
    that runs on to the next page is found by its longest leading part on the first page."""
    words = sentence.split()
    if not words:
        return None
    for size in range(len(words), min(min_words, len(words)) - 1, -1):
        pattern = re.compile(r"\s+".join(re.escape(w) for w in words[:size]))
        for page in pages:
            match = pattern.search(page.text)
            if match and (size == len(words) or not page.text[match.end() :].strip()):
                return page.page, match.start(), match.end()
    return None


def page_view(page: PageText, marked: tuple[int, int] | None) -> PassagePage:
    """A page's paragraphs as HTML, the range ``marked`` in ``<mark id="treffer">``; a long page is cut to the
    paragraphs around the mark."""
    paragraphs: list[Markup] = []
    where = 0
    at = 0
    for match in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]*)*", page.text):
        start, end = match.span()
        if marked and start <= marked[0] < end:
            a, b = marked[0], min(marked[1], end)
            where = len(paragraphs)
            paragraphs.append(
                Markup("").join(
                    (
                        escape(page.text[start:a]),
                        Markup('<mark id="{}">').format(HIT_ANCHOR),
                        escape(page.text[a:b]),
                        Markup("</mark>"),
                        escape(page.text[b:end]),
                    )
                )
            )
        else:
            paragraphs.append(escape(match.group()))
        at += end - start
    if at <= PASSAGE_MAX_CHARS:
        return PassagePage(page.page, paragraphs)
    low = max(0, where - PASSAGE_CONTEXT_PARAGRAPHS)
    high = where + PASSAGE_CONTEXT_PARAGRAPHS + 1
    return PassagePage(page.page, paragraphs[low:high], cut_before=low > 0, cut_after=high < len(paragraphs))


def outline(chunks: list[StoredChunk], pdf_url: str | None, words: int = 10) -> list[OutlineEntry]:
    """One line per chunk: its (new) heading or its first words, with its page and a link into the PDF."""
    entries = []
    previous = None
    for chunk in chunks:
        path = [part for part in chunk.heading.split(" › ") if part]
        if path and chunk.heading != previous:
            label, depth = path[-1], min(len(path) - 1, 3)
        else:
            first = chunk.text.split()
            label = " ".join(first[:words]) + (" …" if len(first) > words else "")
            depth = min(len(path), 3)
        previous = chunk.heading
        page = ""
        if chunk.page:
            end = chunk.page_end or chunk.page
            page = f"S. {chunk.page}" if end == chunk.page else f"S. {chunk.page}–{end}"
        url = f"{pdf_url}#page={chunk.page}" if pdf_url and chunk.page else None
        entries.append(OutlineEntry(label, depth, page, url))
    return entries


def _values(raw: list[str]) -> tuple[str, ...]:
    values = dict.fromkeys(v.strip()[:MAX_VALUE_CHARS] for v in raw if v.strip())
    return tuple(values)[:MAX_VALUES]


def _year(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and YEAR_MIN <= int(raw) <= YEAR_MAX else None
