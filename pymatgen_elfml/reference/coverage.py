"""Training coverage: two-metal templates for the elements the training split holds fewest cells of.

Splitting by chemical system leaves some elements almost absent from training: in data/v2, La's
elemental cells fell to the test split and only 15 training cells hold La; Ag, Lu and Re have none.
A model then meets those elements' valence shells for the first time at test time. This plan adds,
for every element with fewer than ``MIN_TRAIN_CELLS`` training cells ("thin"), two-metal template
sublattices (CsCl ``B2`` and fluorite ``C1`` of ``plan_v2.template_structure``, the thin element A
on the fcc sites) with one well-covered partner B, at V/V0 = ``COVERAGE_RATIOS``. Partners rotate
over the ``N_PARTNERS`` best-covered elements; a pair whose chemical system the dataset already
plans (in any split) is skipped for the next partner, so every added system is new. The added
systems go to the training split only: the validation and test splits stay as they are (frozen), so
models trained before and after the extension are scored on the same cells.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from pymatgen_elfml.reference.plan_v2 import template_structure
from pymatgen_elfml.reference.structures import Candidate, _candidate, formula_name, scaled

MIN_TRAIN_CELLS = 20
COVERAGE_PROTOTYPES = ("B2", "C1")
COVERAGE_RATIOS = (0.75, 0.55, 0.35)
N_PARTNERS = 5


def train_cell_counts(split_keys: Iterable[str], splits: Iterable[str]) -> Counter:
    """Training cells per element: ``split_keys`` ("Al-Li", ...) of the computed structures and their
    ``splits`` ("train", "val", "test"), in the same order. Elements seen only outside training count 0."""
    counts: Counter = Counter()
    for key, split in zip(split_keys, splits, strict=True):
        for el in key.split("-"):
            counts[el] += split == "train"
    return counts


def coverage_pairs(counts: Counter, planned_keys: set[str], min_cells: int = MIN_TRAIN_CELLS,
                   n_partners: int = N_PARTNERS) -> list[tuple[str, str]]:
    """(thin element, partner) pairs: thin elements by training count (then symbol), partners the
    ``n_partners`` best-covered elements, the i-th thin element starting at partner i mod n_partners and
    taking the first whose system ("A-B", sorted) is not in ``planned_keys``."""
    thin = sorted((el for el in counts if counts[el] < min_cells), key=lambda el: (counts[el], el))
    partners = sorted((el for el in counts if counts[el] >= min_cells), key=lambda el: (-counts[el], el))[:n_partners]
    if thin and not partners:
        raise ValueError(f"no element has {min_cells} training cells to serve as a partner")
    pairs = []
    for i, el in enumerate(thin):
        for k in range(len(partners)):
            partner = partners[(i + k) % len(partners)]
            if "-".join(sorted((el, partner))) not in planned_keys:
                pairs.append((el, partner))
                break
    return pairs


def coverage_set(pairs: Sequence[tuple[str, str]], prototypes: Sequence[str] = COVERAGE_PROTOTYPES,
                 ratios: Sequence[float] = COVERAGE_RATIOS) -> list[Candidate]:
    """Candidates ``tmpl-{formula}-{prototype}-v{ratio:.2f}`` (family ``"template"``, as ``plan_v2``'s
    two-metal templates) for every pair, prototype and ratio."""
    out = []
    for a, b in pairs:
        for proto in prototypes:
            base = template_structure(proto, [a, b])
            name = formula_name(base, [a, b])
            out += [_candidate(f"tmpl-{name}-{proto}-v{r:.2f}", "template", proto, r, scaled(base, r)) for r in ratios]
    return out


# Host-rich compounds: elements whose elemental cells all lie outside the training split (the split by chemical
# system put the one-element system in val or test) meet a crystal of mostly their own kind only at evaluation.
HOST_PROTOTYPE = "L1_2"  # A3B: every A atom has 8 A and 4 B nearest neighbours (an fcc A host, a quarter replaced)
HOST_RATIOS = (1.0, 0.8, 0.6)  # V/V0, as the binary family
HOST_PARTNERS = 3


def held_out_elements(split_keys: Iterable[str], splits: Iterable[str]) -> list[str]:
    """Sorted elements with a one-element system among ``split_keys`` but none of its cells in training."""
    seen, trained = set(), set()
    for key, split in zip(split_keys, splits, strict=True):
        if "-" not in key:
            seen.add(key)
            if split == "train":
                trained.add(key)
    return sorted(seen - trained)


def host_pairs(hosts: Sequence[str], counts: Counter, planned_keys: set[str], n_partners: int = HOST_PARTNERS,
               min_cells: int = MIN_TRAIN_CELLS) -> list[tuple[str, str]]:
    """(host, partner) pairs: for every host the first ``n_partners`` (fewer if no more qualify, ValueError if none)
    of the elements with at least ``min_cells`` training cells (best-covered first, then symbol) whose system with the
    host is not in ``planned_keys``."""
    partners = sorted((el for el in counts if counts[el] >= min_cells and el not in hosts), key=lambda el: (-counts[el], el))
    pairs = []
    for host in hosts:
        free = [p for p in partners if "-".join(sorted((host, p))) not in planned_keys][:n_partners]
        if not free:
            raise ValueError(f"no partner for {host} has {min_cells} training cells and a new chemical system")
        pairs += [(host, p) for p in free]
    return pairs


def host_set(pairs: Sequence[tuple[str, str]], ratios: Sequence[float] = HOST_RATIOS) -> list[Candidate]:
    """``structures.binary_set``'s A3B ``HOST_PROTOTYPE`` cells (family ``"binary"``, ids ``bin-{A3B}-L1_2-v..``)."""
    from pymatgen_elfml.reference.structures import binary_set

    return binary_set(pairs, (HOST_PROTOTYPE,), ratios)
