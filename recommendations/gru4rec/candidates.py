"""Exact top-n for one live session on CPU without streaming the fp32 catalogue: an int8 copy of
``Wy`` is multiplied by an int8 copy of the session state (an exact integer dot product per item),
and only the items whose score can still reach the top n (a rigorous error bound) are re-scored
exactly in fp32 from ``[Wy | By]``.

Why: one fp32 mat-vec over a 40k x 101 catalogue reads 16 MB and is memory-bound (0.5 ms on one
core with the matrix in cache, more cold, as in a web worker between requests); the int8 copy is
4.5 MB and ``torch._int_mm`` (int8 x int8 -> int32; oneDNN's VNNI kernels on this machine's
AVX-512) scores one state against it in ~0.05 ms. The bf16-activation kernel used before
(``torch.ops.aten._weight_int8pack_mm``) took 0.17 ms for the same product. Two kernels compute
the int32 sums: torch's, and the engine's own (``native/i8gemv.c``, AVX2; 0.27 ms on an AVX2-only
AMD EPYC where oneDNN's took 4.7 ms); the serving cache keeps the faster (``model._ServeCache``).
The answer is the exact fp32 top n:

- ``q_j``, the int8 row of item j, with ``s_j`` its fp32 scale (``max |Wy_j| / 127``, nudged up so
  that nothing is clipped): ``|Wy_jk - s_j q_jk| <= s_j / 2``; the state ``h`` likewise becomes
  ``t a`` with ``a`` int8 and ``t`` one fp32 scale;
- the kernel's int32 sum ``a . q_j`` is exact (``|a . q_j| <= K 127^2 < 2^31``); the approximate
  score is ``A_j = (a . q_j) s_j t + By_j`` in fp32;
- ``|h . Wy_j - t s_j (a . q_j)| <= |h . (Wy_j - s_j q_j)| + |(h - t a) . s_j q_j|
  <= s_j (||h||_1 / 2 + 127 ||h - t a||_1) = s_j c(h)``, plus fp32 slack (``FP32_SUM`` or more for K > 127, relative,
  for the rounding of ``A_j`` and of the fp32 re-scoring: ``c`` adds ``254 FP32_SUM ||h||_1``
  for the re-scoring's sum of ``|h_k Wy_jk| <= 127 s_j |h_k|``);
- ``v`` = the smallest exact score among n items with high approximate scores: n items score at
  least ``v``, so every item of the true top n scores at least ``v``, and its approximate score is
  at least ``v`` minus the bound. Those candidates (a few dozen of 40,000 on the bench model) are
  re-scored exactly and ranked; ties aside, the result is what scoring every item gives.

``K`` (the state length) is padded to a multiple of 4 and the rows to a multiple of 64 with zeros
(padding rows score -inf through their bias). The scorer checks itself when built (the kernel's
sums against int64 ones, extreme values included, and every item within its bound); a scorer that
fails the check is not used, and the model scores every item in fp32.
"""
from __future__ import annotations

import copy
import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

# The state length is padded to a multiple of 4 (the kernel's groups of four int8 products; torch
# 2.13's sums are wrong for K = 1, which the self-check catches). Padding to 16 cost 12% more
# memory traffic for H = 100 (0.17 ms instead of 0.13 ms with the matrix cold in cache).
K_ALIGN = 4
QUANT_ROWS = 4096  # rows quantised at a time
ROW_BLOCK = 64  # the item groups whose maxima pick the first n items (see _first)
FP32_SUM = 2.0**-16  # >= 2 (K + 1) 2^-24 for K <= 127: fp32 rounding of the scores and the re-scoring, relative
SCALE_UP = 1.0 + 2.0**-20  # scales nudged up: |w / s| stays <= 127 after fp32 rounding


def _kernel():
    return getattr(torch, "_int_mm", None)


KERNEL_TORCH = "int8 torch"  # the name of torch's kernel in timings and logs


