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
