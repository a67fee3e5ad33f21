"""The GRU4Rec model: weights, item map, inference (evaluation and serving) and checkpoints.

Weights are plain tensors (no autograd; the trainer computes gradients by hand):

- ``output``  [n_items, H+1] = ``[Wy | By]``: the output matrix with the bias folded in as the
  last column. Score of item j for hidden h is ``h . Wy[j] + By[j]``. With the shared
  (constrained) embedding, ``Wy`` is also the input embedding.
- ``embedding`` [n_items, E] for a separate embedding, or [n_items, 3*H0] for one-hot input
  (the first GRU layer's input weights, one row per item). Absent with the shared embedding.
- ``gru.{l}.W_ih`` [D, 3H], ``gru.{l}.W_hh`` [H, 3H], ``gru.{l}.b_ih``, ``gru.{l}.b_hh`` [3H] per
  layer, gates in the order reset, update, candidate. ``r, z = sigmoid(x W + h U + b)``,
  ``h' = (1-z) n + z h``; the candidate ``n`` depends on ``params.gru_variant``:
  "classic" (Cho et al. 2014 as written in the GRU4Rec paper): ``n = tanh(x W_n + (r * h) U_n + b_n)``
  (reset gate applied to h *before* U), one bias per gate (``b_ih``), ``b_hh`` unused (zero);
  "reference" (the reference implementation's cell, per the spec):
  ``n = tanh(x W_n + b_in + r * (h U_n + b_hn))`` with ``b_hn = b_hh[2H:]`` trained (``b_hh[:2H]``
  stays zero: it would only duplicate ``b_ih`` for r and z).
  ``gru.0.W_ih`` is absent with one-hot input. The dense tensors are views of one flat buffer
  so that the optimiser updates them with a handful of kernels.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from .lru import LRU
from .params import GRU4RecParams
from .topn import top_n
from .types import Recommendation

logger = logging.getLogger(__name__)


def _uniform_(t: torch.Tensor, fan_in: int, fan_out: int, gen: torch.Generator) -> None:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    t.uniform_(-bound, bound, generator=gen)


@dataclass
class _DenseSpec:
    name: str
    shape: tuple[int, ...]
    fans: tuple[int, int] | None  # per-gate (fan_in, fan_out) for init; None = zeros (biases)


class GRU4Rec:
    """A trained (or fresh) GRU4Rec model and its item map. Train with :func:`fit` (trainer.py)."""

    def __init__(self, params: GRU4RecParams, item_ids, device: str | torch.device = "cpu", seed: int | None = 0):
        self.params = params
        self.item_ids: list[str] = [str(i) for i in item_ids]
        self.item_index: dict[str, int] = {item: i for i, item in enumerate(self.item_ids)}
        if len(self.item_index) != len(self.item_ids):
            raise ValueError("item ids must be unique")
        self.device = torch.device(device)
        self.meta: dict = {"train_range": None, "metrics": {}}
        gen = torch.Generator(device="cpu")
        gen.manual_seed(0 if seed is None else int(seed))
        self._build(gen)

    # ------------------------------------------------------------------ structure
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def input_mode(self) -> str:
        return self.params.input_mode

    @property
    def hidden_size(self) -> int:
        return self.params.layers[-1]

    def _dense_specs(self) -> list[_DenseSpec]:
        p = self.params
        specs = []
        in_dim = {"shared": p.layers[-1], "embedding": p.embedding, "onehot": None}[p.input_mode]
        for layer, h in enumerate(p.layers):
            d = in_dim if layer == 0 else p.layers[layer - 1]
            if d is not None:
                specs.append(_DenseSpec(f"gru.{layer}.W_ih", (d, 3 * h), (d, h)))
            specs.append(_DenseSpec(f"gru.{layer}.W_hh", (h, 3 * h), (h, h)))
            specs.append(_DenseSpec(f"gru.{layer}.b_ih", (3 * h,), None))
            specs.append(_DenseSpec(f"gru.{layer}.b_hh", (3 * h,), None))
        return specs

    def _build(self, gen: torch.Generator) -> None:
        p, n = self.params, self.n_items
        h = self.hidden_size
        output = torch.zeros(n, h + 1)
        _uniform_(output[:, :h], n, h, gen)
        self.output = output.to(self.device)
        self.embedding: torch.Tensor | None = None
        if p.input_mode == "embedding":
            emb = torch.empty(n, p.embedding)
            _uniform_(emb, n, p.embedding, gen)
            self.embedding = emb.to(self.device)
        elif p.input_mode == "onehot":
            h0 = p.layers[0]
            emb = torch.empty(n, 3 * h0)
            for g in range(3):
                _uniform_(emb[:, g * h0 : (g + 1) * h0], n, h0, gen)
            self.embedding = emb.to(self.device)
        specs = self._dense_specs()
        total = sum(math.prod(s.shape) for s in specs)
        flat = torch.zeros(total)
        self.dense_flat = flat.to(self.device)
        self.dense: dict[str, torch.Tensor] = {}
        offset = 0
        for s in specs:
            size = math.prod(s.shape)
            view = self.dense_flat[offset : offset + size].view(s.shape)
            if s.fans is not None:
                tmp = torch.empty(s.shape)
                hh = s.shape[1] // 3
                for g in range(3):  # each gate block is its own matrix
                    _uniform_(tmp[:, g * hh : (g + 1) * hh], s.fans[0], s.fans[1], gen)
                view.copy_(tmp)
            self.dense[s.name] = view
            offset += size

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"output": self.output, **self.dense}
        if self.embedding is not None:
            out["embedding"] = self.embedding
        return out

    def to(self, device: str | torch.device) -> "GRU4Rec":
        device = torch.device(device)
        if device != self.device:
            self.output = self.output.to(device)
            if self.embedding is not None:
                self.embedding = self.embedding.to(device)
            flat = self.dense_flat.to(device)
            offset = 0
            for name, t in list(self.dense.items()):
                self.dense[name] = flat[offset : offset + t.numel()].view(t.shape)
                offset += t.numel()
            self.dense_flat = flat
            self.device = device
        return self

    # ------------------------------------------------------------------ inference
    def _layer_input(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the first layer for item indices x: its input projection for one-hot."""
        mode = self.input_mode
        if mode == "shared":
            return self.output.index_select(0, x)[:, : self.hidden_size]
        if mode == "embedding":
            return self.embedding.index_select(0, x)
        return self.embedding.index_select(0, x).add_(self.dense["gru.0.b_ih"])

    def _cell(self, layer: int, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        size = self.params.layers[layer]
        w_hh = self.dense[f"gru.{layer}.W_hh"]
        rz = torch.addmm(gi[:, : 2 * size], h, w_hh[:, : 2 * size]).sigmoid_()
        if self.params.gru_variant == "reference":  # r * (U_n h + b_hn)
            hn = torch.addmm(self.dense[f"gru.{layer}.b_hh"][2 * size :], h, w_hh[:, 2 * size :])
            n = torch.addcmul(gi[:, 2 * size :], rz[:, :size], hn).tanh_()
        else:  # U_n (r * h)
            n = torch.addmm(gi[:, 2 * size :], rz[:, :size] * h, w_hh[:, 2 * size :]).tanh_()
        return torch.lerp(n, h, rz[:, size:])  # (1 - z) * n + z * h

    def _gi(self, layer: int, inp: torch.Tensor) -> torch.Tensor:
        if layer == 0 and self.input_mode == "onehot":
            return inp  # already the projection
        return torch.addmm(self.dense[f"gru.{layer}.b_ih"], inp, self.dense[f"gru.{layer}.W_ih"])

    def step(self, x: torch.Tensor, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        """One inference step for a batch of item indices; returns the new hidden state per layer."""
        inp = self._layer_input(x)
        out = []
        for layer, h in enumerate(hidden):
            inp = self._cell(layer, self._gi(layer, inp), h)
            out.append(inp)
        return out

    def zero_hidden(self, batch: int) -> list[torch.Tensor]:
        return [torch.zeros(batch, h, device=self.device) for h in self.params.layers]

    def scores(self, h_last: torch.Tensor) -> torch.Tensor:
        """Scores of the whole catalogue: ``h . Wy[j] + By[j]`` -> [batch, n_items]."""
        # one GEMM over [Wy | By] with [h | 1]: no separate bias pass over the catalogue
        ones = torch.ones(h_last.shape[0], 1, device=h_last.device, dtype=h_last.dtype)
        return torch.mm(torch.cat([h_last, ones], dim=1), self.output.t())

    def session_state(self, sessions: list[list[int]]) -> list[torch.Tensor]:
        """Hidden state (every layer) after feeding each session's item indices in order.

        Sessions are right-aligned: before its first item a session's state is held at zero,
        so one batched pass serves sessions of different lengths. An empty session keeps zeros.
        """
        n = len(sessions)
        length = max((len(s) for s in sessions), default=0)
        hidden = self.zero_hidden(n)
        if length == 0:
            return hidden
        pad = np.zeros((n, length), dtype=np.int64)
        started = np.zeros((n, length), dtype=np.float32)
        for i, s in enumerate(sessions):
            if s:
                pad[i, length - len(s) :] = s
                started[i, length - len(s) :] = 1.0
        idx = torch.from_numpy(pad).to(self.device)
        mask = torch.from_numpy(started).to(self.device).unsqueeze(2)
        with torch.inference_mode():
            # layer by layer: all input projections of a layer in one matmul, then the recurrence
            inp = self._layer_input(idx.reshape(-1))
            for layer, size in enumerate(self.params.layers):
                gi = self._gi(layer, inp).view(n, length, 3 * size)
                h = hidden[layer]
                outs = []
                for t in range(length):
                    h = self._cell(layer, gi[:, t], h)
                    if n > 1 or t < length - len(sessions[0]):
                        h = h * mask[:, t]
                    outs.append(h)
                hidden[layer] = h
                if layer + 1 < len(self.params.layers):
                    inp = torch.stack(outs, 1).view(n * length, size)
        return hidden

    def final_hidden(self, sessions: list[list[int]]) -> torch.Tensor:
        """Last layer's hidden state per session -> [n_sessions, H] (the query vector)."""
        return self.session_state(sessions)[-1]

    def score_sessions(self, sessions: list[list[int]]) -> torch.Tensor:
        """Scores of the whole catalogue for each session (item indices) -> [n_sessions, n_items]."""
        with torch.inference_mode():
            return self.scores(self.final_hidden(sessions))

    def recommend(self, items: list[str], k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """Top-k for one live session given its external item ids in order.

        Unknown items are skipped; with no known item the result is empty (the caller falls back).
        """
        used, skipped, idx = [], [], []
        for item in items:
            i = self.item_index.get(str(item))
            if i is None:
                skipped.append(str(item))
            else:
                used.append(str(item))
                idx.append(i)
        if not idx:
            return Recommendation(item_ids=[], scores=[], used=used, skipped=skipped, strategy="none")
        k = min(int(k), self.n_items - (len(set(idx)) if exclude_seen else 0))
        positions, values = self.top_items(idx, k, exclude=idx if exclude_seen else None)
        return Recommendation(
            item_ids=[self.item_ids[j] for j in positions], scores=values, used=used, skipped=skipped,
            strategy="model",
        )

    # ------------------------------------------------------------------ serving one live session
    # Below this many items scoring every item in fp32 is as cheap as the int8 candidate stage.
    SERVE_INT8_MIN_ITEMS = 8192
    # Above it, the int8 stage is used only where it answers faster than the fp32 mat-vec on this
    # machine (timed when the serving cache is built; both give the same answer). False: whenever
    # it passes its self-check.
    SERVE_INT8_TIMED = True

    def top_items(self, idx: list[int], n: int, exclude=None, mask: torch.Tensor | None = None
                  ) -> tuple[list[int], list[float]]:
        """The exact top ``n`` (item indices, fp32 scores, best first) after one session given as
        item indices; items in ``exclude`` and those with ``mask`` -inf (an additive [n_items]
        mask) are never returned, so fewer than ``n`` may come back. On CPU a large catalogue is
        scored through the int8 candidate stage (``candidates.Int8Scorer``); the answer is the same
        as scoring every item in fp32."""
        n = max(0, min(int(n), self.n_items))
        if not idx or n == 0:
            return [], []
        with torch.inference_mode():
            if self.device.type != "cpu":
                scores = self.score_sessions([idx])[0]
                return self._top_of(scores, n, exclude, mask)
            cache = self._serving()
            h = self._hidden_one_cpu(idx)
            if cache.scorer is not None:
                found = cache.scorer.top(self.output, h, n, exclude, mask)
                if found is not None:
                    return found[0].tolist(), found[1].tolist()
            return self._top_of(self._scores_of(h), n, exclude, mask)

    @staticmethod
    def _top_of(scores: torch.Tensor, n: int, exclude, mask) -> tuple[list[int], list[float]]:
        return top_n(scores, n, exclude=exclude, mask=mask)

    # Sessions whose GRU states one model keeps for serving (the states after each session asked):
    # a shopper's next request is the same session plus one item, one GRU step instead of all.
    STATE_CACHE_ENTRIES = 4096

    def _hidden_one_cpu(self, idx: list[int]) -> np.ndarray:
        """Last layer's state after one session (item indices), in numpy: for one short session
        numpy's per-call cost (~1 us) beats torch's (~5-10 us) over the ~10 small ops per event.
        The weights are read through zero-copy numpy views, so they always match the tensors.
        The states after each session asked are kept (``STATE_CACHE_ENTRIES``, least recently used
        dropped; rebuilt with the serving cache when a weight changes): a session asked before
        costs nothing, one asked before without its last item one step. Every state comes from
        the same one-item step (:meth:`_step_cpu`), so the answer to a session does not depend on
        what was asked before: a state continued from a kept one is bit for bit the state
        computed from the first item."""
        cache = self._serving()
        key = np.asarray(idx, dtype=np.int64).tobytes()
        states = cache.states.get(key)
        if states is None:
            width = np.dtype(np.int64).itemsize
            states = cache.states.get(key[:-width]) if len(key) > width else None
            for i in (idx[-1:] if states is not None else idx):
                states = self._step_cpu(cache, states, int(i))
            cache.states.put(key, states)
        return states[-1]

    @staticmethod
    def _step_cpu(cache: "_ServeCache", states: tuple | None, item: int) -> tuple:
        """Every layer's state after one more item (``states`` None: the session's first item);
        new arrays, never written to again (the state cache shares them)."""
        x = cache.inp[item]
        out = []
        for layer, size in enumerate(cache.sizes):
            w_ih, b_ih = cache.w_ih[layer], cache.b_ih[layer]
            gi = x + b_ih if w_ih is None else x @ w_ih + b_ih  # layer 0 one-hot: inp holds W_ih's rows
            u_rz, u_n, b_hn = cache.u_split[layer]
            h = cache.zeros[layer] if states is None else states[layer]
            rz = gi[: 2 * size] + h @ u_rz
            np.negative(rz, out=rz)
            np.exp(rz, out=rz)
            rz += 1.0
            np.reciprocal(rz, out=rz)  # sigmoid
            if b_hn is None:  # classic: U_n (r * h)
                n = np.tanh(gi[2 * size :] + (rz[:size] * h) @ u_n)
            else:  # reference: r * (U_n h + b_hn)
                n = np.tanh(gi[2 * size :] + rz[:size] * (h @ u_n + b_hn))
            x = n + rz[size:] * (h - n)  # (1 - z) n + z h
            out.append(x)
        return tuple(out)

    def _scores_of(self, h: np.ndarray) -> torch.Tensor:
        """Whole-catalogue fp32 scores for a hidden state: one mat-vec over ``[Wy | By]``."""
        q = torch.ones(self.hidden_size + 1)
        q[:-1] = torch.from_numpy(h)
        return torch.mv(self.output, q)

    def _scores_one_cpu(self, idx: list[int]) -> torch.Tensor:
        """Whole-catalogue fp32 scores for one session on CPU (the reference of the int8 path)."""
        return self._scores_of(self._hidden_one_cpu(idx))

    def _serving(self) -> "_ServeCache":
        """What one-session serving derives from the weights, built on first use: contiguous
        copies of the recurrent matrices split by gate (numpy's mat-vec on a column slice bypasses
        BLAS; tens of KB) and, for a large catalogue, the int8 candidate scorer (4.5 MB for 40k
        items; the fp32 ``output`` is not copied). Rebuilt when a weight tensor is replaced or
        changed in place (version counters); the trainer, which writes through numpy, drops it."""
        key = (id(self.output), self.output._version, id(self.dense_flat), self.dense_flat._version)
        cache = getattr(self, "_serve_cache", None)
        if cache is None or cache.key != key:
            cache = _ServeCache(key, self)
            self._serve_cache = cache
        return cache

    def serving_prepare(self) -> bool:
        """Build the serving cache now (model load) instead of on the first request; True when the
        int8 candidate stage is in use."""
        return self._serving().scorer is not None

    def output_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(Wy [n_items, H], By [n_items]) as float32 numpy; ANN over ``[Wy | By]`` with query ``[h | 1]``."""
        out = self.output.detach().to("cpu")
        return out[:, :-1].numpy().copy(), out[:, -1].numpy().copy()

    def item_embeddings(self) -> np.ndarray:
        """Per-item vectors for cosine "similar items": the input embedding, or Wy when shared/one-hot."""
        if self.input_mode == "embedding":
            return self.embedding.detach().to("cpu").numpy().copy()
        return self.output_vectors()[0]

    def unit_item_embeddings(self) -> torch.Tensor:
        """:meth:`item_embeddings` scaled to unit length, kept until the weights change (serving
        asks for them on every "similar items" request)."""
        src = self.embedding if self.input_mode == "embedding" else self.output
        key = (id(src), src._version)
        cached = getattr(self, "_unit_cache", None)
        if cached is None or cached[0] != key:
            emb = torch.from_numpy(self.item_embeddings())
            cached = (key, emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12))
            self._unit_cache = cached  # one tuple assignment: concurrent readers see old or new, whole
        return cached[1]

    def similar(self, i: int, n: int, mask: torch.Tensor | None = None) -> tuple[list[int], list[float]]:
        """The ``n`` items nearest item index ``i`` by cosine of :meth:`item_embeddings` (item
        indices, similarities, best first), ``i`` itself never; ``mask`` as in :meth:`top_items`."""
        with torch.inference_mode():
            unit = self.unit_item_embeddings()
            return top_n(unit @ unit[i], n, exclude=[i], mask=mask)

    def similar_items(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """Nearest items by cosine similarity of :meth:`item_embeddings` (small catalogues / inspection)."""
        positions, values = self.similar(self.item_index[str(item)], min(k, self.n_items - 1))
        return [(self.item_ids[j], v) for j, v in zip(positions, values)]

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | os.PathLike) -> None:
        params = self.params.to_dict()
        if params.get("gru_variant") == "classic":
            # written only when it matters, so engines from before the option still load the file
            del params["gru_variant"]
        meta = {
            "params": params,
            "item_ids": self.item_ids,
            "train_range": self.meta.get("train_range"),
            "metrics": self.meta.get("metrics", {}),
            "extra": {k: v for k, v in self.meta.items() if k not in ("train_range", "metrics")},
        }
        write_checkpoint(path, self.tensors(), meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "GRU4Rec":
        tensors, meta = read_checkpoint(path)
        try:
            params = GRU4RecParams.from_dict(meta["params"])
            item_ids = meta["item_ids"]
            if not isinstance(item_ids, list):
                raise TypeError("item_ids is not a list")
        except Exception as exc:
            raise CheckpointError(f"{path}: invalid metadata ({exc})") from exc
        model = cls.__new__(cls)
        model.params = params
        model.item_ids = [str(i) for i in item_ids]
        model.item_index = {item: i for i, item in enumerate(model.item_ids)}
        model.device = torch.device("cpu")
        gen = torch.Generator().manual_seed(0)
        with torch.random.fork_rng(devices=[]):
            model._build(gen)  # allocates the expected layout; weights are then overwritten
        expected = {k: tuple(v.shape) for k, v in model.tensors().items()}
        got = {k: tuple(v.shape) for k, v in tensors.items()}
        if expected != got:
            raise CheckpointError(f"{path}: weights do not match the parameters: expected {expected}, got {got}")
        for name, t in model.tensors().items():
            t.copy_(tensors[name].to(torch.float32))
        model.meta = {"train_range": meta.get("train_range"), "metrics": meta.get("metrics") or {}}
        model.meta.update(meta.get("extra") or {})
        return model.to(device)


class _ServeCache:
    """See :meth:`GRU4Rec._serving`."""

    def __init__(self, key: tuple, model: GRU4Rec):
        # why: candidates is the serving-only int8 path; training and evaluation never load it
        from .candidates import Int8Scorer

        self.key = key
        self.states = LRU(model.STATE_CACHE_ENTRIES)  # session (item indices as bytes) -> states
        # zero-copy numpy views of the input side (a weight replaced changes the key: rebuilt);
        # one-session serving (the numpy steps) is for CPU models only
        cpu = model.device.type == "cpu"
        if not cpu:
            self.inp = None
        elif model.input_mode == "shared":
            self.inp = model.output.detach().numpy()[:, : model.hidden_size]
        else:  # "embedding", and "onehot", whose embedding table holds layer 0's W_ih rows
            self.inp = model.embedding.detach().numpy()
        self.sizes = list(model.params.layers)
        self.w_ih = [None if (layer == 0 and model.input_mode == "onehot") or not cpu
                     else model.dense[f"gru.{layer}.W_ih"].detach().numpy() for layer in range(len(self.sizes))]
        self.b_ih = [model.dense[f"gru.{layer}.b_ih"].detach().numpy() if cpu else None
                     for layer in range(len(self.sizes))]
        self.zeros = [np.zeros(size, dtype=np.float32) for size in self.sizes]
        self.u_split = []
        for layer, size in enumerate(model.params.layers):
            u = model.dense[f"gru.{layer}.W_hh"].detach().cpu().numpy()
            b_hn = None
            if model.params.gru_variant == "reference":
                b_hn = model.dense[f"gru.{layer}.b_hh"].detach().cpu().numpy()[2 * size :].copy()
            self.u_split.append((np.ascontiguousarray(u[:, : 2 * size]), np.ascontiguousarray(u[:, 2 * size :]), b_hn))
        self.scorer = None
        self.timings: dict[str, float] = {}
        self.path = "fp32"  # how top_items scores the catalogue: "fp32" or the int8 scorer's kernel
        if model.device.type == "cpu" and model.n_items >= model.SERVE_INT8_MIN_ITEMS:
            scorers = self._int8_scorers(model, Int8Scorer)
            if scorers and model.SERVE_INT8_TIMED:
                self.scorer = self._fastest(model, scorers)
            elif scorers:  # untimed: the native kernel where it passed its self-check, else torch's
                self.scorer = scorers[-1]
            if self.scorer is not None:
                self.path = self.scorer.kernel_name

    @staticmethod
    def _int8_scorers(model: GRU4Rec, scorer_class) -> list:
        """The int8 scorers that pass their self-check: torch's kernel, then the native one (where
        its library is built; ``native.py``), over one quantised copy."""
        from . import native  # why: the ctypes loader is a serving-only module

        torch_scorer = scorer_class(model.output)
        out = [torch_scorer] if torch_scorer.ok else []
        kernel = native.kernel()
        if kernel is not None:
            native_scorer = torch_scorer.with_kernel(kernel, model.output)
            if native_scorer.ok:
                out.append(native_scorer)
        return out

    def _fastest(self, model: GRU4Rec, scorers: list, rounds: int = 9, n: int = 20):
        """The scorer that answers one-item sessions fastest on this machine, or None when the fp32
        mat-vec over the catalogue is faster than every one: the median of ``rounds`` alternating
        timings of each, after one unmeasured call of each (a kernel's first call builds it). Why:
        a kernel's speed depends on the CPU and on oneDNN's dispatch: torch's ran at twice the fp32
        cost with AMX (see the package's ``ONEDNN_MAX_CPU_ISA``) and 2x slower still on an AVX2-only
        AMD EPYC, where the native one is 9x faster than fp32; on AVX512-VNNI torch's is 2-6x faster."""
        items = np.linspace(0, model.n_items - 1, rounds + 1).astype(np.int64)
        paths = [None, *scorers]
        times: list[list[float]] = [[] for _ in paths]
        for r, item in enumerate(items):
            h = GRU4Rec._step_cpu(self, None, int(item))[-1]
            for path, spent in zip(paths, times):
                start = time.perf_counter()
                if path is None:
                    model._top_of(model._scores_of(h), n, None, None)
                else:
                    path.top(model.output, h, n)
                if r:
                    spent.append(time.perf_counter() - start)
        medians = [1e3 * float(np.median(spent)) for spent in times]
        self.timings = {"fp32_ms": medians[0]}
        self.timings.update({f"{s.kernel_key}_ms": m for s, m in zip(scorers, medians[1:])})
        best = int(np.argmin(medians))
        if best == 0:
            logger.info("int8 candidate scoring is slower than fp32 on this machine (%s); scoring in fp32",
                        ", ".join(f"{k} {v:.3f}" for k, v in self.timings.items()))
            return None
        return paths[best]