class Int8Scorer:
    """The int8 copy of ``Wy`` (``[rows, K]``, K = H padded to a multiple of 4; rows padded to
    a multiple of 64), its per-row fp32 scales and a copy of ``By``; :meth:`top` answers one
    session exactly or returns None (the caller then scores every item in fp32).

    The int32 sums come from torch's ``_int_mm`` over ``q8`` (``kernel`` None), or from the native
    kernel (a ``native.Kernel``) over ``qb``, the same values in its blocked layout (``q8`` is then
    dropped once the self-check passed: one 4 MB copy a model, not two). :meth:`with_kernel` makes
    the second scorer from the first without quantising again."""

    def __init__(self, output: torch.Tensor, max_candidates: int = 4096, kernel=None):
        n, h1 = output.shape
        self.n_items = n
        self.hidden = h1 - 1
        self.k = -(-self.hidden // K_ALIGN) * K_ALIGN
        self.rows = -(-n // ROW_BLOCK) * ROW_BLOCK
        self.max_candidates = max_candidates
        self.fp32_sum = max(FP32_SUM, 2.0 * (self.k + 1) * 2.0**-24)  # wider states: a wider slack
        self.scale = torch.ones(self.rows)
        self.q8 = torch.zeros(self.rows, self.k, dtype=torch.int8)
        self.bias = torch.full((self.rows,), -torch.inf)  # padding rows score -inf: never candidates
        with torch.inference_mode():
            for i in range(0, n, QUANT_ROWS):  # in slices: a few MB of temporaries, not 3 x the matrix
                j = min(i + QUANT_ROWS, n)
                w = output[i:j, : self.hidden]
                scale = (w.abs().amax(1) / 127.0 * SCALE_UP).clamp_min(1e-30)
                self.scale[i:j] = scale
                self.q8[i:j, : self.hidden] = torch.round(w / scale[:, None]).clamp_(-127, 127)
            self.bias[:n] = output[:, -1]
            self.bias_max = float(output[:, -1].abs().max()) if n else 0.0
            self.scale_max = float(self.scale[:n].max()) if n else 0.0
        self.q8_t = self.q8.t()  # [K, rows]: the kernel's fast layout for one query is this view
        self._scale_np = self.scale.numpy()
        self._bias_np = self.bias.numpy()
        self.kernel = None
        self.qb = None
        self.ok = self._use(kernel, output)

    def _use(self, kernel, output: torch.Tensor) -> bool:
        """Switch to ``kernel`` (None: torch's) and run the self-check; the native kernel's scorer
        then drops ``q8`` (its sums read ``qb``)."""
        self.kernel = kernel
        if kernel is not None:
            from . import native  # why: the ctypes loader is needed only where the library is used

            self.qb = native.blocked(self.q8.numpy())
        ok = self._self_check(output)
        if kernel is not None:
            self.q8 = self.q8_t = None
        return ok

    def with_kernel(self, kernel, output: torch.Tensor) -> "Int8Scorer":
        """A scorer over the same quantised catalogue using ``kernel`` (a ``native.Kernel``), its
        own self-check run (``ok``); this scorer is left as it is."""
        if self.q8 is None:
            raise ValueError("this scorer no longer holds the row-major int8 copy")
        other = copy.copy(self)
        other.ok = other._use(kernel, output)
        return other

    @property
    def kernel_name(self) -> str:
        return KERNEL_TORCH if self.kernel is None else f"int8 {self.kernel.name}"

    @property
    def kernel_key(self) -> str:
        """``int8_torch`` or ``int8_native``: the key of this scorer's timing."""
        return "int8_torch" if self.kernel is None else "int8_native"

    @property
    def nbytes(self) -> int:
        q = self.q8.numel() if self.q8 is not None else 0
        return q + (self.qb.nbytes if self.qb is not None else 0) + 4 * (self.scale.numel() + self.bias.numel())

    # ------------------------------------------------------------------------------ scoring
    # Around the kernel everything is numpy: its per-call cost (~1 us) beats torch's (~5-10 us)
    # over the dozen small steps, and the vectors are zero-copy views of the same memory.
    def _query(self, h: np.ndarray) -> tuple[torch.Tensor, float, float]:
        """(the int8 state ``a`` as a [1, K] tensor, its scale ``t``, ``c(h)`` of the bound)."""
        h64 = h.astype(np.float64)
        top = float(np.abs(h64).max()) if len(h64) else 0.0
        t = top / 127.0 * SCALE_UP if top > 0 else 1.0
        a = np.rint(h64 / t)  # |h / t| < 127: never clipped
        a8 = torch.zeros(1, self.k, dtype=torch.int8)
        a8.numpy()[0, : self.hidden] = a
        l1_h = float(np.abs(h64).sum())
        c = 0.5 * l1_h + 127.0 * float(np.abs(h64 - t * a).sum()) + 254.0 * self.fp32_sum * l1_h
        return a8, t, c

    def _sums(self, a8: torch.Tensor) -> np.ndarray:
        """The int32 sums ``a . q_j`` of every row (``a8`` [1, K]) by this scorer's kernel."""
        if self.kernel is not None:
            return self.kernel.sums(self.qb, a8.numpy()[0], self.rows, self.k)
        return _kernel()(a8, self.q8_t)[0].numpy()

    def _approx(self, h: np.ndarray) -> tuple[np.ndarray, float]:
        """(approximate scores [rows], fp32, exact bias; c(h)) where
        ``|exact_j - score_j| <= scale_j * c`` (+ the fp32 slack of :meth:`_margin`)."""
        a8, t, c = self._query(h)
        if self.kernel is not None:  # the same arithmetic in C, fused with the sums (same bits)
            score = self.kernel.scores(self.qb, a8.numpy()[0], self._scale_np, self._bias_np, t, self.rows, self.k,
                                       np.empty(self.rows, dtype=np.int32), np.empty(self.rows, dtype=np.float32))
            return score, c
        acc = self._sums(a8)
        score = acc.astype(np.float32)
        score *= self._scale_np
        score *= np.float32(t)
        score += self._bias_np
        return score, c

    def _margin(self, c: float, v: float) -> float:
        """A bound on ``exact_j - score_j`` that holds for every item with ``score_j < v``: ``s_max c``
        plus the fp32 slack of the scores and of the re-scoring (relative to their magnitude,
        at most ``max|By| + |v| + s_max c``)."""
        e = self.scale_max * c
        return e + self.fp32_sum * (self.bias_max + abs(v) + e)

    def top(self, output: torch.Tensor, h: np.ndarray, n: int, exclude=None, mask: torch.Tensor | None = None):
        """Exact top ``n`` (item indices, fp32 scores; numpy) of ``[h | 1] . [Wy | By]^T (+ mask)``,
        items in ``exclude`` left out; None when fewer than ``n`` items can be ranked or the
        candidates are too many to be worth it (the caller scores everything). ``mask`` is additive
        (0 / -inf)."""
        score, c = self._approx(h)
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
        score, c = self._approx(h)
        first = self._first(score, n)
        v = float(self._exact(output.numpy(), np.append(h, np.float32(1.0)), first, None).min())
        return int((score >= v - self._margin(c, v)).sum())

    def candidate_recall(self, output: torch.Tensor, h: np.ndarray, n: int, n_candidates: int) -> float:
        """Share of the exact top ``n`` among the ``n_candidates`` best approximate items."""
        score, _ = self._approx(h)
        exact = output.numpy() @ np.append(h, np.float32(1.0))
        truth = set(np.argpartition(exact, -n)[-n:].tolist())
        got = set(np.argpartition(score, -n_candidates)[-n_candidates:].tolist())
        return len(truth & got) / max(1, len(truth))

    # ---------------------------------------------------------------------------- self-check
    def _self_check(self, output: torch.Tensor) -> bool:
        """The kernel's int32 sums against int64 ones (random and extreme int8 states, so a
        saturating kernel is caught), then a few random states with every item checked against its
        bound; False (and a warning) on any failure."""
        if self.kernel is None and _kernel() is None:
            return False
        gen = torch.Generator().manual_seed(0)
        n = self.n_items
        try:
            with torch.inference_mode():
                states = [torch.randint(-127, 128, (1, self.k), generator=gen, dtype=torch.int8)]
                states += [torch.full((1, self.k), v, dtype=torch.int8) for v in (127, -127)]
                for a8 in states:
                    got = torch.from_numpy(self._sums(a8)).long()
                    for i in range(0, self.rows, QUANT_ROWS):  # int64 sums in slices: small temporaries
                        if not torch.equal(got[i : i + QUANT_ROWS], self.q8[i : i + QUANT_ROWS].long() @ a8[0].long()):
                            logger.warning("%s kernel sums are wrong on this machine; not used", self.kernel_name)
                            return False
                for _ in range(3):
                    h = (torch.rand(self.hidden, generator=gen) * 2 - 1).numpy()
                    score, c = self._approx(h)
                    q = torch.ones(self.hidden + 1)
                    q[: self.hidden] = torch.from_numpy(h)
                    exact = torch.mv(output, q).numpy()
                    e = self._scale_np[:n] * c + self.fp32_sum * (self.bias_max + np.abs(exact) + self._scale_np[:n] * c)
                    if not np.isfinite(score[:n]).all() or not (np.abs(exact - score[:n]) <= e).all():
                        logger.warning("int8 candidate scoring (%s) fails its self-check; not used", self.kernel_name)
                        return False
        except (RuntimeError, NotImplementedError, TypeError, ValueError, OSError) as exc:
            logger.warning("int8 candidate scoring (%s) unavailable (%s); not used", self.kernel_name, exc)
            return False
        return True
