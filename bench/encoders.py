"""Quality per encoder: nDCG@10 of dense and hybrid search on the shared sets, through ``kb.evaluation``."""

from __future__ import annotations

from bench.paths import SHARED
from kb.embedder import Embedder
from kb.evaluation import run
from kb.settings import Settings

#: The encoders a full run measures (``KB_ENCODER`` values).
ENCODERS = ("onnx-int8", "torch")
#: The sets each encoder is judged on.
QUALITY_SETS = ("germanquad-test", "xquad-de-de", "xquad-tr-de")


def encoder_quality(encoder: str, max_queries: int | None) -> dict[str, float]:
    """``"<set>/<mode>"`` → nDCG@10 with ``encoder``, for dense and hybrid search on :data:`QUALITY_SETS`."""
    settings = Settings(encoder=encoder)
    embedder = Embedder(settings)
    out = {}
    for name in QUALITY_SETS:
        metrics = run(SHARED / name, settings, embedder, max_queries=max_queries, modes=("dense", "hybrid"))
        out[f"{name}/dense"] = metrics["dense"].ndcg_at_10
        out[f"{name}/hybrid"] = metrics["hybrid"].ndcg_at_10
        print(encoder, name, out, flush=True)
    return out
