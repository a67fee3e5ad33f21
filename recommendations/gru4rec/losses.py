"""GRU4Rec losses over a sampled score matrix, with hand-written gradients.

``scores`` is batch x (batch + n_sample); the positive of row i is column i. Each function
returns ``(loss, d_scores)`` where ``loss`` is the sum over rows divided by ``batch_size`` (a
0-d tensor, left on the device) and ``d_scores`` its gradient with respect to ``scores``. The
trainer passes the *configured* batch size, so a shrinking batch at the end of an epoch (fewer
rows) gets a proportionally smaller loss and gradient, as the spec says; ``batch_size=None``
divides by the rows present (the mean), which only the tests use. The training step uses the
gradient directly instead of autograd: one step is a few dozen small kernels, and autograd's
bookkeeping would cost more than the arithmetic. Tests check both against float64 autograd.
"""
from __future__ import annotations

import torch

EPS = 1e-24


def cross_entropy(scores: torch.Tensor, log_q: torch.Tensor | None = None, logq: float = 0.0,
                  batch_size: int | None = None):
    """Softmax cross-entropy, ``-log(p_ii + 1e-24)``; with ``logq > 0`` the logits are
    corrected by ``- logq * log(Q_j)`` (Q_j = sampling probability of column j)."""
    b = batch_size or scores.shape[0]
    logits = scores - logq * log_q if (logq and log_q is not None) else scores
    p = torch.softmax(logits, dim=1)
    p_pos = p.diagonal()
    loss = -torch.log(p_pos + EPS).sum() / b
    # d/dlogit_ij of -log(p_ii + eps) = -(p_ii / (p_ii + eps)) * (delta_ij - p_ij)
    coef = (p_pos / (p_pos + EPS)).unsqueeze(1) / b
    grad = p
    grad.diagonal().sub_(1.0)
    grad.mul_(coef)
    return loss, grad


def bpr_max(scores: torch.Tensor, elu_param: float = 0.0, bpreg: float = 0.0, batch_size: int | None = None):
    """BPR-max: ``-log(sum_j s_ij sigmoid(r_ii - r_ij) + 1e-24) + bpreg * sum_j s_ij r_ij^2``,
    s_ij = softmax of row i over its negatives, r = ELU(scores) when ``elu_param > 0``."""
    c = scores.shape[1]
    b = batch_size or scores.shape[0]
    if c <= 1:  # a lone slot and no samples: no negative to rank against
        return scores.new_zeros(()), torch.zeros_like(scores)
    if elu_param > 0:
        r = torch.nn.functional.elu(scores, alpha=elu_param)
        d_elu = torch.where(scores > 0, torch.ones_like(r), r + elu_param)
    else:
        r = scores
        d_elu = None
    # softmax over the negatives: stabilise with the max over negatives only, so a huge
    # positive cannot underflow every negative to zero (0/0)
    e = r.clone()
    e.diagonal().fill_(-torch.inf)
    e = torch.exp(e.sub_(e.amax(dim=1, keepdim=True)))
    s = e / e.sum(dim=1, keepdim=True)
    r_pos = r.diagonal().unsqueeze(1)
    sig = torch.sigmoid(r_pos - r)
    s_sig = s * sig
    a = s_sig.sum(dim=1, keepdim=True)
    t = a + EPS
    loss_rows = -torch.log(t)
    # negatives k: dT/dr_ik = s_ik (sig_ik^2 - A_i); positive: dT/dr_ii = sum_j s_ij sig_ij (1 - sig_ij)
    grad = -(s_sig * sig - s * a) / t
    pos_grad = -(s_sig * (1.0 - sig)).sum(dim=1) / t.squeeze(1)
    if bpreg:
        r2 = r * r
        s_r2 = s * r2
        bv = s_r2.sum(dim=1, keepdim=True)
        loss_rows = loss_rows + bpreg * bv
        # d/dr_ik of sum_j s_ij r_ij^2 = s_ik (r_ik^2 - B_i) + 2 s_ik r_ik  (zero on the positive)
        grad = grad + bpreg * (s_r2 - s * bv + 2.0 * s * r)
    grad.diagonal().copy_(pos_grad)
    if d_elu is not None:
        grad = grad * d_elu
    grad.div_(b)
    return loss_rows.sum() / b, grad


def loss_and_grad(name: str, scores: torch.Tensor, *, log_q=None, logq=0.0, elu_param=0.0, bpreg=0.0,
                  batch_size: int | None = None):
    """The named loss, summed over rows and divided by ``batch_size`` (the configured one in
    training; None = the rows present)."""
    if name == "cross-entropy":
        return cross_entropy(scores, log_q, logq, batch_size)
    if name == "bpr-max":
        return bpr_max(scores, elu_param, bpreg, batch_size)
    raise ValueError(f"unknown loss {name!r}")
