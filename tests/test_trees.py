"""The forest branch: scikit-learn's fitted trees evaluated by torch, and a tiny run that uses it."""


import numpy as np
import pytest
import torch

from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig
from pymatgen_elfml.nn.trees import TreeEnsemble

sklearn = pytest.importorskip("sklearn")


def _forest(n_trees=40, leaves=15, n=20000, seed=0):
    from pymatgen_elfml.train.local import gbm_regressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32).astype(np.float64)  # features are float32
    y = np.tanh(x[:, 0] * x[:, 1]) + 0.3 * np.sin(3 * x[:, 7]) + 0.05 * rng.normal(size=n)
    return gbm_regressor(n_trees, leaves, seed).fit(x, y), x


def test_torch_forest_equals_scikit_learn():
    """Every prediction of the buffers equals the fitted regressor's, with spare tree slots left empty."""
    from pymatgen_elfml.train.local import forest_arrays

    model, x = _forest()
    trees = TreeEnsemble(n_trees=50, max_leaves=15, n_features=8, chunk=777)  # odd chunk: several pieces
    trees.load_trees(*forest_arrays(model))
    assert 0 < int(trees.depth) <= 14 and model.n_iter_ <= 40
    grid = torch.from_numpy(x.T.reshape(1, 8, 20, 25, 40).copy())
    pred = trees(grid).reshape(-1).numpy()
    np.testing.assert_allclose(pred, model.predict(x), rtol=0, atol=1e-12)
    assert np.abs(pred - model._baseline_prediction.ravel()[0]).max() > 0.1  # the trees do something


def test_int64_node_tables_of_older_weights_load_and_predict_the_same():
    """density-metals-v6 and earlier were saved with int64 feature/child tables; the int32 buffers take them."""
    from pymatgen_elfml.train.local import forest_arrays

    model, x = _forest(n_trees=10)
    trees = TreeEnsemble(n_trees=10, max_leaves=15, n_features=8)
    trees.load_trees(*forest_arrays(model))
    old = {k: v.long() if k in ("feature", "child") else v for k, v in trees.state_dict().items()}
    again = TreeEnsemble(n_trees=10, max_leaves=15, n_features=8)
    again.load_state_dict(old)
    assert again.feature.dtype == again.child.dtype == torch.int32
    grid = torch.from_numpy(x[:2000].T.reshape(1, 8, 10, 10, 20).copy())
    assert torch.equal(again(grid), trees(grid))
    np.testing.assert_allclose(again(grid).reshape(-1).numpy(), model.predict(x[:2000]), rtol=0, atol=1e-12)


def test_forest_that_does_not_fit_is_refused():
    from pymatgen_elfml.train.local import forest_arrays

    model, _ = _forest(n_trees=10, leaves=15)
    trees, base = forest_arrays(model)
    with pytest.raises(ValueError, match="do not fit"):
        TreeEnsemble(5, 15, 8).load_trees(trees, base)
    with pytest.raises(ValueError, match="more than the 13 slots"):
        TreeEnsemble(10, 7, 8).load_trees(trees, base)
    with pytest.raises(ValueError, match="outside 0..3"):
        TreeEnsemble(10, 15, 4).load_trees(trees, base)
    with pytest.raises(ValueError, match="replaces pointwise_hidden"):
        UNetConfig(inputs="sad_features", pointwise_trees=10, logit_residual=True)


def test_forest_network_starts_at_the_forest_and_survives_save_and_load(tmp_path):
    from dataclasses import replace

    from conftest import TINY_SPEC

    from pymatgen_elfml.predictor import ElfPredictor
    from pymatgen_elfml.train.local import forest_arrays

    model, x = _forest(n_trees=20, leaves=15)
    arch = replace(TINY_SPEC.arch, inputs="sad_features", symm_input=False, symm_stages=False, pointwise_trees=20,
                   pointwise_leaves=15)
    net = PeriodicUNet3D(arch)
    net.trees.load_trees(*forest_arrays(model))
    grid = torch.from_numpy(x[:4096].T.reshape(1, 8, 16, 16, 16).copy()).float()
    with torch.no_grad():
        out = net(grid).reshape(-1).numpy()
    expected = np.clip(model.predict(grid.double().reshape(8, -1).T.numpy()), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(out, expected, atol=1e-5)  # the U-Net's correction starts at zero
    ElfPredictor(net, replace(TINY_SPEC, arch=arch), device="cpu").save_pretrained(tmp_path / "m")
    loaded = ElfPredictor.from_pretrained(tmp_path / "m", device="cpu").net
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
