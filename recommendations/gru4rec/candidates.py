"""Exact top-n for one live session on CPU without streaming the fp32 catalogue: an int8 copy of
``Wy`` scores every item approximately, and only the items whose score can still reach the top n
(a rigorous error bound) are re-scored exactly in fp32 from ``[Wy | By]``.

Why: one fp32 mat-vec over a 40k x 101 catalogue reads 16 MB and is memory-bound (0.62 ms on one
core with the matrix in cache, 1.4 ms cold, as in a web worker between requests); the int8 copy is
4.5 MB and ``torch.ops.aten._weight_int8pack_mm`` (the CPU kernel behind torchao's int8
weight-only linear) scores it in 0.36 ms warm, 0.70 ms cold. The answer is the exact fp32 top n:

- ``a_j``, the approximate score, is ``bf16(bf16(h) . (q_j * s_j)) + By_j`` with ``q_j`` the int8
  row and ``s_j`` its scale (bf16, rounded up so that no weight is clipped); ``By`` stays exact;
- ``|h . Wy_j + By_j - a_j| <= s_j * c(h) + 2^-7 |a_j - By_j|`` (+ fp32 slack), where ``c`` covers
  the weight rounding (``||h||_1 / 2``), the activation rounding to bf16 (``127 ||h - bf16(h)||_1``)
  and fp32 accumulation, and ``2^-7 |.|`` the bf16 rounding of the kernel's output;
- ``v`` = the smallest exact score among n items with high approximate scores: n items score at
  least ``v``, so every item of the true top n scores at least ``v``, and its approximate score is
  at least ``v`` minus the bound. Those candidates (about 20 of 40,000 on the bench model, p99 30)
  are re-scored exactly and ranked; ties aside, the result is what scoring every item gives.

The kernel (``aten/src/ATen/native/cpu/int8mm_kernel.cpp``: per lane ``fma(a, float(q) * s, acc)``
in fp32, a 16-lane sum, the result rounded to bf16; the error model above) steps through K in
blocks of 16 with aligned loads: past the end of the query when K is not a multiple of 16 (what
lies there enters the scores: NaN in, NaN out), and a crash on a query row that is not 32-byte
aligned (numpy's buffers, a second row of odd length). So K is padded to a multiple of 16 with zero
columns, the query is one row in a fresh torch buffer (64-byte aligned), and the scorer checks
itself when built (a NaN-tailed query buffer; every item within its bound); a scorer that fails
the check is not used, and the model scores every item in fp32.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

K_ALIGN = 16  # the query length: a multiple of 16 (see above)
QUANT_ROWS = 4096  # rows quantised at a time
ROW_BLOCK = 64  # the item groups whose maxima pick the first n items (see _first)
BF16_OUT = 2.0**-7  # > u / (1 - u) for bf16's unit roundoff u = 2^-8: the kernel's output rounding
FP32_SUM = 2.0**-16  # >= K * 2^-24 for K <= 256: fp32 accumulation and re-scoring, relative


def _kernel():
    return getattr(torch.ops.aten, "_weight_int8pack_mm", None)


class Int8Scorer:
    """The int8 copy of ``Wy`` (``[n_items, K]``, K = H padded to a multiple of 16; rows padded to
    a multiple of 64), its per-row scales and a copy of ``By``; :meth:`top` answers one session
    exactly or returns None (the caller then scores every item in fp32)."""

    def __init__(self, output: torch.Tensor, max_candidates: int = 4096):
        n, h1 = output.shape
        self.n_items = n
        self.hidden = h1 - 1
        self.k = -(-self.hidden // K_ALIGN) * K_ALIGN
        self.rows = -(-n // ROW_BLOCK) * ROW_BLOCK
        self.max_candidates = max_candidates
        self.scale = torch.ones(self.rows, dtype=torch.bfloat16)
        self.q8 = torch.zeros(self.rows, self.k, dtype=torch.int8)
        self.bias = torch.full((self.rows,), -torch.inf)  # padding rows score -inf: never candidates
        with torch.inference_mode():
            for i in range(0, n, QUANT_ROWS):  # in slices: a few MB of temporaries, not 3 x the matrix
                j = min(i + QUANT_ROWS, n)
                w = output[i:j, : self.hidden]
                # bf16 scale rounded *up* (x (1 + 2^-7) before rounding to nearest): |w / s| <= 127
                scale = (w.abs().amax(1) / 127.0 * (1.0 + 2.0**-7)).clamp_min(1e-30).to(torch.bfloat16)
                self.scale[i:j] = scale
                self.q8[i:j, : self.hidden] = torch.round(w / scale.float()[:, None]).clamp_(-127, 127)
            self.bias[:n] = output[:, -1]
            self.bias_max = float(output[:, -1].abs().max()) if n else 0.0
            self.scale_max = float(self.scale[:n].float().max()) if n else 0.0
        self.ok = self._self_check(output)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.q8, self.scale, self.bias))

    # ------------------------------------------------------------------------------ scoring
    # After the kernel everything is numpy: its per-call cost (~1 us) beats torch's (~5-10 us)
    # over the dozen small steps, and the vectors are zero-copy views of the same memory.
    def _query(self, h: np.ndarray, tail: float | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """(bf16(h) zero-padded to K, as a fresh [1, K] tensor; bf16(h) as float32 numpy). The
        kernel needs a 32-byte aligned query (torch's allocator aligns to 64; numpy's to 16)."""
        b = np.zeros(self.k, dtype=np.float32)
        b[: self.hidden] = h
        b = b.view(np.uint32)
        b += np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))  # round to nearest even
        b >>= np.uint32(16)
        b[(b & np.uint32(0x7F80)) == 0] = 0  # subnormals to zero: they put the kernel on a 5x slower path
        buf = torch.empty(self.k + (64 if tail is not None else 0), dtype=torch.int16)
        if tail is not None:
            buf.view(torch.bfloat16).fill_(tail)
        buf.numpy()[: self.k] = b.astype(np.int16)
        if buf.data_ptr() % 32:
            raise RuntimeError("query buffer not 32-byte aligned")
        a32 = (b[: self.hidden] << np.uint32(16)).view(np.float32)
        return buf.view(torch.bfloat16)[: self.k].view(1, self.k), a32

    def _approx(self, h: np.ndarray, tail: float | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(approximate scores [rows] fp32 with the exact bias, the kernel's raw bf16 output, c(h))
        where ``|exact_j - score_j| <= scale_j * c + 2^-7 |raw_j|`` (+ the bias slack)."""
        a, a32 = self._query(h, tail)
        raw = _kernel()(a, self.q8, self.scale)[0]
        l1_h = float(np.abs(h).sum())
        c = 0.5 * l1_h + 127.0 * float(np.abs(h - a32).sum()) + 127.0 * FP32_SUM * 2.0 * l1_h
        return torch.add(self.bias, raw), raw, c

    def _margin(self, c: float, v: float) -> float:
        """A bound on ``exact_j - score_j`` that holds for every item with ``score_j < v``: with
        ``|raw_j| <= |score_j| + |By_j| <= |v| + e + max|By|``, ``e <= (s_max c + 2^-7 (|v| + max|By|))
        / (1 - 2^-7)``, plus the fp32 slack of the bias and of the re-scoring."""
        e = (self.scale_max * c + BF16_OUT * (abs(v) + self.bias_max)) / (1.0 - BF16_OUT)
        return e + FP32_SUM * (self.bias_max + abs(v) + e)

    def top(self, output: torch.Tensor, h: np.ndarray, n: int, exclude=None, mask: torch.Tensor | None = None):
        """Exact top ``n`` (item indices, fp32 scores; numpy) of ``[h | 1] . [Wy | By]^T (+ mask)``,
        items in ``exclude`` left out; None when fewer than ``n`` items can be ranked or the
        candidates are too many to be worth it (the caller scores everything). ``mask`` is additive
        (0 / -inf)."""
        score_t, _, c = self._approx(h)
        score = score_t.numpy()
        mask = mask.numpy() if mask is not None else None
        if mask is not None:
            score[: self.n_items] += mask
        if exclude is not None and len(exclude):
            score[exclude] = -np.inf
        first = self._first(score, n)
        if first is None:
            return None
        w = output.numpy()
        q = np.append(h, np.float32(1.0))
        v = float(self._exact(w, q, first, mask).min())
        if v == -np.inf:
            return None
        cand = np.flatnonzero(score >= v - self._margin(c, v))
        if not (n <= len(cand) <= self.max_candidates):
            return None
        exact = self._exact(w, q, cand, mask)
        best = np.argpartition(exact, -n)[-n:]
        best = best[np.argsort(-exact[best], kind="stable")]
        return cand[best], exact[best]

    @staticmethod
    def _first(score: np.ndarray, n: int) -> np.ndarray | None:
        """``n`` distinct items with high approximate scores: the best item of each of the ``n``
        groups with the highest maxima, group g being the items g, g + R, g + 2R, ... (R = rows /
        64: a reduction over the 64 rows of ``score`` viewed as [64, R] is a few vector passes, far
        cheaper than a top-n over every item); the plain top n when there are too few groups for
        that. None when fewer than ``n`` items have a finite score."""
        groups = score.reshape(ROW_BLOCK, -1)
        if n == 0 or n > len(score):
            return None
        if 4 * n <= groups.shape[1]:
            maxima = groups.max(0)
            top = np.argpartition(maxima, -n)[-n:]
            if maxima[top].min() == -np.inf:
                return None
            return groups[:, top].argmax(0) * groups.shape[1] + top
        top = np.argpartition(score, -n)[-n:]
        return None if score[top].min() == -np.inf else top

    @staticmethod
    def _exact(w: np.ndarray, q: np.ndarray, rows: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        s = w[rows] @ q
        return s + mask[rows] if mask is not None else s

    # ------------------------------------------------------------------------------ bench
    def n_candidates(self, output: torch.Tensor, h: np.ndarray, n: int) -> int:
        """How many items :meth:`top` re-scores for ``h`` (no exclusions, no mask)."""
        score, _, c = self._approx(h)
        score = score.numpy()
        first = self._first(score, n)
        v = float(self._exact(output.numpy(), np.append(h, np.float32(1.0)), first, None).min())
        return int((score >= v - self._margin(c, v)).sum())

    def candidate_recall(self, output: torch.Tensor, h: np.ndarray, n: int, n_candidates: int) -> float:
        """Share of the exact top ``n`` among the ``n_candidates`` best approximate items."""
        score, _, _ = self._approx(h)
        exact = output.numpy() @ np.append(h, np.float32(1.0))
        truth = set(np.argpartition(exact, -n)[-n:].tolist())
        got = set(np.argpartition(score.numpy(), -n_candidates)[-n_candidates:].tolist())
        return len(truth & got) / max(1, len(truth))

    # ---------------------------------------------------------------------------- self-check
    def _self_check(self, output: torch.Tensor) -> bool:
        """Score a few queries with a NaN-tailed query buffer (a kernel that reads past K is
        caught) and check every item against its bound; False (and a warning) on any failure."""
        if _kernel() is None:
            return False
        gen = torch.Generator().manual_seed(0)
        try:
            with torch.inference_mode():
                for _ in range(3):
                    h = (torch.rand(self.hidden, generator=gen) * 2 - 1).numpy()
                    score, raw, c = self._approx(h, tail=float("nan"))
                    q = torch.ones(self.hidden + 1)
                    q[: self.hidden] = torch.from_numpy(h)
                    exact = torch.mv(output, q)
                    n = self.n_items
                    e = self.scale[:n].float() * c + raw[:n].abs() * BF16_OUT + FP32_SUM * (self.bias_max + exact.abs())
                    if not bool(torch.isfinite(score[:n]).all()) or not bool(((exact - score[:n]).abs() <= e).all()):
                        logger.warning("int8 candidate scoring fails its self-check; scoring in fp32")
                        return False
        except (RuntimeError, NotImplementedError, TypeError) as exc:
            logger.warning("int8 candidate scoring unavailable (%s); scoring in fp32", exc)
            return False
        return True
