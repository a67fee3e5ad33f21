"""Generated GRU4Rec models with catalogue-like structure, for tests and benchmarks (no training).

Items belong to topics, topics to categories: ``Wy[j] = category centre + topic offset + noise``
and ``By`` is a Zipf-like popularity bias. The GRU is set so that its hidden state is a running
average of ``tanh(c * Wy[item])`` over the session (update gate 0.5, candidate from the input
only), so hidden states are what a trained model gives: close to the items the session visited,
not random vectors. No Django here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommendations.gru4rec.model import GRU4Rec
from recommendations.gru4rec.params import GRU4RecParams


@dataclass
class Synthetic:
    Wy: np.ndarray  # [n, H] float32
    By: np.ndarray  # [n] float32
    topic: np.ndarray  # [n] int topic of each item
    category: np.ndarray  # [n] int category of each item


def structured_output(n_items: int, hidden: int = 100, n_topics: int | None = None, n_categories: int | None = None,
                      seed: int = 0, category_noise: float = 0.15) -> Synthetic:
    """``category_noise``: share of items filed under a random category (catalogues are not tidy)."""
    rng = np.random.default_rng(seed)
    n_topics = int(n_topics or max(2, n_items // 200))
    n_categories = int(n_categories or max(2, n_topics // 20))
    scale = 1.0 / np.sqrt(hidden)
    cat_centres = rng.standard_normal((n_categories, hidden), dtype=np.float32) * (1.2 * scale)
    topic_cat = rng.integers(0, n_categories, n_topics)
    topic_centres = cat_centres[topic_cat] + rng.standard_normal((n_topics, hidden), dtype=np.float32) * (0.8 * scale)
    # Topic sizes are uneven, like real catalogues.
    weights = rng.pareto(1.5, n_topics) + 1.0
    topic = rng.choice(n_topics, size=n_items, p=weights / weights.sum())
    Wy = np.empty((n_items, hidden), dtype=np.float32)
    chunk = 200_000
    for s in range(0, n_items, chunk):
        t = topic[s : s + chunk]
        Wy[s : s + chunk] = topic_centres[t] + rng.standard_normal((len(t), hidden), dtype=np.float32) * (0.6 * scale)
    rank = rng.permutation(n_items) + 1
    By = (-0.15 * np.log(rank)).astype(np.float32)
    By -= By.mean()
    category = topic_cat[topic].astype(np.int64)
    misfiled = rng.random(n_items) < category_noise
    category[misfiled] = rng.integers(0, n_categories, int(misfiled.sum()))
    return Synthetic(Wy=Wy, By=By, topic=topic.astype(np.int64), category=category)


def structured_gru4rec(syn: Synthetic, input_gain: float = 3.0):
    """A GRU4Rec (shared embedding, one layer of H) whose output is ``[syn.Wy | syn.By]``."""
    n, h = syn.Wy.shape
    params = GRU4RecParams(layers=[h], constrained_embedding=True)
    # Build a tiny model and swap in the big output matrix: no 1M-row random init to throw away.
    model = GRU4Rec(params, [str(i) for i in range(2)], seed=0)
    model.item_ids = [str(i) for i in range(n)]
    model.item_index = {item: i for i, item in enumerate(model.item_ids)}
    model.output = torch.from_numpy(np.hstack([syn.Wy, syn.By[:, None]]).astype(np.float32))
    w_ih, w_hh = model.dense["gru.0.W_ih"], model.dense["gru.0.W_hh"]
    b_ih, b_hh = model.dense["gru.0.b_ih"], model.dense["gru.0.b_hh"]
    w_ih.zero_(), w_hh.zero_(), b_ih.zero_(), b_hh.zero_()
    w_ih[:, 2 * h :] = torch.eye(h) * input_gain  # candidate = tanh(gain * Wy[item]); gates at 0.5
    return model


def sessions_sample(syn: Synthetic, n_sessions: int, length: int = 10, stay: float = 0.8,
                    seed: int = 1) -> list[list[int]]:
    """Sessions of item indices that mostly stay within a topic (``stay``) and else jump."""
    rng = np.random.default_rng(seed)
    by_topic: dict[int, np.ndarray] = {}
    order = np.argsort(syn.topic, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(syn.topic[order]) != 0, True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        by_topic[int(syn.topic[order[a]])] = order[a:b]
    n = len(syn.topic)
    out = []
    for _ in range(n_sessions):
        item = int(rng.integers(n))
        s = [item]
        for _ in range(length - 1):
            if rng.random() < stay:
                pool = by_topic[int(syn.topic[item])]
                item = int(pool[rng.integers(len(pool))])
            else:
                item = int(rng.integers(n))
            s.append(item)
        out.append(s)
    return out
