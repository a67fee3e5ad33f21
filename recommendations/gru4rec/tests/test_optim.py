"""Adagrad (eps 1e-6) with momentum, dense and row-sparse, against the update equations."""
import numpy as np
import pytest
import torch

from recommendations.gru4rec.trainer import ADAGRAD_EPS, DenseAdagrad, SparseAdagrad

LR, MOM = 0.1, 0.3


def reference(w, acc, vel, g):
    acc = acc + g * g
    vel = MOM * vel - LR * g / np.sqrt(acc + ADAGRAD_EPS)
    return w + vel, acc, vel


@pytest.mark.parametrize("scratch", [False, True])
def test_sparse_rows_only_touched_rows_and_duplicates_summed(scratch):
    """Both paths: torch.unique (CPU) and the scratch matrix (GPU, no host sync)."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((8, 3)).astype(np.float32)
    opt = SparseAdagrad(torch.from_numpy(w0.copy()), LR, MOM)
    if scratch:
        opt.scratch = torch.zeros_like(opt.weight)
    w, acc, vel = w0.astype(np.float64), np.zeros((8, 3)), np.zeros((8, 3))
    for idx in ([1, 4, 1, 6], [4, 2, 2]):
        g_rows = rng.standard_normal((len(idx), 3)).astype(np.float32)
        opt.step(torch.tensor(idx), torch.from_numpy(g_rows))
        g = np.zeros((8, 3))
        np.add.at(g, idx, g_rows.astype(np.float64))
        rows = sorted(set(idx))
        w_new, acc_new, vel_new = reference(w[rows], acc[rows], vel[rows], g[rows])
        w[rows], acc[rows], vel[rows] = w_new, acc_new, vel_new
        np.testing.assert_allclose(opt.weight.numpy(), w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(opt.acc.numpy(), acc, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(opt.vel.numpy(), vel, rtol=1e-5, atol=1e-6)
    # rows 0, 3, 5, 7 were never in a batch: untouched, even with momentum
    untouched = [0, 3, 5, 7]
    np.testing.assert_array_equal(opt.weight.numpy()[untouched], w0[untouched])
    assert not opt.acc.numpy()[untouched].any()


def test_dense_matches_equations_with_and_without_momentum():
    rng = np.random.default_rng(1)
    for mom in (0.0, MOM):
        w0 = rng.standard_normal(10)
        opt = DenseAdagrad(torch.from_numpy(w0.copy()), LR, mom)
        w, acc, vel = w0.copy(), np.zeros(10), np.zeros(10)
        for _ in range(3):
            g = rng.standard_normal(10)
            opt.grad.copy_(torch.from_numpy(g))
            opt.step()
            acc = acc + g * g
            vel = mom * vel - LR * g / np.sqrt(acc + ADAGRAD_EPS)
            w = w + vel
        np.testing.assert_allclose(opt.weight.numpy(), w, rtol=1e-12)
