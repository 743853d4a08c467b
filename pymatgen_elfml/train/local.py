"""Stage 1 of training with a pointwise branch: fit the per-voxel MLP alone on sampled voxels.

A per-voxel regressor converges in seconds on a million voxels (what the gradient-boosting
baseline shows), while whole-cell steps of the U-Net are few on a CPU. So the pointwise branch
(``UNetConfig.pointwise_hidden``) is first fitted alone on ``per_structure`` random voxels of
every training structure with the weighted Smooth-L1 loss of the main objective; the U-Net,
whose last layer starts at zero, then learns the context-dependent correction.

With a forest branch (``UNetConfig.pointwise_trees``) stage 1 is ``fit_trees``: scikit-learn's
``HistGradientBoostingRegressor`` (absolute-error loss; the regressor of the gradient-boosting baseline,
``gbm_regressor``) on the same sampled voxels, copied into the network's ``TreeEnsemble`` buffers.
scikit-learn is needed for this fit only (the ``train`` extra), not to run the model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pymatgen_elfml.data.dataset import PatchDataset
from pymatgen_elfml.features import base_channel, channel_names
from pymatgen_elfml.losses import region_weight
from pymatgen_elfml.train.config import TrainConfig


def sample_voxels(dataset: PatchDataset, per_structure: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Random voxels of every sample: inputs (N, C, 1, 1, 1), target (``dataset.targets``: ELF or scaled
    density; N, 1, 1, 1, 1), far mask (N, 1, 1, 1, 1)."""
    rng = np.random.default_rng([seed, 104729])
    xs, ys, fs = [], [], []
    for x, y, far in zip(dataset.inputs, dataset.targets, dataset.far):
        n = y.size
        pick = rng.choice(n, size=min(per_structure, n), replace=False)
        xs.append(x.reshape(x.shape[0], -1)[:, pick].T)
        ys.append(np.asarray(y).reshape(-1)[pick])
        fs.append(far.reshape(-1)[pick])
    shape = (-1, 1, 1, 1, 1)
    return (torch.from_numpy(np.concatenate(xs)).float()[..., None, None, None],
            torch.from_numpy(np.concatenate(ys)).float().reshape(shape),
            torch.from_numpy(np.concatenate(fs)).float().reshape(shape))


def pretrain_pointwise(net, dataset: PatchDataset, steps: int, core_weight: float, seed: int = 0,
                       per_structure: int = 4000, batch: int = 8192, lr: float = 3e-3, progress: bool = True) -> float:
    """Fit ``net.pointwise`` alone (AdamW, cosine) for ``steps``; returns the final mean |error| on the sample."""
    x, y, far = sample_voxels(dataset, per_structure, seed)
    weight = region_weight(far, core_weight)
    params = list(net.pointwise.parameters())
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="pointwise branch", disable=not progress):
        idx = torch.randint(len(x), (min(batch, len(x)),), generator=gen)
        pred = net.activate(net.local_logits(x[idx]))
        loss = (F.smooth_l1_loss(pred, y[idx], beta=0.05, reduction="none") * weight[idx]).sum() / weight[idx].sum()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sched.step()
    with torch.no_grad():
        return float((net.activate(net.local_logits(x)) - y).abs().mean())


def gbm_regressor(max_iter: int = 300, max_leaves: int = 63, seed: int = 0, max_depth: int | None = None,
                  l2: float = 0.0):
    """The per-voxel gradient-boosting regressor of issue 9 (absolute error, ``max_iter`` trees of at
    most ``max_leaves`` leaves and ``max_depth`` levels, leaf values shrunk by the L2 penalty ``l2``;
    scikit-learn's default early stopping)."""
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError as err:
        raise ImportError("fitting the gradient-boosting branch needs scikit-learn: pip install 'pymatgen-elfml[train]'") from err
    return HistGradientBoostingRegressor(loss="absolute_error", max_iter=max_iter, max_leaf_nodes=max_leaves,
                                         max_depth=max_depth, l2_regularization=l2, random_state=seed)


def forest_arrays(model) -> tuple[list[dict], float]:
    """Nodes of a fitted ``HistGradientBoostingRegressor`` as ``TreeEnsemble.load_trees`` arguments."""
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        trees.append({"feature": nodes["feature_idx"], "threshold": nodes["num_threshold"], "left": nodes["left"],
                      "right": nodes["right"], "value": nodes["value"], "is_leaf": nodes["is_leaf"]})
    return trees, float(np.ravel(model._baseline_prediction)[0])


def fit_trees(net, dataset: PatchDataset, config: TrainConfig) -> None:
    """Fit ``net.trees`` on ``config.tree_samples`` voxels of every sample to the target, or to the target minus
    the valence channel for a density model with that base; epoch 0 of the training log scores the result.
    From ``config``: ``core_weight`` (voxel weight within the core radius; 1 far from nuclei), ``seed``,
    ``tree_depth`` (levels per tree, 0: uncapped; the default 8 kept the walk short: v1 validation MAE
    0.0306, uncapped 0.0320) and ``tree_l2`` (scikit-learn's ``l2_regularization`` of the leaf values).
    With ``arch.pointwise_forests`` = K > 1, forest k (0..K-1) is fitted with seed ``seed + k`` (voxel sample
    and regressor) and the branch is their mean: every leaf value and the baseline over K (forest 0 is the
    single forest of K = 1)."""
    cfg = net.config
    trees, baseline = [], 0.0
    for k in range(cfg.pointwise_forests):
        forest, base = forest_arrays(_fit_forest(cfg, dataset, config, config.seed + k))
        trees += [{**tree, "value": np.asarray(tree["value"]) / cfg.pointwise_forests} for tree in forest]
        baseline += base / cfg.pointwise_forests
    net.trees.load_trees(trees, baseline)


def _fit_forest(cfg, dataset: PatchDataset, config: TrainConfig, seed: int):
    """One fitted ``gbm_regressor`` of ``fit_trees`` on the voxels drawn with ``seed`` (``cfg``: the UNetConfig)."""
    x, y, far = sample_voxels(dataset, config.tree_samples, seed)
    x, y, far = x.reshape(len(x), -1).numpy(), y.reshape(-1).numpy(), far.reshape(-1).numpy()
    if cfg.density_base:  # the forest fits what the valence-density channel leaves
        y = y - x[:, channel_names(cfg.inputs).index(base_channel(cfg.inputs))]
    model = gbm_regressor(cfg.pointwise_trees, cfg.pointwise_leaves, seed,
                          max_depth=config.tree_depth or None, l2=config.tree_l2)
    return model.fit(x, y, sample_weight=region_weight(far, config.core_weight))
