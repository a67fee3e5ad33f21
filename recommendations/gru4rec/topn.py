"""The one top-n selection of the engine: best scores first, with exclusions and an availability mask.

GRU4Rec, V-SKNN and item-kNN answers (and the Django service that serves them) all pick their
top n here, so "what counts as no answer" (-inf) is decided in one place.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def top_n(scores: torch.Tensor, n: int, exclude: Sequence[int] | None = None, mask: torch.Tensor | None = None,
          positive_only: bool = False) -> tuple[list[int], list[float]]:
    """(positions, scores) of the ``n`` best entries of a 1-D ``scores``, best first.

    ``mask`` is an additive [len(scores)] tensor (-inf for items that must not come back, 0
    elsewhere), ``exclude`` positions never returned, ``positive_only`` drops scores <= 0 (for
    the kNN models a zero means "no neighbour voted", not a weak recommendation). Entries left at
    -inf are not answers, so fewer than ``n`` may come back. ``scores`` may be changed in place.
    """
    n = max(0, min(int(n), scores.shape[0]))
    if n == 0:
        return [], []
    if positive_only:
        scores = scores.masked_fill(scores <= 0, -math.inf)
    if mask is not None:
        scores = scores + mask.to(scores.device)
    if exclude is not None and len(exclude):
        scores[torch.as_tensor(exclude, dtype=torch.long, device=scores.device)] = -math.inf
    top = torch.topk(scores, n)
    values, positions = top.values.tolist(), top.indices.tolist()
    keep = next((i for i, v in enumerate(values) if v == -math.inf), len(values))
    return positions[:keep], values[:keep]
