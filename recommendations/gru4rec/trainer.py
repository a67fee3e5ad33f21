"""GRU4Rec training: session-parallel steps with sampled negatives, hand-written backward, sparse Adagrad.

One step touches only the rows of the output/embedding matrices that the mini-batch uses
(targets, shared negative samples, inputs) and a few small dense GRU matrices, so its cost does
not grow with the catalogue. There is no autograd: the backward pass of one GRU step (no
back-propagation through time, the hidden state is detached every step) is a dozen kernels.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pandas as pd
import torch

from .iterator import EncodedSessions, device_plan, encode_sessions
from .losses import loss_and_grad
from .model import GRU4Rec
from .params import GRU4RecParams, parse_params

ADAGRAD_EPS = 1e-6


class TrainingDiverged(FloatingPointError):
    """The loss became NaN/inf; training stops instead of writing a broken model."""


class SparseAdagrad:
    """Adagrad with momentum for a row matrix, updating only the given rows.

    ``acc += g^2``; ``v = momentum * v - lr * g / sqrt(acc + eps)``; ``w += v``, on the touched
    rows only. Gradients of repeated indices are summed first (through a zeroed scratch matrix,
    which needs no data-dependent shapes and so no host sync on a GPU); repeated rows then write
    identical values, so ``index_copy_`` is safe with duplicates.
    """

    def __init__(self, weight: torch.Tensor, lr: float, momentum: float):
        self.weight, self.lr, self.momentum = weight, lr, momentum
        # acc and vel are two views of one [n, 2, D] state, so one gather/scatter serves both
        self.state = weight.new_zeros(weight.shape[0], 2 if momentum else 1, weight.shape[1])
        self.acc = self.state[:, 0]
        self.vel = self.state[:, 1] if momentum else None
        # On CPU duplicates are merged with torch.unique (cheap there, and the update then runs
        # on unique rows only); on a GPU unique would force a host sync, so a zeroed scratch
        # matrix sums them instead.
        self.scratch = torch.zeros_like(weight) if weight.device.type != "cpu" else None

    def step(self, idx: torch.Tensor, grad: torch.Tensor, bias_touched: torch.Tensor | None = None) -> None:
        """``bias_touched`` (one bool per entry of ``idx``): as in :meth:`step_unique`, entries
        whose row's last column (By) was not used keep that column's velocity and value."""
        if self.scratch is None:
            rows, inverse = torch.unique(idx, return_inverse=True)
            g = grad.new_zeros(rows.shape[0], grad.shape[1]).index_add_(0, inverse, grad)
            if bias_touched is not None:
                bias_touched = torch.zeros(rows.shape[0], dtype=torch.bool, device=idx.device).index_fill_(
                    0, inverse[bias_touched], True)
        else:
            rows = idx
            self.scratch.index_add_(0, idx, grad)
            g = self.scratch.index_select(0, idx)
            self.scratch.index_fill_(0, idx, 0.0)
        acc = self.acc.index_select(0, rows).addcmul_(g, g)
        self.acc.index_copy_(0, rows, acc)
        upd = g.div_(acc.add_(ADAGRAD_EPS).sqrt_()).mul_(-self.lr)
        if self.vel is not None:
            old_vel = self.vel.index_select(0, rows)
            vel = old_vel * self.momentum + upd
            if bias_touched is not None:  # an untouched bias: velocity kept, value unchanged
                vel[:, -1] = torch.where(bias_touched, vel[:, -1], old_vel[:, -1])
            self.vel.index_copy_(0, rows, vel)
            upd = vel
            if bias_touched is not None:
                upd = vel.clone()
                upd[:, -1].masked_fill_(~bias_touched, 0.0)
        if self.scratch is None:
            self.weight.index_add_(0, rows, upd)  # rows are unique here
        else:
            self.weight.index_copy_(0, rows, self.weight.index_select(0, rows).add_(upd))


    def step_unique(self, rows: torch.Tensor, g: torch.Tensor, w_rows: torch.Tensor | None = None,
                    bias_touched: torch.Tensor | None = None) -> None:
        """The update for *unique* ``rows`` whose gradients ``g`` are already summed (``g`` is consumed).

        ``w_rows``: the current weight rows if the caller gathered them already. ``bias_touched``
        ([U] bool): rows whose last column (the output bias By) was used by the step; the other
        rows are touched only as shared-embedding inputs, which do not use By, so their bias keeps
        its accumulator, velocity and value (By is its own parameter in the model)."""
        cpu = rows.device.type == "cpu"
        if cpu:  # numpy's row gather/scatter is several times faster than torch's on CPU
            rows_np = rows.numpy()
            st = torch.from_numpy(np.take(self.state.numpy(), rows_np, axis=0))
        else:
            st = self.state.index_select(0, rows)
        acc = st[:, 0].addcmul_(g, g)
        scale = acc.add(ADAGRAD_EPS).rsqrt_()
        if self.vel is not None:
            vel = st[:, 1]
            if bias_touched is not None:
                old_vel_bias = vel[:, -1].clone()
            upd = vel.mul_(self.momentum).addcmul_(g, scale, value=-self.lr)
            if bias_touched is not None:
                vel[:, -1] = torch.where(bias_touched, vel[:, -1], old_vel_bias)
        else:
            upd = g.mul_(scale).mul_(-self.lr)
        if w_rows is None:
            w_rows = torch.from_numpy(np.take(self.weight.numpy(), rows.numpy(), axis=0)) if cpu \
                else self.weight.index_select(0, rows)
        if bias_touched is not None:
            old_bias = w_rows[:, -1].clone()
        w_rows.add_(upd)
        if bias_touched is not None:
            w_rows[:, -1] = torch.where(bias_touched, w_rows[:, -1], old_bias)
        if cpu:  # rows are unique: plain row assignment
            self.state.numpy()[rows_np] = st.numpy()
            self.weight.numpy()[rows_np] = w_rows.numpy()
        else:
            self.state.index_copy_(0, rows, st)
            self.weight.index_copy_(0, rows, w_rows)


class DenseAdagrad:
    """The same update for the flat buffer holding all dense GRU weights (a few kernels per step)."""

    def __init__(self, weight: torch.Tensor, lr: float, momentum: float):
        self.weight, self.lr, self.momentum = weight, lr, momentum
        self.acc = torch.zeros_like(weight)
        self.vel = torch.zeros_like(weight) if momentum else None
        self.grad = torch.zeros_like(weight)
        self._denom = torch.zeros_like(weight)

    def step(self) -> None:
        self.acc.addcmul_(self.grad, self.grad)
        torch.add(self.acc, ADAGRAD_EPS, out=self._denom).sqrt_()
        if self.vel is not None:
            self.vel.mul_(self.momentum).addcdiv_(self.grad, self._denom, value=-self.lr)
            self.weight.add_(self.vel)
        else:
            self.weight.addcdiv_(self.grad, self._denom, value=-self.lr)


def item_support(sessions: EncodedSessions, n_items: int) -> np.ndarray:
    return np.bincount(sessions.items, minlength=n_items).astype(np.float64)


class Trainer:
    """Trains a :class:`GRU4Rec` in place. Deterministic for a given seed on CPU."""

    def __init__(self, model: GRU4Rec, support: np.ndarray, seed: int | None = 0, sample_block: int = 4_000_000):
        self.model = model
        p = self.params = model.params
        dev = self.device = model.device
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(0 if seed is None else int(seed))
        self.dense_opt = DenseAdagrad(model.dense_flat, p.learning_rate, p.momentum)
        self.grads = {}
        offset = 0
        for name, t in model.dense.items():  # views of the flat gradient, same layout as the weights
            self.grads[name] = self.dense_opt.grad[offset : offset + t.numel()].view(t.shape)
            offset += t.numel()
        item_lr = p.learning_rate * p.item_lr_scale  # the row-sparse item matrices (params.py)
        self.out_opt = SparseAdagrad(model.output, item_lr, p.momentum)
        self.emb_opt = SparseAdagrad(model.embedding, item_lr, p.momentum) if model.embedding is not None else None
        support = np.asarray(support, dtype=np.float64)
        pop = support / max(support.sum(), 1.0)
        probs = support**p.sample_alpha
        probs = probs / probs.sum()
        with np.errstate(divide="ignore"):
            self.log_pop = torch.from_numpy(np.log(pop)).float().to(dev)
            self.log_sample_q = torch.from_numpy(np.log(probs)).float().to(dev)
        self.sample_cdf = torch.from_numpy(np.cumsum(probs)).to(dev)
        self.sample_rows = max(1, sample_block // max(p.n_sample, 1))
        self._samples: torch.Tensor | None = None
        self._sample_pos = 0
        self._ones = torch.ones(max(p.batch_size, 1), 1, device=dev)
        self._out_mark: torch.Tensor | None = None  # [n_items] bool, made by the first scratch step
        self._out1 = torch.ones(max(p.batch_size, 1), model.hidden_size + 1, device=dev)  # [o | 1]

    # ---------------------------------------------------------------- sampling
    def draw_samples(self, n: int) -> torch.Tensor:
        """``n`` item indices with probability proportional to support**sample_alpha."""
        u = torch.rand(n, generator=self.gen, device=self.device, dtype=torch.float64)
        u.mul_(self.sample_cdf[-1])
        return torch.searchsorted(self.sample_cdf, u, right=True).clamp_(max=self.model.n_items - 1)

    def next_samples(self) -> torch.Tensor | None:
        n = self.params.n_sample
        if n <= 0:
            return None
        if self._samples is None or self._sample_pos >= self._samples.shape[0]:
            # one big draw for many steps: a kernel launch per step would dominate on a GPU
            self._samples = self.draw_samples(self.sample_rows * n).view(self.sample_rows, n)
            self._sample_pos = 0
        s = self._samples[self._sample_pos]
        self._sample_pos += 1
        return s

    def _dropout_mask(self, shape, p: float) -> torch.Tensor | None:
        if p <= 0:
            return None
        m = torch.empty(shape, device=self.device).bernoulli_(1.0 - p, generator=self.gen)
        return m.div_(1.0 - p)

    # ---------------------------------------------------------------- one step
    def step(self, x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, hidden: list[torch.Tensor]):
        """One training step; returns (loss tensor, new hidden list). ``keep`` is [B, 1] (0 = reset)."""
        if self.device.type == "cpu":
            return self._step_unique(x, y, keep, hidden)
        return self._step_scratch(x, y, keep, hidden)

    def _gru_forward(self, inp, keep, hidden):
        """One step of every GRU layer (the cell of ``params.gru_variant``, see model.py).

        In training the state carried to the session's next step is the layer's output *after*
        dropout, the same tensor that feeds the next layer or the scores (spec); a finished
        session's slot is reset by ``keep`` (0) at the start of its next step.
        Returns (dropped-out output of the last layer, saved tensors, new hidden states)."""
        m, p = self.model, self.params
        reference = p.gru_variant == "reference"
        saved, new_hidden = [], []
        for layer, size in enumerate(p.layers):
            h0 = hidden[layer] * keep
            gi = m._gi(layer, inp)
            w_hh = m.dense[f"gru.{layer}.W_hh"]
            rz = torch.addmm(gi[:, : 2 * size], h0, w_hh[:, : 2 * size]).sigmoid_()
            if reference:  # n = tanh(W_n x + b_in + r * (U_n h + b_hn))
                rh = torch.addmm(m.dense[f"gru.{layer}.b_hh"][2 * size :], h0, w_hh[:, 2 * size :])  # U_n h + b_hn
                n = torch.addcmul(gi[:, 2 * size :], rz[:, :size], rh).tanh_()
            else:  # n = tanh(W_n x + U_n (r * h) + b_n)
                rh = rz[:, :size] * h0
                n = torch.addmm(gi[:, 2 * size :], rh, w_hh[:, 2 * size :]).tanh_()
            h = torch.lerp(n, h0, rz[:, size:])
            mask_h = self._dropout_mask(h.shape, p.dropout_p_hidden)
            out = h * mask_h if mask_h is not None else h
            new_hidden.append(out)
            saved.append((inp, h0, rz, n, rh, mask_h))
            inp = out
        return inp, saved, new_hidden

    def _gru_backward(self, d_h, saved):
        """Gradients of the dense GRU weights into self.grads; returns d(first layer input)."""
        m, p = self.model, self.params
        reference = p.gru_variant == "reference"
        d_inp = None
        for layer in range(len(p.layers) - 1, -1, -1):
            size = p.layers[layer]
            inp_l, h0, rz, n, rh, mask_h = saved[layer]
            if mask_h is not None:
                d_h = d_h * mask_h
            z = rz[:, size:]
            d_an = (d_h - d_h * z).mul_(1.0 - n * n)  # through (1 - z) and tanh
            d_z = d_h * (h0 - n)
            w_hh = m.dense[f"gru.{layer}.W_hh"]
            g_hh = self.grads[f"gru.{layer}.W_hh"]
            if reference:  # rh = U_n h + b_hn
                d_r = d_an * rh
                d_rh = d_an * rz[:, :size]
                g_hh[:, 2 * size :] = torch.mm(h0.t(), d_rh)
                torch.sum(d_rh, 0, out=self.grads[f"gru.{layer}.b_hh"][2 * size :])
            else:  # rh = r * h
                d_r = torch.mm(d_an, w_hh[:, 2 * size :].t()).mul_(h0)
                g_hh[:, 2 * size :] = torch.mm(rh.t(), d_an)
            d_gi = torch.cat([d_r, d_z, d_an], dim=1)
            d_gi[:, : 2 * size].mul_(rz * (1.0 - rz))
            g_hh[:, : 2 * size] = torch.mm(h0.t(), d_gi[:, : 2 * size])
            torch.sum(d_gi, 0, out=self.grads[f"gru.{layer}.b_ih"])
            if layer == 0 and m.input_mode == "onehot":
                d_inp = d_gi
            else:
                w_ih = f"gru.{layer}.W_ih"
                torch.mm(inp_l.t(), d_gi, out=self.grads[w_ih])
                d_inp = torch.mm(d_gi, m.dense[w_ih].t())
                d_h = d_inp
        return d_inp

    def _log_q(self, y, smp):
        p = self.params
        if p.loss != "cross-entropy" or not p.logq:
            return None
        log_q = self.log_pop.index_select(0, y)
        if smp is not None:
            log_q = torch.cat([log_q, self.log_sample_q.index_select(0, smp)])
        return log_q

    def _input(self, x, inp):
        """First-layer input with embedding dropout; returns (input, mask or None)."""
        mask_e = None
        if self.model.input_mode != "onehot":
            mask_e = self._dropout_mask(inp.shape, self.params.dropout_p_embed)
            if mask_e is not None:
                inp = inp * mask_e
        return inp, mask_e

    def _step_unique(self, x, y, keep, hidden):
        """CPU step on the *unique* rows of [targets ; samples ; inputs]: one gather of [Wy | By]
        rows, GEMMs over unique columns only. The score-gradient columns of a repeated item are
        summed (index_add) before the GEMM, so every occurrence's gradient reaches its row, and the
        Adagrad state of each row is updated exactly once per step."""
        m, p = self.model, self.params
        m._serve_cache = None  # the weights change below (partly through numpy views)
        batch = x.shape[0]
        hsize = m.hidden_size
        mode = m.input_mode
        smp = self.next_samples()
        sel = torch.cat([y, smp]) if smp is not None else y
        n_sel = sel.shape[0]
        idx = torch.cat([sel, x]) if mode == "shared" else sel
        rows, inverse = torch.unique(idx, return_inverse=True)
        w_rows = torch.from_numpy(np.take(m.output.numpy(), rows.numpy(), axis=0))  # [U, H+1]
        inv_sel = inverse[:n_sel]

        # forward
        if mode == "shared":
            inv_x = inverse[n_sel:]
            inp = w_rows.index_select(0, inv_x)[:, :hsize]
        else:
            inp = m._layer_input(x)
        inp, mask_e = self._input(x, inp)
        out, saved, new_hidden = self._gru_forward(inp, keep, hidden)
        out1 = self._out1[:batch]
        out1[:, :hsize] = out  # [o | 1] folds the bias into the GEMM
        scores_u = torch.mm(out1, w_rows.t())  # [B, U]
        scores = scores_u.index_select(1, inv_sel)  # [B, C]: columns [targets ; samples]
        loss, d_scores = loss_and_grad(
            p.loss, scores, log_q=self._log_q(y, smp), logq=p.logq, elu_param=p.elu_param, bpreg=p.bpreg,
            batch_size=p.batch_size,  # the configured size, also for a shrinking batch (spec)
        )

        # backward
        u = rows.shape[0]
        d_u = scores_u.new_zeros(u, batch).index_add_(0, inv_sel, d_scores.t().contiguous())  # [U, B]
        g_rows = torch.mm(d_u, out1)  # [U, H+1], repeated items already summed
        d_h = torch.mm(d_u.t(), w_rows[:, :hsize])
        d_inp = self._gru_backward(d_h, saved)
        if mask_e is not None:
            d_inp = d_inp * mask_e

        # updates
        self.dense_opt.step()
        if mode == "shared":
            g_rows[:, :hsize].index_add_(0, inv_x, d_inp)  # the input rows are Wy rows too
            bias_touched = None
            if self.out_opt.vel is not None and x.shape[0]:
                bias_touched = torch.zeros(u, dtype=torch.bool, device=rows.device).index_fill_(0, inv_sel, True)
            self.out_opt.step_unique(rows, g_rows, w_rows, bias_touched)
        else:
            self.out_opt.step_unique(rows, g_rows, w_rows)
            self.emb_opt.step(x, d_inp)
        return loss, new_hidden

    def _step_scratch(self, x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, hidden: list[torch.Tensor]):
        """The same step without data-dependent shapes (no host sync on a GPU)."""
        m, p = self.model, self.params
        batch = x.shape[0]
        hsize = m.hidden_size
        mode = m.input_mode
        smp = self.next_samples()
        inp, mask_e = self._input(x, m._layer_input(x))
        out, saved, new_hidden = self._gru_forward(inp, keep, hidden)
        out1 = torch.cat([out, self._ones[:batch]], dim=1)
        sel = torch.cat([y, smp]) if smp is not None else y
        w_sel = m.output.index_select(0, sel)
        scores = torch.mm(out1, w_sel.t())
        loss, d_scores = loss_and_grad(
            p.loss, scores, log_q=self._log_q(y, smp), logq=p.logq, elu_param=p.elu_param, bpreg=p.bpreg,
            batch_size=p.batch_size,  # the configured size, also for a shrinking batch (spec)
        )
        g_out = torch.mm(d_scores.t(), out1)  # [C, H+1]: rows of [Wy | By] for targets and samples
        d_h = torch.mm(d_scores, w_sel[:, :hsize])
        d_inp = self._gru_backward(d_h, saved)
        if mask_e is not None:
            d_inp = d_inp * mask_e
        self.dense_opt.step()
        if mode == "shared":
            d_rows = torch.cat([d_inp, torch.zeros_like(self._ones[:batch])], dim=1)
            idx = torch.cat([sel, x])
            bias_touched = None
            if self.out_opt.vel is not None:  # rows used only as inputs keep their bias (as on CPU)
                if self._out_mark is None:
                    self._out_mark = torch.zeros(m.n_items, dtype=torch.bool, device=self.device)
                out_mark = self._out_mark.index_fill_(0, sel, True)
                bias_touched = out_mark.index_select(0, idx)
                out_mark.index_fill_(0, sel, False)
            self.out_opt.step(idx, torch.cat([g_out, d_rows]), bias_touched)
        else:
            self.out_opt.step(sel, g_out)
            self.emb_opt.step(x, d_inp)
        return loss, new_hidden

    # ---------------------------------------------------------------- epochs
    def train(self, sessions: EncodedSessions, n_epochs: int | None = None, progress: bool = True,
              log=None, check_every: int = 256, max_steps: int | None = None, on_progress=None,
              on_epoch=None) -> list[dict]:
        """Run ``n_epochs`` (default params.n_epochs) passes; returns per-epoch {loss, seconds, events/s}.

        ``on_epoch(epoch, model)`` (1-based epoch) is called after each epoch, outside the timed
        part; when it returns ``False`` training stops there (what tuning uses to evaluate on
        validation sessions, prune a trial or stop early). Without it no per-epoch work is done.

        ``on_progress(epoch, n_epochs, fraction, loss)`` is called at each check (every
        ``check_every`` steps, where the loss is read back anyway) with the fraction of the epoch
        done and the epoch's mean loss so far (fraction 1.0 with the epoch's final loss once it is
        over): what a live progress chart plots.
        ``max_steps`` cuts every epoch short (benchmarks and smoke tests only)."""
        from tqdm import tqdm

        p = self.params
        n_epochs = p.n_epochs if n_epochs is None else n_epochs
        log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        plan = device_plan(sessions, p.batch_size, self.device)
        history = []
        with torch.no_grad():
            for epoch in range(n_epochs):
                t0 = time.perf_counter()
                hidden = self.model.zero_hidden(min(p.batch_size, sessions.n_sessions))
                loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
                bar = tqdm(total=sessions.n_events, desc=f"epoch {epoch + 1}/{n_epochs}", unit="ev",
                           unit_scale=True, file=sys.stderr, disable=not progress, mininterval=0.5)
                done_rows = 0
                last_bar = 0
                for s, (a, b) in enumerate(plan.bounds):
                    if max_steps is not None and s >= max_steps:
                        break
                    if s in plan.shrink:
                        keep_idx = plan.shrink[s]
                        hidden = [h.index_select(0, keep_idx) for h in hidden]
                    loss, hidden = self.step(plan.inputs[a:b], plan.targets[a:b], plan.keep_mult[a:b], hidden)
                    loss_sum += loss
                    if (s + 1) % check_every == 0:
                        # one host sync per check_every steps, not per step
                        if not math.isfinite(float(loss_sum)):
                            bar.close()
                            raise TrainingDiverged(
                                f"loss is {float(loss_sum)} in epoch {epoch + 1} near step {s + 1}; "
                                f"lower learning_rate (now {p.learning_rate}) or check the data"
                            )
                        # the bar counts events incl. session ends (as throughput figures do)
                        done_rows = b
                        bar.update(int(done_rows * sessions.n_events / max(plan.bounds[-1][1], 1)) - last_bar)
                        last_bar = int(done_rows * sessions.n_events / max(plan.bounds[-1][1], 1))
                        if on_progress is not None:
                            on_progress(epoch + 1, n_epochs, done_rows / max(plan.bounds[-1][1], 1),
                                        float(loss_sum) / (s + 1))
                if max_steps is None:
                    bar.update(sessions.n_events - last_bar)
                bar.close()
                n_steps = plan.n_steps if max_steps is None else min(plan.n_steps, max_steps)
                avg = float(loss_sum) / max(n_steps, 1)
                if not math.isfinite(avg):
                    raise TrainingDiverged(f"loss is {avg} after epoch {epoch + 1}; lower learning_rate")
                secs = time.perf_counter() - t0
                n_ev = sessions.n_events if max_steps is None else sessions.n_events * n_steps / max(plan.n_steps, 1)
                rec = {"epoch": epoch + 1, "loss": avg, "seconds": secs, "events_per_second": n_ev / secs}
                history.append(rec)
                if on_progress is not None:
                    on_progress(epoch + 1, n_epochs, 1.0, avg)
                log(f"epoch {epoch + 1}/{n_epochs}: loss {avg:.4f}, {secs:.1f} s, {rec['events_per_second']:.0f} events/s")
                if on_epoch is not None and on_epoch(epoch + 1, self.model) is False:
                    break
        return history


def _time_range(df: pd.DataFrame) -> dict:
    t = df["Time"].to_numpy(dtype=np.float64)
    lo, hi = float(t.min()), float(t.max())
    iso = lambda v: pd.Timestamp(v, unit="s", tz="UTC").isoformat()  # noqa: E731
    return {"start": lo, "end": hi, "start_iso": iso(lo), "end_iso": iso(hi),
            "n_events": int(len(df)), "n_sessions": int(df["SessionId"].nunique())}


def fit(train: pd.DataFrame, params: GRU4RecParams | str, device: str = "cpu", seed: int | None = 0,
        progress: bool = True, log=None, on_progress=None, on_epoch=None) -> tuple[GRU4Rec, list[dict]]:
    """Build the item map from ``train`` (SessionId, ItemId, Time), create and train a model.
    ``on_epoch(epoch, model) -> bool | None``: see :meth:`Trainer.train` (False stops training)."""
    if isinstance(params, str):
        params = parse_params(params)
    item_ids = pd.unique(train["ItemId"].astype(str))
    if seed is not None:
        torch.manual_seed(seed)
    model = GRU4Rec(params, item_ids, device=device, seed=seed)
    sessions = encode_sessions(train, model.item_index, min_length=2)
    support = item_support(sessions, model.n_items)
    trainer = Trainer(model, support, seed=seed)
    history = trainer.train(sessions, progress=progress, log=log, on_progress=on_progress, on_epoch=on_epoch)
    model.meta["train_range"] = _time_range(train)
    model.meta["history"] = history
    top = np.argsort(-support, kind="stable")[:100]
    model.meta["popular_items"] = [[model.item_ids[j], int(support[j])] for j in top]
    return model, history
