"""Train/val/test splits of a reference set, whole chemical systems (``split_key``) at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # anything with .id, .split_key (and .family for extend_splits) will do
    from pymatgen_elfml.reference.structures import Candidate


def assign_splits(
    candidates: Sequence[Candidate], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, str]:
    """Assign each candidate to "train", "val" or "test", whole ``split_key`` groups at a time.

    Groups are shuffled with ``seed``; test, then val, take groups in that order while they
    fit their remaining quota (fraction * number of candidates), then the smallest remaining
    group until the quota is met; train gets the rest. At least one group is left for train,
    so test/val reach their fraction whenever there are enough groups.

    Returns:
        ``{candidate id: split}`` in candidate order.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    groups: dict[str, list[str]] = {}
    for c in candidates:
        groups.setdefault(c.split_key, []).append(c.id)
    keys = sorted(groups)
    left = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    split_of: dict[str, str] = {}
    for name, frac in (("test", fractions[2]), ("val", fractions[1])):
        need = frac * len(candidates)
        while need > 1e-9 and len(left) > 1:
            fits = [k for k in left if len(groups[k]) <= need + 1e-9]
            key = fits[0] if fits else min(left, key=lambda k: len(groups[k]))
            left.remove(key)
            split_of[key] = name
            need -= len(groups[key])
    split_of.update({k: "train" for k in left})
    return {c.id: split_of[c.split_key] for c in candidates}


def extend_splits(candidates: Sequence[Candidate], existing: dict[str, str],
                  fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, str]:
    """Splits for a grown set that keep every assignment already made.

    A candidate whose ``split_key`` already has a structure in ``existing`` joins that split;
    the new groups are assigned by :func:`assign_splits` in two strata, those with a template
    (family ``"template"``) and the rest, so that the test split has templates of its own.

    Returns:
        ``{candidate id: split}`` in candidate order.
    """
    by_key = {c.split_key: existing[c.id] for c in candidates if c.id in existing}
    new = [c for c in candidates if c.split_key not in by_key]
    template_keys = {c.split_key for c in new if c.family == "template"}
    for stratum in ([c for c in new if c.split_key in template_keys], [c for c in new if c.split_key not in template_keys]):
        if stratum:
            by_key.update({c.split_key: s for c, s in zip(stratum, assign_splits(stratum, fractions, seed).values())})
    return {c.id: by_key[c.split_key] for c in candidates}
