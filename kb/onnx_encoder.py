"""The int8 ONNX Runtime encoder: the same model as the torch path, exported once and quantised; faster on CPUs.

``KB_ENCODER=onnx-int8`` uses it. :func:`prepare_onnx_model` exports the prepared sentence-transformers folder
(transformer + mean pooling + L2 normalisation, as one graph) with the TorchScript exporter, fuses each layer's
attention into one ``Attention`` operator (``onnxruntime.transformers.optimizer``), quantises its ``MatMul`` and
``Gather`` weights to int8 per channel (except the feed-forward outputs) with
``onnxruntime.quantization.quantize_dynamic`` and writes the result beside the source folder
(``<model>-onnx-int8``), in a temporary sibling renamed into place under a file lock, so a half-written export is
never used. A marker records the source it was made from; a changed source means a new export.

:class:`OnnxEncoder` tokenises with the model's ``tokenizer.json`` (``tokenizers``), truncates at the model's
``max_seq_length``, sorts passages by length so that each batch pads little, and runs one ``InferenceSession``
with as many intra-op threads as ``KB_THREADS`` (or the cores).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.errors import ModelError
from kb.preparation import prepare_once

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

#: Bump when the exported folder changes, so that existing exports are redone.
EXPORT_VERSION = 4  # 3: 7-bit weights (reduce_range), see _quantise; 4: fused attention, see _fuse
MODEL_FILE = "model-int8.onnx"
MARKER_NAME = "kb-onnx-export.json"
_COPIED = ("tokenizer.json", "config.json", "sentence_bert_config.json", "config_sentence_transformers.json")
_OPSET = 17
#: Padded tokens per encoder call at most: long passages go in smaller batches (memory of the attention scores).
MAX_BATCH_TOKENS = 4096
_FFN_OUT = re.compile(r"layer\.\d+/output/dense/")


def onnx_folder(source: Path) -> Path:
    """Where the int8 export of the sentence-transformers folder ``source`` lives: a sibling folder."""
    return source.parent / f"{source.name}-onnx-int8"


# ----------------------------------------------------------------------------------------------- export


def _source_identity(source: Path) -> dict[str, Any]:
    weights = source / "model.safetensors"
    if not weights.is_file():
        weights = source / "pytorch_model.bin"
    try:
        st = weights.stat()
    except OSError as exc:
        raise ModelError(
            f"The model folder {source} has no readable weights ({exc.strerror}); set KB_ENCODER=torch "
            "or prepare the model again with `kb prepare-model`."
        ) from exc
    return {"path": str(source), "weights": weights.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_current(target: Path, source: Path) -> bool:
    try:
        marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("export_version") == EXPORT_VERSION
        and marker.get("source") == _source_identity(source)
        and (target / MODEL_FILE).is_file()
        and (target / MODEL_FILE).stat().st_size == marker.get("model_bytes")
    )


def prepare_onnx_model(source: Path, target: Path | None = None) -> Path:
    """Make sure the int8 export of ``source`` exists (export once, under a lock) and return its folder."""
    source = Path(source)
    target = onnx_folder(source) if target is None else Path(target)
    _check_pooling(source)
    return prepare_once(
        target,
        lambda: _export(source, target),
        ready=lambda: _is_current(target, source),
        busy=f"exporting the ONNX model into {target}",
    )


def _check_pooling(source: Path) -> None:
    """The export implements mean pooling + normalisation; other heads are refused with a clear message."""
    modules = source / "modules.json"
    if not modules.is_file():
        return  # a plain transformers folder: sentence-transformers also applies mean pooling to it
    kinds = [m.get("type", "") for m in json.loads(modules.read_text(encoding="utf-8"))]
    pooling = source / "1_Pooling" / "config.json"
    config = _read_json(pooling)
    mean = config.get("pooling_mode") == "mean" or config.get("pooling_mode_mean_tokens") is True
    if len(kinds) > 3 or not mean or not any(k.endswith("Normalize") for k in kinds):
        raise ModelError(
            f"The model in {source} is not transformer + mean pooling + normalize ({kinds}), which is what "
            "KB_ENCODER=onnx-int8 exports; set KB_ENCODER=torch for this model."
        )


def _export(source: Path, target: Path) -> None:
    started = time.perf_counter()
    log.info("Exporting %s to ONNX int8 in %s (once; takes about half a minute).", source, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        float_model, fused_model = staging / "model-float32.onnx", staging / "model-fused.onnx"
        _export_float(source, float_model)
        _fuse(float_model, fused_model, source)
        _quantise(fused_model, staging / MODEL_FILE)
        float_model.unlink()
        fused_model.unlink()
        for name in _COPIED:
            if (source / name).is_file():
                shutil.copy2(source / name, staging / name)
        marker = {
            "export_version": EXPORT_VERSION,
            "source": _source_identity(source),
            "model_bytes": (staging / MODEL_FILE).stat().st_size,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except ModelError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(
            f"Exporting {source} to ONNX failed ({type(exc).__name__}: {exc}); set KB_ENCODER=torch to use "
            "the torch encoder instead."
        ) from exc
    log.info("ONNX int8 export ready in %.1f s.", time.perf_counter() - started)


def _export_float(source: Path, path: Path) -> None:
    """Transformer + masked mean pooling + L2 normalisation as one float32 ONNX graph."""
    import warnings

    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    try:  # eager attention: the graph pattern that _fuse recognises (SDPA exports as other operators)
        model = AutoModel.from_pretrained(str(source), local_files_only=True, attn_implementation="eager").eval()
    except Exception as exc:  # the model folder itself is broken, not the export: say so, as the torch path does
        raise ModelError(
            f"The model in {source} cannot be loaded ({type(exc).__name__}: {exc}); "
            "for the bundled model delete that folder and run `kb prepare-model`."
        ) from exc
    example = torch.ones((2, 8), dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled(model),
            (example, example),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=_OPSET,
            dynamo=False,
        )


def _fuse(source: Path, target: Path, model_folder: Path) -> None:
    """Each layer's attention as one ``Attention`` operator, bias + GELU and residual + LayerNorm fused.

    Fewer, larger operators: more passages per second than the unfused graph, at the same quality (figures in
    docs/performance.md). The fused attention keeps float32 weights: quantising them too made queries faster but
    cost quality on cross-lingual questions. A graph the optimiser does not recognise (another architecture) is
    written unfused: slower, not wrong.
    """
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    config = _read_json(model_folder / "config.json")
    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False  # it would take the embedding table out of the int8 Gather
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the optimiser logs every fusion it tries
    try:
        model = optimizer.optimize_model(
            str(source),
            model_type="bert",
            num_heads=int(config.get("num_attention_heads") or 0),
            hidden_size=int(config.get("hidden_size") or 0),
            optimization_options=options,
            opt_level=0,
        )
        fused = model.get_fused_operator_statistics().get("Attention", 0)
        model.save_model_to_file(str(target))
    except Exception as exc:  # an optimiser that cannot handle the graph: export it unfused
        log.warning("Attention fusion failed (%s: %s); the ONNX model stays unfused.", type(exc).__name__, exc)
        shutil.copy2(source, target)
        return
    finally:
        root.setLevel(level)
    if not fused:
        log.warning("No attention was fused in %s; the ONNX model is slower than it could be.", model_folder)


def _quantise(source: Path, target: Path) -> None:
    """int8 weights per output channel for MatMul and the embedding tables; activations quantised on the fly.

    The feed-forward down-projections (``layer.N/output/dense``) stay float32: their input, after GELU, has
    outliers that one dynamic int8 scale per tensor flattens: quantising them too cost several times the quality
    that the rest of the quantisation costs (docs/performance.md).

    Weights use 7 bits (``reduce_range``): on CPUs without VNNI (AVX2 or AVX-512 alone) ONNX Runtime multiplies
    u8 activations by s8 weights with an instruction that saturates 16-bit sums, and full 8-bit weights then
    lose about twice the quality against torch that 7-bit weights lose, at the same speed (docs/performance.md).
    """
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    keep_float = [n.name for n in graph.node if n.op_type == "MatMul" and _FFN_OUT.search(n.name)]

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" hint goes to the root logger and is noise here
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Gather"],
            nodes_to_exclude=keep_float,
            # Outputs of the fused operators (com.microsoft domain) have no inferred type; they are float32.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


# ---------------------------------------------------------------------------------------------- encoder


class OnnxEncoder:
    """Encodes texts with the int8 export: tokenise, pad per length-sorted batch, run, return unit vectors."""

    def __init__(self, folder: Path, threads: int = 0) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = folder
        config = _read_json(folder / "config.json")
        st_config = _read_json(folder / "sentence_bert_config.json")
        prompts = _read_json(folder / "config_sentence_transformers.json").get("prompts", {})
        self.prompts: dict[str, str] = {k: v for k, v in prompts.items() if isinstance(v, str)}
        self.max_length = int(st_config.get("max_seq_length") or config.get("max_position_embeddings") or 512)
        self.dimension = int(config["hidden_size"])
        self._pad_id = int(config.get("pad_token_id") or 0)
        self.max_batch_tokens = MAX_BATCH_TOKENS
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_length)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def encode(
        self, texts: list[str], prompt: str | None, batch_size: int = 32, stop: threading.Event | None = None
    ) -> np.ndarray:
        """Unit vectors of ``texts`` (each prefixed with the named prompt), in the order given; once ``stop`` is
        set, :class:`EncodingStoppedError` is raised before the next batch."""
        prefix = self.prompts.get(prompt, "") if prompt else ""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([prefix + t for t in texts], add_special_tokens=True)
        lengths = np.asarray([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            if stop is not None and stop.is_set():
                raise EncodingStoppedError(f"stopped after {start} of {len(texts)} passages")
            # Longest first; a batch is capped by rows and by padded tokens (bounds the activations' memory).
            width = int(lengths[order[start]])
            rows = order[start : start + max(1, min(batch_size, self.max_batch_tokens // max(width, 1)))]
            start += len(rows)
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                tokens = encodings[i].ids
                ids[r, : len(tokens)] = tokens
                mask[r, : len(tokens)] = 1
            (vectors,) = self._session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return out


class EncodingStoppedError(Exception):
    """Encoding was stopped between two batches (the ingestion it was for is ending)."""


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
