"""Session-parallel mini-batches, precomputed for a whole epoch as flat index arrays.

``batch_size`` slots run sessions side by side, one event per step (input = current item,
target = next item of the same session). When a slot's session ends the next unstarted
session takes the slot and its hidden state is zeroed on that step only; when no unstarted
session is left, finished slots drop out and the batch shrinks. Everything the training loop
needs per step is a slice of device tensors, so a step does no host work or host sync.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass
class EncodedSessions:
    """Events as item indices, grouped by session, sessions ordered by their first event."""

    items: np.ndarray  # int64 [n_events]
    offsets: np.ndarray  # int64 [n_sessions + 1]
    session_ids: np.ndarray  # external session ids in the same order

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)


def encode_sessions(df: pd.DataFrame, item_index: dict[str, int], min_length: int = 2) -> EncodedSessions:
    """Map items to indices (unknown items dropped), order sessions by first event, drop short ones.

    The order is by (first event time of the session, session id, time); sorts are stable so
    events with equal times keep their input order.
    """
    sess = df["SessionId"].to_numpy()
    time = df["Time"].to_numpy(dtype=np.float64)
    items = df["ItemId"].astype(str).map(item_index)
    known = items.notna().to_numpy()
    sess, time = sess[known], time[known]
    items = items.to_numpy()[known].astype(np.int64)
    codes, uniques = pd.factorize(sess)
    first = np.full(len(uniques), np.inf)
    np.minimum.at(first, codes, time)
    # rank sessions by (first time, code) so equal first times keep their input order
    sess_rank = np.empty(len(uniques), dtype=np.int64)
    sess_rank[np.lexsort((np.arange(len(uniques)), first))] = np.arange(len(uniques))
    order = np.lexsort((time, sess_rank[codes]))
    codes, items = codes[order], items[order]
    ranks = sess_rank[codes]
    counts = np.bincount(ranks, minlength=len(uniques))
    keep_sess = counts >= min_length
    keep_ev = keep_sess[ranks]
    items = items[keep_ev]
    counts_kept = counts[keep_sess]
    offsets = np.zeros(len(counts_kept) + 1, dtype=np.int64)
    np.cumsum(counts_kept, out=offsets[1:])
    order_sess = np.argsort(sess_rank)  # session code for each rank
    session_ids = np.asarray(uniques)[order_sess][keep_sess]
    return EncodedSessions(items=items, offsets=offsets, session_ids=session_ids)


@dataclass
class EpochPlan:
    """All steps of one pass. Step s uses rows ``step_offsets[s]:step_offsets[s+1]``.

    ``inputs``/``targets`` are event positions (not yet item indices), ``keep_mult`` is 0.0 where
    the slot starts a new session on that step (hidden reset) and 1.0 elsewhere. ``shrink[s]``,
    when present, lists which slots of step s-1 survive into step s (in order).
    """

    inputs: np.ndarray
    targets: np.ndarray
    keep_mult: np.ndarray
    step_offsets: np.ndarray
    shrink: dict[int, np.ndarray]
    slot_session: np.ndarray  # session number of each row (for tests and diagnostics)

    @property
    def n_steps(self) -> int:
        return len(self.step_offsets) - 1


def plan_epoch(offsets: np.ndarray, batch_size: int) -> EpochPlan:
    """Session-parallel schedule over sessions ``0..n-1`` (``offsets`` as in EncodedSessions)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n_sessions = len(offsets) - 1
    inputs, targets, mults, sess_rows, sizes = [], [], [], [], []
    shrink: dict[int, np.ndarray] = {}
    n_slots = min(batch_size, n_sessions)
    slot_sess = np.arange(n_slots, dtype=np.int64)
    start = offsets[slot_sess].copy()
    end = offsets[slot_sess + 1].copy()
    fresh = np.ones(n_slots, dtype=bool)
    next_sess = n_slots
    n_steps = 0
    while n_slots > 0:
        # every slot can run at least (min remaining - 1) steps before any session ends
        run = int((end - start).min()) - 1
        if run > 0:
            pos = start[None, :] + np.arange(run, dtype=np.int64)[:, None]
            inputs.append(pos.ravel())
            targets.append((pos + 1).ravel())
            m = np.ones((run, n_slots), dtype=np.float32)
            m[0, fresh] = 0.0
            mults.append(m.ravel())
            sess_rows.append(np.tile(slot_sess, run))
            sizes.extend([n_slots] * run)
            n_steps += run
            start = start + run
            fresh[:] = False
        done = np.flatnonzero(end - start <= 1)
        alive = np.ones(n_slots, dtype=bool)
        for slot in done:
            if next_sess < n_sessions:
                slot_sess[slot] = next_sess
                start[slot] = offsets[next_sess]
                end[slot] = offsets[next_sess + 1]
                fresh[slot] = True
                next_sess += 1
            else:
                alive[slot] = False
        if not alive.all():
            keep = np.flatnonzero(alive)
            # compose with a shrink already recorded for this step (possible with 1-event sessions)
            shrink[n_steps] = shrink[n_steps][keep] if n_steps in shrink else keep
            slot_sess, start, end, fresh = slot_sess[keep], start[keep], end[keep], fresh[keep]
            n_slots = len(keep)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    step_offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(np.asarray(sizes, dtype=np.int64), out=step_offsets[1:])
    # a shrink recorded after the last step is irrelevant
    shrink = {s: k for s, k in shrink.items() if s < len(sizes)}
    return EpochPlan(
        inputs=cat(inputs, np.int64),
        targets=cat(targets, np.int64),
        keep_mult=cat(mults, np.float32),
        step_offsets=step_offsets,
        shrink=shrink,
        slot_session=cat(sess_rows, np.int64),
    )


@dataclass
class DevicePlan:
    """An EpochPlan resolved to item indices and moved to the training device."""

    inputs: torch.Tensor
    targets: torch.Tensor
    keep_mult: torch.Tensor
    bounds: list[tuple[int, int]]  # host ints: slicing needs no device sync
    shrink: dict[int, torch.Tensor]

    @property
    def n_steps(self) -> int:
        return len(self.bounds)


def device_plan(sessions: EncodedSessions, batch_size: int, device: torch.device | str) -> DevicePlan:
    plan = plan_epoch(sessions.offsets, batch_size)
    items = sessions.items
    so = plan.step_offsets.tolist()
    return DevicePlan(
        inputs=torch.from_numpy(items[plan.inputs]).to(device),
        targets=torch.from_numpy(items[plan.targets]).to(device),
        keep_mult=torch.from_numpy(plan.keep_mult).to(device).unsqueeze(1),
        bounds=list(zip(so[:-1], so[1:])),
        shrink={s: torch.from_numpy(k).to(device) for s, k in plan.shrink.items()},
    )
