"""Near-duplicate groups: the vectorised banding finds exactly the groups of a plain bucket-by-bucket reference."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from kb import duplicates
from kb.duplicates import BAND_ROWS, NUM_PERM, THRESHOLD, groups, signature, similarity


def reference_groups(signatures: dict[str, np.ndarray]) -> list[list[str]]:
    """Pairs sharing a band's exact values, linked when similar enough: the definition, written plainly."""
    buckets: dict[tuple[int, bytes], list[str]] = defaultdict(list)
    for doc_id, sig in signatures.items():
        for band in range(NUM_PERM // BAND_ROWS):
            buckets[(band, sig[band * BAND_ROWS : (band + 1) * BAND_ROWS].tobytes())].append(doc_id)
    parent = {d: d for d in signatures}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for members in buckets.values():
        for other in members[1:]:
            if (
                root(other) != root(members[0])
                and similarity(signatures[members[0]], signatures[other]) >= THRESHOLD
            ):
                parent[root(other)] = root(members[0])
    grouped: dict[str, list[str]] = defaultdict(list)
    for d in signatures:
        grouped[root(d)].append(d)
    return sorted((sorted(g) for g in grouped.values() if len(g) > 1), key=lambda g: g[0])


def test_vectorised_groups_match_the_reference() -> None:
    rng = np.random.default_rng(3)
    signatures = {f"d{i:04d}": rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64) for i in range(1500)}
    for family in range(40):  # copies of a base document with 10-60 % of their hashes changed
        base = signatures[f"d{family:04d}"]
        for copy in range(int(rng.integers(1, 4))):
            sig = base.copy()
            changed = rng.random(NUM_PERM) < rng.uniform(0.1, 0.6)
            sig[changed] = rng.integers(0, 2**63, int(changed.sum()), dtype=np.uint64)
            signatures[f"f{family:02d}-{copy}"] = sig
    found = groups(signatures)
    assert found == reference_groups(signatures)
    assert 30 <= len(found) <= 40  # most families are found (those changed by 60 % may not be)


def test_real_texts_adapted_by_another_district_are_grouped() -> None:
    text = " ".join(
        f"Satz {i}: Die Kommune bindet Ehrenamtliche in die Arbeit mit Neuzugewanderten ein." for i in range(30)
    )
    adapted = text.replace("Satz 3:", "Abschnitt 3:").replace("Satz 17:", "Abschnitt 17:")
    other = " ".join(f"Punkt {i}: Schwimmkurse für Mädchen mit Trainerinnen im Sportverein." for i in range(30))
    sigs = {name: signature([t]) for name, t in (("a", text), ("b", adapted), ("c", other))}
    assert all(s is not None for s in sigs.values())
    assert groups({k: v for k, v in sigs.items() if v is not None}) == [["a", "b"]]
    assert duplicates.signature(["zu kurz"]) is None


def _families(rng: np.random.Generator, count: int, prefix: str) -> dict[str, np.ndarray]:
    """``count`` random documents, each followed by 0-2 near-copies (20-40 % of their hashes changed)."""
    signatures: dict[str, np.ndarray] = {}
    for family in range(count):
        base = rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
        signatures[f"{prefix}{family:04d}"] = base
        for copy in range(int(rng.integers(0, 3))):
            sig = base.copy()
            changed = rng.random(NUM_PERM) < rng.uniform(0.2, 0.4)
            sig[changed] = rng.integers(0, 2**63, int(changed.sum()), dtype=np.uint64)
            signatures[f"{prefix}{family:04d}-{copy}"] = sig
    return signatures


def test_regroup_after_a_write_equals_grouping_everything_again() -> None:
    rng = np.random.default_rng(11)
    live = _families(rng, 400, "d")
    previous = groups(live)
    looked_up: list[set[str]] = []

    def signature_of(ids: set[str]) -> dict[str, np.ndarray]:
        looked_up.append(set(ids))
        return {d: live[d] for d in ids}

    def sharing_band(keys: np.ndarray) -> set[str]:
        ids = list(live)
        kept = duplicates.band_keys(np.stack([live[d] for d in ids]))
        hits = (kept[:, None, :] == keys[None, :, :]).any(axis=(1, 2))
        return {ids[i] for i in np.flatnonzero(hits)}

    for round_ in range(5):
        grouped_ids = sorted({d for g in previous for d in g})
        removed = set(rng.choice(grouped_ids, 6, replace=False).tolist()) | {f"d{round_ * 7:04d}"}
        replaced = set(rng.choice(sorted(set(live) - removed), 3, replace=False).tolist())
        added = _families(rng, 5, f"n{round_}-")
        near = next(iter(added))  # a near-copy of a kept document joins its group
        keeper = grouped_ids[round_]
        if keeper not in removed:
            sig = live[keeper].copy()
            sig[:20] = rng.integers(0, 2**63, 20, dtype=np.uint64)
            added[near] = sig
        for doc_id in replaced:
            added[doc_id] = rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
        for doc_id in removed | replaced:
            live.pop(doc_id, None)
        looked_up.clear()
        after = duplicates.regroup(previous, removed | replaced, added, signature_of, sharing_band)
        live.update(added)
        assert after == groups(live)
        assert sum(len(ids) for ids in looked_up) < len(live) // 10  # only documents around the change were read
        previous = after


def test_regroup_without_a_change_keeps_the_groups() -> None:
    previous = [["a", "b"]]
    assert duplicates.regroup(previous, set(), {}, lambda ids: {}, lambda keys: set()) == previous
