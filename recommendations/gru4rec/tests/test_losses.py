"""Both losses and their hand-written gradients against a float64 autograd reference."""
import pytest
import torch

from recommendations.gru4rec.losses import bpr_max, cross_entropy


def ref_cross_entropy(scores, log_q, logq):
    logits = scores - logq * log_q if logq else scores
    p = torch.softmax(logits, dim=1)
    return -torch.log(p.diagonal() + 1e-24).mean()


def ref_bpr_max(scores, elu_param, bpreg):
    r = torch.nn.functional.elu(scores, alpha=elu_param) if elu_param > 0 else scores
    b, c = r.shape
    neg = torch.ones(b, c, dtype=torch.bool)
    neg[torch.arange(b), torch.arange(b)] = False
    s = torch.softmax(r.masked_fill(~neg, float("-inf")), dim=1)
    pos = r.diagonal().unsqueeze(1)
    loss = -torch.log((s * torch.sigmoid(pos - r)).sum(1) + 1e-24) + bpreg * (s * r * r).sum(1)
    return loss.mean()


def _scores(b=5, c=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64) * 2


@pytest.mark.parametrize("logq", [0.0, 1.0, 0.5])
def test_cross_entropy_matches_reference(logq):
    s = _scores()
    log_q = torch.log(torch.rand(s.shape[1], generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    loss, grad = cross_entropy(s.clone(), log_q, logq)
    x = s.clone().requires_grad_()
    ref = ref_cross_entropy(x, log_q, logq)
    ref.backward()
    assert torch.allclose(loss, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(grad, x.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("elu_param,bpreg", [(0.0, 0.0), (0.5, 1.95), (1.0, 0.9), (0.0, 1.0)])
def test_bpr_max_matches_reference(elu_param, bpreg):
    s = _scores(seed=2)
    loss, grad = bpr_max(s.clone(), elu_param, bpreg)
    x = s.clone().requires_grad_()
    ref = ref_bpr_max(x, elu_param, bpreg)
    ref.backward()
    assert torch.allclose(loss, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(grad, x.grad, rtol=1e-9, atol=1e-12)


def test_float32_losses_close_to_float64():
    s = _scores(b=32, c=300, seed=3)
    l32, g32 = bpr_max(s.float(), 0.5, 1.95)
    l64, g64 = bpr_max(s, 0.5, 1.95)
    assert abs(float(l32) - float(l64)) < 1e-5 and torch.allclose(g32.double(), g64, atol=1e-6)


@pytest.mark.parametrize("name", ["cross-entropy", "bpr-max"])
def test_loss_is_the_row_sum_over_the_configured_batch_size(name):
    """Spec (corrected 2026-12-04): a mini-batch's loss is the sum over its rows divided by the
    configured batch_size, also for a shrinking batch. A last batch of one row (batch_size 8) gets
    1/8 of the mean-loss value and gradient, checked against a loss computed by hand."""
    import math

    from recommendations.gru4rec.losses import loss_and_grad

    row = torch.tensor([[1.5, -0.5, 0.25, 2.0]], dtype=torch.float64)  # one row; positive = column 0
    log_q = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64))
    v = row[0].tolist()
    if name == "cross-entropy":  # logq = 1: logits v_j - log Q_j
        logits = [v[j] - math.log([0.4, 0.3, 0.2, 0.1][j]) for j in range(4)]
        by_hand = -math.log(math.exp(logits[0]) / sum(math.exp(t) for t in logits) + 1e-24)
        kw = {"log_q": log_q, "logq": 1.0}
    else:  # elu 0 (linear), bpreg 2: softmax over the negatives 1..3
        e = [math.exp(t) for t in v[1:]]
        s = [t / sum(e) for t in e]
        sig = [1 / (1 + math.exp(-(v[0] - t))) for t in v[1:]]
        by_hand = -math.log(sum(a * b for a, b in zip(s, sig)) + 1e-24) + 2.0 * sum(a * t * t for a, t in zip(s, v[1:]))
        kw = {"elu_param": 0.0, "bpreg": 2.0}
    mean_loss, mean_grad = loss_and_grad(name, row.clone(), **kw)  # the rows present: 1
    loss, grad = loss_and_grad(name, row.clone(), batch_size=8, **kw)
    assert float(mean_loss) == pytest.approx(by_hand, rel=1e-12)
    assert float(loss) == pytest.approx(by_hand / 8, rel=1e-12)
    assert torch.allclose(grad, mean_grad / 8, rtol=1e-12, atol=0)
    x = row.clone().requires_grad_()
    ref = (ref_cross_entropy(x, log_q, 1.0) if name == "cross-entropy" else ref_bpr_max(x, 0.0, 2.0)) / 8
    ref.backward()
    assert torch.allclose(grad, x.grad, rtol=1e-10, atol=1e-14)
    # a full batch: the sum over 5 rows / 5 is the mean, as before
    s5 = _scores(b=5, c=9, seed=4)
    lq = torch.zeros(9, dtype=torch.float64)
    full = loss_and_grad(name, s5.clone(), log_q=lq, batch_size=5) if name == "cross-entropy" \
        else loss_and_grad(name, s5.clone(), elu_param=0.5, bpreg=1.0, batch_size=5)
    part = loss_and_grad(name, s5.clone(), log_q=lq, batch_size=20) if name == "cross-entropy" \
        else loss_and_grad(name, s5.clone(), elu_param=0.5, bpreg=1.0, batch_size=20)
    assert torch.allclose(part[0] * 4, full[0]) and torch.allclose(part[1] * 4, full[1])
