"""Choose the constants of the "nothing fits" decision (:mod:`kb.confidence`) from what ``collect.py`` wrote.

Tuning set: the queries of the shared sets searched on the bundled corpus (off-topic there: no answer), and the
answerable queries of eval/bundled with an odd number (q1, q3, ...). The bundled no-answer queries and the even
answerable ones are left for the one measurement at the end (``--test``), never used for choosing::

    PYTHONPATH=. python tools/nothing_fits/fit.py /tmp/nf/signals.jsonl [--test]

Prints the per-language reference similarities and the logistic coefficients to copy into kb/confidence.py, and
precision and recall of the decision on the tuning set (and with ``--test`` on the test half).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from kb import confidence
from kb.fusion import Evidence


def evidence(row: dict[str, Any]) -> Evidence:
    fields = set(Evidence.__dataclass_fields__)
    return Evidence(**{k: v for k, v in row.items() if k in fields})


def half(row: dict[str, Any]) -> str:
    """ "tune", "test" or "" (bundled: odd answerable ids tune, the rest tests)."""
    if row["source"] != "bundled":
        return "tune"
    if not row["answer"]:
        return "test"
    return "tune" if int(str(row["id"]).lstrip("q")) % 2 else "test"


def report(name: str, rows: list[dict[str, Any]], fired: list[bool]) -> None:
    caught = sum(f and not r["answer"] for r, f in zip(rows, fired, strict=True))
    false = sum(f and r["answer"] for r, f in zip(rows, fired, strict=True))
    negatives = sum(not r["answer"] for r in rows)
    positives = len(rows) - negatives
    precision = caught / max(caught + false, 1)
    print(
        f"{name}: no-answer {negatives}, answerable {positives}: caught {caught}"
        f" (R {caught / max(negatives, 1):.2f}),"
        f" false alarms {false} ({false / max(positives, 1):.1%}), P {precision:.2f}"
    )


def main(path: Path, test: bool) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    tune = [r for r in rows if half(r) == "tune"]
    by_language: dict[str, list[float]] = defaultdict(list)
    for r in tune:
        if r["answer"]:
            continue
        by_language[r["code"]].append(r["similarity"])
    print(
        "negatives' median top similarity per language:",
        {k: round(float(np.median(v)), 4) for k, v in by_language.items()},
    )
    x = np.array([confidence.features(evidence(r)) for r in tune])
    y = np.array([0 if r["answer"] else 1 for r in tune])
    model = LogisticRegression(C=100.0, max_iter=5000, class_weight="balanced").fit(x, y)
    print("coefficients:", dict(zip(confidence.FEATURES, np.round(model.coef_[0], 3), strict=True)))
    print("intercept:", round(float(model.intercept_[0]), 3))
    print("tuning AUC:", round(roc_auc_score(y, model.decision_function(x)), 3))
    report("tuning, decision in code", tune, [confidence.nothing_fits(evidence(r)) for r in tune])
    report("tuning, old decision", tune, [r["old_nothing_fits"] for r in tune])
    for source in sorted({r["source"] for r in tune}):
        part = [r for r in tune if r["source"] == source]
        report(f"  {source}", part, [confidence.nothing_fits(evidence(r)) for r in part])
    if test:
        held = [r for r in rows if half(r) == "test"]
        scores = [confidence.answer_probability(evidence(r)) for r in held]
        print("test AUC:", round(roc_auc_score([0 if r["answer"] else 1 for r in held], [-s for s in scores]), 3))
        report("test, decision in code", held, [confidence.nothing_fits(evidence(r)) for r in held])
        report("test, old decision", held, [r["old_nothing_fits"] for r in held])
        for r, s in sorted(zip(held, scores, strict=True), key=lambda item: item[1]):
            mark = "NO-ANSWER" if not r["answer"] else "answer"
            fired = confidence.nothing_fits(evidence(r))
            print(f"  {s:.3f} {'FIRES' if fired else '     '} {mark:9} {r['code']} {r['id']} {r['text'][:70]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--test" in sys.argv[2:])
