"""TreeEnsemble: a fitted gradient-boosted regression forest evaluated by torch, per voxel.

The pointwise branch of ``PeriodicUNet3D`` can be a forest instead of an MLP (``UNetConfig.
pointwise_trees``): the forest is fitted once by scikit-learn at training time (``train.local.fit_trees``)
and its nodes are stored as buffers of this module, so a shipped model needs torch only. Evaluation
walks every tree at once: ``node <- left if x[feature] <= threshold else right`` for ``depth`` rounds,
with leaves pointing at themselves; the prediction is ``baseline + sum_t value[t, leaf_t]``.
Comparisons are in float64, as scikit-learn's own predictor does them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TreeEnsemble(nn.Module):
    """Sum of ``n_trees`` binary regression trees of at most ``max_leaves`` leaves each on ``n_features`` inputs.

    Buffers (T trees, M = 2 * max_leaves - 1 node slots): feature (T, M) int64, threshold (T, M) float64,
    left/right (T, M) int64 child indices (a leaf's children are itself), value (T, M) float64,
    baseline () and depth () — the deepest leaf, i.e. the number of traversal rounds.
    """

    def __init__(self, n_trees: int, max_leaves: int, n_features: int, chunk: int = 16384):
        super().__init__()
        t, m = n_trees, 2 * max_leaves - 1
        self.n_features, self.chunk = n_features, chunk
        self.register_buffer("feature", torch.zeros(t, m, dtype=torch.int64))
        self.register_buffer("threshold", torch.zeros(t, m, dtype=torch.float64))
        self.register_buffer("left", torch.zeros(t, m, dtype=torch.int64))
        self.register_buffer("right", torch.zeros(t, m, dtype=torch.int64))
        self.register_buffer("value", torch.zeros(t, m, dtype=torch.float64))
        self.register_buffer("baseline", torch.zeros((), dtype=torch.float64))
        self.register_buffer("depth", torch.zeros((), dtype=torch.int64))

    def load_trees(self, trees: list[dict], baseline: float) -> None:
        """Fill the buffers from ``trees``: one dict per tree with equal-length arrays "feature",
        "threshold", "left", "right", "value", "is_leaf" (node 0 the root). Unused trees stay empty (0)."""
        t_max, m_max = self.feature.shape
        if len(trees) > t_max:
            raise ValueError(f"{len(trees)} trees do not fit a TreeEnsemble of {t_max}")
        arrays = {k: np.zeros((t_max, m_max), dtype=np.float64) for k in ("feature", "threshold", "value")}
        left = np.tile(np.arange(m_max), (t_max, 1))
        right, depth = left.copy(), 0
        for i, tree in enumerate(trees):
            n, leaf = len(tree["value"]), np.asarray(tree["is_leaf"], dtype=bool)
            if n > m_max:
                raise ValueError(f"tree {i} has {n} nodes, more than the {m_max} slots of {m_max // 2 + 1} leaves")
            if not np.isin(np.asarray(tree["feature"])[~leaf], np.arange(self.n_features)).all():
                raise ValueError(f"tree {i} splits on a feature outside 0..{self.n_features - 1}")
            for k in arrays:
                arrays[k][i, :n] = np.where(leaf, 0, tree[k]) if k != "value" else tree[k]
            left[i, :n] = np.where(leaf, np.arange(n), tree["left"])
            right[i, :n] = np.where(leaf, np.arange(n), tree["right"])
            depth = max(depth, _depth(left[i, :n], right[i, :n]))
        for k, v in arrays.items():
            getattr(self, k).copy_(torch.from_numpy(v))
        self.left.copy_(torch.from_numpy(left))
        self.right.copy_(torch.from_numpy(right))
        self.baseline.fill_(float(baseline))
        self.depth.fill_(depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, ...) raw features -> (B, 1, ...) predictions, in ``x``'s dtype."""
        if x.shape[1] != self.n_features:
            raise ValueError(f"TreeEnsemble expects {self.n_features} feature channels, got {x.shape[1]}")
        flat = x.detach().transpose(0, 1).reshape(self.n_features, -1).double()
        out = torch.cat([self._predict(flat[:, i:i + self.chunk]) for i in range(0, flat.shape[1], self.chunk)])
        return out.to(x.dtype).reshape(x.shape[0], 1, *x.shape[2:])

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """(C, N) float64 features -> (N,) predictions."""
        node = torch.zeros(self.feature.shape[0], x.shape[1], dtype=torch.int64, device=x.device)
        for _ in range(int(self.depth)):
            go_left = x.gather(0, self.feature.gather(1, node)) <= self.threshold.gather(1, node)
            node = torch.where(go_left, self.left.gather(1, node), self.right.gather(1, node))
        return self.baseline + self.value.gather(1, node).sum(0)


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Number of edges on the longest root-to-leaf path of one tree (leaves point at themselves)."""
    depth, frontier = 0, [0]
    while True:
        children = [c for n in frontier for c in (left[n], right[n]) if c != n]
        if not children:
            return depth
        depth, frontier = depth + 1, children
